"""Backend IMAP connections for the transparent proxy (issue 5 item 4; seed 003).

A node that serves a client whose public folder (or whole mail file) lives on other
nodes opens an IMAP connection to one of them: :func:`open_backend` connects, reads the
greeting, and authenticates with the ``X-TWISTEDMAIL-PROXY`` SASL mechanism — an HMAC of
the cluster secret over the backend's fresh nonce, the user and the proxying node, so no
password is needed or sent.  It hands back a :class:`Backend` that runs one command at a
time for the session (twistedmail/imap/proxied.py) and relays everything else.

Invariants:
  * One command in flight per backend; later ones wait in ``queue``, in order.
  * Responses are split exactly (RFC 3501 §4.3, §7.5): a line ending in a literal
    marker ``{n}`` CRLF continues after n bytes; a unit ends at a CRLF that follows
    no marker.  A unit over ``MAX_UNIT`` bytes closes the connection.
  * The tagged completion of our command fires its Deferred with the whole tagged
    line; every other unit goes to ``on_unit`` — except the ``+`` continuations our
    own synchronizing literals asked for.
  * Losing the connection fails the command in flight with :class:`BackendLost`
    and calls ``on_lost`` once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.logger import Logger

log = Logger()

MECHANISM = "X-TWISTEDMAIL-PROXY"
CONNECT_TIMEOUT = 3.0  # seconds to reach a backend's IMAP port
MAX_UNIT = 512 * 1024 * 1024  # bytes in one response unit (literals included)
_LITERAL_END = re.compile(rb"~?\{(\d{1,12})\}\r\n\Z")  # RFC 3501 §4.3, RFC 3516 literal8
_MARKER_END = re.compile(rb"(~?)\{(\d{1,12})\+?\}\Z")  # a client marker, sync or LITERAL+
_STATUS = re.compile(rb"\S+ (OK|NO|BAD)\b")


class BackendLost(Exception):
    """The backend connection closed (or failed) before the command completed."""


class BackendRefused(Exception):
    """The backend answered, but not as hoped (greeting BYE, auth NO, ...)."""


def proxy_proof(secret: bytes, nonce: bytes, user: str, from_node: str) -> str:
    """The X-TWISTEDMAIL-PROXY proof: HMAC-SHA256 of the cluster secret over the
    backend's nonce, the user and the proxying node (hex)."""
    parts = [b"twistedmail-imap-proxy-v1", nonce, user.encode(), from_node.encode()]
    return hmac.new(secret, b"|".join(parts), hashlib.sha256).hexdigest()


def check_proof(secret: bytes, nonce: bytes, response: bytes) -> tuple[str, str] | None:
    """(user, proxying node) when ``response`` proves knowledge of the secret, else None."""
    parts = response.split(b"\0")
    if len(parts) != 3:
        return None
    try:
        user, node, given = (p.decode("utf-8") for p in parts)
    except UnicodeDecodeError:
        return None
    expected = proxy_proof(secret, nonce, user, node)
    return (user, node) if hmac.compare_digest(expected, given) else None


def status_of(tagged: bytes) -> str:
    """OK, NO or BAD of a tagged response line ("BAD" if unreadable)."""
    m = _STATUS.match(tagged)
    return m.group(1).decode() if m else "BAD"


def split_request(line: bytes, literals: tuple[bytes, ...]) -> list[bytes]:
    """The command text of a received request (twistedmail/imap/wire.py ``Request``) cut
    at its literals: segment i ends with the marker of literal i."""
    segments = line.split(b"\r\n")
    if len(segments) != len(literals) + 1:
        raise ValueError("literal markers and payloads do not match")
    return segments


class _Command:
    """One command sent to the backend, with what is left to send of it."""

    def __init__(self, tag: bytes, parts: list[bytes]) -> None:
        self.tag = tag
        self.parts = parts  # wire chunks; each but the first waits for a "+"
        self.done: Deferred[bytes] = Deferred()
        self.on_continuation: Callable[[bytes], bytes | None] | None = None


class Backend(Protocol):
    """The proxy's IMAP client connection to one node."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.buffer = bytearray()
        self.unit: list[bytes] = []  # the parts of the response unit being read
        self.unit_size = 0
        self.want = 0  # literal bytes still to read into the unit
        self.greeting: Deferred[bytes] = Deferred()
        self.capabilities: frozenset[str] = frozenset()
        self.command: _Command | None = None  # in flight
        self.queue: deque[_Command] = deque()  # waiting
        self.counter = 0
        self.on_unit: Callable[[bytes], None] = lambda unit: None
        self.on_lost: Callable[[Backend], None] = lambda backend: None
        self.lost = False

    # --- sending -------------------------------------------------------------------

    def run(self, segments: list[bytes], literals: tuple[bytes, ...] = (),
            on_continuation: Callable[[bytes], bytes | None] | None = None
            ) -> Deferred[bytes]:
        """Queue one command (``segments[0]`` starts with the command name, no tag) and
        fire with its tagged line.  Literals use LITERAL+ when the backend has it; a
        continuation not asked for by them goes to ``on_continuation``."""
        if self.lost:
            d: Deferred[bytes] = Deferred()
            d.errback(BackendLost(f"connection to {self.node} is closed"))
            return d
        self.counter += 1
        tag = b"p%d" % self.counter
        plus = "LITERAL+" in self.capabilities
        parts, current = [], tag + b" " + segments[0]
        for literal, following in zip(literals, segments[1:], strict=True):
            current = _MARKER_END.sub(rb"\1{%d%s}" % (len(literal), b"+" if plus else b""),
                                      current)
            if plus:
                current += b"\r\n" + literal
            else:
                parts.append(current + b"\r\n")
                current = literal
            current += following
        parts.append(current + b"\r\n")
        command = _Command(tag, parts)
        command.on_continuation = on_continuation
        self.queue.append(command)
        self._next()
        return command.done

    def _next(self) -> None:
        if self.command is None and self.queue and not self.lost:
            self.command = self.queue.popleft()
            self.transport.write(self.command.parts.pop(0))  # type: ignore[union-attr]

    def send_line(self, line: bytes) -> None:
        """Send a raw line (the client's IDLE "DONE", a SASL response)."""
        if not self.lost and self.transport is not None:
            self.transport.write(line + b"\r\n")

    def close(self) -> None:
        """Close the connection (no LOGOUT: the backend session just ends)."""
        if self.transport is not None:
            self.transport.loseConnection()

    # --- receiving -------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """Cut the stream into response units (see the module Invariants)."""
        self.buffer += data
        while self.buffer and not self.lost:
            if self.want:
                take = bytes(self.buffer[:self.want])
                del self.buffer[:len(take)]
                self.want -= len(take)
                self._add(take)
                continue
            end = self.buffer.find(b"\n")
            if end < 0:
                if len(self.buffer) + self.unit_size > MAX_UNIT:
                    self._overflow()
                return
            line = bytes(self.buffer[:end + 1])
            del self.buffer[:end + 1]
            self._add(line)
            m = _LITERAL_END.search(line)
            if m is not None:
                self.want = int(m.group(1))
                if self.want + self.unit_size > MAX_UNIT:
                    self._overflow()
                continue
            unit = b"".join(self.unit)
            self.unit, self.unit_size = [], 0
            self._unit(unit)

    def _add(self, part: bytes) -> None:
        self.unit.append(part)
        self.unit_size += len(part)

    def _overflow(self) -> None:
        log.warn("proxy: response unit from {node} over {max} bytes; closing",
                 node=self.node, max=MAX_UNIT)
        self.buffer.clear()
        self.close()

    def _unit(self, unit: bytes) -> None:
        if not self.greeting.called:
            self._greeted(unit)
            return
        command = self.command
        if command is not None and unit.startswith(command.tag + b" "):
            self.command = None
            command.done.callback(unit)
            self._next()
            return
        if command is not None and unit.startswith(b"+"):
            if command.parts:  # our synchronizing literal was accepted
                self.transport.write(command.parts.pop(0))  # type: ignore[union-attr]
                return
            if command.on_continuation is not None:
                answer = command.on_continuation(unit)
                if answer is not None:
                    self.send_line(answer)
                return
        self.on_unit(unit)

    def _greeted(self, unit: bytes) -> None:
        if not unit.startswith(b"* OK"):
            self.greeting.errback(BackendRefused(_text(unit)))
            self.close()
            return
        m = re.search(rb"\[CAPABILITY ([^\]]*)\]", unit)
        if m is not None:
            self.capabilities = frozenset(m.group(1).decode("ascii", "replace").upper().split())
        self.greeting.callback(unit)

    def connectionLost(self, reason: object = None) -> None:
        """Fail what is pending; tell the owner once."""
        if self.lost:
            return
        self.lost = True
        self.on_lost(self)  # first: the owner may start a failover the errbacks wait on
        error = BackendLost(f"connection to {self.node} lost")
        if not self.greeting.called:
            self.greeting.errback(error)
        pending = [self.command, *self.queue] if self.command else list(self.queue)
        self.command = None
        self.queue.clear()
        for command in pending:
            if command is not None:
                command.done.errback(error)

    # --- authentication -----------------------------------------------------------------

    def authenticate(self, secret: bytes, user: str, from_node: str) -> Deferred[bytes]:
        """AUTHENTICATE X-TWISTEDMAIL-PROXY (never SASL-IR: the proof needs the nonce)."""
        def answer(unit: bytes) -> bytes:
            try:
                nonce = base64.b64decode(unit[1:].strip(), validate=True)
            except ValueError:
                nonce = b""
            proof = proxy_proof(secret, nonce, user, from_node)
            return base64.b64encode(b"\0".join([user.encode(), from_node.encode(),
                                                proof.encode()]))

        d = self.run([f"AUTHENTICATE {MECHANISM}".encode()], on_continuation=answer)
        return d.addCallback(_require_ok, "AUTHENTICATE")


def _text(unit: bytes) -> str:
    return unit.decode("utf-8", "replace").strip()[:200]


def _require_ok(tagged: bytes, what: str) -> bytes:
    if status_of(tagged) != "OK":
        raise BackendRefused(f"{what}: {_text(tagged)}")
    return tagged


def open_backend(reactor: Any, node: str, address: tuple[str, int], secret: bytes,
                 user: str, from_node: str) -> Deferred[Backend]:
    """Connect to ``node``'s IMAP at ``address`` and log in as ``user`` by proxy."""
    endpoint = TCP4ClientEndpoint(reactor, address[0], address[1], timeout=CONNECT_TIMEOUT)
    backend = Backend(node)
    d: Deferred[Any] = connectProtocol(endpoint, backend)
    d.addCallback(lambda _: backend.greeting)
    d.addCallback(lambda _: backend.authenticate(secret, user, from_node))

    def ready(_: object) -> Backend:
        return backend

    def failed(failure: Any) -> Any:
        backend.close()
        return failure

    return d.addCallbacks(ready, failed)
