"""The in-memory network of the cluster simulation (``simcluster.py``), on a ``task.Clock``.

Messages between named endpoints get seeded delays (mostly 1-50 ms, now and then 0.2-2 s), are
sometimes duplicated, and are delivered FIFO per (source, destination, channel): a channel is
a TCP stream, so reordering happens only across channels (e.g. one per origin's pushes and one
for anti-entropy).  ``partition(a, b)`` cuts the link both ways and loses what is in flight on
it, like a broken connection; a message to an endpoint that restarted (new incarnation) is lost.

Invariants:
- Deterministic: every delay and duplicate comes from the ``random.Random`` given.
- ``in_flight`` counts messages of ``counted`` kinds sent and not yet delivered or dropped, so
  the simulation can tell when the cluster is quiet (heartbeats are not counted).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Collection
from typing import Any, Protocol

from twisted.internet import task


class Endpoint(Protocol):
    """What the network needs of a node."""

    name: str
    incarnation: str

    @property
    def live(self) -> bool:
        """False while the node is down: messages to it are lost."""


class NetStats(Protocol):
    """The counters the network keeps (``simcluster.Stats`` has them)."""

    messages: int
    dropped: int
    duplicated: int
    partitions: int
    heals: int


Deliver = Callable[[Any, Any, str, Any], None]  # (source, destination, kind, payload)


class SimNet:
    """Links between endpoints: delays, duplicates, per-channel FIFO, partitions."""

    def __init__(self, clock: task.Clock, rng: random.Random, stats: NetStats,
                 deliver: Deliver, counted: Collection[str], dup_rate: float = 0.05) -> None:
        self.clock, self.rng, self.stats = clock, rng, stats
        self.deliver, self.counted, self.dup_rate = deliver, frozenset(counted), dup_rate
        self.cut: set[frozenset[str]] = set()
        self.in_flight = 0
        self._epoch: Counter[frozenset[str]] = Counter()  # bumped when a link breaks
        self._fifo: dict[tuple[str, str, str], float] = {}

    def partition(self, a: Endpoint, b: Endpoint) -> None:
        """Cut the link a <-> b: messages in flight on it are lost."""
        pair = frozenset((a.name, b.name))
        self.cut.add(pair)
        self._epoch[pair] += 1
        self.stats.partitions += 1

    def heal(self) -> None:
        """Restore every cut link."""
        if self.cut:
            self.stats.heals += 1
        self.cut.clear()

    def send(self, src: Endpoint, dst: Endpoint, channel: str, kind: str, payload: Any) -> None:
        """Deliver ``payload`` later unless the link is cut or breaks meanwhile."""
        pair = frozenset((src.name, dst.name))
        if not dst.live or pair in self.cut:
            self.stats.dropped += 1
            return
        copies = 2 if self.rng.random() < self.dup_rate else 1
        self.stats.duplicated += copies - 1
        for _ in range(copies):
            delay = self.rng.uniform(0.001, 0.05)
            if self.rng.random() < 0.05:
                delay = self.rng.uniform(0.2, 2.0)  # a slow path now and then
            now = self.clock.seconds()
            key = (src.name, dst.name, channel)
            at = max(now + delay, self._fifo.get(key, 0.0))  # FIFO per channel
            self._fifo[key] = at
            tag = (dst.incarnation, self._epoch[pair])
            self.in_flight += kind in self.counted
            self.stats.messages += 1
            self.clock.callLater(at - now, self._arrive, src, dst, tag, kind, payload)

    def _arrive(self, src: Endpoint, dst: Endpoint, tag: tuple[str, int], kind: str,
                payload: Any) -> None:
        self.in_flight -= kind in self.counted
        pair = frozenset((src.name, dst.name))
        if not dst.live or tag != (dst.incarnation, self._epoch[pair]):
            self.stats.dropped += 1  # the connection broke meanwhile
            return
        self.deliver(src, dst, kind, payload)
