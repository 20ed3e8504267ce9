"""The proxy's backend connection (twistedmail/cluster/proxy.py): response splitting,
literals, tags, queueing, connection loss and the X-TWISTEDMAIL-PROXY proof."""

from __future__ import annotations

import base64

import pytest
from twisted.internet.testing import StringTransport

from twistedmail.cluster.proxy import (
    Backend,
    BackendLost,
    check_proof,
    proxy_proof,
    split_request,
    status_of,
)


def _backend(caps: bytes = b"IMAP4rev1 LITERAL+") -> tuple[Backend, StringTransport, list]:
    backend = Backend("n2")
    transport = StringTransport()
    backend.makeConnection(transport)
    units: list[bytes] = []
    backend.on_unit = units.append
    backend.dataReceived(b"* OK [CAPABILITY " + caps + b"] ready\r\n")
    return backend, transport, units


def _results(d) -> list:
    out: list = []
    d.addBoth(out.append)
    return out


@pytest.mark.parametrize("step", [1, 2, 7, 1000])
def test_units_with_literals_split_the_same_at_any_fragmentation(step: int) -> None:
    """A FETCH with a literal is one unit, whatever the TCP fragmentation."""
    backend, transport, units = _backend()
    done = _results(backend.run([b"FETCH 1 BODY[]"]))
    stream = (b"* 1 FETCH (BODY[] {12}\r\nab\r\n{3}\r\n\r\nxx)\r\n"
              b"* 2 EXISTS\r\np1 OK done\r\n")
    for i in range(0, len(stream), step):
        backend.dataReceived(stream[i:i + step])
    assert units == [b"* 1 FETCH (BODY[] {12}\r\nab\r\n{3}\r\n\r\nxx)\r\n", b"* 2 EXISTS\r\n"]
    assert done == [b"p1 OK done\r\n"]
    assert transport.value() == b"p1 FETCH 1 BODY[]\r\n"


def test_literal_plus_backend_gets_one_write_with_nonsynchronizing_literals() -> None:
    """With LITERAL+ a client's {n} markers become {n+} and the whole command goes at once."""
    backend, transport, _ = _backend()
    segments = split_request(b"a1 APPEND INBOX {3}\r\n (\\Seen) {2}\r\n", (b"abc", b"de"))
    segments[0] = segments[0][3:]
    backend.run(segments, (b"abc", b"de"))
    assert transport.value() == b"p1 APPEND INBOX {3+}\r\nabc (\\Seen) {2+}\r\nde\r\n"


def test_without_literal_plus_each_literal_waits_for_a_continuation() -> None:
    """Synchronizing literals: the payload is sent only after the backend's "+"."""
    backend, transport, units = _backend(b"IMAP4rev1")
    done = _results(backend.run([b"APPEND INBOX {3}", b""], (b"abc",)))
    assert transport.value() == b"p1 APPEND INBOX {3}\r\n"
    backend.dataReceived(b"+ go\r\n")
    assert transport.value() == b"p1 APPEND INBOX {3}\r\nabc\r\n"
    backend.dataReceived(b"p1 OK [APPENDUID 9 1] done\r\n")
    assert done == [b"p1 OK [APPENDUID 9 1] done\r\n"] and units == []


def test_commands_queue_in_order_and_a_foreign_continuation_goes_to_its_handler() -> None:
    """A second command waits for the first's tagged line; IDLE's "+" goes to the caller."""
    backend, transport, _ = _backend()
    seen: list[bytes] = []
    first = _results(backend.run([b"IDLE"], on_continuation=lambda u: seen.append(u)))
    second = _results(backend.run([b"NOOP"]))
    assert transport.value() == b"p1 IDLE\r\n"
    backend.dataReceived(b"+ idling\r\n")
    assert seen == [b"+ idling\r\n"]
    backend.send_line(b"DONE")
    backend.dataReceived(b"p1 OK IDLE done\r\n")
    assert first == [b"p1 OK IDLE done\r\n"]
    assert transport.value().endswith(b"DONE\r\np2 NOOP\r\n")
    backend.dataReceived(b"p2 OK\r\n")
    assert second == [b"p2 OK\r\n"]


def test_connection_loss_fails_every_pending_command_and_tells_the_owner_once() -> None:
    """Lost connection: in-flight and queued commands fail with BackendLost; on_lost once."""
    backend, _, _ = _backend()
    lost: list[Backend] = []
    backend.on_lost = lost.append
    a, b = _results(backend.run([b"NOOP"])), _results(backend.run([b"NOOP"]))
    backend.connectionLost(None)
    backend.connectionLost(None)
    assert lost == [backend]
    assert a[0].check(BackendLost) and b[0].check(BackendLost)
    assert _results(backend.run([b"NOOP"]))[0].check(BackendLost)


def test_greeting_bye_refuses_the_backend() -> None:
    """A backend that greets BYE (not ready) fails the greeting, so the next is tried."""
    backend = Backend("n3")
    backend.makeConnection(StringTransport())
    greeting = _results(backend.greeting)
    backend.dataReceived(b"* BYE [UNAVAILABLE] catching up\r\n")
    assert "catching up" in str(greeting[0].value)


def test_proof_checks_secret_nonce_user_and_node() -> None:
    """The proof verifies only with the same secret, nonce, user and node."""
    proof = proxy_proof(b"s3cret", b"nonce", "alice", "n1").encode()
    assert check_proof(b"s3cret", b"nonce", b"alice\0n1\0" + proof) == ("alice", "n1")
    assert check_proof(b"other", b"nonce", b"alice\0n1\0" + proof) is None
    assert check_proof(b"s3cret", b"nonce2", b"alice\0n1\0" + proof) is None
    assert check_proof(b"s3cret", b"nonce", b"bob\0n1\0" + proof) is None
    assert check_proof(b"s3cret", b"nonce", b"alice\0n1") is None
    assert check_proof(b"s3cret", b"nonce", b"\xff\0n1\0" + proof) is None


def test_authenticate_answers_the_challenge_with_the_proof() -> None:
    """authenticate() sends the mechanism, answers "+ nonce" with user, node and proof."""
    backend, transport, _ = _backend()
    done = _results(backend.authenticate(b"k", "alice", "n1"))
    nonce = b"0123456789abcdef"
    backend.dataReceived(b"+ " + base64.b64encode(nonce) + b"\r\n")
    sent = transport.value().split(b"\r\n")
    assert sent[0] == b"p1 AUTHENTICATE X-TWISTEDMAIL-PROXY"
    assert check_proof(b"k", nonce, base64.b64decode(sent[1])) == ("alice", "n1")
    backend.dataReceived(b"p1 NO [AUTHENTICATIONFAILED] no\r\n")
    assert "AUTHENTICATIONFAILED" in str(done[0].value)


def test_status_of_reads_the_tagged_status() -> None:
    """OK/NO/BAD of a tagged line; anything unreadable counts as BAD."""
    assert status_of(b"p1 OK done\r\n") == "OK"
    assert status_of(b"p1 NO [X] no\r\n") == "NO"
    assert status_of(b"garbage") == "BAD"
