"""Durability of a node's own changes (DESIGN.md §4): ``check_writable`` before a write,
``durable()`` after it.  A mixin of ``ClusterNode`` (twistedmail/cluster/service.py),
kept apart so each module stays small.

Invariants:
  * ``durable()`` fires only when ``ack_needed`` replicas, this one included,
    reported a VV covering every own cop made before the call (``_Peer.acked``);
    else it fails with ClusterUnavailable after ``ack_timeout``.
  * With ``degraded_writes`` the count needed never exceeds the live holders.
  * ``_waiters`` holds the unfired waiters in creation order, so their deadlines
    ascend; whenever it is not empty one sweep timer is armed, for a moment no
    later than the first deadline (one timer per node, not one per write).
  * A waiter's holders and count needed are worked out when it is made, from a
    per-user plan kept as long as ``spec`` is the same object.
  * ``check_writable`` remembers the users it passed until a peer changes state
    (``members_changed``) or ``spec`` is another object.
  * While every waiter shares one plan (``_mixed_plans`` False), those an
    acknowledgement satisfies are a prefix of ``_waiters`` (their targets ascend).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from .membership import UP

CATCHING_UP, READY, REFUSED = "catching-up", "ready", "refused"


class ClusterUnavailable(Exception):
    """Too few replicas are live or acknowledged in time (IMAP: NO [UNAVAILABLE])."""


@dataclass(eq=False, slots=True)
class _Waiter:
    target: int
    user: str | None
    deferred: defer.Deferred[None]
    deadline: float = 0.0
    needed: int = 1
    mine: int = 1  # 1 when this node holds the mail file (it counts as one replica)
    others: tuple[str, ...] = ()  # the other holders
    fired: bool = False


class Durability:
    """``check_writable`` / ``durable`` over the host's spec, peers and membership."""

    spec: Any
    state: str
    reason: str
    reactor: Any
    replica: Any
    membership: Any
    peers: dict[str, Any]
    _waiters: deque[_Waiter]
    _sweep_call: Any = None
    _plans: dict[str | None, tuple[int, int, tuple[str, ...]]] = {}
    _plans_spec: Any = None
    _mixed_plans = False  # waiters of more than one plan wait (until none is left)
    _writable: set[str] = set()  # users check_writable passed, while no peer changed state
    _writable_spec: Any = None

    def check_writable(self, user: str) -> None:
        """ClusterUnavailable unless enough replicas of ``user``'s mail file are live
        to acknowledge a write (DESIGN.md §4), or degraded writes are allowed."""
        if self.state != READY:
            raise ClusterUnavailable(self.reason)
        if self._writable_spec is self.spec and user in self._writable:
            return
        holders = self.spec.holders(user)
        needed = self.spec.ack_needed(user)
        live = self._live_holders(user)
        if len(live) < needed and not self.spec.degraded_writes:
            verb = "is" if len(live) == 1 else "are"
            raise ClusterUnavailable(
                f"only {len(live)} of {len(holders)} replicas of {user}'s mail file "
                f"{verb} live; {needed} needed")
        if self._writable_spec is not self.spec:
            self._writable, self._writable_spec = set(), self.spec
        if len(self._writable) < 10_000:
            self._writable.add(user)

    def members_changed(self) -> None:
        """A peer changed state (up, suspect, down): writability is judged anew."""
        self._writable = set()

    def durable(self, user: str | None = None) -> defer.Deferred[None]:
        """Fires once every own cop made so far is applied on enough replicas
        (``ack_needed(user)``, this node included); ClusterUnavailable after
        ``ack_timeout``.  Without ``user``: ack_replicas of the whole cluster."""
        needed, mine, others = self._plan(user)
        waiter = _Waiter(self.replica.seq, user, defer.Deferred(self._cancel_waiter),
                         needed=needed, mine=mine, others=others)
        if self.state == REFUSED:
            waiter.deferred.errback(ClusterUnavailable(self.reason))
        elif self._covered(waiter) >= waiter.target:
            waiter.deferred.callback(None)
        else:
            waiter.deadline = self.reactor.seconds() + self.spec.ack_timeout
            if not self._waiters:
                self._mixed_plans = False
            elif self._waiters[-1].others is not others:
                self._mixed_plans = True  # see _check_waiters
            self._waiters.append(waiter)
            self._arm_sweep()
        return waiter.deferred

    def _live_holders(self, user: str) -> list[str]:
        me = self.spec.me.name
        return [h for h in self.spec.holders(user)
                if h == me or self.membership.state(h) == UP]

    def _plan(self, user: str | None) -> tuple[int, int, tuple[str, ...]]:
        """(replicas needed, 1 if this node holds the mail file else 0, other holders)."""
        if self._plans_spec is not self.spec:
            self._plans, self._plans_spec = {}, self.spec
        plan = self._plans.get(user)
        if plan is None:
            needed, holders = self._needed(user)
            me = self.spec.me.name
            plan = (needed, int(me in holders), tuple(h for h in holders if h != me))
            if len(self._plans) < 10_000:
                self._plans[user] = plan
        return plan

    def _needed(self, user: str | None) -> tuple[int, list[str]]:
        if user is not None:
            return self.spec.ack_needed(user), list(self.spec.holders(user))
        names = list(self.spec.names)
        wanted = self.spec.ack_replicas if self.spec.ack_replicas is not None else 2
        return max(1, min(wanted, len(names))), names

    def _acks(self, waiter: _Waiter) -> int:
        peers, target = self.peers, waiter.target
        return waiter.mine + sum(1 for h in waiter.others
                                 if h in peers and peers[h].acked >= target)

    def _check_waiters(self) -> None:
        waiters = self._waiters
        if not waiters:
            return
        ready: list[_Waiter] = []
        if not self._mixed_plans:
            # One plan for all: targets ascend, so the waiters ready are a prefix.
            top = self._covered(waiters[0])
            while waiters and waiters[0].target <= top:
                ready.append(waiters.popleft())
        else:
            # Waiters with the same plan share the highest target their replicas cover.
            tops: dict[tuple[int, int, int], int] = {}
            for waiter in waiters:
                key = (waiter.needed, waiter.mine, id(waiter.others))
                if key not in tops:
                    tops[key] = self._covered(waiter)
                if waiter.target <= tops[key]:
                    ready.append(waiter)
            if ready:
                fired = set(map(id, ready))
                self._waiters = deque(w for w in waiters if id(w) not in fired)
        if not ready:
            return
        if not self._waiters:
            self._mixed_plans = False
        for waiter in ready:
            waiter.fired = True
        for waiter in ready:
            waiter.deferred.callback(None)

    def _covered(self, waiter: _Waiter) -> int:
        """The highest own seq enough of ``waiter``'s holders acknowledged (-1: none
        will do; waiters with the same needed/mine/others have the same answer)."""
        needed = waiter.needed
        if self.spec.degraded_writes:
            live = waiter.mine + sum(1 for h in waiter.others
                                     if self.membership.state(h) == UP)
            needed = min(needed, max(1, live))
        more = needed - waiter.mine  # acknowledgements needed from the others
        if more <= 0:
            return self.replica.seq
        peers = self.peers
        acked = sorted((peers[h].acked for h in waiter.others if h in peers), reverse=True)
        return acked[more - 1] if len(acked) >= more else -1

    def _arm_sweep(self) -> None:
        if self._sweep_call is None or not self._sweep_call.active():
            delay = max(0.0, self._waiters[0].deadline - self.reactor.seconds())
            self._sweep_call = self.reactor.callLater(delay, self._sweep)

    def _sweep(self) -> None:
        """Fail the waiters whose deadline passed; re-arm for the next one."""
        self._sweep_call = None
        now = self.reactor.seconds()
        while self._waiters and self._waiters[0].deadline <= now:
            self._expire(self._waiters[0])
        if self._waiters:
            self._arm_sweep()

    def _drop(self, waiter: _Waiter) -> None:
        waiter.fired = True
        self._waiters.remove(waiter)
        if not self._waiters and self._sweep_call is not None and self._sweep_call.active():
            self._sweep_call.cancel()
            self._sweep_call = None

    def _cancel_waiter(self, deferred: defer.Deferred[None]) -> None:
        for waiter in self._waiters:
            if waiter.deferred is deferred:
                self._drop(waiter)
                return

    def _expire(self, waiter: _Waiter) -> None:
        needed = waiter.needed
        whose = f"{waiter.user}'s mail file" if waiter.user else "the cluster"
        self._fail(waiter, f"only {self._acks(waiter)} of {needed} needed replicas of {whose} "
                           f"acknowledged the change within {self.spec.ack_timeout:g} s")

    def _fail(self, waiter: _Waiter, why: str) -> None:
        self._drop(waiter)
        waiter.deferred.errback(ClusterUnavailable(why))
