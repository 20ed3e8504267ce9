"""COMPRESS=DEFLATE (RFC 4978): the command and the per-connection codec.

After the tagged OK of ``COMPRESS DEFLATE`` both directions carry one raw
DEFLATE stream (RFC 1951, no zlib header: ``wbits=-15``, RFC 4978 §3).  The
server ends every write batch with a sync flush (``Z_SYNC_FLUSH``, §4), so a
client can decode each response as soon as it arrives.

Invariants:
  * The codec is sans-I/O: bytes in, bytes out; the protocol owns the transport.
  * Inflated input is handed out in bounded chunks (``MAX_CHUNK``), so a tiny
    compressed command can never expand into one huge buffer (a "zip bomb");
    the wire receiver's line/literal limits then apply as without COMPRESS.
  * Bulk body FETCH does not recompress message bodies: each blob's bytes are
    deflated once by a FRESH compressor (no history, so no back-reference can
    reach outside the body), ended with a sync flush (non-final blocks ending
    byte-aligned, RFC 1951 §3.2.3-§3.2.4) and cached under a process-wide LRU
    byte budget (:class:`BodyCache`).  :meth:`Deflate.splice` appends those
    bytes verbatim to the stream.  The connection's compressor then no longer
    knows what the client's 32 KiB window holds, so until it is replaced
    (lazily, by the next large plain write) the small pieces between bodies
    (``* 12 FETCH (UID 12 BODY[] {4096}``, ``)``) go out as hand-built STORED
    blocks, which need no compressor state at all.
"""

from __future__ import annotations

import struct
import zlib
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

from twistedmail.imap import commands as c
from twistedmail.imap.errors import Bad, No
from twistedmail.imap.session import Session

MECHANISMS = ("DEFLATE",)  # RFC 4978 §3: the only mechanism defined
LEVEL = 1  # fast: bulk FETCH throughput matters more than the last few per cent of ratio
MAX_CHUNK = 64 * 1024  # inflated bytes handed to the receiver at a time
# Cached bodies: level 6 gains ~7% in size but costs ~1.7x the first fetch, and the
# client inflates no faster, so the connection's level is used.
BODY_LEVEL = LEVEL
# Bodies below this size are coded with the fixed Huffman codes (RFC 1951 §3.2.6):
# a dynamic block's code tables are built anew by the client for every body, which
# for small mails costs more than the bytes they save.  Measured on 4 KB text mails
# (``bench/compress_bench.py``): 0.44 of the size instead of 0.36, inflated 15% faster
# (2 KB: 40% faster); from 16 KB on the two inflate alike, so dynamic codes win.
FIXED_BELOW = 8 * 1024
BODY_CACHE_BYTES = 64 * 1024 * 1024  # process-wide budget of cached compressed bodies
STORED_MAX = 8 * 1024  # plain runs up to this size after a splice go out as STORED blocks
_STORED_LEN = 0xFFFF  # RFC 1951 §3.2.4: LEN is 16 bits
_pack_len = struct.Struct("<BHH").pack


def stored_blocks(data: bytes) -> bytes:
    """``data`` as non-final STORED blocks (RFC 1951 §3.2.4), for a byte-aligned stream.

    Each block: the 3 header bits BFINAL=0 BTYPE=00 padded to a byte (0x00), LEN and
    NLEN (its ones' complement) little-endian, then LEN raw bytes."""
    if len(data) <= _STORED_LEN:
        n = len(data)
        return _pack_len(0, n, n ^ 0xFFFF) + data
    out = []
    for i in range(0, len(data), _STORED_LEN):
        piece = data[i:i + _STORED_LEN]
        out.append(_pack_len(0, len(piece), len(piece) ^ 0xFFFF) + piece)
    return b"".join(out)


def deflate_fresh(data: bytes, level: int = BODY_LEVEL) -> bytes:
    """``data`` as a self-contained run of non-final DEFLATE blocks ending byte-aligned:
    a fresh compressor (no dictionary, so every back-reference stays inside ``data``)
    ended with Z_SYNC_FLUSH, never Z_FINISH (RFC 4978 §4, RFC 1951 §3.2.3)."""
    # A window no larger than the body (RFC 1951 §2: distances only need to reach
    # back within it) makes a small compressor quick to allocate; the client's
    # 32 KiB window decodes any smaller one.
    wbits = min(15, max(9, (len(data) - 1).bit_length()))
    strategy = zlib.Z_FIXED if len(data) < FIXED_BELOW else zlib.Z_DEFAULT_STRATEGY
    comp = zlib.compressobj(level, zlib.DEFLATED, -wbits, 8, strategy)
    return comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)


class _Packed:
    """One cached compressed body; lives in ``blob.cache`` and in the LRU."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data: bytes | None = None


class BodyCache:
    """LRU of compressed message bodies, bounded by ``budget`` compressed bytes.

    The entry sits in the blob's own ``cache`` (shared by every folder and session
    holding that message), so a hit is one dict lookup; eviction empties it."""

    KEY = "deflate"

    def __init__(self, budget: int = BODY_CACHE_BYTES) -> None:
        self.budget = budget
        self.size = 0
        self._lru: OrderedDict[_Packed, None] = OrderedDict()

    def get(self, blob: Any) -> bytes:
        """The body of ``blob`` deflated by :func:`deflate_fresh` (cached)."""
        box = blob.cache.get(self.KEY)
        if box is not None and box.data is not None:
            self._lru.move_to_end(box)
            return box.data
        packed = deflate_fresh(blob.data)
        if len(packed) * 4 > self.budget:  # too big to be worth holding
            return packed
        self._keep(blob, packed)
        while self.size > self.budget:
            self._evict()
        return packed

    def warm(self, blob: Any) -> bool | None:
        """Deflate ``blob`` into the cache ahead of use (imap/predeflate.py), never
        evicting: True if it was, False if it is cached already or too big to hold,
        None if the cache has no room left."""
        box = blob.cache.get(self.KEY)
        if box is not None and box.data is not None:
            return False
        if self.size + len(blob.data) // 8 > self.budget:
            return None
        packed = deflate_fresh(blob.data)
        if len(packed) * 4 > self.budget:
            return False
        if self.size + len(packed) > self.budget:
            return None
        self._keep(blob, packed)
        return True

    def _keep(self, blob: Any, packed: bytes) -> None:
        box = blob.cache.get(self.KEY)
        if box is None:
            box = blob.cache[self.KEY] = _Packed()
        box.data = packed
        self._lru[box] = None
        self.size += len(packed)

    def _evict(self) -> None:
        old, _ = self._lru.popitem(last=False)
        if old.data is not None:
            self.size -= len(old.data)
            old.data = None

    def resize(self, budget: int) -> None:
        """Set a new budget, evicting down to it (0 empties the cache)."""
        self.budget = budget
        while self._lru and self.size > budget:
            self._evict()


BODY_CACHE = BodyCache()


class CompressError(Exception):
    """The client's DEFLATE stream is corrupt."""


class Deflate:
    """Both halves of one connection's DEFLATE stream (RFC 4978 §3)."""

    def __init__(self, level: int = LEVEL) -> None:
        # wbits=-15: raw deflate, 32 KiB window (RFC 4978 §3, RFC 1951)
        self._out = zlib.compressobj(level, zlib.DEFLATED, -15)
        self._in = zlib.decompressobj(-15)
        self._level = level
        self.bytes_in = 0  # compressed bytes received
        self.bytes_out = 0  # compressed bytes sent
        # True after a splice: the compressor's history no longer matches the client's
        # window, so it must not emit a back-reference until it is replaced.
        self._stale = False

    def compress(self, data: bytes) -> bytes:
        """``data`` compressed and sync-flushed, ready for the transport (RFC 4978 §4)."""
        out = self._plain(data)
        self.bytes_out += len(out)
        return out

    def _plain(self, data: bytes) -> bytes:
        if self._stale:
            if len(data) <= STORED_MAX:
                return stored_blocks(data) if data else b""
            # a fresh compressor has no history, so it cannot refer to anything
            self._out = zlib.compressobj(self._level, zlib.DEFLATED, -15)
            self._stale = False
        return self._out.compress(data) + self._out.flush(zlib.Z_SYNC_FLUSH)

    def splice(self, chunks: Sequence[bytes], packed: Sequence[tuple[int, bytes]]) -> bytes:
        """The stream for ``b"".join(chunks)``, where each ``(i, z)`` in ``packed``
        says chunk ``i`` is sent as ``z``, its :func:`deflate_fresh` form, verbatim.

        Sound because every piece before ``z`` ends byte-aligned with no pending
        bits (sync flush or STORED block), ``z`` refers only to itself, and the
        compressor is marked stale after it (see the module docstring)."""
        out = []
        start = 0
        for index, z in packed:
            if index > start:
                out.append(self._plain(b"".join(chunks[start:index])))
            out.append(z)
            self._stale = True
            start = index + 1
        if start < len(chunks):
            out.append(self._plain(b"".join(chunks[start:])))
        data = b"".join(out)
        self.bytes_out += len(data)
        return data

    def decompress(self, data: bytes) -> Iterator[bytes]:
        """The plaintext of ``data`` in chunks of at most MAX_CHUNK bytes."""
        self.bytes_in += len(data)
        pending = data
        while True:
            try:
                chunk = self._in.decompress(pending, MAX_CHUNK)
            except zlib.error as err:
                raise CompressError(str(err)) from None
            if chunk:
                yield chunk
            pending = self._in.unconsumed_tail
            if not pending:
                return
            if self._in.eof:  # the client ended its stream: nothing may follow
                raise CompressError("data after the end of the DEFLATE stream")


def compress(session: Session, cmd: c.Compress) -> bool:
    """RFC 4978 §3: OK, then everything after the tagged OK is compressed."""
    if cmd.mechanism not in MECHANISMS:
        raise Bad(f"Unknown compression mechanism {cmd.mechanism}")
    if session.conn.compress_active:
        raise No("DEFLATE is already active", "COMPRESSIONACTIVE")  # RFC 4978 §3, RFC 5530
    session.out.tagged(cmd.tag, "OK", "DEFLATE active")
    session.conn.start_compress()
    from twistedmail.imap import predeflate  # it imports this module

    predeflate.activate(session.node)
    return False
