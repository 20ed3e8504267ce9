"""A large FETCH goes out in slices (twistedmail/imap/handlers/fetch.py ``_stream``):
every message exactly once and in order, a message expunged by another session
between slices skipped as RFC 2180 §4.1.2 says, no EXPUNGE in the middle of the
response (RFC 3501 §7.4.1), NOTIFY pushes held until the end (RFC 5465 §5.5), and
a client that goes away stops the rendering."""

from __future__ import annotations

import re
import socket
import time

import pytest

from tests.protocol.conftest import SIMPLE
from tests.protocol.test_compress import load, plain_logged_in, read_raw_until_tagged
from twistedmail.imap.handlers import fetch as fetch_handler
from twistedmail.store.ops import Expunge

COUNT = 40
BODY = 20_000  # 40 x 20 KB: several slices


def messages() -> list[bytes]:
    """COUNT distinct messages of about BODY bytes each."""
    return [SIMPLE.replace(b"msg1", b"s%d" % i) + (b"line %d of the body\r\n" % i) * (BODY // 20)
            for i in range(COUNT)]


@pytest.fixture
def slices(monkeypatch):
    """Counts the slices rendered after the first; ``slices.before`` runs before each."""

    class Slices:
        calls = 0
        before = None

    original = fetch_handler._next_slice

    def counting(stream):
        Slices.calls += 1
        if Slices.before is not None:
            Slices.before(stream.session)
        return original(stream)

    monkeypatch.setattr(fetch_handler, "_next_slice", counting)
    return Slices


def fetched_bodies(response: bytes) -> list[tuple[int, bytes]]:
    """(sequence number, body) of each ``* n FETCH (BODY[] {size}`` in ``response``."""
    out = []
    for match in re.finditer(rb"\* (\d+) FETCH \(BODY\[\] \{(\d+)\}\r\n", response):
        start = match.end()
        out.append((int(match.group(1)), response[start:start + int(match.group(2))]))
    return out


def read_tagged_keeping_rest(sock: socket.socket, tag: bytes) -> tuple[bytes, bytes]:
    """(bytes up to and including the tagged line, whatever arrived after it)."""
    data = b""
    while True:
        idx = data.find(b"\r\n" + tag + b" ")
        end = data.find(b"\r\n", idx + 2) if idx != -1 else -1
        if end != -1:
            return data[:end + 2], data[end + 2:]
        chunk = sock.recv(1 << 20)
        assert chunk, data[-200:]
        data += chunk


def selected(server) -> socket.socket:
    sock = plain_logged_in(server)
    sock.sendall(b"s1 SELECT INBOX\r\n")
    read_raw_until_tagged(sock, b"s1")
    return sock


def expunge_last(server):
    """A ``before`` hook: another session's EXPUNGE of the last message, once."""
    done = []

    def before(session):
        if not done:
            done.append(True)
            box = server.node.store.mailbox("alice", "INBOX")
            last = max(rec.uid for rec in box.records())
            server.node.store.apply(Expunge("alice", "INBOX", (last,)))

    return before


def test_large_fetch_is_sliced_and_complete(imap_server, slices):
    """Every message comes back once, in order, byte for byte, over several slices."""
    sent = messages()
    load(imap_server, sent)
    sock = selected(imap_server)
    sock.sendall(b"f1 FETCH 1:* BODY.PEEK[]\r\n")
    response = read_raw_until_tagged(sock, b"f1")
    assert response.split(b"\r\n")[-2].startswith(b"f1 OK")
    assert fetched_bodies(response) == list(enumerate(sent, start=1))
    assert slices.calls >= 3  # 800 KB: 32 + 64 + 128 + 256 + 256 + ... KB


def test_small_fetch_is_not_sliced(imap_server, slices):
    """A FETCH below FIRST_SLICE is answered in one go, as before."""
    load(imap_server, messages()[:2])
    sock = selected(imap_server)
    sock.sendall(b"f1 FETCH 1:* BODY.PEEK[]\r\n")
    response = read_raw_until_tagged(sock, b"f1")
    assert len(fetched_bodies(response)) == 2
    assert slices.calls == 0


def fetch_while_last_is_expunged(imap_server, slices, command: bytes):
    """(messages loaded, socket, response) of ``f1 <command> 1:* BODY.PEEK[]`` while
    another session expunges the last message between slices."""
    sent = messages()
    load(imap_server, sent)
    sock = selected(imap_server)
    slices.before = expunge_last(imap_server)
    sock.sendall(b"f1 " + command + b" 1:* BODY.PEEK[]\r\n")
    return sent, sock, read_raw_until_tagged(sock, b"f1")


def test_expunge_between_slices_gives_expungeissued(imap_server, slices):
    """A message expunged by another session mid-stream is left out, the FETCH ends
    NO [EXPUNGEISSUED], and its EXPUNGE comes only with the next command."""
    sent, sock, response = fetch_while_last_is_expunged(imap_server, slices, b"FETCH")
    assert response.split(b"\r\n")[-2].startswith(b"f1 NO [EXPUNGEISSUED]")
    assert b"EXPUNGE\r\n" not in response
    assert fetched_bodies(response) == list(enumerate(sent[:-1], start=1))
    sock.sendall(b"n1 NOOP\r\n")
    assert b"* %d EXPUNGE\r\n" % COUNT in read_raw_until_tagged(sock, b"n1")


def test_uid_fetch_skips_expunged_message_silently(imap_server, slices):
    """UID FETCH leaves the expunged message out and still answers OK (RFC 2180 §4.1.2)."""
    _, _, response = fetch_while_last_is_expunged(imap_server, slices, b"UID FETCH")
    assert response.split(b"\r\n")[-2].startswith(b"f1 OK")
    assert len(re.findall(rb"\* \d+ FETCH \(", response)) == COUNT - 1


def test_notify_push_waits_for_the_end_of_the_stream(imap_server, slices):
    """With NOTIFY SELECTED, an EXPUNGE made mid-stream is pushed after the tagged
    reply of a FETCH, never inside its response (RFC 3501 §7.4.1)."""
    load(imap_server, messages())
    sock = selected(imap_server)
    sock.sendall(b"n0 NOTIFY SET (selected (MessageNew MessageExpunge FlagChange))\r\n")
    read_raw_until_tagged(sock, b"n0")
    slices.before = expunge_last(imap_server)
    sock.sendall(b"f1 FETCH 1:* BODY.PEEK[]\r\n")
    response, pushed = read_tagged_keeping_rest(sock, b"f1")
    assert b"EXPUNGE\r\n" not in response
    assert response.split(b"\r\n")[-2].startswith(b"f1 NO [EXPUNGEISSUED]")
    sock.settimeout(5)
    while b"EXPUNGE\r\n" not in pushed:
        chunk = sock.recv(4096)
        assert chunk, pushed
        pushed += chunk
    assert pushed == b"* %d EXPUNGE\r\n" % COUNT


def test_uid_fetch_expunge_only_after_the_last_fetch(imap_server, slices):
    """UID FETCH may announce the EXPUNGE before its tagged reply (RFC 3501 §7.4.1
    forbids it only for FETCH, STORE and SEARCH), but never between FETCH responses."""
    load(imap_server, messages())
    sock = selected(imap_server)
    slices.before = expunge_last(imap_server)
    sock.sendall(b"f1 UID FETCH 1:* BODY.PEEK[]\r\n")
    response = read_raw_until_tagged(sock, b"f1")
    last_fetch = response.rindex(b"* %d FETCH (" % (COUNT - 1))
    assert response.find(b"EXPUNGE\r\n") in (-1, *range(last_fetch, len(response)))


def test_client_that_stops_reading_pauses_the_stream(imap_server, slices):
    """While the client reads nothing, the stream pauses once the socket and transport
    buffers are full (the transport's IPushProducer), instead of rendering the whole
    response into memory; when the client reads again, every message arrives."""
    big = [SIMPLE.replace(b"msg1", b"b%d" % i) + (b"%05d" % i) * 40_000 for i in range(60)]
    load(imap_server, big)  # 60 x 200 KB = 12 MB of bodies
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.connect((imap_server.host, imap_server.port))
    sock.settimeout(10)
    sock.recv(4096)  # greeting
    sock.sendall(b"l1 LOGIN alice secret\r\n")
    read_raw_until_tagged(sock, b"l1")
    sock.sendall(b"s1 SELECT INBOX\r\n")
    read_raw_until_tagged(sock, b"s1")
    sock.sendall(b"f1 FETCH 1:* BODY.PEEK[]\r\n")
    deadline = time.monotonic() + 10
    rendered = -1
    while time.monotonic() < deadline:  # until the count holds still for 0.3 s
        time.sleep(0.3)
        if slices.calls == rendered:
            break
        rendered = slices.calls
    assert 0 < rendered < 30  # a whole 12 MB takes ~50 slices of <= 256 KiB
    response = read_raw_until_tagged(sock, b"f1")
    assert response.split(b"\r\n")[-2].startswith(b"f1 OK")
    assert fetched_bodies(response) == list(enumerate(big, start=1))
    assert slices.calls > rendered


def test_client_gone_mid_stream_stops_rendering(imap_server, slices):
    """A client dropped during the stream stops it within a slice; the server serves on."""
    load(imap_server, messages())
    sock = selected(imap_server)

    def drop(session):
        if slices.calls == 1:
            session.conn.transport.abortConnection()

    slices.before = drop
    sock.sendall(b"f1 FETCH 1:* BODY[]\r\n")
    sock.settimeout(5)
    try:
        while sock.recv(1 << 20):
            pass
    except OSError:
        pass  # reset by the server: expected
    assert slices.calls <= 2
    other = selected(imap_server)  # the node still answers
    other.sendall(b"f2 FETCH 1 (FLAGS)\r\n")
    assert b"f2 OK" in read_raw_until_tagged(other, b"f2")


def tls_fetch_twice(sock: socket.socket, sent: list[bytes]) -> None:
    for tag in (b"f1", b"f2"):  # the producer is unregistered after the first
        sock.sendall(tag + b" FETCH 1:* BODY.PEEK[]\r\n")
        response = read_raw_until_tagged(sock, tag)
        assert response.split(b"\r\n")[-2].startswith(tag + b" OK")
        assert fetched_bodies(response) == list(enumerate(sent, start=1))


def test_sliced_fetch_over_implicit_tls(imap_server, slices):
    """Over an implicit-TLS listener, two large FETCHes in a row both arrive whole."""
    from tests.protocol.test_tls import insecure_context, listen

    sent = messages()
    load(imap_server, sent)
    port, stop = listen(imap_server)
    try:
        sock = insecure_context().wrap_socket(
            socket.create_connection(("127.0.0.1", port), timeout=10),
            server_hostname="localhost")
        sock.recv(4096)  # greeting
        sock.sendall(b"l1 LOGIN alice secret\r\ns1 SELECT INBOX\r\n")
        read_raw_until_tagged(sock, b"s1")
        tls_fetch_twice(sock, sent)
        assert slices.calls >= 6
    finally:
        stop()


def test_sliced_fetch_after_starttls(imap_server, slices):
    """After STARTTLS (TLS started on the open connection), likewise."""
    from tests.protocol.test_tls import insecure_context

    sent = messages()
    load(imap_server, sent)
    plain = socket.create_connection((imap_server.host, imap_server.port), timeout=10)
    plain.recv(4096)
    plain.sendall(b"t1 STARTTLS\r\n")
    read_raw_until_tagged(plain, b"t1")
    sock = insecure_context().wrap_socket(plain, server_hostname="localhost")
    sock.sendall(b"l1 LOGIN alice secret\r\ns1 SELECT INBOX\r\n")
    read_raw_until_tagged(sock, b"s1")
    tls_fetch_twice(sock, sent)
    assert slices.calls >= 6
