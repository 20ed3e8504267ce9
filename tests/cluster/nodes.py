"""Test helpers: MailStore + Replica pairs wired by direct calls (no network)."""

from __future__ import annotations

from collections.abc import Iterable

from twistedmail.cluster.cops import Cop, MissingBlobs
from twistedmail.cluster.hlc import HLC
from twistedmail.cluster.replica import Replica
from twistedmail.store import Append, MailStore, MessagesAdded, Op

ROOTS = {"n1": 1, "n2": 2, "n3": 3}


class Wall:
    """A hand-driven millisecond clock (advances by 1 per reading)."""

    def __init__(self, ms: int = 1_000_000) -> None:
        self.ms = ms

    def __call__(self) -> int:
        self.ms += 1
        return self.ms


class Node:
    """One node: store + replica; ``outbox`` collects its own cops."""

    def __init__(self, name: str, wall: Wall | None = None, holds: Iterable[str] | None = None,
                 log_limit: int = 200_000, gen: str = "0001") -> None:
        self.name = name
        self.incarnation = f"{name}~{gen}"
        self.wall = wall or Wall()
        self.store = MailStore(self.incarnation, ROOTS.get(name, 9), clock=lambda: 1.7e9)
        held = None if holds is None else set(holds)
        self.replica = Replica(self.store, self.incarnation, HLC(self.incarnation, self.wall),
                               holds=(lambda u: True) if held is None else held.__contains__,
                               log_limit=log_limit)
        self.outbox: list[Cop] = []
        self.replica.listeners.append(self.outbox.extend)

    def apply(self, op: Op) -> list:
        """Apply a local op."""
        return self.store.apply(op)

    def append(self, user: str, box: str, data: bytes, flags: Iterable[str] = ()) -> int:
        """APPEND locally; the new UID."""
        changes = self.apply(Append.new(self.store, user, box, data, flags=frozenset(flags)))
        return next(c.uids[-1] for c in changes if isinstance(c, MessagesAdded))

    def blobs_for(self, cops: Iterable[Cop]) -> dict[str, bytes]:
        """Bodies the given cops reference, as far as this node has them."""
        out = {}
        for cop in cops:
            for digest in cop.blobs:
                data = self.replica.blob(digest)
                if data is not None:
                    out[digest] = data
        return out

    def take(self) -> list[Cop]:
        """The cops made since the last take."""
        cops, self.outbox[:] = list(self.outbox), []
        return cops

    def send(self, cops: list[Cop], *peers: Node) -> None:
        """Deliver ``cops`` (made or relayed by this node) to ``peers``."""
        blobs = self.blobs_for(cops)
        for peer in peers:
            deliver(peer, cops, blobs)

    def uids(self, user: str, box: str) -> list[int]:
        """The UIDs of a mailbox."""
        return list(self.store.mailbox(user, box).uids())


def deliver(peer: Node, cops: list[Cop], blobs: dict[str, bytes]) -> None:
    """What the transport does: receive; bodies the sender lacks are passed as absent."""
    try:
        peer.replica.receive(cops, blobs)
    except MissingBlobs as err:
        peer.replica.receive(cops, blobs, absent=err.digests)


def snapshot(src: Node, dst: Node) -> None:
    """Transfer a snapshot of ``src`` to ``dst`` (as the transport does)."""
    snap = src.replica.snapshot()
    blobs = {d: data for d in snap.blobs if (data := src.replica.blob(d)) is not None}
    try:
        dst.replica.apply_snapshot_cops(snap.cops, blobs)
    except MissingBlobs as err:
        dst.replica.apply_snapshot_cops(snap.cops, blobs, absent=err.digests)
    dst.replica.finish_snapshot(snap.vv)


def sync(*nodes: Node) -> None:
    """Anti-entropy until quiescent: every node sends each peer what it lacks."""
    for _ in range(10):
        moved = False
        for a in nodes:
            for b in nodes:
                if a is b:
                    continue
                cops = a.replica.missing_since(b.replica.vv())
                if cops is None:  # a's log no longer reaches back: snapshot
                    moved = True
                    snapshot(a, b)
                elif cops:
                    moved = True
                    a.send(cops, b)
        if not moved:
            break
    for node in nodes:
        node.take()
        node.store.check_invariants()


def converged(*nodes: Node) -> bool:
    """Equal summaries everywhere."""
    first = nodes[0].replica.summary()
    return all(n.replica.summary() == first for n in nodes[1:])
