"""CAPABILITY NOOP LOGOUT ID NAMESPACE ENABLE IDLE."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred

from twistedmail.imap import commands as c
from twistedmail.imap.errors import Bad
from twistedmail.imap.responses import Atom
from twistedmail.imap.session import LOGOUT, Session

SERVER_ID = ("name", "twistedmail", "vendor", "twistedmail project")


def capability(session: Session, cmd: c.Simple) -> None:
    """RFC 3501 §6.1.1."""
    from twistedmail.imap.dispatch import capabilities

    session.out.untagged(Atom("CAPABILITY"), *map(Atom, capabilities(session)))


def noop(session: Session, cmd: c.Simple) -> None:
    """RFC 3501 §6.1.2: does nothing; pending updates go out with the reply."""


def logout(session: Session, cmd: c.Simple) -> None:
    """RFC 3501 §6.1.3: BYE, tagged OK, close."""
    session.out.untagged_status("BYE", "twistedmail logging out")
    session.unselect()
    session.state = LOGOUT
    session.conn.close()


def id_(session: Session, cmd: c.Id) -> None:
    """RFC 2971 §3.1: record the client's ID, answer with ours."""
    session.client_id = dict(cmd.params or ())
    session.out.untagged(Atom("ID"), list(SERVER_ID))


def namespace(session: Session, cmd: c.Simple) -> None:
    """RFC 2342 §5: personal "", other users "Other Users/", shared "Public/"."""
    from twistedmail.imap.namespaces import NAMESPACES

    session.out.untagged(Atom("NAMESPACE"), *([list(ns) for ns in group] for group in NAMESPACES))


def enable(session: Session, cmd: c.Enable) -> None:
    """RFC 5161 §3.1: turn on what dispatch.ENABLEABLE lists; ``* ENABLED`` names the
    ones this command newly enabled; unknown ones are ignored."""
    from twistedmail.imap import modseq
    from twistedmail.imap.dispatch import ENABLEABLE

    known = {cap.upper(): cap for cap in ENABLEABLE}
    newly: list[str] = []
    for name in cmd.capabilities:
        cap = known.get(name.upper())
        if cap is not None and cap not in session.enabled:
            session.enabled.add(cap)
            newly.append(cap)
    if "QRESYNC" in newly:
        session.enabled.add("CONDSTORE")  # RFC 7162 §3.2.3: QRESYNC implies CONDSTORE
        if session.view is not None:
            session.view.qresync = True  # RFC 7162 §3.2.10: VANISHED from now on
    if "CONDSTORE" in session.enabled:
        modseq.activate(session)  # RFC 7162 §3.1
    session.out.untagged(Atom("ENABLED"), *map(Atom, newly))


def idle(session: Session, cmd: c.Simple) -> Deferred[Any]:
    """RFC 2177: push mailbox changes until the client sends DONE."""
    view = session.view
    session.out.continuation("idling")
    if view is not None:
        view.flush(session.out, allow_expunge=True)

        def push_now() -> None:
            view.flush(session.out, allow_expunge=True)
            session.conn.push()

        view.on_update = push_now
    session.conn.push()

    def done(line: bytes) -> None:
        if view is not None:
            view.on_update = None
        if line.strip().upper() != b"DONE":
            raise Bad("Expected DONE to end IDLE")

    return session.conn.ask_line().addCallback(done)
