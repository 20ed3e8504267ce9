"""Structured log events of sessions and admin actions (issue 6 part 6).

``event(kind, **fields)`` emits one twisted.logger event in the namespace
``twistedmail.events`` whose ``event`` key is ``kind``; ``--log-format json``
(twistedmail/service.py JSONLineObserver) writes it as one JSON object a line with
the fields at top level, and the default text log shows a readable sentence
(the kind's format below), e.g. ``imap: alice logged in from 127.0.0.1:50312 (LOGIN)``.

Invariants:
  * ``kind`` is one of ``KINDS``; each has a fixed field set, so a log reader can
    rely on the keys (tests/observe/test_events.py pins them).
  * No event carries a password or a SASL response: login events name the user,
    the peer and the mechanism only.
  * Field values are str, int, float, bool or None (JSON-safe as they are).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.logger import Logger, LogLevel

log = Logger(namespace="twistedmail.events")

Format = str | Callable[[dict[str, Any]], str]


def _admin_format(fields: dict[str, Any]) -> str:
    # the wording admin/channel.py always logged (tests/admin/test_channel.py)
    if fields.get("result") == "ok":
        return "admin: {command} by {caller}: ok"
    return "admin: {command} by {caller}: {result}: {error}"


def _end_format(fields: dict[str, Any], how: str) -> str:
    who = "{user}" if fields.get("user") else "connection #{session}"
    tail = " (connection #{session})" if fields.get("user") else ""
    return f"imap: {who} {how} from {{peer}} after {{duration}}s and {{commands}} commands{tail}"


KINDS: dict[str, Format] = {
    "imap.connect": "imap: connection #{session} from {peer}",
    "imap.login": "imap: {user} logged in from {peer} ({mechanism}, connection #{session})",
    "imap.login_failed": "imap: login failed for {user} from {peer} ({mechanism}, "
                         "{status}, connection #{session})",
    "imap.logout": lambda f: _end_format(f, "logged out"),
    "imap.disconnect": lambda f: _end_format(f, "disconnected"),
    "admin.command": _admin_format,
    # twistedmail/limits.py: a limit refused something (README "### Limits")
    "limit.refused": "limits: {limit} refused {user} from {peer}: {detail}",
}
WARN_RESULTS = frozenset({"error", "denied", "internal error"})


def event(kind: str, **fields: Any) -> None:
    """Log one ``kind`` event with ``fields`` (see ``KINDS``)."""
    fmt = KINDS[kind]
    text = fmt(fields) if callable(fmt) else fmt
    level = LogLevel.info
    if kind in ("imap.login_failed", "limit.refused") or fields.get("result") in WARN_RESULTS:
        level = LogLevel.warn
    log.emit(level, text, event=kind, **fields)


def peer_of(transport: Any) -> str:
    """``host:port`` of a transport's peer (``unix`` for a UNIX socket)."""
    peer = transport.getPeer() if transport is not None else None
    host, port = getattr(peer, "host", None), getattr(peer, "port", None)
    if host is None:
        return "unix"
    return f"{host}:{port}" if port is not None else str(host)
