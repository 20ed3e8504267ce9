"""STARTTLS AUTHENTICATE LOGIN (RFC 3501 §6.2); SASL PLAIN (RFC 4616) and
SCRAM-SHA-256 (RFC 7677 / RFC 5802).

Plaintext mechanisms (LOGIN, PLAIN) follow ``session.login_allowed()``; SCRAM
never sends the password, so it is offered on every connection.  In a cluster,
a user whose mail file this node does not hold gets NO [REFERRAL] to the nodes
that hold it (RFC 2221 LOGIN-REFERRALS, twistedmail/imap/referrals.py), checked
only after the credentials, so it tells nothing to a wrong password."""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Generator
from typing import Any

from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.python.failure import Failure

from twistedmail import limits
from twistedmail.auth import IMailUser, IScramCredentials
from twistedmail.cluster.proxy import MECHANISM as PROXY_MECHANISM
from twistedmail.cluster.proxy import check_proof
from twistedmail.imap import commands as c
from twistedmail.imap.errors import Bad, No
from twistedmail.imap.handlers.durable import check_enabled, track_session
from twistedmail.imap.proxied import proxy_login
from twistedmail.imap.referrals import check_login, spec_of
from twistedmail.imap.responses import Atom
from twistedmail.imap.scram import MECHANISM as SCRAM
from twistedmail.imap.scram import ScramError, ScramServer
from twistedmail.imap.session import Session

Reply = tuple[str, str, tuple[object, ...]]  # (text, response code, code arguments)


def starttls(session: Session, cmd: c.Simple) -> bool:
    """RFC 3501 §6.2.1: OK, then the TLS negotiation starts."""
    if session.conn.tls_active:
        raise Bad("TLS is already active")
    if session.conn.compress_active:  # RFC 4978 §6: TLS goes below COMPRESS, not above
        raise Bad("STARTTLS is not allowed once COMPRESS is active")
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
    if cmd.mechanism == SCRAM:
        return _scram(session, cmd.initial)
    if cmd.mechanism == PROXY_MECHANISM:
        return _proxy(session, cmd.initial)
    if cmd.mechanism != "PLAIN":
        raise No(f"Unsupported mechanism {cmd.mechanism}", "CANNOT")
    if not session.login_allowed():
        raise No("Plaintext authentication is disabled here; use STARTTLS", "PRIVACYREQUIRED")
    if cmd.initial is not None:
        return _plain(session, cmd.initial)
    _send_challenge(session, b"")
    return session.conn.ask_line().addCallback(lambda line: _plain_line(session, line))


def _proxy(session: Session, initial: bytes | None) -> Deferred[Any]:
    """X-TWISTEDMAIL-PROXY (cluster only, never advertised): another node proves it
    knows the cluster secret over our nonce and logs in as the user it proxies
    (twistedmail/cluster/proxy.py).  Such a session never proxies further."""
    spec = spec_of(session)
    if spec is None:
        raise No(f"Unsupported mechanism {PROXY_MECHANISM}", "CANNOT")
    if initial is not None:
        raise Bad(f"{PROXY_MECHANISM} takes no initial response")
    nonce = os.urandom(16)

    def verify(response: bytes) -> Reply | Deferred[Reply]:
        found = check_proof(spec.secret, nonce, response)
        if found is None or found[1] not in spec.names or found[1] == spec.me.name \
                or found[0] not in session.node.usernames():
            raise No("Invalid credentials", "AUTHENTICATIONFAILED")  # RFC 5530
        session.proxied_by = found[1]
        return _logged_in(session, found[0], "AUTHENTICATE")

    return _challenge(session, nonce).addCallback(verify)


def _decode_response(line: bytes) -> bytes:
    line = line.strip()
    if line == b"*":
        raise Bad("AUTHENTICATE cancelled")  # RFC 3501 §6.2.2
    try:
        return base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        raise Bad("Invalid base64 in SASL response") from None


def _plain_line(session: Session, line: bytes) -> Deferred[Any]:
    return _plain(session, _decode_response(line))


def _challenge(session: Session, data: bytes) -> Deferred[bytes]:
    """Send ``+ base64(data)`` and fire with the decoded answer (RFC 3501 §6.2.2)."""
    _send_challenge(session, data)
    return session.conn.ask_line().addCallback(_decode_response)


def _send_challenge(session: Session, data: bytes) -> None:
    # RFC 3501 §7.5 continue-req = "+" SP base64; an empty challenge is "+ " (base64
    # may be empty), never resp-text that a SASL client would try to decode.
    session.out.raw(b"+ " + base64.b64encode(data) + b"\r\n")
    session.conn.push()


@inlineCallbacks
def _scram(session: Session, initial: bytes | None) -> Generator[Deferred[Any], Any, Any]:
    """RFC 5802 §5 over IMAP: client-first (maybe SASL-IR), "+ server-first",
    client-final, "+ v=ServerSignature", empty line, tagged OK (RFC 7677 §3)."""
    checker = session.node.portal.checkers.get(IScramCredentials)
    salt_for = getattr(checker, "scram_salt", None)
    if salt_for is None:
        raise No(f"{SCRAM} is not available", "CANNOT")
    server = ScramServer(salt_for)
    try:
        client_first = initial or (yield _challenge(session, b""))
        server_first = server.first(client_first)
        session.login_name = server.username  # for the failed-login event (observe/hooks.py)
        client_final = yield _challenge(session, server_first)
        credentials = server.final(client_final)
        gate = limits.of(session.node)
        name = str(getattr(credentials, "username", ""))
        gate.check_login(session.conn, name)  # locked out: NO [UNAVAILABLE] (limits.py)
        try:
            login = yield session.node.portal.login(credentials, None, IMailUser)
        except UnauthorizedLogin:
            yield gate.login_failed(session.conn, name)
            _invalid()
        gate.login_succeeded(session.conn, name)
        if (yield _challenge(session, server.final_message())):
            raise Bad("Expected an empty response to the SCRAM server-final message")
    except ScramError as err:
        if err.malformed:
            raise Bad(err.text) from None
        raise No(err.text, "AUTHENTICATIONFAILED") from None
    result = _logged_in(session, str(login[1].name), "AUTHENTICATE")
    if isinstance(result, Deferred):
        result = yield result
    return result


def _plain(session: Session, response: bytes) -> Deferred[Any]:
    parts = response.split(b"\0")
    if len(parts) != 3:
        raise Bad("Malformed PLAIN response")
    authzid, authcid, password = (p.decode("utf-8", "replace") for p in parts)
    if authzid and authzid != authcid:
        raise No("Authorization identity must match", "AUTHORIZATIONFAILED")
    return _check(session, authcid, password, "AUTHENTICATE")


def _check(session: Session, user: str, password: str, name: str) -> Deferred[Any]:
    session.login_name = user  # for the failed-login event (observe/hooks.py); never the password
    gate = limits.of(session.node)
    gate.check_login(session.conn, user)  # locked out: NO [UNAVAILABLE] (limits.py)
    d = session.node.authenticate(user, password)

    def ok(canonical: str) -> Reply | Deferred[Reply]:
        gate.login_succeeded(session.conn, user)
        return _logged_in(session, canonical, name)

    def failed(f: Failure) -> Deferred[None]:
        return gate.login_failed(session.conn, user).addCallback(_invalid)

    return d.addCallbacks(ok, failed)


def _invalid(_: object = None) -> None:
    """After the failed-login delay (twistedmail/limits.py)."""
    raise No("Invalid credentials", "AUTHENTICATIONFAILED")  # RFC 5530


def _logged_in(session: Session, user: str, name: str) -> Reply | Deferred[Reply]:
    """Enter the authenticated state; the tagged OK carries the new CAPABILITY.

    A mail file held elsewhere: the whole session is proxied to a holder
    (imap/proxied.py), or, with ``[public] refer``, NO [REFERRAL] (RFC 2221 §4.1).
    Past max_connections_per_user: NO [LIMIT], still not authenticated (limits.py)."""
    limits.of(session.node).claim_user(session.conn, user)
    proxying = proxy_login(session, user)
    if proxying is not None:
        def reached(node: str) -> Reply:
            return _enter(session, user, f"{name} completed (proxied to {node})")

        def failed(f: Failure) -> Failure:
            session.user = None
            return f

        return proxying.addCallbacks(reached, failed)
    if session.proxied_by is None:
        check_login(session, user)  # held elsewhere: NO [REFERRAL] (RFC 2221 §4.1)
    check_enabled(session, user)  # convert -e- (twistedmail/admin/mailfiles.py)
    return _enter(session, user, f"{name} completed")


def _enter(session: Session, user: str, text: str) -> Reply:
    session.authenticated(user)
    track_session(session)
    from twistedmail.imap.dispatch import capabilities

    caps = tuple(Atom(x) for x in capabilities(session))
    return (text, "CAPABILITY", caps)
