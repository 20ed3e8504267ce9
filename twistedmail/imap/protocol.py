"""The thin Twisted protocol: bytes in, the wire receiver, dispatch, bytes out.

Invariants:
  * Commands run one at a time, in the order received (pipelining keeps order);
    a command that completes later (a Deferred) holds the queue until it ends.
  * Everything a batch of input produced is sent in one ``transport.write``.
  * No exception escapes to the client as a traceback: parse errors are BAD,
    handler bugs are ``NO [SERVERBUG]`` and logged.
  * Bytes over the configured line/literal limits are never buffered (the
    receiver counts and skips them).
  * After COMPRESS (RFC 4978) every byte in and out passes through the
    connection's Deflate codec; the tagged OK itself is the last plain write.
    Message bodies the FETCH renderer queued pre-deflated (Responder.splice) are
    spliced into that stream as they are, not compressed again.
  * A cluster node that is not ready (catching up, refused) greets with
    ``* BYE [UNAVAILABLE] <reason>`` and closes (RFC 5530; DESIGN.md §4); so does a
    connection over ``max_connections_per_address`` (twistedmail/limits.py).
  * At most ``max_in_flight`` commands wait behind a running one: a command past
    that is answered ``NO [LIMIT]`` at once (logged once a burst); a client that keeps
    going gets ``* BYE [LIMIT]`` after as many refusals again before the queue drains,
    so neither the queue nor the refusals grow unbounded.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Callable
from functools import partial
from time import monotonic
from typing import TYPE_CHECKING, Any

from twisted.internet.address import UNIXAddress
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin

from twistedmail import limits as node_limits
from twistedmail.imap import dispatch, proxied
from twistedmail.imap.compress import CompressError, Deflate
from twistedmail.imap.parser import ParseError, parse_request
from twistedmail.imap.responses import Atom, encode_seq
from twistedmail.imap.rev2 import utf8_names
from twistedmail.imap.session import NOT_AUTHENTICATED, Connection, Session
from twistedmail.imap.wire import (
    LITERAL_MINUS_MAX,
    LineTooLong,
    LiteralTooBig,
    NeedContinuation,
    RawLine,
    Receiver,
    Request,
)
from twistedmail.observe.hooks import SessionStats
from twistedmail.tls import context_for

if TYPE_CHECKING:
    from twistedmail.node import Node

log = Logger()


def _is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1, ::ffff:127.x (IPv4-mapped) and UNIX sockets are local."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host.startswith("/")  # UNIX sockets are local
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


class IMAPProtocol(Protocol, TimeoutMixin, Connection):
    """One IMAP server connection."""

    def __init__(self, node: Node) -> None:
        self.node = node
        limits = node.settings
        self.receiver = Receiver(max_line=limits.max_line, max_literal=limits.max_literal,
                                 literal_plus=limits.literal_mode != "minus")  # RFC 7888
        self.session = Session(node, self)
        self.queue: deque[Callable[[], Deferred[Any] | None]] = deque()
        self.busy = False
        self.line_waiter: Deferred[bytes] | None = None
        self.closing = False
        self.tls_pending = False
        self.tls_active = False
        self.tls_available = True
        self.deflate: Deflate | None = None
        self.compress_pending = False
        self.stats = SessionStats(node)  # metrics + session events (observe/)
        self.refused_in_flight = 0  # commands refused past max_in_flight

    # --- Connection interface (used by handlers) --------------------------------

    def ask_line(self) -> Deferred[bytes]:
        """The next raw line from the client (SASL continuation, IDLE DONE)."""
        waiter: Deferred[bytes] = Deferred()
        self.line_waiter = waiter
        self.receiver.line_mode = True
        return waiter

    def push(self) -> None:
        """Write whatever the session has queued, in one write."""
        out = self.session.out
        if out.packed and self.deflate is not None and self.transport is not None:
            # RFC 4978: bodies already deflated are spliced in verbatim (compress.py)
            self.transport.write(self.deflate.splice(*out.take_parts()))
        else:
            data = out.take()
            if data:
                self._write(data)
        if self.tls_pending:
            self._begin_tls()
        if self.compress_pending:
            self._begin_compress()
        if self.closing and self.transport is not None:
            self.transport.loseConnection()

    def start_tls(self) -> None:
        """Negotiate TLS once the tagged OK is written (RFC 3501 §6.2.1)."""
        self.tls_pending = True

    def start_compress(self) -> None:
        """Compress both directions once the tagged OK is written (RFC 4978 §3)."""
        self.compress_pending = True

    @property
    def compress_active(self) -> bool:  # type: ignore[override]
        """True once COMPRESS DEFLATE has taken effect."""
        return self.deflate is not None or self.compress_pending

    def close(self) -> None:
        """Close after the queued output."""
        self.closing = True

    def cancel_line(self) -> None:
        """Stop waiting for a raw line (a proxied IDLE ended without DONE)."""
        if self.line_waiter is not None:
            self.line_waiter = None
            self.receiver.line_mode = False

    @property
    def peer_is_loopback(self) -> bool:  # type: ignore[override]
        """True for connections from this machine."""
        peer = self.transport.getPeer() if self.transport is not None else None
        if isinstance(peer, UNIXAddress):
            return True  # a UNIX socket is on this machine
        return _is_loopback(getattr(peer, "host", "") or "")

    # --- Twisted callbacks -------------------------------------------------------------

    def connectionMade(self) -> None:
        """Greet with our capabilities (RFC 3501 §7.1.1 and §7.2.1)."""
        self.stats.opened(self)
        for transport in (self.transport, getattr(self.transport, "transport", None)):
            try:
                transport.setTcpNoDelay(True)  # type: ignore[union-attr]
                break
            except (AttributeError, OSError):
                continue
        self.tls_active = _transport_is_tls(self.transport)
        if self._refuse_while_not_ready() or self._refuse_over_address_limit():
            return
        self.setTimeout(self.node.settings.idle_timeout_preauth)
        caps = encode_seq([Atom(c) for c in dispatch.capabilities(self.session)])
        self.session.out.raw(b"* OK [CAPABILITY " + caps + b"] twistedmail ready\r\n")
        self.push()

    def _refuse_while_not_ready(self) -> bool:
        """RFC 3501 §7.1.5 / RFC 5530: BYE [UNAVAILABLE] from a cluster node not ready."""
        cluster = getattr(self.node, "cluster", None)
        if cluster is None or cluster.ready:
            return False
        reason = cluster.reason or "this node is not ready"
        self.session.out.untagged_status("BYE", reason, "UNAVAILABLE")
        self.close()
        self.push()
        return True

    def _refuse_over_address_limit(self) -> bool:
        """RFC 5530: BYE [UNAVAILABLE] past max_connections_per_address (limits.py)."""
        if node_limits.of(self.node).connect(self):
            return False
        self.session.out.untagged_status("BYE", "Too many connections from your address",
                                         "UNAVAILABLE")
        self.close()
        self.push()
        return True

    def dataReceived(self, data: bytes) -> None:
        """Feed the receiver; run complete commands; send replies."""
        self.resetTimeout()
        if self.closing:
            return
        if self.deflate is None:
            self._receive(data)
        else:
            try:
                for chunk in self.deflate.decompress(data):
                    self._receive(chunk)
                    if self.closing:
                        break
            except CompressError:
                self.session.out.untagged_status("BYE", "Corrupt DEFLATE stream")
                self.closing = True
        self.push()

    def _receive(self, data: bytes) -> None:
        receiver = self.receiver
        receiver.push(data)
        # One event at a time: a handler may switch the receiver to line mode
        # (AUTHENTICATE, IDLE) before the next pipelined line is read.
        while not (self.tls_pending or self.compress_pending or self.closing):
            event = receiver.next_event()
            if event is None:
                break
            self._event(event)

    def connectionLost(self, reason: object = None) -> None:
        """Release the session."""
        self.setTimeout(None)
        self.closing = True
        self.queue.clear()
        node_limits.of(self.node).release(self)
        proxied.release(self.session)
        self.stats.closed(self)
        self.session.close()

    def timeoutConnection(self) -> None:
        """RFC 3501 §5.4: autologout after the inactivity timer."""
        if self.transport is not None:
            self._write(b"* BYE Autologout; idle for too long\r\n")
            self.transport.loseConnection()

    def _write(self, data: bytes) -> None:
        if self.transport is None:
            return
        if self.deflate is not None:
            data = self.deflate.compress(data)  # sync-flushed per batch (RFC 4978 §4)
        self.transport.write(data)

    # --- event handling ------------------------------------------------------------------

    def _event(self, event: object) -> None:
        if isinstance(event, RawLine):
            self._line(event.line)
        elif isinstance(event, Request):
            if self.line_waiter is not None:
                self._line(event.line)
            elif not self._over_in_flight(event.tag):
                self.queue.append(partial(self._run, event))
                self._drain()
        elif isinstance(event, NeedContinuation):
            self.session.out.continuation("Ready for literal data")
        elif isinstance(event, LineTooLong):
            if self._over_in_flight(event.tag):
                return
            self.queue.append(partial(self._refuse, event.tag, "BAD", "Command line too long"))
            self._drain()
        elif isinstance(event, LiteralTooBig):
            if self._over_in_flight(event.tag):
                return
            text = f"Literal of {event.size} bytes is over the limit"
            # RFC 7888 §4: a LITERAL- {n+} over 4096 bytes is a protocol error (BAD).
            minus = (not event.synchronizing and not self.receiver.literal_plus
                     and event.size > LITERAL_MINUS_MAX)
            self.queue.append(partial(self._refuse, event.tag, "BAD" if minus else "NO", text))
            self._drain()

    def _over_in_flight(self, tag: str | None) -> bool:
        """Past ``max_in_flight`` queued commands: NO [LIMIT] now (out of order, by tag;
        RFC 3501 §5.5), BYE [LIMIT] once as many more were refused (limits.py)."""
        limit = self.node.settings.max_in_flight
        if len(self.queue) < limit:
            return False
        self.refused_in_flight += 1
        limits = node_limits.of(self.node)
        limits.refused("commands_in_flight", self.stats.peer, self.session.user,
                       f"{limit} commands queued", log=self.refused_in_flight == 1)
        if self.refused_in_flight > limit:
            self.session.out.untagged_status("BYE", "Too many commands in flight", "LIMIT")
            self.closing = True
            return True
        self.session.out.tagged(tag or "*", "NO", f"Too many commands in flight "
                                f"(limit {limit}); wait for the replies", "LIMIT")
        return True

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
        if not self.queue:
            self.refused_in_flight = 0  # the client caught up: a new burst may be refused

    def _command_done(self, _: object) -> None:
        self.busy = False
        self._after_command()
        self.push()
        self._drain()
        self.push()

    def _run(self, request: Request) -> Deferred[Any] | None:
        started = monotonic()  # observe/hooks.py: count and time every command
        stats = self.stats
        stats.command = None
        result = self._execute(request)
        if result is None:
            stats.done(self, request.tag, started)
        else:
            result.addBoth(stats.done_later, self, stats.command, request.tag, started)
        return result

    def _execute(self, request: Request) -> Deferred[Any] | None:
        try:
            utf8 = utf8_names(self.session)  # RFC 6855 §3; RFC 9051 §5.1 (rev2)
            self.session.out.utf8 = utf8
            command = parse_request(request, utf8)
        except ParseError as err:
            self.session.out.tagged(err.tag or "*", "BAD", err.message or "Syntax error")
            return None
        except Exception:  # noqa: BLE001 - a parser bug must not reach the client
            log.failure("parser failure")
            self.session.out.tagged(request.tag or "*", "BAD", "Invalid command")
            return None
        self.stats.command = command
        result = self._proxied(command, request)
        if result is not None:
            return result
        result = dispatch.execute(self.session, command)
        if result is None:
            self._after_command()
        return result

    def _proxied(self, command: Any, request: Request) -> Deferred[Any] | None:
        """The transparent proxy's turn (imap/proxied.py); None: run it here."""
        session = self.session
        if session.state == NOT_AUTHENTICATED or getattr(session.node, "cluster", None) is None:
            return None
        try:
            result = proxied.intercept(session, dispatch.command_key(command), command, request)
        except Exception as err:  # noqa: BLE001 - never a traceback to the client
            self._proxy_failed(err, command.tag)
            return None
        if result is not None:
            result.addErrback(self._proxy_errback, command.tag)
        return result

    def _proxy_errback(self, failure: Any, tag: str) -> None:
        self._proxy_failed(failure.value, tag)

    def _proxy_failed(self, err: BaseException, tag: str) -> None:
        from twistedmail.imap.errors import CommandFailed

        if isinstance(err, CommandFailed):
            self.session.out.tagged(tag, err.status, err.text, err.code, err.code_args)
            return
        log.error("proxy failure for {tag}: {err!r}", tag=tag, err=err)
        self.session.out.tagged(tag, "NO", "Internal server error", "SERVERBUG")

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

    def _begin_compress(self) -> None:
        self.compress_pending = False
        # RFC 4978 §3: the client sends nothing more until it has seen the OK, so
        # anything already buffered was sent against the rules: drop it, as for STARTTLS.
        self.receiver.reset()
        self.deflate = Deflate()


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
