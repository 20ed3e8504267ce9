"""Bodies deflated ahead of their first compressed FETCH (RFC 4978, compress.BodyCache).

A first FETCH of new mail over COMPRESS=DEFLATE would otherwise deflate every body
on the spot, and deflating costs the server about three times what inflating costs
the client.  So once a session of a node has turned COMPRESS on, the bodies of
messages added to that node's store afterwards (APPEND, COPY, LMTP/SMTP delivery,
replication) are deflated into the shared body cache in the background, a few
milliseconds per reactor turn, and a compressing client finds them ready.

Invariants:
  * Nothing is deflated for a node before one of its sessions used COMPRESS.
  * Warming never evicts: a body is cached only if the cache has room for it, and
    the queue is dropped once it has none.
  * One turn works about TURN_SECONDS (at least one body); the queue holds at most QUEUE_MAX bodies
    (more are left to be deflated on demand); a turn runs DELAY after the last.
"""

from __future__ import annotations

from collections import deque
from time import perf_counter
from typing import Any

from twistedmail.imap.compress import BODY_CACHE, BodyCache
from twistedmail.pernode import PerNode
from twistedmail.store.changes import MessagesAdded

TURN_SECONDS = 0.002  # deflating per reactor turn
DELAY = 0.005  # seconds between turns, so IMAP commands keep the reactor first
QUEUE_MAX = 100_000


class Predeflater:
    """Queues the bodies of a node's new messages and deflates them between commands."""

    def __init__(self, node: Any, cache: BodyCache = BODY_CACHE) -> None:
        self.store = node.store
        self.reactor = node.reactor
        self.cache = cache
        self.queue: deque[Any] = deque()
        self.deflated = 0
        self._call: Any = None
        self.unsubscribe = self.store.subscribe(self._on_apply)

    def _on_apply(self, op: object, changes: list[Any]) -> None:
        for change in changes:
            if isinstance(change, MessagesAdded):
                self._enqueue(change)
        if self.queue and self._call is None:
            self._call = self.reactor.callLater(DELAY, self._turn)

    def _enqueue(self, change: MessagesAdded) -> None:
        box = self.store.mailbox_by_id(change.mailbox_id)
        if box is None:
            return
        for uid in change.uids:
            rec = box.get(uid)
            if rec is not None and len(self.queue) < QUEUE_MAX:
                self.queue.append(rec.blob)

    def _turn(self) -> None:
        self._call = None
        deadline = perf_counter() + TURN_SECONDS
        while self.queue:  # at least one body per turn
            done = self.cache.warm(self.queue.popleft())
            if done is None:  # the cache is full: the rest is deflated on demand
                self.queue.clear()
            elif done:
                self.deflated += 1
            if perf_counter() >= deadline:
                break
        if self.queue:
            self._call = self.reactor.callLater(DELAY, self._turn)


_WORKERS: PerNode[Predeflater] = PerNode(Predeflater)


def activate(node: Any) -> Predeflater:
    """Start pre-deflating ``node``'s new mail (idempotent): a session used COMPRESS."""
    return _WORKERS.of(node)


def of(node: Any) -> Predeflater | None:
    """``node``'s pre-deflater, if a session of it ever used COMPRESS."""
    return _WORKERS.get(node)
