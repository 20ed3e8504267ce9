"""Durability of a node's own changes (DESIGN.md §4): ``check_writable`` before a write,
``durable()`` after it.  A mixin of ``ClusterNode`` (twistedmail/cluster/service.py),
kept apart so each module stays small.

Invariants:
  * ``durable()`` fires only when ``ack_needed`` replicas, this one included,
    reported a VV covering every own cop made before the call (``_Peer.acked``);
    else it fails with ClusterUnavailable after ``ack_timeout``.
  * With ``degraded_writes`` the count needed never exceeds the live holders.
  * Every waiter is either in ``_waiters`` with a live timer or fired, never both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from .membership import UP

CATCHING_UP, READY, REFUSED = "catching-up", "ready", "refused"


class ClusterUnavailable(Exception):
    """Too few replicas are live or acknowledged in time (IMAP: NO [UNAVAILABLE])."""


@dataclass
class _Waiter:
    target: int
    user: str | None
    deferred: defer.Deferred[None]
    timer: Any = None


class Durability:
    """``check_writable`` / ``durable`` over the host's spec, peers and membership."""

    spec: Any
    state: str
    reason: str
    reactor: Any
    replica: Any
    membership: Any
    peers: dict[str, Any]
    _waiters: list[_Waiter]

    def check_writable(self, user: str) -> None:
        """ClusterUnavailable unless enough replicas of ``user``'s mail file are live
        to acknowledge a write (DESIGN.md §4), or degraded writes are allowed."""
        if self.state != READY:
            raise ClusterUnavailable(self.reason)
        holders = self.spec.holders(user)
        needed = self.spec.ack_needed(user)
        live = self._live_holders(user)
        if len(live) < needed and not self.spec.degraded_writes:
            verb = "is" if len(live) == 1 else "are"
            raise ClusterUnavailable(
                f"only {len(live)} of {len(holders)} replicas of {user}'s mail file "
                f"{verb} live; {needed} needed")

    def durable(self, user: str | None = None) -> defer.Deferred[None]:
        """Fires once every own cop made so far is applied on enough replicas
        (``ack_needed(user)``, this node included); ClusterUnavailable after
        ``ack_timeout``.  Without ``user``: ack_replicas of the whole cluster."""
        waiter = _Waiter(self.replica.seq, user, defer.Deferred(self._cancel_waiter))
        if self.state == REFUSED:
            waiter.deferred.errback(ClusterUnavailable(self.reason))
        elif self._satisfied(waiter):
            waiter.deferred.callback(None)
        else:
            waiter.timer = self.reactor.callLater(self.spec.ack_timeout, self._expire, waiter)
            self._waiters.append(waiter)
        return waiter.deferred

    def _live_holders(self, user: str) -> list[str]:
        me = self.spec.me.name
        return [h for h in self.spec.holders(user)
                if h == me or self.membership.state(h) == UP]

    def _needed(self, user: str | None) -> tuple[int, list[str]]:
        if user is not None:
            return self.spec.ack_needed(user), list(self.spec.holders(user))
        names = list(self.spec.names)
        wanted = self.spec.ack_replicas if self.spec.ack_replicas is not None else 2
        return max(1, min(wanted, len(names))), names

    def _acks(self, waiter: _Waiter) -> int:
        _, holders = self._needed(waiter.user)
        me = self.spec.me.name
        return sum(1 for h in holders
                   if h == me or (h in self.peers and self.peers[h].acked >= waiter.target))

    def _satisfied(self, waiter: _Waiter) -> bool:
        needed, holders = self._needed(waiter.user)
        if self.spec.degraded_writes:
            me = self.spec.me.name
            live = [h for h in holders if h == me or self.membership.state(h) == UP]
            needed = min(needed, max(1, len(live)))
        return self._acks(waiter) >= needed

    def _check_waiters(self) -> None:
        if not self._waiters:
            return
        for waiter in list(self._waiters):
            if self._satisfied(waiter):
                self._drop(waiter)
                waiter.deferred.callback(None)

    def _drop(self, waiter: _Waiter) -> None:
        self._waiters.remove(waiter)
        if waiter.timer is not None and waiter.timer.active():
            waiter.timer.cancel()

    def _cancel_waiter(self, deferred: defer.Deferred[None]) -> None:
        for waiter in self._waiters:
            if waiter.deferred is deferred:
                self._drop(waiter)
                return

    def _expire(self, waiter: _Waiter) -> None:
        waiter.timer = None
        needed, _ = self._needed(waiter.user)
        whose = f"{waiter.user}'s mail file" if waiter.user else "the cluster"
        self._fail(waiter, f"only {self._acks(waiter)} of {needed} needed replicas of {whose} "
                           f"acknowledged the change within {self.spec.ack_timeout:g} s")

    def _fail(self, waiter: _Waiter, why: str) -> None:
        self._drop(waiter)
        waiter.deferred.errback(ClusterUnavailable(why))
