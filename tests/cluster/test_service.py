"""ClusterNode (twistedmail/cluster/service.py): replication, durability, membership,
readiness, UIDVALIDITY reservation, root collisions — nodes in the shared reactor
thread, linked over real 127.0.0.1 TCP with TLS (tests/cluster/inproc.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from twisted.internet.defer import Deferred

from twistedmail.cluster.service import ClusterUnavailable
from twistedmail.cluster.wire import BATCH_COPS
from twistedmail.store.uidvalidity import split

from .inproc import (
    InProcessCluster,
    LogCapture,
    Member,
    append,
    call,
    messages,
    replace_node,
    uidvalidity,
    wait_for,
)


def outcome(member: Member, user: str | None) -> Any:
    """durable() on ``member``: "ok" or the ClusterUnavailable text (waits for it)."""
    def run() -> Deferred[Any]:
        d = member.cluster.durable(user)
        d.addCallback(lambda _: "ok")
        d.addErrback(lambda f: f.trap(ClusterUnavailable) and f.getErrorMessage())
        return d

    return call(run)


def test_single_configured_node_is_ready_at_once() -> None:
    """A cluster of one is ready without peers and has its configured accounts."""
    c = InProcessCluster(1)
    try:
        member = c.start("n1")
        c.wait_ready("n1")
        assert call(member.node.store.users) == ["#public", "alice", "bob"]
        assert outcome(member, "alice") == "ok"
    finally:
        c.stop_all()


def test_alone_waits_for_a_majority_and_says_so(inproc: InProcessCluster) -> None:
    """One node of three is catching-up, explains why, and has created no accounts."""
    member = inproc.start("n1")
    wait_for(lambda: member.cluster.reason.startswith("waiting"), "a reason")
    assert call(lambda: (member.cluster.state, member.cluster.reason)) == (
        "catching-up", "waiting for a majority of the cluster: 1 of 3 nodes reachable")
    assert call(member.node.store.users) == []
    with pytest.raises(ClusterUnavailable, match="waiting for a majority"):
        call(member.cluster.check_writable, "alice")


def test_replication_both_ways(inproc: InProcessCluster) -> None:
    """Writes on n1 and on n2 reach every node; replicas converge."""
    inproc.start_all()
    append(inproc["n1"], "alice", b"Subject: one\r\n\r\nfrom n1\r\n")
    append(inproc["n2"], "alice", b"Subject: two\r\n\r\nfrom n2\r\n")
    append(inproc["n3"], "bob", b"Subject: three\r\n\r\nfrom n3\r\n")
    summary = inproc.wait_converged()
    assert len(summary["alice"]["INBOX"]) == 2
    assert len(summary["bob"]["INBOX"]) == 1
    for name in ("n1", "n2", "n3"):
        assert sorted(messages(inproc[name], "alice")) == [
            b"Subject: one\r\n\r\nfrom n1\r\n", b"Subject: two\r\n\r\nfrom n2\r\n"]


def test_durable_fires_after_a_peer_applied(inproc: InProcessCluster) -> None:
    """durable() fires only once a peer reported the change applied, and it is there."""
    inproc.start_all()
    n1 = inproc["n1"]
    body = b"Subject: durable\r\n\r\nacked\r\n"
    append(n1, "alice", body)
    seq = call(lambda: n1.cluster.replica.seq)
    assert outcome(n1, "alice") == "ok"
    acked = [name for name in ("n2", "n3") if call(lambda n=name: n1.cluster.peers[n].acked) >= seq]
    assert acked
    assert all(body in messages(inproc[name], "alice") for name in acked)


@pytest.fixture
def lone_pair() -> Iterator[InProcessCluster]:
    """Two nodes (ack_timeout 0.5 s), n2 stopped and seen not up by n1."""
    c = InProcessCluster(2, ack_timeout=0.5)
    try:
        c.start_all()
        n1 = c["n1"]
        c.stop("n2")
        wait_for(lambda: n1.cluster.membership.state("n2") != "up", "n2 not up")
        yield c
    finally:
        c.stop_all()


def test_durable_fails_after_ack_timeout_when_the_peer_is_gone(
        lone_pair: InProcessCluster) -> None:
    """With the only peer stopped, durable() fails with ClusterUnavailable after ack_timeout."""
    n1 = lone_pair["n1"]
    append(n1, "alice", b"Subject: lost\r\n\r\nnobody acks\r\n")
    assert outcome(n1, "alice") == (
        "only 1 of 2 needed replicas of alice's mail file acknowledged the change "
        "within 0.5 s")


def test_check_writable_counts_live_holders(inproc: InProcessCluster) -> None:
    """Too few live replicas: ClusterUnavailable with the contract's text, unless degraded."""
    inproc.start_all()
    n1 = inproc["n1"]
    wait_for(lambda: n1.cluster.membership.live() == {"n2", "n3"}, "n2 and n3 up")
    call(n1.cluster.check_writable, "alice")
    inproc.stop("n2")
    call(n1.cluster.check_writable, "alice")  # n1 + n3: still 2 of 3
    inproc.stop("n3")
    wait_for(lambda: not n1.cluster.membership.live(), "n2 and n3 not live")
    with pytest.raises(ClusterUnavailable) as err:
        call(n1.cluster.check_writable, "alice")
    assert str(err.value) == "only 1 of 3 replicas of alice's mail file is live; 2 needed"
    call(lambda: setattr(n1.cluster, "spec", _replace(n1.cluster.spec, degraded_writes=True)))
    call(n1.cluster.check_writable, "alice")
    append(n1, "alice", b"Subject: degraded\r\n\r\nlocal only\r\n")
    assert outcome(n1, "alice") == "ok"


def test_heartbeat_states_up_suspect_down_up(inproc: InProcessCluster) -> None:
    """A stopped peer goes up -> suspect -> down; restarted, it is up again."""
    inproc.start_all()
    n1 = inproc["n1"]
    wait_for(lambda: n1.cluster.membership.state("n2") == "up", "n2 up")
    seen: list[tuple[str, str, str]] = []
    call(n1.cluster.membership.listeners.append, lambda *change: seen.append(change))
    inproc.stop("n2")
    wait_for(lambda: n1.cluster.membership.state("n2") == "down", "n2 down")
    inproc.start("n2")
    wait_for(lambda: n1.cluster.membership.state("n2") == "up", "n2 up again")
    assert [c for c in call(lambda: list(seen)) if c[0] == "n2"] == [
        ("n2", "up", "suspect"), ("n2", "suspect", "down"), ("n2", "down", "up")]


def test_root_collision_refused_at_hello(inproc: InProcessCluster) -> None:
    """A joining node presenting a live peer's root is refused, logs why and exits;
    the live nodes stay ready."""
    inproc.start_all()  # a node serves once both peers hold its reservation (3 nodes)
    for name in ("n1", "n2", "n3"):
        inproc.wait_ready(name)
    inproc.stop("n3")
    clash = replace_node(inproc.nodes, "n3", root=2)  # n2's root
    with LogCapture() as logs:
        joiner = inproc.start("n3", inproc.spec("n3", nodes=clash))
        wait_for(lambda: joiner.refusals, "n3 refused")
        wait_for(lambda: logs.has("cluster link from n3 (127.0.0.1:"), "the refusal logged")
    assert call(lambda: joiner.cluster.state) == "refused"
    assert "uidvalidity root 2" in joiner.refusals[0]
    assert joiner.cluster.reason.startswith("refused: ")
    assert logs.has("cluster node n3 refused: ")
    assert any("refused: node n3 presents uidvalidity root 2" in line for line in logs.lines)
    assert call(lambda: inproc["n1"].cluster.ready and inproc["n2"].cluster.ready)
    assert inproc["n1"].refusals == [] and inproc["n2"].refusals == []
    assert call(lambda: joiner.cluster.node.store.users()) == []


def test_restarted_empty_node_catches_up_by_snapshot_with_larger_uidvalidity(
        inproc: InProcessCluster) -> None:
    """n3 restarted empty gets a snapshot (peers' logs are short), then shows every
    folder with a UIDVALIDITY above any it showed before (clock floor is the same)."""
    inproc.start_all(log_limit=5)
    for i in range(12):
        append(inproc["n1"], "alice", b"Subject: %d\r\n\r\nbefore restart\r\n" % i)
    inproc.wait_converged()
    before = {name: uidvalidity(inproc["n3"], "alice", name)
              for name in ("INBOX", "Sent", "Trash")}
    inproc.stop("n3")
    n3 = inproc.start("n3", log_limit=5)
    inproc.wait_ready("n3")
    assert call(lambda: n3.cluster.stats["snapshots_in"]) >= 1
    assert len(messages(n3, "alice")) == 12
    inproc.wait_converged()
    for name, old in before.items():
        new = uidvalidity(n3, "alice", name)
        assert split(new)[0] == split(old)[0] == 3
        assert new > old, name
    status = call(n3.cluster.status)
    assert status["uidvalidity"]["floor"] > split(max(before.values()))[1]


def test_reservation_is_replicated_and_extended(inproc: InProcessCluster) -> None:
    """Peers learn the node's reservation; using half the block extends it."""
    inproc.start_all()
    n1 = inproc["n1"]
    top = call(lambda: n1.cluster.status()["uidvalidity"]["reserved"])
    wait_for(lambda: inproc["n2"].cluster.replica.reservations.get("n1") == top,
             "n2 knows n1's reservation")

    def burn() -> None:  # DELETE + CREATE of one name: a fresh counter each time
        from twistedmail.store import CreateMailbox, DeleteMailbox

        for _ in range(600):
            n1.node.store.apply(CreateMailbox.new("alice", "churn"))
            n1.node.store.apply(DeleteMailbox("alice", "churn"))

    call(burn)
    wait_for(lambda: inproc["n2"].cluster.replica.reservations.get("n1", 0) > top,
             "n2 knows the extension")
    issued = call(lambda: n1.cluster.status()["uidvalidity"]["issued"])
    assert issued <= call(lambda: inproc["n2"].cluster.replica.reservations["n1"])


def _replace(spec: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(spec, **changes)


def test_restart_replays_an_add_whose_body_is_gone() -> None:
    """An empty node replaying a log with an add whose message was expunged since
    (body freed everywhere), the expunge several batches later, still catches up:
    the sender declares the body absent and the add waits for its tombstone."""
    c = InProcessCluster(2)
    try:
        c.start_all()
        n1 = c["n1"]
        append(n1, "alice", b"Subject: gone\r\n\r\nexpunged soon\r\n")
        append(n1, "alice", b"Subject: kept\r\n\r\nstays\r\n")

        def churn_then_expunge_first() -> None:
            from twistedmail.store import Expunge, StoreFlags

            store = n1.node.store
            first, second = store.mailbox("alice", "INBOX").uids()[:2]
            for i in range(BATCH_COPS + 50):  # one flags cop each: the expunge is batches later
                store.apply(StoreFlags("alice", "INBOX", (second,), "replace",
                                       frozenset({f"k{i}"})))
            store.apply(StoreFlags("alice", "INBOX", (first,), "add", frozenset({"\\Deleted"})))
            store.apply(Expunge("alice", "INBOX", (first,)))

        call(churn_then_expunge_first)
        c.wait_converged()
        c.stop("n2")
        n2 = c.start("n2")
        c.wait_ready("n2")
        assert messages(n2, "alice") == [b"Subject: kept\r\n\r\nstays\r\n"]
        assert call(n2.cluster.replica.wanted_blobs) == []
        c.wait_converged()
    finally:
        c.stop_all()


def test_waiting_writes_share_one_timer(lone_pair: InProcessCluster) -> None:
    """Many durable() calls waiting at once arm one sweep timer (not one each) and all
    fail together after ack_timeout; afterwards no sweep timer is left."""
    n1 = lone_pair["n1"]

    def sweeps() -> int:
        from twisted.internet import reactor
        return sum(1 for dc in reactor.getDelayedCalls()  # type: ignore[attr-defined]
                   if getattr(dc.func, "__self__", None) is n1.cluster
                   and dc.func.__name__ == "_sweep")

    results: list[str] = []

    def start() -> int:
        for _ in range(20):
            d = n1.cluster.durable("alice")
            d.addErrback(lambda f: results.append(f.getErrorMessage()))
        return sweeps()

    append(n1, "alice", b"Subject: waiting\r\n\r\nnobody acks\r\n")
    assert call(start) == 1
    wait_for(lambda: len(results) == 20, "every waiter failed", timeout=10)
    assert set(results) == {"only 1 of 2 needed replicas of alice's mail file "
                            "acknowledged the change within 0.5 s"}
    assert call(sweeps) == 0
