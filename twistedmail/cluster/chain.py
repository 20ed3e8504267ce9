"""The relay chain: which origins' new ops a node pushes to a peer at once (DESIGN.md §4).

With ``fanout = "chain"`` (the default), when every node holds every mail file
and an acknowledgement needs at most one peer (``ack_replicas`` <= 2), an
origin pushes its new ops at once to one peer only, its *head*: the first live
node after it in the config's node order, wrapping round.  The head pushes
them on at once to every other peer.  So the origin, which also runs the IMAP
sessions, encrypts and sends each change once instead of once per peer, and
reads one answer instead of several: in a 3-node cluster the origin's
replication work halves, and the head, which has CPU to spare, forwards.

Everything else is as with ``fanout = "direct"``: a peer that lacks some
origin's ops a heartbeat period after this node had them gets them as an
anti-entropy relay from any node (link.py), so a head that is slow, cut off
or dead delays a peer's copy by about a heartbeat, never loses it; and when
the origin's link to its head drops, or the head stops answering (suspect),
the next live node becomes its head and is sent at once whatever it lacks.

Invariants:
  * Pure functions of the ring (node names in config order), the live set as
    this node sees it, and the nodes' incarnations; no Twisted import.
  * Under the chain a node's own ops are prompt towards exactly one live peer,
    its head (none when no peer is live); where the chain does not apply the
    cluster service makes them prompt towards every peer instead.
  * An origin's ops are never prompt towards the origin itself.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

CHAIN, DIRECT = "chain", "direct"
FANOUTS = (CHAIN, DIRECT)


def chain_applies(spec: Any) -> bool:
    """Whether ``spec`` runs the relay chain: ``fanout = "chain"``, three nodes or more,
    every mail file (and public folder) on every node, and at most two replicas
    needed for an acknowledgement (the origin and its head)."""
    names = set(spec.names)
    if spec.fanout != CHAIN or len(names) < 3:
        return False
    if spec.ack_replicas is not None and spec.ack_replicas > 2:
        return False
    return all(names.issubset(holders) for holders in spec.placement.values())


def head(ring: Sequence[str], origin: str, live: Collection[str]) -> str | None:
    """The first node after ``origin`` in ``ring`` (wrapping) that is in ``live``;
    None when no other node is live."""
    start = ring.index(origin)
    for step in range(1, len(ring)):
        name = ring[(start + step) % len(ring)]
        if name in live:
            return name
    return None


def prompt_origins(ring: Sequence[str], me: str, peer: str, live: Collection[str],
                   incarnations: Mapping[str, str | None]) -> frozenset[str]:
    """The origins (incarnations) whose new ops ``me`` pushes to ``peer`` at once under
    the chain: its own when ``peer`` is its head, and those of every other node
    whose head ``me`` is (``live``: the nodes ``me`` counts as live, itself included)."""
    prompt: set[str] = set()
    for origin in ring:
        if origin == peer:
            continue
        incarnation = incarnations.get(origin)
        if incarnation is None:
            continue
        if origin == me:
            if head(ring, me, live) == peer:
                prompt.add(incarnation)
        elif head(ring, origin, live) == me:
            prompt.add(incarnation)
    return frozenset(prompt)
