"""Fixtures of the cluster tests.  (``cluster`` / ``make_cluster``, real ``twistd`` nodes,
come from twistedmail.testing.plugin.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .inproc import InProcessCluster


@pytest.fixture
def inproc() -> Iterator[InProcessCluster]:
    """Three in-process nodes n1..n3 (tests/cluster/inproc.py), not started; stopped at
    teardown."""
    c = InProcessCluster(3)
    yield c
    c.stop_all()
