"""SMTP submission into the node (issue 6): twisted.mail.smtp's ESMTP server with an
IMessageDelivery that stores through :func:`twistedmail.delivery.deliver.deliver`.

Twisted runs the SMTP state machine; this module only supplies the policy.

Invariants:
  * A 250 after DATA means every recipient's copy is durable (``deliver`` fired, the APPEND
    rule of DESIGN.md §4); a temporary ``DeliveryError`` gives 451 4.3.0 (452 4.2.2 when over
    quota) so the sender retries.  SMTP has one reply for all recipients (RFC 5321 §4.2.5),
    so when one recipient fails the copies already stored for the others are expunged again:
    nothing is half-delivered.  (LMTP, lmtp.py, answers per recipient instead.)
  * Unknown user or folder: 550 5.1.1 at RCPT (RFC 3463 §3.2).  Size: SIZE=max_literal is
    advertised (RFC 1870 §4); a bigger SIZE= parameter or a bigger message gets
    552 5.3.4; the data is never buffered beyond the limit.
  * Malformed input gets a clear 5xx, never a traceback: a bare CR or LF in the data
    554 5.6.0 (RFC 5321 §2.3.8), an over-long line 500 5.5.6 and the connection closes (the
    line framing is lost), a malformed SASL response 501 5.5.2.
  * AUTH PLAIN/LOGIN (RFC 4954) checks passwords with the node's own cred checkers; it is
    offered only over TLS, from loopback, or with ``allow_plaintext`` (as IMAP LOGIN,
    RFC 8314 §5.3).  With ``smtp_auth`` MAIL FROM before AUTH gets 530 5.7.0.
  * STARTTLS (RFC 3207) uses the node's certificate (twistedmail/tls.py ``context_for``).
  * A cluster node that is not ready greets 421 4.3.2 and closes (RFC 5321 §3.1).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from twisted.cred.portal import IRealm, Portal
from twisted.internet import defer
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.protocol import ServerFactory
from twisted.logger import Logger
from twisted.mail import smtp
from twisted.mail._cred import LOGINCredentials, PLAINCredentials
from twisted.mail.imap4 import IllegalClientResponse
from twisted.python.failure import Failure
from zope.interface import implementer

from twistedmail.delivery.deliver import Delivered, DeliveryError, check_recipient, deliver
from twistedmail.store import Expunge, StoreError

log = Logger()

_SIZE_PARAM = re.compile(rb"(?:^|\s)SIZE=(\d{1,20})(?:\s|$)", re.I)


# --- replies ------------------------------------------------------------------------------


def reply_for(error: BaseException) -> tuple[int, bytes]:
    """(code, text) for a failed delivery: 4xx when the sender should retry, else 5xx."""
    if not isinstance(error, DeliveryError):
        return 451, b"4.3.0 local error in processing; try again later"
    text = error.text.encode("utf-8", "replace").replace(b"\r", b" ").replace(b"\n", b" ")
    if error.temporary:
        if error.code == "OVERQUOTA":
            return 452, b"4.2.2 " + text  # RFC 3463 §3.3 mailbox full
        if error.code == "NOMEMORY":  # the node's memory ceiling (twistedmail/limits.py)
            return 452, b"4.3.1 " + text  # RFC 3463 §3.4 mail system full
        return 451, b"4.3.0 " + text + b"; try again later"
    if error.code == "TOOBIG":
        return 552, b"5.3.4 " + text  # RFC 3463 §3.5 message too big for system
    if error.code == "NONEXISTENT":
        return 550, b"5.1.1 " + text  # RFC 3463 §3.2 bad destination mailbox address
    return 554, b"5.6.0 " + text


def failure_reply(failure: Failure) -> tuple[int, bytes]:
    """``reply_for`` a Failure; an unexpected error is logged (never shown to the peer)."""
    if not failure.check(DeliveryError):
        log.failure("delivery failed unexpectedly", failure)
    return reply_for(failure.value or Exception("no error"))


def undo(node: Any, done: Delivered) -> None:
    """Expunge a copy stored here by ``deliver`` (SMTP all-or-nothing, module doc)."""
    if done.node != node.settings.node_name:  # on a remote holder: cannot be taken back
        log.warn("cannot take back the copy for {user} on {node}", user=done.user,
                 node=done.node)
        return
    try:
        box = node.store.mailbox(done.user, done.mailbox)
        if box.uidvalidity == done.uidvalidity:
            node.store.apply(Expunge(done.user, done.mailbox, (done.uid,)))
    except StoreError:
        log.failure("taking back a copy for {user}", user=done.user)


# --- IMessageDelivery / IMessage ----------------------------------------------------------


class Transaction:
    """The data of one MAIL transaction, shared by its recipients' IMessages."""

    def __init__(self, limit: int, trace: bytes) -> None:
        self.limit = limit
        self.trace = trace
        self.lines: list[bytes] = []
        self.size = 0
        self.writer: Message | None = None

    def add(self, line: bytes) -> None:
        """One data line (dot-unstuffed, without CRLF)."""
        if b"\r" in line or b"\n" in line:
            raise smtp.SMTPServerError(554, b"5.6.0 bare CR or LF in the message "
                                            b"(RFC 5321 section 2.3.8)")
        self.size += len(line) + 2
        if self.size > self.limit:
            self.lines = []
            raise smtp.SMTPServerError(552, b"5.3.4 message is over the %d byte limit"
                                       % self.limit)
        self.lines.append(line)

    def data(self) -> bytes:
        """The message, with the trace header when it still fits the limit."""
        body = b"\r\n".join(self.lines) + b"\r\n"
        if self.trace and len(self.trace) + len(body) <= self.limit:
            return self.trace + body
        return body


@implementer(smtp.IMessage)
class Message:
    """One recipient's copy: stored by ``deliver`` at end of data."""

    def __init__(self, node: Any, address: str, transaction: Transaction) -> None:
        self.node = node
        self.address = address
        self.transaction = transaction
        if transaction.writer is None:
            transaction.writer = self

    def lineReceived(self, line: bytes) -> None:
        if self.transaction.writer is self:
            self.transaction.add(line)

    def eomReceived(self) -> defer.Deferred[Delivered]:
        return deliver(self.node, self.address, self.transaction.data())

    def connectionLost(self) -> None:
        self.transaction.lines = []


def trace_header(node: Any, proto: Any, helo: tuple[Any, Any], kind: str) -> bytes:
    """A Received: header (RFC 5321 §4.4) naming the client and this node."""
    name = helo[0] if isinstance(helo[0], bytes) and helo[0] else b"unknown"
    host = helo[1] if isinstance(helo[1], bytes) else str(helo[1]).encode()
    with_ = kind + ("S" if getattr(proto, "startedTLS", False) else "") + \
        ("A" if getattr(proto, "authenticated", False) else "")
    date = smtp.rfc822date(time.localtime())
    return (b"Received: from " + _printable(name[:200]) + b" ([" + _printable(host) + b"])\r\n"
            b"\tby " + node.settings.node_name.encode() + b" with " + with_.encode()
            + b"; " + date + b"\r\n")


def _printable(value: bytes) -> bytes:
    return bytes(b if 33 <= b < 127 else 63 for b in value)


@implementer(smtp.IMessageDelivery)
class MailDelivery:
    """Accepts recipients that are accounts here or in the cluster (``user[+folder]``)."""

    def __init__(self, node: Any, kind: str = "ESMTP", user: str | None = None) -> None:
        self.node = node
        self.kind = kind
        self.user = user  # the AUTH identity, if any
        self.transaction: Transaction | None = None

    def receivedHeader(self, helo: Any, origin: Any, recipients: Any) -> None:
        return None  # the Transaction carries its own (one per transaction, not per copy)

    def validateFrom(self, helo: Any, origin: smtp.Address) -> smtp.Address:
        check_ready(self.node, 451)
        self.transaction = None
        return origin

    def validateTo(self, user: smtp.User) -> Callable[[], Message]:
        address = str(user.dest)
        try:
            check_recipient(self.node, address)
        except DeliveryError as err:
            code, text = reply_for(err)
            raise smtp.SMTPServerError(code, text.decode("utf-8", "replace")) from None
        if self.transaction is None:
            limit = self.node.settings.max_literal
            self.transaction = Transaction(limit, trace_header(
                self.node, user.protocol, user.helo, self.kind))
        transaction = self.transaction
        return lambda: Message(self.node, address, transaction)


def check_ready(node: Any, code: int) -> None:
    """SMTPServerError(code, 4.3.2 ...) while this cluster node is not ready."""
    cluster = getattr(node, "cluster", None)
    if cluster is not None and not cluster.ready:
        raise smtp.SMTPServerError(code, f"4.3.2 node not ready: {cluster.reason}; "
                                         "try again later")


@implementer(IRealm)
class DeliveryRealm:
    """Avatars for authenticated SMTP sessions: a MailDelivery knowing its user."""

    def __init__(self, node: Any, kind: str) -> None:
        self.node, self.kind = node, kind

    def requestAvatar(self, avatarId: Any, mind: Any, *interfaces: Any) -> tuple[Any, ...]:
        if smtp.IMessageDelivery not in interfaces:
            raise NotImplementedError("only IMessageDelivery avatars")
        name = avatarId.decode("utf-8") if isinstance(avatarId, bytes) else str(avatarId)
        return smtp.IMessageDelivery, MailDelivery(self.node, self.kind, name), lambda: None


# --- the protocol ---------------------------------------------------------------------------


class DeliveringESMTP(smtp.ESMTP):
    """twisted's ESMTP with this node's limits, replies and readiness (module doc)."""

    kind = "ESMTP"
    factory: DeliveryFactory
    portal: Any = None

    def __init__(self, node: Any, challengers: dict[bytes, Any], tls: Any,
                 require_auth: bool) -> None:
        super().__init__(challengers, tls)
        self.node = node
        self.require_auth = require_auth
        self.delivery = MailDelivery(node, self.kind)
        self.host = node.settings.node_name
        self.MAX_LENGTH = max(1000, node.settings.max_line)

    # greeting and extensions

    def connectionMade(self) -> None:
        try:
            check_ready(self.node, 421)
        except smtp.SMTPServerError as err:
            self.sendCode(421, self.host + b" " + err.resp.encode())
            self._transport().loseConnection()
            return
        super().connectionMade()

    def extensions(self) -> dict[bytes, Any]:
        ext = super().extensions()
        if not self.auth_allowed():
            ext.pop(b"AUTH", None)
        ext[b"SIZE"] = [b"%d" % self.node.settings.max_literal]
        ext[b"8BITMIME"] = None
        return ext

    def auth_allowed(self) -> bool:
        """AUTH over TLS, from loopback, or with allow_plaintext (module doc)."""
        from twistedmail.imap.protocol import _is_loopback

        if not self.challengers or self.node.settings.allow_plaintext:
            return bool(self.challengers)
        if self.startedTLS or ISSLTransport.providedBy(self.transport):
            return True
        return _is_loopback(str(getattr(self._transport().getPeer(), "host", "") or ""))

    def _transport(self) -> Any:
        assert self.transport is not None, "not connected"
        return self.transport

    # commands

    def ext_AUTH(self, rest: bytes) -> None:
        if self.challengers and not self.auth_allowed():
            self.sendCode(538, b"5.7.11 Encryption required for requested authentication "
                               b"mechanism; use STARTTLS")
            return
        super().ext_AUTH(rest)

    def state_AUTH(self, response: bytes | None) -> None:
        try:
            super().state_AUTH(response)
        except IllegalClientResponse as err:
            self.mode = smtp.COMMAND
            self.challenger = None
            self.sendCode(501, b"5.5.2 malformed authentication response: "
                          + str(err).encode("utf-8", "replace"))

    def do_NOOP(self, rest: bytes) -> None:
        self.sendCode(250, b"2.0.0 OK")  # RFC 5321 §4.1.1.9, missing from twisted

    def do_VRFY(self, rest: bytes) -> None:
        self.sendCode(252, b"2.5.2 cannot VRFY; send some mail")  # RFC 5321 §3.5.3

    def do_MAIL(self, rest: bytes) -> None:
        m = _SIZE_PARAM.search(rest)
        limit = self.node.settings.max_literal
        if m is not None and int(m.group(1)) > limit:  # RFC 1870 §6.1
            self.sendCode(552, b"5.3.4 message size exceeds the fixed limit of %d bytes" % limit)
            return
        super().do_MAIL(rest)

    def validateFrom(self, helo: Any, origin: smtp.Address) -> Any:
        if self.require_auth and not self.authenticated:  # RFC 4954 §6
            raise smtp.SMTPServerError(530, "5.7.0 Authentication required")
        return super().validateFrom(helo, origin)

    def lineLengthExceeded(self, line: bytes) -> None:
        """The framing is lost: drop the transaction, say so, close."""
        if self.mode == smtp.DATA:
            self._disconnect(getattr(self, "_SMTP__messages", []))
            self.mode = smtp.COMMAND
        self.sendCode(500, b"5.5.6 line too long (limit %d bytes); closing" % self.MAX_LENGTH)
        self._transport().loseConnection()

    # replies after DATA

    def _messageHandled(self, resultList: Any) -> None:
        """One reply for every recipient: 250 only when all copies are durable."""
        failures = [r for ok, r in resultList if not ok]
        if not failures:
            self.sendCode(250, b"2.0.0 delivered to %d recipient(s)" % len(resultList))
            return
        for ok, done in resultList:
            if ok:
                undo(self.node, done)
        replies = [failure_reply(f) for f in failures]
        code, text = min(replies, key=lambda r: (r[0] >= 500, r[0]))  # retry wins
        self.sendCode(code, text)


class DeliveryFactory(ServerFactory):
    """Builds DeliveringESMTP (or a subclass) connections for one node."""

    protocol_class: type[DeliveringESMTP] = DeliveringESMTP

    def __init__(self, node: Any, tls: bool = True, auth: bool = True) -> None:
        from twistedmail.tls import context_for

        self.node = node
        settings = node.settings
        self.tls = context_for(settings) if tls else None
        self.portal: Portal | None = None
        self.challengers: dict[bytes, Any] = {}
        if auth:  # the node's password checkers, with a realm handing out deliveries
            checkers = list(node.portal.checkers.values())
            self.portal = Portal(DeliveryRealm(node, self.protocol_class.kind),
                                 list(dict.fromkeys(checkers)))
            self.challengers = {b"PLAIN": PLAINCredentials, b"LOGIN": LOGINCredentials}
        self.require_auth = bool(auth and settings.smtp_auth)

    def buildProtocol(self, addr: Any) -> Any:
        proto = self.protocol_class(self.node, self.challengers, self.tls, self.require_auth)
        proto.factory = self
        proto.portal = self.portal
        return proto
