"""Deterministic cluster simulation: test layer 3 (DESIGN.md §7, issue 3 item 9).

``SimCluster(n, seed)`` runs n simulated nodes on one ``twisted.internet.task.Clock``.  A node
is a ``MailStore`` (node_name = its incarnation id, UIDVALIDITY root i) plus a ``Replica``
(contract §2), joined by an in-memory network that carries cop batches (the replicas' own
pushes and periodic anti-entropy: ``missing_since(peer vv)``, or a snapshot when it returns
None) with seeded delays, duplicates, and reordering across origins (FIFO per origin per link,
as TCP gives).  A seeded fault injector partitions and heals links, kills nodes (state wipe)
and restarts them (fresh incarnation; rejoin by snapshot).  Simulated clients write on every
ready node through ``MailStore.apply`` with store ops, as the IMAP layer does.

A (re)started node mimics the service's join (contract §3): Hello to the peers until a
majority of the cluster (itself included) answered, UIDVALIDITY floor = max(clock floor, max
reservation the answers hold for its name + 1), an own "reserve" cop for floor + 1024, then a
snapshot; it serves once the snapshot is applied and the reservation is on ``reserve_acks``
peers (N - majority + 1, as the service: with 3 nodes both peers).  Until its floor is set
it takes no cops (they could create folders).

Invariants (a violation raises ``SimFailure`` naming the seed and the command reproducing it):
- every acknowledged APPEND/COPY/MOVE (its cop applied on ``ack`` live nodes) is present
  exactly once on every node after heal + quiescence, unless the simulation itself expunged or
  deleted it (then at most once); no instance is ever present twice on a node;
- replicas converge: ``Replica.summary()`` equal on all nodes;
- no (node, user, folder, UIDVALIDITY, UID) is ever seen mapped to two instances, across kills;
- every UIDVALIDITY carries its node's root (roots unique, so values are unique across nodes),
  and per node and folder name it never decreases, across kills too: a restarted node's floor
  is above every counter the node presented before (issued while or before it served);
- ``MailStore.check_invariants()`` on every node, and no store listener ever failed.
Every loop is bounded: ``steps`` actions, then at most QUIET_LIMIT simulated seconds to settle.
"""

from __future__ import annotations

import argparse
import functools
import random
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from twisted.internet import task

from twistedmail.cluster.cops import Cop
from twistedmail.cluster.hlc import HLC
from twistedmail.cluster.replica import MissingBlobs, Replica
from twistedmail.store import (
    CreateAccount,
    MailStore,
    MessagesAdded,
    StoreError,
)
from twistedmail.store.uidvalidity import EPOCH, clock_floor
from twistedmail.testing.simclients import (
    Observations,
    Workload,
    first_difference,
    instance_counts,
)
from twistedmail.testing.simnet import SimNet

START = EPOCH + 500 * 86400.0  # simulated wall clock at t=0
USERS = ("alice", "bob")
AE_PERIOD = 0.5  # anti-entropy heartbeat, per node (contract §1 heartbeat)
RESERVE_BLOCK = 1024  # UIDVALIDITY counters reserved at once (contract §3)
RESERVE_MARGIN = 512  # extend the reservation when fewer counters than this are left
QUIET_LIMIT = 900.0  # simulated seconds allowed to converge after heal
OPS_PER_BATCH = 300
# every kind but heartbeats: the cluster is quiet when none of these is in flight
DATA_KINDS = frozenset({"ops", "snapshot", "snap_req", "hello", "hello_ans", "blob_req",
                        "blob_ans", "want", "offer"})
FAULT_WEIGHTS = {"partition": 3, "heal": 2, "kill": 1, "restart": 3}


class SimFailure(AssertionError):
    """An invariant of the simulated cluster broke; the message says how to reproduce it."""


@dataclass
class Stats:
    """What one run did (printed by the CLI, checked by tests)."""

    seed: int = 0
    steps: int = 0
    ops: int = 0
    rejected: int = 0  # client ops the store refused (name taken, folder gone, ...)
    appends: int = 0
    acked_appends: int = 0
    acked: int = 0  # acknowledged instances: APPENDs and the copies COPY / MOVE made
    excused: int = 0
    lost: int = 0
    partitions: int = 0
    heals: int = 0
    kills: int = 0
    restarts: int = 0
    messages: int = 0
    dropped: int = 0
    duplicated: int = 0
    snapshots: int = 0
    missing_blobs: int = 0
    apply_errors: int = 0  # remote cops the store refused (Replica.apply_errors)
    sim_seconds: float = 0.0
    converged: bool = False

    @property
    def faults(self) -> int:
        """Faults injected: partitions, kills and restarts."""
        return self.partitions + self.kills + self.restarts


@dataclass
class SimNode:
    """One simulated node: its identity survives kills, its state does not."""

    name: str
    root: int
    skew: float  # seconds this node's wall clock is off
    phase: str = "dead"  # dead | joining | catching-up | ready
    incarnation: str = ""
    store: MailStore | None = None
    replica: Replica | None = None
    floor: int = 0
    hellos: dict[str, int] = field(default_factory=dict)  # peer -> reservation it holds
    ready_hellos: set[str] = field(default_factory=set)  # peers that answered while serving
    snap_at: float = -1.0
    snap_done: bool = False
    reserved: int = 0  # top of the reservation some peer holds
    reserving: tuple[int, int] | None = None  # (top, seq of the reserve cop) not yet acked
    issued: int = 0  # highest UIDVALIDITY counter this incarnation issued

    @property
    def live(self) -> bool:
        """True from boot to kill."""
        return self.phase != "dead"


@dataclass
class _Pending:
    origin: SimNode
    incarnation: str
    seq: int
    instances: list[tuple[str, int]]
    append: bool


class SimCluster:
    """n nodes, a lossy in-memory network and a fault injector on one ``task.Clock``."""

    def __init__(self, n: int = 3, seed: int = 0, *, ack: int = 2, fault_rate: float = 0.03,
                 dup_rate: float = 0.05, log_limit: int | None = None,
                 reserve_acks: int | None = None) -> None:
        if n < 1:
            raise ValueError("a cluster needs at least one node")
        self.n, self.seed = n, seed
        self.rng = random.Random(seed)
        self.clock = task.Clock()
        self.clock.advance(START)
        self.ack = min(ack, n)
        # peers that must hold a "reserve" cop before its counters are used: as the service
        # (cluster/service.py), N - majority + 1, so a later majority always meets one
        if reserve_acks is None:
            reserve_acks = n - (n // 2 + 1) + 1
        self.reserve_acks = min(reserve_acks, n - 1)
        self.fault_rate = fault_rate
        self.log_limit = log_limit if log_limit is not None else self.rng.choice(
            [40, 200, 200_000])
        self.nodes = [SimNode(f"n{i}", i, self.rng.uniform(-1.5, 1.5)) for i in range(1, n + 1)]
        self.stats = Stats(seed=seed)
        self.net = SimNet(self.clock, self.rng, self.stats, self._deliver, DATA_KINDS, dup_rate)
        self._pending: list[_Pending] = []
        self.acked: set[tuple[str, int]] = set()
        self.excused: set[tuple[str, int]] = set()
        self._acked_cops: dict[str, int] = {}  # incarnation -> highest acked seq
        self.seen = Observations()
        self.violations = self.seen.violations
        self.issued_ever: dict[str, int] = {}
        self.workload = Workload(self.rng, seed)
        options = {"ack": (ack, 2), "fault-rate": (fault_rate, 0.03), "dup-rate": (dup_rate, 0.05),
                   "log-limit": (log_limit, None), "reserve-acks": (reserve_acks, None)}
        self.repro = f"python -m twistedmail.testing.simcluster --nodes {n} --seed {seed}"
        self.repro += "".join(f" --{k} {v}" for k, (v, dflt) in options.items() if v != dflt)

    # --- running ---------------------------------------------------------------------

    def run(self, steps: int = 500) -> Stats:
        """Boot, take ``steps`` seeded actions, heal, settle, check; raise SimFailure."""
        self.repro += f" --steps {steps}"
        self.stats.steps = steps
        try:
            self._act(steps)
            self.settle()
            self.check()
        finally:
            self.stats.sim_seconds = self.clock.seconds() - START
        return self.stats

    def _act(self, steps: int) -> None:
        for node in self.nodes:
            self.boot(node)
        self.clock.callLater(AE_PERIOD, self._tick)
        for step in range(steps):
            self.clock.advance(self.rng.expovariate(50.0))  # mean 20 ms between actions
            if self.rng.random() < self.fault_rate:
                self._fault()
            else:
                self._client_op()
            if step % 100 == 99:
                self._check_stores()
            self._raise_violations()

    def fail(self, what: str) -> SimFailure:
        """The exception for a broken invariant, with the command that reproduces it."""
        return SimFailure(f"seed {self.seed}, t={self.clock.seconds() - START:.3f}s: {what}\n"
                          f"  reproduce: {self.repro}")

    def _raise_violations(self) -> None:
        for node in self.nodes:
            if node.store is not None and node.store.listener_errors:
                err = node.store.last_listener_error
                self.violations.append(f"{node.incarnation}: store listener failed: {err!r}")
                node.store.listener_errors = 0
        if self.violations:
            raise self.fail("; ".join(self.violations[:5]))

    def settle(self) -> None:
        """Heal every link, restart dead nodes, stop clients, run until quiet (bounded)."""
        self.net.heal()
        for node in self.nodes:
            if not node.live:
                self.restart(node)
        deadline = self.clock.seconds() + QUIET_LIMIT
        while self.clock.seconds() < deadline:
            self.clock.advance(0.25)
            self._raise_violations()
            if self._quiet():
                return
        states = {nd.name: (nd.phase, sorted(self._vv(nd).items())) for nd in self.nodes}
        raise self.fail(f"no quiescence after {QUIET_LIMIT}s: {states}")

    def _quiet(self) -> bool:
        if self.net.in_flight or any(nd.phase != "ready" for nd in self.nodes):
            return False
        first = self._vv(self.nodes[0])
        return all(self._vv(nd) == first for nd in self.nodes[1:])

    # --- nodes: boot, join, kill -------------------------------------------------------

    def boot(self, node: SimNode) -> None:
        """Start ``node`` empty under a fresh incarnation; it joins as the service does."""
        node.incarnation = f"{node.name}~{self.rng.getrandbits(32):08x}"
        skew = node.skew
        store = MailStore(node.incarnation, node.root, lambda: self.clock.seconds() + skew)
        observe = self.seen.listener(node.name, node.root, store)
        # Only what a serving node shows counts (a catching-up node answers BYE to all).
        store.subscribe(lambda op, ch: observe(op, ch) if node.phase == "ready" else None)
        hlc = HLC(node.incarnation, lambda: int((self.clock.seconds() + skew) * 1000))
        replica = Replica(store, node.incarnation, hlc, log_limit=self.log_limit)
        replica.listeners.append(functools.partial(self._push, node, node.incarnation))
        store.allocator.floor_provider = lambda: node.floor
        store.allocator.on_issue = lambda counter: self._issued(node, counter)
        node.store, node.replica, node.phase = store, replica, "joining"
        node.floor, node.reserved, node.reserving, node.issued = 0, 0, None, 0
        node.hellos, node.snap_at, node.snap_done = {}, -1.0, False
        node.ready_hellos = set()
        self._hello(node)
        self._maybe_join(node)

    def _issued(self, node: SimNode, counter: int) -> None:
        """A counter a node issued; it counts as *presented* (the invariant's subject,
        RFC 3501 §2.3.1.1) once the node serves -- a node that dies while catching up
        showed no client anything."""
        node.issued = max(node.issued, counter)
        if node.phase == "ready":
            self.issued_ever[node.name] = max(self.issued_ever.get(node.name, 0), counter)

    def _hello(self, node: SimNode) -> None:
        for peer in self.nodes:
            if peer is not node and peer.name not in node.ready_hellos:
                self.net.send(node, peer, "ctl", "hello", None)

    def _maybe_join(self, node: SimNode) -> None:
        """Majority answered: set the UIDVALIDITY floor, reserve, ask for a snapshot."""
        if node.phase != "joining" or not self._quorum(node):
            return
        assert node.store is not None and node.replica is not None
        held = max(node.hellos.values(), default=0)
        node.floor = max(clock_floor(node.store.clock()), held + 1)
        if node.floor <= self.issued_ever.get(node.name, 0):
            self.violations.append(
                f"{node.incarnation}: UIDVALIDITY floor {node.floor} not above counter "
                f"{self.issued_ever[node.name]} issued before (answers {node.hellos})")
        node.phase = "catching-up"
        self._reserve(node, node.floor + RESERVE_BLOCK)
        self._ask_snapshot(node)

    def _quorum(self, node: SimNode) -> bool:
        """As the service: a majority counting only peers that serve (a peer still
        catching up may not know every reservation yet), or, when every peer answered
        and none serves, the whole cluster (a fresh start)."""
        if len(node.ready_hellos) + 1 > self.n // 2:
            return True
        return not node.ready_hellos and len(node.hellos) == self.n - 1

    def _reserve(self, node: SimNode, top: int) -> None:
        assert node.replica is not None
        node.replica.reserve(top)
        node.reserving = (top, node.replica.seq)
        if self.n == 1:
            node.reserved, node.reserving = top, None

    def _ask_snapshot(self, node: SimNode) -> None:
        if self.n == 1:
            node.snap_done = True
            self._accounts(node)
            return
        peers = [p for p in self.nodes if p.name in node.hellos and p.live]
        if peers:
            peer = self.rng.choice(peers)
            node.snap_at = self.clock.seconds()
            self.net.send(node, peer, "ctl", "snap_req", None)

    def _accounts(self, node: SimNode) -> None:
        """Accounts from the config are created after the floor is set (contract §3)."""
        assert node.store is not None
        for user in USERS:
            node.store.apply(CreateAccount.standard(user))

    def kill(self, node: SimNode) -> None:
        """Wipe ``node``: its memory is gone, messages to it are lost."""
        self.stats.apply_errors += node.replica.apply_errors if node.replica else 0
        node.phase, node.store, node.replica = "dead", None, None
        self._pending = [p for p in self._pending if p.origin is not node]
        self.stats.kills += 1

    def restart(self, node: SimNode) -> None:
        """Start a killed node again (empty, new incarnation)."""
        self.stats.restarts += 1
        self.boot(node)

    # --- messages ---------------------------------------------------------------------

    def _deliver(self, src: SimNode, dst: SimNode, kind: str, payload: Any) -> None:
        getattr(self, "_on_" + kind)(src, dst, payload)
        self._progress()

    def _push(self, node: SimNode, incarnation: str, cops: list[Cop]) -> None:
        """A replica's new own cops go to every peer (contract §3: live pushes)."""
        if node.incarnation != incarnation or not node.live:
            return
        for peer in self.nodes:
            if peer is not node:
                self._send_ops(node, peer, "push", cops)

    def _send_ops(self, src: SimNode, dst: SimNode, channel: str, cops: Sequence[Cop]) -> None:
        assert src.replica is not None
        for i in range(0, len(cops), OPS_PER_BATCH):
            batch = list(cops[i:i + OPS_PER_BATCH])
            blobs = self._blobs(src.replica, (d for cop in batch for d in cop.blobs))
            self.net.send(src, dst, channel, "ops", (batch, blobs))

    @staticmethod
    def _blobs(replica: Replica, digests: Iterable[str]) -> dict[str, bytes]:
        """The bodies ``replica`` holds among ``digests``."""
        return {d: b for d in digests if (b := replica.blob(d)) is not None}

    def _on_ops(self, src: SimNode, dst: SimNode, payload: Any,
                absent: Sequence[str] | None = None) -> None:
        if dst.phase == "joining":
            return  # no link before the floor is set: remote cops could create folders
        cops, blobs = payload
        assert dst.replica is not None
        try:
            dst.replica.receive(cops, blobs, absent or ())
        except MissingBlobs as e:
            self._fetch(src, dst, "ops", payload, e.digests, absent)

    def _fetch(self, src: SimNode, dst: SimNode, kind: str, payload: Any,
               digests: Sequence[str], absent: Sequence[str] | None) -> None:
        """MissingBlobs: ask the sender for the bodies, then retry the batch with those it
        lacks as ``absent`` (contract Changes, A: receive(..., absent=))."""
        self.stats.missing_blobs += 1
        if absent is not None:  # refused again: dropped, anti-entropy brings it back later
            return
        self.net.send(dst, src, "ae", "blob_req", (kind, payload, tuple(digests)))

    def _on_blob_req(self, src: SimNode, dst: SimNode, request: Any) -> None:
        kind, payload, digests = request
        assert dst.replica is not None
        got = self._blobs(dst.replica, digests)
        absent = [d for d in digests if d not in got]
        self.net.send(dst, src, "ae", "blob_ans", (kind, payload, got, absent))

    def _on_blob_ans(self, src: SimNode, dst: SimNode, answer: Any) -> None:
        kind, payload, got, absent = answer
        payload = (*payload[:-1], {**payload[-1], **got})  # the blobs come last
        getattr(self, "_on_" + kind)(src, dst, payload, absent)

    def _on_want(self, src: SimNode, dst: SimNode, digests: Sequence[str]) -> None:
        assert dst.replica is not None
        got = self._blobs(dst.replica, digests)
        if got:
            self.net.send(dst, src, "ae", "offer", got)

    def _on_offer(self, src: SimNode, dst: SimNode, blobs: dict[str, bytes]) -> None:
        if dst.phase != "joining":
            assert dst.replica is not None
            dst.replica.offer_blobs(blobs)

    def _on_hb(self, src: SimNode, dst: SimNode, payload: Any) -> None:
        if dst.phase != "joining":
            self.net.send(dst, src, "ae", "hb_ans", self._vv(dst))

    def _on_hb_ans(self, src: SimNode, dst: SimNode, peer_vv: dict[str, int]) -> None:
        """Anti-entropy: send ``src`` what it lacks, or a snapshot when the log is too short."""
        if dst.phase == "joining":
            return
        assert dst.replica is not None
        missing = dst.replica.missing_since(peer_vv)
        if missing is None:
            self._send_snapshot(dst, src)
        elif missing:
            self._send_ops(dst, src, "ae", missing)

    def _on_hello(self, src: SimNode, dst: SimNode, payload: Any) -> None:
        assert dst.replica is not None
        self.net.send(dst, src, "ctl", "hello_ans",
                      (dst.replica.reservations.get(src.name, 0), dst.phase == "ready"))

    def _on_hello_ans(self, src: SimNode, dst: SimNode, answer: tuple[int, bool]) -> None:
        reserved, ready = answer
        dst.hellos[src.name] = max(dst.hellos.get(src.name, 0), reserved)
        if ready:
            dst.ready_hellos.add(src.name)
        self._maybe_join(dst)

    def _on_snap_req(self, src: SimNode, dst: SimNode, payload: Any) -> None:
        if dst.phase != "joining":
            self._send_snapshot(dst, src)

    def _send_snapshot(self, src: SimNode, dst: SimNode) -> None:
        assert src.replica is not None
        snap = src.replica.snapshot()
        blobs = self._blobs(src.replica, snap.blobs)
        self.stats.snapshots += 1
        self.net.send(src, dst, "ae", "snapshot", (list(snap.cops), dict(snap.vv), blobs))

    def _on_snapshot(self, src: SimNode, dst: SimNode, payload: Any,
                     absent: Sequence[str] | None = None) -> None:
        if dst.phase == "joining":
            return
        cops, vv, blobs = payload
        assert dst.replica is not None
        try:
            dst.replica.apply_snapshot_cops(cops, blobs, absent or ())
        except MissingBlobs as e:
            self._fetch(src, dst, "snapshot", payload, e.digests, absent)
            return
        dst.replica.finish_snapshot(vv)
        if dst.phase == "catching-up" and not dst.snap_done:
            dst.snap_done = True
            self._accounts(dst)

    def _vv(self, node: SimNode) -> dict[str, int]:
        return dict(node.replica.vv()) if node.replica is not None else {}

    def _tick(self) -> None:
        """Every AE_PERIOD: heartbeats (anti-entropy), Hello and snapshot retries."""
        now = self.clock.seconds()
        for node in self.nodes:
            if node.phase == "joining":
                self._hello(node)
            elif node.live:
                if node.phase == "catching-up" and not node.snap_done and now - node.snap_at > 2:
                    self._ask_snapshot(node)
                wanted = node.replica.wanted_blobs()[:100] if node.replica else []
                for peer in self.nodes:
                    if peer is not node:
                        self.net.send(node, peer, "ae", "hb", None)
                        if wanted:
                            self.net.send(node, peer, "ae", "want", wanted)
        self._progress()
        self.clock.callLater(AE_PERIOD, self._tick)

    # --- acknowledgements, reservations, readiness ----------------------------------------

    def _holders(self, incarnation: str, seq: int, vvs: dict[str, dict[str, int]]) -> int:
        return sum(1 for vv in vvs.values() if vv.get(incarnation, 0) >= seq)

    def _progress(self) -> None:
        """After every event: count acks, finish reservations, extend them, declare ready."""
        vvs = {nd.name: self._vv(nd) for nd in self.nodes if nd.live}
        still: list[_Pending] = []
        for item in self._pending:
            if self._holders(item.incarnation, item.seq, vvs) >= self.ack:
                self.acked.update(item.instances)
                self.stats.acked += len(item.instances)
                self.stats.acked_appends += len(item.instances) if item.append else 0
                top = self._acked_cops.get(item.incarnation, 0)
                self._acked_cops[item.incarnation] = max(top, item.seq)
            else:
                still.append(item)
        self._pending = still
        for node in self.nodes:
            if not node.live or node.replica is None:
                continue
            if node.reserving is not None:
                top, seq = node.reserving
                others = {k: v for k, v in vvs.items() if k != node.name}
                if self._holders(node.incarnation, seq, others) >= self.reserve_acks:
                    node.reserved, node.reserving = max(node.reserved, top), None
            if node.phase == "catching-up" and node.snap_done and node.reserved:
                node.phase = "ready"
                self.issued_ever[node.name] = max(self.issued_ever.get(node.name, 0),
                                                  node.issued)
                assert node.store is not None
                for user in node.store.users():  # what it presents from now on
                    for box in node.store.mailboxes(user):
                        self.seen.see_box(node.name, node.root, box)
            elif (node.phase == "ready" and node.reserving is None
                  and node.issued > node.reserved - RESERVE_MARGIN):
                self._reserve(node, max(node.issued, node.reserved) + RESERVE_BLOCK)

    def _may_kill(self, victim: SimNode) -> bool:
        """One node down or joining at a time (the victim may be joining: a crash loop), and
        every acknowledged cop held by another live node (ack=2 tolerates one failure)."""
        if not victim.live or any(nd.phase != "ready" for nd in self.nodes if nd is not victim):
            return False
        vvs = {nd.name: self._vv(nd) for nd in self.nodes if nd is not victim}
        return all(self._holders(inc, seq, vvs) >= 1 for inc, seq in self._acked_cops.items())

    # --- the fault injector ------------------------------------------------------------

    def _fault(self) -> None:
        kind = self.rng.choices(list(FAULT_WEIGHTS), list(FAULT_WEIGHTS.values()))[0]
        if kind == "partition" and self.n > 1:
            a, b = self.rng.sample(self.nodes, 2)
            if frozenset((a.name, b.name)) not in self.net.cut:
                self.net.partition(a, b)
        elif kind == "heal":
            self.net.heal()
        elif kind == "kill":
            victim = self.rng.choice(self.nodes)
            if self._may_kill(victim):
                self.kill(victim)
        else:
            dead = [nd for nd in self.nodes if not nd.live]
            if dead:
                self.restart(self.rng.choice(dead))

    # --- simulated clients ---------------------------------------------------------------

    def _client_op(self) -> None:
        ready = [nd for nd in self.nodes if nd.phase == "ready"]
        if not ready:
            return
        node = self.rng.choice(ready)
        store, replica = node.store, node.replica
        assert store is not None and replica is not None
        user = self.rng.choice(USERS)
        if not store.has_account(user):
            return
        kind, built = self.workload.next_op(store, user)
        if built is None:
            return
        op, doomed = built
        self.stats.ops += 1
        try:
            changes = store.apply(op)
        except StoreError:
            self.stats.rejected += 1
            return
        self.excused.update(doomed)
        if kind in ("append", "copy", "move"):  # these answer OK once durable (contract §4)
            made = [r.instance_id for ch in changes if isinstance(ch, MessagesAdded)
                    for u in ch.uids if (box := store.mailbox_by_id(ch.mailbox_id))
                    and (r := box.get(u))]
            self.stats.appends += kind == "append"
            self._pending.append(_Pending(node, node.incarnation, replica.seq, made,
                                          kind == "append"))
        self._progress()

    # --- checks ---------------------------------------------------------------------------

    def _check_stores(self) -> None:
        for node in self.nodes:
            if node.store is None:
                continue
            try:
                node.store.check_invariants()
            except AssertionError as e:
                raise self.fail(f"{node.incarnation}: store invariant: {e}") from e

    def check(self) -> None:
        """The end-of-run invariants (after ``settle``)."""
        self._check_stores()
        for node in self.nodes:
            assert node.store is not None and node.replica is not None
            self.stats.apply_errors += node.replica.apply_errors
            parked = {fid: len(cops) for fid, cops in node.replica.parked.items() if cops}
            if parked:  # every folder a cop names was created by a cop all nodes applied
                self.violations.append(f"{node.name}: cops parked for good: {parked}")
            for user in node.store.users():
                for box in node.store.mailboxes(user):
                    self.seen.see_box(node.name, node.root, box)
        self._raise_violations()
        self._check_presence()
        self._check_converged()

    def _check_converged(self) -> None:
        first = self.nodes[0]
        assert first.replica is not None
        want = first.replica.summary()
        for node in self.nodes[1:]:
            assert node.replica is not None
            got = node.replica.summary()
            if got != want:
                raise self.fail(f"not converged: {first.name} vs {node.name}: "
                                f"{first_difference(want, got)}")
        self.stats.converged = True

    def _check_presence(self) -> None:
        for node in self.nodes:
            assert node.store is not None
            count = instance_counts(node.store)
            twice = [inst for inst, c in count.items() if c > 1]
            if twice:
                raise self.fail(f"{node.name} holds {twice[:3]} more than once")
            lost = sorted(i for i in self.acked - self.excused if not count[i])
            if lost:
                self.stats.lost = len(lost)
                raise self.fail(f"{node.name} lost {len(lost)} acknowledged: {lost[:5]}")
        self.stats.excused = len(self.acked & self.excused)


def run_seed(seed: int, steps: int = 500, n: int = 3, **kwargs: Any) -> Stats:
    """Run one seeded simulation; SimFailure (with the reproducing command) on a violation."""
    return SimCluster(n, seed, **kwargs).run(steps)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: a batch of seeds (bounded), or one seed to reproduce a failure."""
    parser = argparse.ArgumentParser(prog="python -m twistedmail.testing.simcluster")
    parser.add_argument("--seeds", type=int, default=20, help="run seeds first..first+N-1")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--seed", type=int, help="run this one seed only")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--ack", type=int, default=2, help="ack_replicas")
    parser.add_argument("--fault-rate", type=float, default=0.03, help="faults per step")
    parser.add_argument("--dup-rate", type=float, default=0.05, help="messages duplicated")
    parser.add_argument("--log-limit", type=int, help="cops logged per origin (default: seeded)")
    parser.add_argument("--reserve-acks", type=int, default=None,
                        help="peers holding a UIDVALIDITY reservation before it is used "
                             "(default: N - majority + 1, as the service)")
    args = parser.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else range(args.first, args.first + args.seeds)
    total, failed, converged, started = Stats(), [], 0, time.monotonic()
    for seed in seeds:
        sim = SimCluster(args.nodes, seed, ack=args.ack, fault_rate=args.fault_rate,
                         dup_rate=args.dup_rate, log_limit=args.log_limit,
                         reserve_acks=args.reserve_acks)
        try:
            sim.run(args.steps)
        except SimFailure as e:
            print(f"FAIL {e}", flush=True)
            failed.append(seed)
        converged += sim.stats.converged
        for f in fields(Stats):
            if f.type in ("int", "float") and f.name != "seed":
                setattr(total, f.name, getattr(total, f.name) + getattr(sim.stats, f.name))
    print(f"seeds {len(seeds)} x {args.steps} steps, {args.nodes} nodes: "
          f"{len(seeds) - len(failed)} passed, {len(failed)} failed {failed[:20]}\n"
          f"  faults injected {total.faults} (partitions {total.partitions}, kills "
          f"{total.kills}, restarts {total.restarts}; heals {total.heals})\n"
          f"  client ops {total.ops} (refused by the store {total.rejected}); appends "
          f"{total.appends}, acked {total.acked_appends}; acked instances incl. copies "
          f"{total.acked} (excused: expunged/deleted by the run {total.excused}); "
          f"lost {total.lost}\n"
          f"  converged {converged}/{len(seeds)}; messages {total.messages} (dropped "
          f"{total.dropped}, duplicated {total.duplicated}), snapshots {total.snapshots}, "
          f"missing-blob fetches {total.missing_blobs}, remote cops the store refused "
          f"{total.apply_errors}\n"
          f"  simulated {total.sim_seconds:.0f} s in {time.monotonic() - started:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
