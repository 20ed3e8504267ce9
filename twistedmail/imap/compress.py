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
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from twistedmail.imap import commands as c
from twistedmail.imap.errors import Bad, No
from twistedmail.imap.session import Session

MECHANISMS = ("DEFLATE",)  # RFC 4978 §3: the only mechanism defined
LEVEL = 1  # fast: bulk FETCH throughput matters more than the last few per cent of ratio
MAX_CHUNK = 64 * 1024  # inflated bytes handed to the receiver at a time


class CompressError(Exception):
    """The client's DEFLATE stream is corrupt."""


class Deflate:
    """Both halves of one connection's DEFLATE stream (RFC 4978 §3)."""

    def __init__(self, level: int = LEVEL) -> None:
        # wbits=-15: raw deflate, 32 KiB window (RFC 4978 §3, RFC 1951)
        self._out = zlib.compressobj(level, zlib.DEFLATED, -15)
        self._in = zlib.decompressobj(-15)
        self.bytes_in = 0  # compressed bytes received
        self.bytes_out = 0  # compressed bytes sent

    def compress(self, data: bytes) -> bytes:
        """``data`` compressed and sync-flushed, ready for the transport (RFC 4978 §4)."""
        out = self._out.compress(data) + self._out.flush(zlib.Z_SYNC_FLUSH)
        self.bytes_out += len(out)
        return out

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
    return False
