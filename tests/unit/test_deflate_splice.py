"""Splicing cached DEFLATE bodies into a COMPRESS stream (RFC 4978, RFC 1951 §3.2.4)."""

from __future__ import annotations

import random
import zlib

import pytest

from twistedmail.imap.compress import (
    STORED_MAX,
    BodyCache,
    Deflate,
    deflate_fresh,
    stored_blocks,
)
from twistedmail.imap.responses import Responder


class FakeBlob:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.cache: dict = {}


def inflate(data: bytes) -> bytes:
    return zlib.decompressobj(-15).decompress(data)


def text(rng: random.Random, size: int) -> bytes:
    words = [b"meeting", b"report", b"the", b"of", b"budget", b"\r\n", b"x" * 7, b"42"]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" "
    return bytes(out[:size])


@pytest.mark.parametrize("size", [0, 1, 5, 65535, 65536, 200_000])
def test_stored_blocks_decode_exactly(size):
    """STORED blocks (0x00, LEN, NLEN, raw) inflate to the input, split at 65535 bytes."""
    data = random.Random(size).randbytes(size)
    assert inflate(stored_blocks(data)) == data


def test_stored_block_layout():
    """RFC 1951 §3.2.4: header byte 0 (BFINAL=0, BTYPE=00), LEN and NLEN little-endian."""
    assert stored_blocks(b"ab") == b"\x00\x02\x00\xfd\xffab"


def test_deflate_fresh_is_non_final_and_byte_aligned():
    """A cached body ends with a sync flush, never a final block: more may follow."""
    body = b"hello world\r\n" * 100
    z = deflate_fresh(body)
    assert z.endswith(b"\x00\x00\xff\xff")
    d = zlib.decompressobj(-15)
    assert d.decompress(z + stored_blocks(b"more")) == body + b"more"
    assert not d.eof


def test_splice_after_compressed_history_decodes():
    """A body spliced after text the compressor has seen does not reuse stale history."""
    rng = random.Random(7)
    body = text(rng, 5000)
    d = Deflate()
    inf = zlib.decompressobj(-15)
    got = inf.decompress(d.compress(body))  # the compressor's window now holds `body`
    chunks = [b"* 1 FETCH (BODY[] {5000}\r\n", body, b")\r\n" + body + b"tail\r\n"]
    got += inf.decompress(d.splice(chunks, [(1, deflate_fresh(body))]))
    got += inf.decompress(d.compress(body * 3))  # large: a fresh compressor takes over
    got += inf.decompress(d.compress(b"a1 OK done\r\n"))
    assert got == body + b"".join(chunks) + body * 3 + b"a1 OK done\r\n"


def test_small_runs_after_splice_are_stored():
    """After a splice, short text goes out as a STORED block (no compressor state)."""
    d = Deflate()
    d.splice([b"x", b"body"], [(1, deflate_fresh(b"body"))])
    assert d.compress(b"a1 OK\r\n") == stored_blocks(b"a1 OK\r\n")
    big = b"y" * (STORED_MAX + 1)
    assert len(d.compress(big)) < 100  # compressed again by a new compressor


def test_random_mixed_batches_round_trip():
    """Hundreds of random batches of text and spliced bodies inflate byte for byte."""
    rng = random.Random(1)
    d = Deflate()
    inf = zlib.decompressobj(-15)
    cache = BodyCache(300_000)
    blobs = [FakeBlob(text(rng, rng.choice([0, 3, 4000, 40_000, 70_000]))) for _ in range(30)]
    sent = bytearray()
    got = bytearray()
    for _ in range(300):
        out = Responder()
        for _ in range(rng.randint(0, 6)):
            if rng.random() < 0.5:
                blob = rng.choice(blobs)
                out.raw(b"* 1 FETCH (BODY[] {%d}\r\n" % len(blob.data))
                out.splice(blob.data, cache.get(blob))
                out.raw(b")\r\n")
            else:
                out.raw(text(rng, rng.choice([0, 9, 300, STORED_MAX + 5, 70_000])))
        if out.packed:
            chunks, packed = out.take_parts()
            sent += b"".join(chunks)
            got += inf.decompress(d.splice(chunks, packed))
        else:
            data = out.take()
            sent += data
            got += inf.decompress(d.compress(data))
        assert got == sent
    assert cache.size <= cache.budget
    assert not inf.eof


def test_body_cache_reuses_and_evicts_lru():
    """Bodies are compressed once; the least recently used go when over the budget."""
    rng = random.Random(2)
    blobs = [FakeBlob(rng.randbytes(1000)) for _ in range(5)]
    cache = BodyCache(budget=4500)  # room for four ~1010-byte entries
    first = cache.get(blobs[0])
    assert cache.get(blobs[0]) is first  # reused, not recompressed
    for blob in blobs[1:4]:
        cache.get(blob)
    cache.get(blobs[0])  # now the most recent
    cache.get(blobs[4])  # evicts blobs[1], the least recent
    assert cache.size <= cache.budget
    assert blobs[1].cache["deflate"].data is None
    assert blobs[0].cache["deflate"].data is first
    assert inflate(cache.get(blobs[1])) == blobs[1].data  # rebuilt on demand


def test_body_cache_skips_huge_bodies():
    """A body too large for the budget is compressed but not kept."""
    cache = BodyCache(budget=1000)
    blob = FakeBlob(random.Random(3).randbytes(5000))
    assert inflate(cache.get(blob)) == blob.data
    assert cache.size == 0


def test_resize_evicts_down_to_budget():
    """resize(0) empties the cache."""
    cache = BodyCache()
    cache.get(FakeBlob(b"abc" * 100))
    assert cache.size > 0
    cache.resize(0)
    assert cache.size == 0


def test_responder_take_joins_spliced_chunks():
    """Without COMPRESS a spliced body is ordinary bytes in order; take() resets both lists."""
    out = Responder()
    out.raw(b"a")
    out.splice(b"body", b"zz")
    out.raw(b"c")
    assert out.take() == b"abodyc"
    assert out.packed == [] and out.chunks == []
    out.splice(b"b", b"z")
    assert out.take_parts() == ([b"b"], [(0, b"z")])
    assert out.take() == b""
