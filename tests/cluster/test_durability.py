"""Durability bookkeeping (twistedmail/cluster/durability.py) on fakes and task.Clock:
which waiting writes an acknowledgement releases, without a network."""

from __future__ import annotations

from collections import deque
from types import SimpleNamespace
from typing import Any

from twisted.internet import task

from twistedmail.cluster.durability import READY, Durability


class Node(Durability):
    """The Durability mixin over fake spec, peers and membership."""

    def __init__(self, placement: dict[str, tuple[str, ...]]) -> None:
        self.spec = SimpleNamespace(
            me=SimpleNamespace(name="n1"), names=("n1", "n2", "n3"), ack_replicas=2,
            degraded_writes=False, ack_timeout=5.0,
            holders=lambda user: placement[user],
            ack_needed=lambda user: min(2, len(placement[user])))
        self.state, self.reason = READY, ""
        self.reactor = task.Clock()
        self.replica = SimpleNamespace(seq=0)
        self.membership = SimpleNamespace(state=lambda node: "up")
        self.peers = {name: SimpleNamespace(acked=0) for name in ("n2", "n3")}
        self._waiters = deque()

    def write(self, user: str) -> list[Any]:
        """One own change for ``user``, then its durable(); the list gets its outcome."""
        self.replica.seq += 1
        out: list[Any] = []
        self.durable(user).addBoth(out.append)
        return out

    def ack(self, peer: str) -> None:
        self.peers[peer].acked = self.replica.seq
        self._check_waiters()


def test_acks_release_the_waiting_writes_in_order() -> None:
    """One mail file: an acknowledgement covering seq N releases every write up to N
    and none after it; the sweep timer, left armed, later finds nothing to fail."""
    node = Node({"alice": ("n1", "n2", "n3")})
    first, second = node.write("alice"), node.write("alice")
    node.peers["n2"].acked = 1
    node._check_waiters()
    assert first == [None] and second == []
    node.ack("n3")
    assert second == [None]
    assert not node._waiters
    node.reactor.advance(5.0)
    assert first == [None] and second == [None] and not node.reactor.getDelayedCalls()


def test_a_write_of_another_plan_is_not_held_behind_an_unacknowledged_one() -> None:
    """Mail files on different nodes: bob's write (n1+n3) is released by n3's
    acknowledgement although alice's earlier write (n1+n2) still waits for n2."""
    node = Node({"alice": ("n1", "n2"), "bob": ("n1", "n3")})
    alice, bob = node.write("alice"), node.write("bob")
    node.ack("n3")
    assert bob == [None] and alice == []
    node.ack("n2")
    assert alice == [None]
    assert not node._waiters


def test_unreleased_writes_fail_at_their_deadline() -> None:
    """A write no replica acknowledges fails with the contract's text after ack_timeout."""
    node = Node({"alice": ("n1", "n2", "n3")})
    out = node.write("alice")
    node.reactor.advance(5.0)
    assert len(out) == 1 and "acknowledged the change within 5 s" in str(out[0].value)
