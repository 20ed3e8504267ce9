"""Over real sockets: once a session used COMPRESS, new mail is deflated in the
background (twistedmail/imap/predeflate.py), and the compressed FETCH sends that form."""

from __future__ import annotations

import time
import zlib

from tests.protocol.conftest import SIMPLE
from tests.protocol.test_compress import (
    inflated_until_tagged,
    load,
    logged_in_compressed,
)
from twistedmail.imap import predeflate


def cached_forms(server) -> list[bytes | None]:
    """The cached DEFLATE form of each INBOX message of alice (None: not cached)."""
    def read():
        box = server.node.store.mailbox("alice", "INBOX")
        out = []
        for rec in box.records():
            packed = rec.blob.cache.get("deflate")
            out.append(packed.data if packed is not None else None)
        return out

    return server.call(read)


def wait_for_all_cached(server, seconds: float = 5.0) -> list[bytes]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        forms = cached_forms(server)
        if forms and all(forms):
            return forms  # type: ignore[return-value]
        time.sleep(0.02)
    raise AssertionError(f"not all deflated in {seconds} s: {cached_forms(server)}")


def test_mail_after_compress_is_deflated_in_background(imap_server):
    """APPENDs made after a session turned COMPRESS on get cached deflated bodies
    without any FETCH, and a compressed FETCH then returns exactly the bodies."""
    z = logged_in_compressed(imap_server)
    messages = [SIMPLE.replace(b"msg1", b"p%d" % i) + b"line\r\n" * (50 * i) for i in range(8)]
    load(imap_server, messages)  # a plain session, while z is open
    forms = wait_for_all_cached(imap_server)
    assert [zlib.decompressobj(-15).decompress(f) for f in forms] == messages
    z.command("a1", "EXAMINE INBOX")
    z.send("a2 FETCH 1:* BODY.PEEK[]")
    got = inflated_until_tagged(z, b"a2")
    assert all(m in got for m in messages)
    assert cached_forms(imap_server) == forms  # the same cached objects' data, reused


def test_no_background_deflating_before_any_compress(make_imap_server):
    """A node none of whose sessions used COMPRESS deflates nothing ahead of time."""
    server = make_imap_server()
    load(server, [SIMPLE])
    time.sleep(predeflate.DELAY * 10)
    assert server.call(lambda: predeflate.of(server.node)) is None
    assert cached_forms(server) == [None]
