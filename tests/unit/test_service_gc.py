"""The garbage-collector settings a twistd clustermail process runs with (service.py)."""

from __future__ import annotations

import subprocess
import sys

from twistedmail.service import GC_THRESHOLDS

BUILD = """
import gc
from twistedmail.service import Options, makeService
assert gc.get_threshold() == (700, 10, 10), gc.get_threshold()
options = Options()
options.parseOptions(["--user", "alice:pw", "--imap", "tcp:0:interface=127.0.0.1"])
makeService(options)
print(*gc.get_threshold(), gc.get_freeze_count())
"""


def test_make_service_tunes_the_collector() -> None:
    """makeService (in a fresh interpreter, as under twistd) freezes what start-up
    built and raises the young-generation threshold from CPython's 700."""
    out = subprocess.run([sys.executable, "-c", BUILD], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    *thresholds, frozen = map(int, out)
    assert tuple(thresholds) == GC_THRESHOLDS
    assert GC_THRESHOLDS[0] >= 10_000
    assert frozen > 10_000  # modules, Twisted, the node: out of the collector's sight
