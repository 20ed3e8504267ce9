"""Test harness for twistedmail: real node processes, an in-process server, a script client.

The pytest fixtures live in :mod:`twistedmail.testing.plugin` (loaded by the
``pytest11`` entry point).  Importing this package starts nothing.
"""

from __future__ import annotations

from twistedmail.testing.cluster import Cluster, ClusterNodeProcess, NotConverged
from twistedmail.testing.inprocess import InProcessServer, RunningServer, in_process_server
from twistedmail.testing.invariants import Invariants, InvariantViolation
from twistedmail.testing.process import (
    ClusterMailError,
    ClusterMailProcess,
    run_twistd,
    twistd_command,
    twistd_env,
)
from twistedmail.testing.script import ImapScript, Result
from twistedmail.testing.tcpproxy import TcpProxy

__all__ = [
    "Cluster",
    "ClusterMailError",
    "ClusterMailProcess",
    "ClusterNodeProcess",
    "ImapScript",
    "InProcessServer",
    "InvariantViolation",
    "Invariants",
    "NotConverged",
    "Result",
    "RunningServer",
    "TcpProxy",
    "in_process_server",
    "run_twistd",
    "twistd_command",
    "twistd_env",
]
