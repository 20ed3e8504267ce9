"""The IMAP protocol's metrics and session-event hooks (imap/protocol.py calls them).

One ``SessionStats`` per connection: it counts the connection and its commands in
the node's metrics (observe/metrics.py) and logs the session's events
(observe/events.py): connect, login / failed login, logout or disconnect.

Invariants:
  * Per command: a ``monotonic()`` pair in the protocol, then one ``command_key``,
    a peek at the last queued chunk for the tagged status, and one cached
    (counter, histogram) lookup — no formatting, no logging.
  * A login event is logged only for LOGIN / AUTHENTICATE; its fields never hold
    the password or the SASL response (the user comes from the LOGIN arguments or
    ``session.login_name``, which handlers/auth.py sets for PLAIN).
  * Exactly one end event per connection: ``imap.logout`` when the client's LOGOUT
    was answered, else ``imap.disconnect``.
"""

from __future__ import annotations

from time import monotonic
from typing import Any

from twistedmail.imap.dispatch import command_key
from twistedmail.imap.session import NOT_AUTHENTICATED
from twistedmail.observe import metrics
from twistedmail.observe.events import event, peer_of

AUTH_KEYS = frozenset({"LOGIN", "AUTHENTICATE"})
_STATUS = {b"OK": "OK", b"NO": "NO", b"BA": "BAD"}


def tagged_status(chunks: list[bytes], tag: str | None) -> str:
    """OK / NO / BAD of the tagged line last queued for ``tag``, else NONE."""
    if not chunks or tag is None:
        return "NONE"
    line = chunks[-1]  # the tag's length, a space, the status word: tagged, not "* "
    n = len(tag)
    if line[n:n + 1] != b" " or line[:1] == b"*":
        return "NONE"
    return _STATUS.get(line[n + 1:n + 3], "NONE")


class SessionStats:
    """Counts and events of one IMAP connection."""

    __slots__ = ("metrics", "number", "started", "commands", "peer", "logged_out",
                 "command")

    def __init__(self, node: Any) -> None:
        self.metrics = metrics.of(node)
        self.number = 0
        self.started = 0.0
        self.commands = 0
        self.peer = "-"
        self.logged_out = False
        self.command: Any = None  # the command being run (set by the protocol)

    def opened(self, proto: Any) -> None:
        """The connection was made."""
        m = self.metrics
        m.connections.inc()
        m.connections_open.inc()
        self.number = m.next_session()
        self.started = monotonic()
        self.peer = peer_of(proto.transport)
        event("imap.connect", session=self.number, peer=self.peer,
              node=proto.node.settings.node_name, tls=bool(proto.tls_active))

    def closed(self, proto: Any) -> None:
        """The connection was lost (once: Twisted calls connectionLost once)."""
        if not self.number:
            return
        self.metrics.connections_open.dec()
        kind = "imap.logout" if self.logged_out else "imap.disconnect"
        event(kind, session=self.number, peer=self.peer, user=proto.session.user,
              duration=round(monotonic() - self.started, 3), commands=self.commands)

    def done(self, proto: Any, tag: str | None, started: float) -> None:
        """The command just run has queued its tagged reply (or none)."""
        seconds = monotonic() - started
        self.commands += 1
        command, self.command = self.command, None
        key = command_key(command) if command is not None else "UNPARSED"
        status = tagged_status(proto.session.out.chunks, tag)
        self.metrics.command_done(key, status, seconds)
        if key in AUTH_KEYS:
            self._login(proto, command, status)
        elif key == "LOGOUT":
            self.logged_out = True

    def done_later(self, result: object, proto: Any, command: Any, tag: str | None,
                   started: float) -> object:
        """``done`` for a command that completed later (a Deferred); passes ``result``."""
        self.command = command
        self.done(proto, tag, started)
        return result

    def _login(self, proto: Any, command: Any, status: str) -> None:
        session = proto.session
        mechanism = getattr(command, "mechanism", "LOGIN")
        if status == "OK" and session.state != NOT_AUTHENTICATED:
            event("imap.login", session=self.number, peer=self.peer, user=session.user,
                  mechanism=mechanism, proxied_by=session.proxied_by)
            return
        user = getattr(command, "user", None) or getattr(session, "login_name", None)
        event("imap.login_failed", session=self.number, peer=self.peer, user=user,
              mechanism=mechanism, status=status)
