"""Bodies deflated ahead of their first compressed FETCH (twistedmail/imap/predeflate.py)."""

from __future__ import annotations

import random
import zlib
from types import SimpleNamespace

from twisted.internet.task import Clock

from tests.unit.test_store import WHEN, new_store
from twistedmail.imap import predeflate
from twistedmail.imap.compress import BodyCache
from twistedmail.store.ops import Append


def node_with_cache(budget: int = 1 << 20):
    """A node-like object (store + Clock reactor) and a private body cache."""
    node = SimpleNamespace(store=new_store(), reactor=Clock())
    return node, BodyCache(budget)


def append(node, data: bytes):
    node.store.apply(Append.new(node.store, "alice", "INBOX", data, (), WHEN))
    box = node.store.mailbox("alice", "INBOX")
    return max(box.records(), key=lambda r: r.uid).blob


def test_new_bodies_are_deflated_in_later_turns():
    """An added message's body is deflated on a later reactor turn, inflating back to it."""
    node, cache = node_with_cache()
    worker = predeflate.Predeflater(node, cache)
    blob = append(node, b"Subject: x\r\n\r\n" + b"hello world " * 300)
    assert "deflate" not in blob.cache  # not in the command's own turn
    node.reactor.advance(predeflate.DELAY)
    packed = blob.cache["deflate"].data
    assert zlib.decompressobj(-15).decompress(packed) == blob.data
    assert worker.deflated == 1 and not worker.queue


def test_turns_are_bounded_and_continue(monkeypatch):
    """A turn stops at TURN_SECONDS; the rest follow in later turns until none is left."""
    node, cache = node_with_cache()
    worker = predeflate.Predeflater(node, cache)
    blobs = [append(node, b"Subject: %d\r\n\r\n" % i + b"body " * 500) for i in range(30)]
    monkeypatch.setattr(predeflate, "TURN_SECONDS", 1e-9)  # one body per turn at most
    node.reactor.advance(predeflate.DELAY)
    assert worker.deflated == 1 and len(worker.queue) == 29
    for _ in range(29):
        node.reactor.advance(predeflate.DELAY)
    assert worker.deflated == 30 and not node.reactor.getDelayedCalls()
    assert all(b.cache["deflate"].data for b in blobs)


def test_warming_never_evicts():
    """Once the cache is full, warming skips bodies instead of evicting cached ones."""
    node, cache = node_with_cache(budget=8000)
    worker = predeflate.Predeflater(node, cache)
    rng = random.Random(5)  # random bytes: the deflated form is as large as the body
    blobs = [append(node, rng.randbytes(1500)) for _ in range(8)]
    for _ in range(10):
        node.reactor.advance(predeflate.DELAY)
    warmed = [b for b in blobs if "deflate" in b.cache]
    assert len(warmed) == 5 and worker.deflated == 5  # 5 x ~1505 bytes fit in 8000
    assert all(b.cache["deflate"].data is not None for b in warmed)  # none evicted
    assert cache.size <= cache.budget and not worker.queue


def test_already_cached_body_is_not_deflated_again():
    """A body another FETCH already deflated is skipped (the cached form is kept)."""
    node, cache = node_with_cache()
    worker = predeflate.Predeflater(node, cache)
    blob = append(node, b"Subject: y\r\n\r\n" + b"abc " * 400)
    first = cache.get(blob)
    node.reactor.advance(predeflate.DELAY)
    assert worker.deflated == 0 and blob.cache["deflate"].data is first
