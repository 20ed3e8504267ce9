"""COMPRESS=DEFLATE (RFC 4978): raw DEFLATE both ways after the tagged OK."""

from __future__ import annotations

import socket
import ssl
import time
import zlib

import pytest

from tests.protocol.conftest import SIMPLE, append

SYNC_FLUSH_TAIL = b"\x00\x00\xff\xff"  # RFC 1951 empty stored block: what Z_SYNC_FLUSH ends with


class Deflated:
    """A client side of RFC 4978 over a (possibly TLS) socket: zlib wbits=-15 both ways."""

    def __init__(self, sock: socket.socket, leftover: bytes = b"") -> None:
        self.sock = sock
        self.out = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inflate = zlib.decompressobj(-15)
        self.buffer = b""
        self.raw_in = 0
        self.last_raw = b""
        if leftover:
            self._feed(leftover)

    def _feed(self, raw: bytes) -> None:
        self.raw_in += len(raw)
        self.last_raw = raw
        self.buffer += self.inflate.decompress(raw)

    def send(self, line: bytes | str) -> None:
        data = (line.encode() if isinstance(line, str) else line) + b"\r\n"
        self.send_raw(data)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(self.out.compress(data) + self.out.flush(zlib.Z_SYNC_FLUSH))

    def read_line(self, timeout: float = 10) -> bytes:
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buffer:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"server closed; buffered {self.buffer!r}")
            self._feed(chunk)
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def command(self, tag: str, line: str) -> list[bytes]:
        """Send ``tag line``; every response line up to and including the tagged one."""
        self.send(f"{tag} {line}")
        lines = []
        while True:
            lines.append(self.read_line())
            if lines[-1].startswith(tag.encode() + b" "):
                return lines


def plain_connect(server) -> tuple[socket.socket, object]:
    sock = socket.create_connection((server.host, server.port), timeout=10)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"* OK")
    return sock, f


def start_compress(sock: socket.socket, tag: bytes = b"z1") -> Deflated:
    """Send COMPRESS DEFLATE in the clear, read the plain OK, switch to DEFLATE."""
    sock.sendall(tag + b" COMPRESS DEFLATE\r\n")
    data = b""
    while b"\r\n" not in data:
        data += sock.recv(4096)
    line, _, rest = data.partition(b"\r\n")
    assert line.startswith(tag + b" OK"), line
    return Deflated(sock, rest)


def logged_in_compressed(server) -> Deflated:
    sock, f = plain_connect(server)
    sock.sendall(b"l1 LOGIN alice secret\r\n")
    assert f.readline().startswith(b"l1 OK")
    return start_compress(sock)


def test_capability_advertised(imap_script):
    """COMPRESS=DEFLATE is advertised before and after login (RFC 4978 §3)."""
    c = imap_script(login=False)
    assert b" COMPRESS=DEFLATE" in c.greeting
    c.ok("LOGIN alice secret")
    assert b"COMPRESS=DEFLATE" in c.ok("CAPABILITY").untagged[0]


def test_compressed_session_round_trip(imap_server):
    """After the OK, commands and responses are raw DEFLATE: SELECT, APPEND, FETCH work."""
    z = logged_in_compressed(imap_server)
    assert z.command("a1", "SELECT INBOX")[-1].startswith(b"a1 OK")
    body = SIMPLE + b"compressible line of text\r\n" * 400
    z.send(f"a2 APPEND INBOX {{{len(body)}}}")
    assert z.read_line().startswith(b"+")
    z.send(body)
    lines = [z.read_line()]
    while not lines[-1].startswith(b"a2 "):
        lines.append(z.read_line())
    assert lines[-1].startswith(b"a2 OK")
    before = z.raw_in
    lines = z.command("a3", "FETCH 1 BODY.PEEK[]")
    assert lines[-1].startswith(b"a3 OK")
    assert z.buffer == b""
    fetched = b"\r\n".join(lines)
    assert body in fetched
    assert z.raw_in - before < len(body) // 5  # the body really travelled compressed


def test_each_write_batch_is_sync_flushed(imap_server):
    """Every response batch ends with a sync flush, so it decodes on arrival (RFC 4978 §4)."""
    z = logged_in_compressed(imap_server)
    for i in range(3):
        assert z.command(f"n{i}", "NOOP")[-1].startswith(f"n{i} OK".encode())
        assert z.last_raw.endswith(SYNC_FLUSH_TAIL)


def test_second_compress_is_no_compressionactive(imap_server):
    """COMPRESS while compression is active: NO [COMPRESSIONACTIVE] (RFC 4978 §3)."""
    z = logged_in_compressed(imap_server)
    tagged = z.command("a1", "COMPRESS DEFLATE")[-1]
    assert tagged.startswith(b"a1 NO [COMPRESSIONACTIVE]")
    assert z.command("a2", "NOOP")[-1].startswith(b"a2 OK")


@pytest.mark.parametrize("line", ["COMPRESS", "COMPRESS GZIP", "COMPRESS DEFLATE extra"])
def test_bad_compress_commands(imap_script, line):
    """Unknown mechanism or bad syntax: BAD, and the session stays uncompressed."""
    c = imap_script(login=True)
    c.bad(line)
    c.ok("NOOP")


def test_compress_mechanism_is_case_insensitive(imap_server):
    """`compress deflate` works like COMPRESS DEFLATE (RFC 3501 §9 atoms)."""
    sock, f = plain_connect(imap_server)
    sock.sendall(b"l1 LOGIN alice secret\r\n")
    f.readline()
    sock.sendall(b"z1 compress deflate\r\n")
    z = Deflated(sock)
    assert f.readline().startswith(b"z1 OK")
    assert z.command("a1", "NOOP")[-1].startswith(b"a1 OK")


def test_compress_after_starttls(imap_server):
    """RFC 4978 §3 example: STARTTLS, then COMPRESS, then LOGIN — DEFLATE inside TLS."""
    sock, f = plain_connect(imap_server)
    sock.sendall(b"t1 STARTTLS\r\n")
    assert f.readline().startswith(b"t1 OK")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    tls = ctx.wrap_socket(sock, server_hostname="localhost")
    z = start_compress(tls)
    assert z.command("a1", "LOGIN alice secret")[-1].startswith(b"a1 OK")
    assert z.command("a2", "SELECT INBOX")[-1].startswith(b"a2 OK")
    assert z.command("a3", "STARTTLS")[-1].startswith(b"a3 BAD")


def test_starttls_after_compress_is_bad(imap_server):
    """TLS must go below COMPRESS: STARTTLS once compression is on is BAD."""
    sock, _ = plain_connect(imap_server)
    z = start_compress(sock)
    assert z.command("a1", "STARTTLS")[-1].startswith(b"a1 BAD")
    assert z.command("a2", "LOGIN alice secret")[-1].startswith(b"a2 OK")


def test_idle_push_while_compressed(imap_server, imap_script):
    """IDLE over DEFLATE: another session's APPEND arrives as * 1 EXISTS at once; DONE ends."""
    z = logged_in_compressed(imap_server)
    z.command("a1", "SELECT INBOX")
    z.send("a2 IDLE")
    assert z.read_line().startswith(b"+")
    other = imap_script(login=True)
    append(other, SIMPLE)
    assert z.read_line(timeout=5) == b"* 1 EXISTS"
    assert z.last_raw.endswith(SYNC_FLUSH_TAIL)
    z.send("DONE")
    lines = [z.read_line()]
    while not lines[-1].startswith(b"a2 "):
        lines.append(z.read_line())
    assert lines[-1].startswith(b"a2 OK")


def test_pipelined_commands_in_one_compressed_write(imap_server):
    """Several commands in one DEFLATE flush are all answered, in order."""
    z = logged_in_compressed(imap_server)
    z.send_raw(b"p1 NOOP\r\np2 SELECT INBOX\r\np3 BOGUS\r\n")
    tags = []
    while len(tags) < 3:
        line = z.read_line()
        if not line.startswith(b"*"):
            tags.append(line.split(b" ")[:2])
    assert tags == [[b"p1", b"OK"], [b"p2", b"OK"], [b"p3", b"BAD"]]


def test_compressed_bomb_line_is_bounded(make_imap_server):
    """A tiny compressed 8 MB line is refused BAD like an uncompressed one; still usable."""
    server = make_imap_server(max_line=4096)
    z = logged_in_compressed(server)
    z.send_raw(b"b1 NOOP " + b"x" * (8 * 1024 * 1024) + b"\r\n")
    assert z.read_line().startswith(b"b1 BAD")
    assert z.command("a1", "NOOP")[-1].startswith(b"a1 OK")


def test_corrupt_stream_ends_with_bye(imap_server):
    """Bytes that are not DEFLATE after COMPRESS: `* BYE` and the connection closes."""
    sock, _ = plain_connect(imap_server)
    z = start_compress(sock)
    sock.sendall(b"\xff\xff\xff\xff not deflate at all")
    assert z.read_line().startswith(b"* BYE")
    sock.settimeout(5)
    assert sock.recv(100) == b""


# --- bulk body FETCH: cached DEFLATE bodies spliced into the stream (compress.py) ---------

SPLICE_COMMANDS = [
    "UID FETCH 1:* BODY.PEEK[]",
    "FETCH 1:* (UID RFC822.SIZE BODY.PEEK[] ENVELOPE)",
    "FETCH 1:* (BODY.PEEK[]<0.100> BODY.PEEK[] BODY.PEEK[]<5.3>)",
    "FETCH 2:6 (RFC822 BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[])",
    "SEARCH ALL",
    "FETCH 1:* (BODYSTRUCTURE BODY.PEEK[] BODY.PEEK[])",
    "NOOP",
    "UID FETCH 1:* BODY.PEEK[]",
]


def varied_messages(n: int = 24) -> list[bytes]:
    """Bodies from a few bytes to 150 KB (several STORED/DEFLATE blocks, > 32 KiB window)."""
    out = []
    for i in range(n):
        size = [0, 10, 3000, 40_000, 150_000][i % 5]
        words = b" ".join(b"word%d" % ((i * 7 + k) % 13) for k in range(size // 6))
        out.append(SIMPLE.replace(b"msg1", b"m%d" % i) + words[:size] + b"\r\n")
    return out


def read_raw_until_tagged(sock: socket.socket, tag: bytes, pending: bytes = b"") -> bytes:
    """Plain-socket bytes up to and including the tagged completion line."""
    data = pending
    while True:
        idx = data.find(b"\r\n" + tag + b" ") if not data.startswith(tag + b" ") else -2
        if idx != -1 and data.find(b"\r\n", idx + 2) != -1:
            end = data.find(b"\r\n", idx + 2) + 2
            return data[:end]
        chunk = sock.recv(1 << 20)
        assert chunk, data[-200:]
        data += chunk


def inflated_until_tagged(z: Deflated, tag: bytes) -> bytes:
    """The inflated bytes of every response up to and including the tagged line."""
    out = b""
    while True:
        line = z.read_line(timeout=20) + b"\r\n"
        out += line
        if line.startswith(tag + b" "):
            return out
        if line.endswith(b"}\r\n"):  # a literal: take exactly its octets
            size = int(line[line.rindex(b"{") + 1:-3])
            while len(z.buffer) < size:
                z._feed(z.sock.recv(1 << 20))
            out += z.buffer[:size]
            z.buffer = z.buffer[size:]


def plain_logged_in(server) -> socket.socket:
    sock, f = plain_connect(server)
    sock.sendall(b"l1 LOGIN alice secret\r\n")
    assert f.readline().startswith(b"l1 OK")
    return sock


def load(server, messages: list[bytes]) -> None:
    sock = plain_logged_in(server)
    for i, msg in enumerate(messages):
        tag = b"ap%d" % i
        sock.sendall(tag + b" APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        assert read_raw_until_tagged(sock, tag).split(b"\r\n")[-2].startswith(tag + b" OK")
    sock.close()


def test_spliced_bodies_decode_byte_for_byte(imap_server):
    """Bulk, partial and mixed FETCHes inflate to exactly the uncompressed responses."""
    messages = varied_messages()
    load(imap_server, messages)
    plain = plain_logged_in(imap_server)
    z = logged_in_compressed(imap_server)
    for i, line in enumerate(["EXAMINE INBOX", *SPLICE_COMMANDS]):
        tag = b"s%d" % i
        plain.sendall(tag + b" " + line.encode() + b"\r\n")
        expected = read_raw_until_tagged(plain, tag)
        before = z.raw_in
        z.send(tag.decode() + " " + line)
        got = inflated_until_tagged(z, tag)
        assert got == expected, line
        assert b" OK " in got.split(b"\r\n")[-2]
        if "BODY.PEEK[]" in line and "1:*" in line:
            assert z.raw_in - before < len(expected) // 2  # bodies travelled compressed
    assert z.buffer == b""


def test_bodies_are_compressed_once_and_cached(imap_server):
    """After one compressed FETCH each message blob holds its cached DEFLATE form, reused."""
    load(imap_server, varied_messages(6))
    z = logged_in_compressed(imap_server)
    z.command("a1", "EXAMINE INBOX")
    z.send("a2 FETCH 1:* BODY.PEEK[]")
    inflated_until_tagged(z, b"a2")
    box = imap_server.node.store.mailbox("alice", "INBOX")
    cached = [rec.blob.cache["deflate"].data for rec in box.records()]
    assert all(cached)
    assert all(zlib.decompressobj(-15).decompress(c) == rec.blob.data
               for c, rec in zip(cached, box.records(), strict=True))
    z.send("a3 FETCH 1:* BODY.PEEK[]")
    inflated_until_tagged(z, b"a3")
    again = [rec.blob.cache["deflate"].data for rec in box.records()]
    assert all(a is b for a, b in zip(cached, again, strict=True))  # not recompressed


def test_non_peek_body_fetch_sets_seen_while_compressed(imap_server):
    """FETCH BODY[] over DEFLATE: each body exact, then FLAGS (\\Seen) in the same response."""
    messages = varied_messages(5)
    load(imap_server, messages)
    z = logged_in_compressed(imap_server)
    z.command("a1", "SELECT INBOX")
    z.send("a2 FETCH 1:5 BODY[]")
    got = inflated_until_tagged(z, b"a2")
    for i, msg in enumerate(messages, 1):
        head = b"* %d FETCH (BODY[] {%d}\r\n" % (i, len(msg))
        assert head + msg + b" FLAGS (\\Seen \\Recent))\r\n" in got
    assert got.endswith(b"OK Fetch completed\r\n") or b"a2 OK" in got


def test_spliced_fetch_after_idle_and_append(imap_server, imap_script):
    """IDLE, a pushed EXISTS, DONE, then bulk bodies and a later NOOP all decode exactly."""
    load(imap_server, varied_messages(5))
    z = logged_in_compressed(imap_server)
    z.command("a1", "EXAMINE INBOX")
    z.send("a2 FETCH 1:* BODY.PEEK[]")
    first = inflated_until_tagged(z, b"a2")
    z.send("a3 IDLE")
    assert z.read_line().startswith(b"+")
    other = imap_script(login=True)
    new = SIMPLE.replace(b"Hello Bob", b"Late mail " * 500)
    append(other, new)
    assert z.read_line(timeout=5) == b"* 6 EXISTS"
    z.send("DONE")
    inflated_until_tagged(z, b"a3")
    z.send("a4 FETCH 1:* BODY.PEEK[]")
    second = inflated_until_tagged(z, b"a4")
    assert second.startswith(first[:first.rindex(b"a2 OK")])
    assert b"* 6 FETCH (BODY[] {%d}\r\n" % len(new) + new + b")\r\n" in second
    assert z.command("a5", "NOOP")[-1].startswith(b"a5 OK")
    assert z.command("a6", "LOGOUT")[-1].startswith(b"a6 OK")
