"""STARTTLS AUTHENTICATE LOGIN (RFC 3501 §6.2)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from twistedmail.imap import commands as c
from twistedmail.imap.errors import Bad, No
from twistedmail.imap.responses import Atom
from twistedmail.imap.session import Session


def starttls(session: Session, cmd: c.Simple) -> bool:
    """RFC 3501 §6.2.1: OK, then the TLS negotiation starts."""
    if session.conn.tls_active:
        raise Bad("TLS is already active")
    if not session.conn.tls_available:
        raise No("TLS is not available")
    session.out.tagged(cmd.tag, "OK", "Begin TLS negotiation now")
    session.conn.start_tls()
    return False


def login(session: Session, cmd: c.Login) -> Deferred[Any]:
    """RFC 3501 §6.2.3."""
    if not session.login_allowed():
        raise No("Plaintext login is disabled here; use STARTTLS", "PRIVACYREQUIRED")
    return _check(session, cmd.user, cmd.password, "LOGIN")


def authenticate(session: Session, cmd: c.Authenticate) -> Deferred[Any]:
    """RFC 3501 §6.2.2 with RFC 4959 SASL-IR; PLAIN is RFC 4616."""
    if cmd.mechanism != "PLAIN":
        raise No(f"Unsupported mechanism {cmd.mechanism}", "CANNOT")
    if not session.login_allowed():
        raise No("Plaintext authentication is disabled here; use STARTTLS", "PRIVACYREQUIRED")
    if cmd.initial is not None:
        return _plain(session, cmd.initial)
    session.out.continuation("")
    session.conn.push()
    return session.conn.ask_line().addCallback(lambda line: _plain_line(session, line))


def _plain_line(session: Session, line: bytes) -> Deferred[Any]:
    line = line.strip()
    if line == b"*":
        raise Bad("AUTHENTICATE cancelled")  # RFC 3501 §6.2.2
    try:
        response = base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        raise Bad("Invalid base64 in SASL response") from None
    return _plain(session, response)


def _plain(session: Session, response: bytes) -> Deferred[Any]:
    parts = response.split(b"\0")
    if len(parts) != 3:
        raise Bad("Malformed PLAIN response")
    authzid, authcid, password = (p.decode("utf-8", "replace") for p in parts)
    if authzid and authzid != authcid:
        raise No("Authorization identity must match", "AUTHORIZATIONFAILED")
    return _check(session, authcid, password, "AUTHENTICATE")


def _check(session: Session, user: str, password: str, name: str) -> Deferred[Any]:
    d = session.node.authenticate(user, password)

    def ok(canonical: str) -> tuple[str, str, tuple[object, ...]]:
        session.authenticated(canonical)
        from twistedmail.imap.dispatch import capabilities

        caps = tuple(Atom(x) for x in capabilities(session))
        return (f"{name} completed", "CAPABILITY", caps)

    def failed(f: Failure) -> None:
        raise No("Invalid credentials", "AUTHENTICATIONFAILED")  # RFC 5530

    return d.addCallbacks(ok, failed)
