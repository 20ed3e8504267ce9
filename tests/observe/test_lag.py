"""Replication lag per peer on a 2-node in-process cluster (issue 6 part 4)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster.inproc import InProcessCluster, append, call, wait_for
from twistedmail.observe import metrics

from .scrape import Samples, parse, value


@pytest.fixture
def pair() -> Iterator[InProcessCluster]:
    """Nodes n1 and n2, not started; stopped at teardown."""
    c = InProcessCluster(2)
    yield c
    c.stop_all()


def here(c: InProcessCluster, name: str) -> Samples:
    """Node ``name``'s metrics; call in the reactor thread (wait_for conditions do)."""
    data, _ = metrics.render(c[name].node)
    return parse(data.decode())


def scrape(c: InProcessCluster, name: str) -> Samples:
    """Node ``name``'s metrics, rendered in the reactor thread."""
    return call(here, c, name)


def lag(c: InProcessCluster, name: str, peer: str) -> float:
    """Node ``name``'s replication lag towards ``peer``; call in the reactor thread."""
    return value(here(c, name), "twistedmail_replication_lag_ops", peer=peer)


def test_lag_counts_unacknowledged_ops_then_drains(pair: InProcessCluster) -> None:
    """With both nodes up the lag is 0; while n2 is stopped each APPEND on n1 adds one
    op to n1's lag towards n2 (and n2 is not up); a restarted n2 catches up to lag 0."""
    pair.start_all()
    pair.wait_converged()
    wait_for(lambda: lag(pair, "n1", "n2") == 0, "n1's lag towards n2 at 0")
    both = scrape(pair, "n1")
    assert value(both, "twistedmail_peer_up", peer="n2") == 1
    assert value(both, "twistedmail_peer_linked", peer="n2") == 1
    assert value(both, "twistedmail_cluster_ready") == 1
    pair.stop("n2")
    for i in range(3):
        append(pair["n1"], "alice", b"Subject: lag %d\r\n\r\nbody\r\n" % i)
    assert call(lag, pair, "n1", "n2") == 3
    wait_for(lambda: value(here(pair, "n1"), "twistedmail_peer_up", peer="n2") == 0,
             "n1 to see n2 not up")
    pair.start("n2")
    pair.wait_ready("n2")
    pair.wait_converged()
    wait_for(lambda: lag(pair, "n1", "n2") == 0, "n1's lag towards n2 back to 0")
    assert value(scrape(pair, "n2"), "twistedmail_messages") == 3
