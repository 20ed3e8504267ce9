"""LMTP (RFC 2033) into the node: twisted.mail.smtp's ESMTP machine with LHLO and one
reply per recipient after the final dot.

Invariants:
  * LHLO replaces HELO/EHLO (RFC 2033 §4.1); HELO and EHLO get 500 5.5.1.
  * After DATA there is exactly one reply per accepted RCPT, in RCPT order (RFC 2033 §4.2):
    250 2.0.0 once that copy is durable (deliver.py), 451 4.3.0 for a temporary failure,
    5xx for a permanent one.  Each copy stands alone: a failed one does not undo another.
  * A whole-data failure (over the size limit, bare CR/LF) is repeated once per recipient.
  * Everything else (size, 550 at RCPT, readiness, line limit) is smtp.py's policy.  LMTP is
    for trusted local MTAs: no AUTH, no STARTTLS (put it on a UNIX socket or loopback).
"""

from __future__ import annotations

from typing import Any

from twisted.mail import smtp

from twistedmail.delivery.smtp import DeliveringESMTP, DeliveryFactory, failure_reply


class LMTPServer(DeliveringESMTP):
    """An LMTP server session for one node."""

    kind = "LMTP"

    def __init__(self, node: Any, challengers: dict[bytes, Any], tls: Any,
                 require_auth: bool) -> None:
        super().__init__(node, {}, None, False)
        self._accepted = 0

    def greeting(self) -> bytes:
        return self.host + b" LMTP ready"

    def do_LHLO(self, rest: bytes) -> None:
        smtp.ESMTP.do_EHLO(self, rest)

    def do_HELO(self, rest: bytes) -> None:
        self.sendCode(500, b"5.5.1 this is LMTP: use LHLO (RFC 2033 section 4.1)")

    do_EHLO = do_HELO

    def do_DATA(self, rest: bytes) -> None:
        accepted = len(self._to)
        super().do_DATA(rest)
        if self.mode == smtp.DATA:
            self._accepted = accepted

    def dataLineReceived(self, line: bytes) -> None:
        failed = self.datafailed if self.mode == smtp.DATA else None
        if line == b"." and failed is not None:
            self.mode = smtp.COMMAND
            for _ in range(max(1, self._accepted)):
                self.sendCode(failed.code, failed.resp)
            return
        super().dataLineReceived(line)

    state_DATA = dataLineReceived

    def _messageHandled(self, resultList: Any) -> None:
        """One reply per recipient, in order (RFC 2033 §4.2)."""
        for ok, result in resultList:
            if ok:
                self.sendCode(250, b"2.0.0 delivered to " + result.user.encode()
                              + b" " + result.mailbox.encode("utf-8", "replace"))
            else:
                self.sendCode(*failure_reply(result))


class LMTPFactory(DeliveryFactory):
    """Builds LMTPServer connections (no AUTH, no STARTTLS)."""

    protocol_class = LMTPServer

    def __init__(self, node: Any) -> None:
        super().__init__(node, tls=False, auth=False)
