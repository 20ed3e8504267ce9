"""The thin Twisted protocol: bytes in, the wire receiver, dispatch, bytes out.

Invariants:
  * Commands run one at a time, in the order received (pipelining keeps order);
    a command that completes later (a Deferred) holds the queue until it ends.
  * Everything a batch of input produced is sent in one ``transport.write``.
  * No exception escapes to the client as a traceback: parse errors are BAD,
    handler bugs are ``NO [SERVERBUG]`` and logged.
  * Bytes over the configured line/literal limits are never buffered (the
    receiver counts and skips them).
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin

from twistedmail.imap import dispatch
from twistedmail.imap.parser import ParseError, parse_request
from twistedmail.imap.responses import Atom, encode_seq
from twistedmail.imap.session import NOT_AUTHENTICATED, Connection, Session
from twistedmail.imap.wire import (
    LineTooLong,
    LiteralTooBig,
    NeedContinuation,
    RawLine,
    Receiver,
    Request,
)
from twistedmail.tls import context_for

if TYPE_CHECKING:
    from twistedmail.node import Node

log = Logger()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.startswith("/")  # UNIX sockets are local


class IMAPProtocol(Protocol, TimeoutMixin, Connection):
    """One IMAP server connection."""

    def __init__(self, node: Node) -> None:
        self.node = node
        limits = node.settings
        self.receiver = Receiver(max_line=limits.max_line, max_literal=limits.max_literal)
        self.session = Session(node, self)
        self.queue: deque[Callable[[], Deferred[Any] | None]] = deque()
        self.busy = False
        self.line_waiter: Deferred[bytes] | None = None
        self.closing = False
        self.tls_pending = False
        self.tls_active = False
        self.tls_available = True

    # --- Connection interface (used by handlers) --------------------------------

    def ask_line(self) -> Deferred[bytes]:
        """The next raw line from the client (SASL continuation, IDLE DONE)."""
        waiter: Deferred[bytes] = Deferred()
        self.line_waiter = waiter
        self.receiver.line_mode = True
        return waiter

    def push(self) -> None:
        """Write whatever the session has queued, in one write."""
        data = self.session.out.take()
        if data and self.transport is not None:
            self.transport.write(data)
        if self.tls_pending:
            self._begin_tls()
        if self.closing and self.transport is not None:
            self.transport.loseConnection()

    def start_tls(self) -> None:
        """Negotiate TLS once the tagged OK is written (RFC 3501 §6.2.1)."""
        self.tls_pending = True

    def close(self) -> None:
        """Close after the queued output."""
        self.closing = True

    @property
    def peer_is_loopback(self) -> bool:  # type: ignore[override]
        """True for connections from this machine."""
        peer = self.transport.getPeer() if self.transport is not None else None
        return _is_loopback(getattr(peer, "host", "") or "")

    # --- Twisted callbacks -------------------------------------------------------------

    def connectionMade(self) -> None:
        """Greet with our capabilities (RFC 3501 §7.1.1 and §7.2.1)."""
        for transport in (self.transport, getattr(self.transport, "transport", None)):
            try:
                transport.setTcpNoDelay(True)  # type: ignore[union-attr]
                break
            except (AttributeError, OSError):
                continue
        self.tls_active = _transport_is_tls(self.transport)
        self.setTimeout(self.node.settings.idle_timeout_preauth)
        caps = encode_seq([Atom(c) for c in dispatch.capabilities(self.session)])
        self.session.out.raw(b"* OK [CAPABILITY " + caps + b"] twistedmail ready\r\n")
        self.push()

    def dataReceived(self, data: bytes) -> None:
        """Feed the receiver; run complete commands; send replies."""
        self.resetTimeout()
        if self.closing:
            return
        receiver = self.receiver
        receiver.push(data)
        # One event at a time: a handler may switch the receiver to line mode
        # (AUTHENTICATE, IDLE) before the next pipelined line is read.
        while not (self.tls_pending or self.closing):
            event = receiver.next_event()
            if event is None:
                break
            self._event(event)
        self.push()

    def connectionLost(self, reason: object = None) -> None:
        """Release the session."""
        self.setTimeout(None)
        self.closing = True
        self.queue.clear()
        self.session.close()

    def timeoutConnection(self) -> None:
        """RFC 3501 §5.4: autologout after the inactivity timer."""
        if self.transport is not None:
            self.transport.write(b"* BYE Autologout; idle for too long\r\n")
            self.transport.loseConnection()

    # --- event handling ------------------------------------------------------------------

    def _event(self, event: object) -> None:
        if isinstance(event, RawLine):
            self._line(event.line)
        elif isinstance(event, Request):
            if self.line_waiter is not None:
                self._line(event.line)
            else:
                self.queue.append(partial(self._run, event))
                self._drain()
        elif isinstance(event, NeedContinuation):
            self.session.out.continuation("Ready for literal data")
        elif isinstance(event, LineTooLong):
            self.queue.append(partial(self._refuse, event.tag, "BAD", "Command line too long"))
            self._drain()
        elif isinstance(event, LiteralTooBig):
            text = f"Literal of {event.size} bytes is over the limit"
            self.queue.append(partial(self._refuse, event.tag, "NO", text))
            self._drain()

    def _line(self, line: bytes) -> None:
        waiter, self.line_waiter = self.line_waiter, None
        self.receiver.line_mode = False
        if waiter is not None:
            waiter.callback(line)

    def _refuse(self, tag: str | None, status: str, text: str) -> None:
        self.session.out.tagged(tag or "*", status, text, "TOOBIG")  # RFC 7889 / RFC 4469
        return None

    def _drain(self) -> None:
        while self.queue and not self.busy and not self.closing:
            result = self.queue.popleft()()
            if isinstance(result, Deferred):
                self.busy = True
                result.addBoth(self._command_done)

    def _command_done(self, _: object) -> None:
        self.busy = False
        self._after_command()
        self.push()
        self._drain()
        self.push()

    def _run(self, request: Request) -> Deferred[Any] | None:
        try:
            command = parse_request(request)
        except ParseError as err:
            self.session.out.tagged(err.tag or "*", "BAD", err.message or "Syntax error")
            return None
        except Exception:  # noqa: BLE001 - a parser bug must not reach the client
            log.failure("parser failure")
            self.session.out.tagged(request.tag or "*", "BAD", "Invalid command")
            return None
        result = dispatch.execute(self.session, command)
        if result is None:
            self._after_command()
        return result

    def _after_command(self) -> None:
        if self.session.state != NOT_AUTHENTICATED:
            self.setTimeout(self.node.settings.idle_timeout_auth)

    def _begin_tls(self) -> None:
        self.tls_pending = False
        context = context_for(self.node.settings)
        if context is None or self.transport is None:
            return
        self.receiver.reset()  # RFC 3501 §6.2.1: discard anything sent before TLS starts
        self.transport.startTLS(context)  # type: ignore[attr-defined]
        self.tls_active = True


def _transport_is_tls(transport: Any) -> bool:
    from twisted.internet.interfaces import ISSLTransport

    return ISSLTransport.providedBy(transport)


class IMAPFactory(Factory):
    """Builds one IMAPProtocol per connection for a node."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def buildProtocol(self, addr: object) -> IMAPProtocol:
        """A protocol bound to this factory's node."""
        proto = IMAPProtocol(self.node)
        proto.factory = self
        return proto
