"""Cluster membership: which peers are live (DESIGN.md §4 "Membership").

The member list is static (the config's ``[[node]]`` tables); this module only
tracks what each peer is doing.  ``Membership`` is the interface the cluster
service uses, so a consensus store (etcd) can back large clusters later;
``HeartbeatMembership`` is the built-in implementation fed by the cluster
links' heartbeats.

Invariants:
  * A peer is "up" when it answered us within ``suspect_after`` seconds,
    "suspect" after that (or at once when its link drops), and "down" after
    ``down_after`` seconds of silence (or before it was ever heard).
  * A state changes only through ``heard`` / ``lost`` / ``tick``; every change
    is reported once to each listener as ``(node, old, new)``, in order.
  * ``live()`` is exactly the peers in state "up" (suspect peers are not
    counted as replicas that can acknowledge a write).
  * No Twisted import: time comes from the injected ``clock``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

UP, SUSPECT, DOWN = "up", "suspect", "down"
STATES = (UP, SUSPECT, DOWN)

Listener = Callable[[str, str, str], None]


@dataclass
class PeerInfo:
    """What we know about one peer."""

    state: str = DOWN
    last_heard: float | None = None
    vv: dict[str, int] = field(default_factory=dict)
    ready: bool = False
    incarnation: str | None = None
    root: int | None = None


class Membership(Protocol):
    """How the cluster service learns which peers are live."""

    listeners: list[Listener]

    def heard(self, node: str, vv: Mapping[str, int] | None = None,
              ready: bool | None = None) -> None:
        """``node`` answered us just now (its VV and readiness, when known)."""

    def lost(self, node: str) -> None:
        """Our link to ``node`` dropped."""

    def tick(self) -> None:
        """Re-evaluate states against the clock."""

    def state(self, node: str) -> str:
        """"up", "suspect" or "down"."""

    def info(self, node: str) -> PeerInfo:
        """Everything known about ``node``."""

    def live(self, nodes: Iterable[str] | None = None) -> set[str]:
        """The peers among ``nodes`` (default: all) that are up."""


class HeartbeatMembership:
    """Membership from heartbeat answers: up -> suspect -> down, and back up."""

    def __init__(self, peers: Iterable[str], clock: Callable[[], float],
                 suspect_after: float, down_after: float) -> None:
        if not 0 < suspect_after <= down_after:
            raise ValueError("need 0 < suspect_after <= down_after")
        self.clock = clock
        self.suspect_after = suspect_after
        self.down_after = down_after
        self.peers: dict[str, PeerInfo] = {name: PeerInfo() for name in peers}
        self.listeners: list[Listener] = []

    def heard(self, node: str, vv: Mapping[str, int] | None = None,
              ready: bool | None = None) -> None:
        """``node`` answered: it is up; remember its VV and readiness."""
        peer = self.peers.get(node)
        if peer is None:
            return
        peer.last_heard = self.clock()
        if vv is not None:
            peer.vv = dict(vv)
        if ready is not None:
            peer.ready = ready
        self._set(node, peer, UP)

    def identify(self, node: str, incarnation: str, root: int) -> None:
        """Record the incarnation and root ``node`` presented at Hello."""
        peer = self.peers.get(node)
        if peer is not None:
            if peer.incarnation != incarnation:
                peer.vv = {}
            peer.incarnation, peer.root = incarnation, root

    def lost(self, node: str) -> None:
        """The link dropped: an up peer becomes suspect at once."""
        peer = self.peers.get(node)
        if peer is not None and peer.state == UP:
            self._set(node, peer, SUSPECT)

    def tick(self) -> None:
        """Demote peers that have been silent too long."""
        now = self.clock()
        for node, peer in self.peers.items():
            if peer.state == DOWN:
                continue
            silence = now - (peer.last_heard if peer.last_heard is not None else now)
            if silence >= self.down_after:
                self._set(node, peer, DOWN)
            elif silence >= self.suspect_after and peer.state == UP:
                self._set(node, peer, SUSPECT)

    def state(self, node: str) -> str:
        """The peer's state ("down" for an unknown node)."""
        peer = self.peers.get(node)
        return peer.state if peer is not None else DOWN

    def info(self, node: str) -> PeerInfo:
        """Everything known about ``node`` (KeyError if it is not a peer)."""
        return self.peers[node]

    def live(self, nodes: Iterable[str] | None = None) -> set[str]:
        """The peers among ``nodes`` (default: every peer) that are up."""
        names = self.peers if nodes is None else nodes
        return {n for n in names if self.state(n) == UP}

    def _set(self, node: str, peer: PeerInfo, new: str) -> None:
        old = peer.state
        if old == new:
            return
        peer.state = new
        for listener in list(self.listeners):
            listener(node, old, new)
