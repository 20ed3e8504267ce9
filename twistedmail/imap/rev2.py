"""IMAP4rev2 (RFC 9051) next to IMAP4rev1: every behaviour switch in one place.

A session speaks IMAP4rev1 until the client sends ``ENABLE IMAP4rev2``
(RFC 9051 §6.3.1); from then on ``session.rev2`` is true and the handlers ask
this module how to behave.  The differences (RFC 9051 Appendix E) and where
each one is implemented:

====================================================  =========================
difference                                            where
====================================================  =========================
no ``\\Recent`` flag, no ``RECENT`` response           :func:`configure_view`
(App. E item 5, §2.3.2)                                (view.no_recent), SELECT
no ``[UNSEEN n]`` on SELECT (§6.3.2, App. E 15)        :func:`select_responses`
SELECT sends a ``LIST`` of the mailbox (§6.3.2)        :func:`select_responses`
``* OK [CLOSED]`` when SELECT closes a mailbox         handlers/select.py (always
(§7.1, App. E 12)                                      sent, as RFC 7162 does)
``STATUS`` has no RECENT; has DELETED, SIZE            :func:`status_value`
(§6.3.11, App. E 7)
``SEARCH`` answers ``ESEARCH`` (§6.4.4, §7.3.4)        :func:`search_as_esearch`
UTF-8 mailbox names, no modified UTF-7 (§5.1,          :func:`utf8_names`
App. E 2)
``LSUB`` is deprecated but kept (App. E 9)             nothing to do
untagged ``EXPUNGE``/``VANISHED`` unchanged            nothing to do
====================================================  =========================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twistedmail.imap.responses import Atom

if TYPE_CHECKING:
    from twistedmail.imap.responses import Responder
    from twistedmail.imap.selected import SelectedView
    from twistedmail.imap.session import Session

CAPABILITY = "IMAP4rev2"  # also its name in dispatch.ENABLEABLE and session.enabled


def active(session: Session) -> bool:
    """True once the client sent ``ENABLE IMAP4rev2`` (RFC 9051 §6.3.1)."""
    return CAPABILITY in session.enabled


def utf8_names(session: Session) -> bool:
    """RFC 9051 §5.1: with IMAP4rev2 (as with RFC 6855 UTF8=ACCEPT) mailbox names
    are UTF-8 on the wire, never modified UTF-7."""
    return active(session) or "UTF8=ACCEPT" in session.enabled


def configure_view(session: Session, view: SelectedView) -> None:
    """RFC 9051 §2.3.2 / App. E: ``\\Recent`` does not exist for a rev2 session.

    The view gives back the \\Recent claims it made, so an IMAP4rev1 session
    may still see those messages as recent, and claims no more."""
    if not active(session):
        return
    view.no_recent = True
    if view.recent:
        view.mailbox.recent_uids |= view.recent
        view.recent = set()


def select_responses(session: Session, out: Responder, view: SelectedView) -> bool:
    """The rev2 part of SELECT / EXAMINE (RFC 9051 §6.3.2); False for a rev1 session.

    rev2 requires FLAGS, EXISTS and LIST (with accurate attributes) and sends
    neither RECENT nor the ``[UNSEEN n]`` code (the caller skips that)."""
    if not active(session):
        return False
    from twistedmail.imap.handlers.mailbox import wire_name
    from twistedmail.imap.namespaces import client_name

    box = view.mailbox
    name = client_name(session, box)
    prefix = box.name + "/"
    children = any(m.name.startswith(prefix) for m in session.store.mailboxes(box.user))
    attrs = ["\\HasChildren" if children else "\\HasNoChildren"]  # RFC 3348
    if name in session.store.subscriptions(session.username):
        attrs.append("\\Subscribed")
    attrs.extend(sorted(getattr(box, "special_use", ())))  # RFC 6154 §2
    out.raw(b"* %d EXISTS\r\n" % view.exists)
    out.untagged(Atom("LIST"), [Atom(a) for a in attrs], "/", wire_name(name))
    return True


def status_value(session: Session, item: str, mailbox: Any) -> int | None:
    """The rev2 STATUS items (RFC 9051 §6.3.11); None when ``item`` is not one."""
    if item == "DELETED":
        return sum(1 for rec in mailbox.records() if "\\Deleted" in rec.flags)
    if item == "SIZE":
        return int(mailbox.total_size)
    return None


def status_item_allowed(session: Session, item: str) -> bool:
    """RFC 9051 §6.3.11 has no RECENT status item."""
    return not (item == "RECENT" and active(session))


def search_as_esearch(session: Session, returns: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """RFC 9051 §6.4.4: a rev2 SEARCH without RETURN answers like ``RETURN (ALL)``,
    in an ESEARCH response.  The RETURN options to use, or None for rev1 SEARCH."""
    if returns is not None:
        return returns
    return ("ALL",) if active(session) else None
