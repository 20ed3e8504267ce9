"""SELECT EXAMINE CHECK CLOSE UNSELECT EXPUNGE UID EXPUNGE."""

from __future__ import annotations

from twistedmail.imap import commands as c
from twistedmail.imap.errors import No
from twistedmail.imap.responses import Atom
from twistedmail.imap.session import Session
from twistedmail.store import Expunge, Mailbox

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


def mailbox_keywords(mailbox: Mailbox) -> list[str]:
    """Keywords in use in ``mailbox`` (for the FLAGS response)."""
    seen: dict[str, str] = {}
    for rec in mailbox.records():
        for flag in rec.flags:
            if not flag.startswith("\\"):
                seen.setdefault(flag.lower(), flag)
    return sorted(seen.values())


def select(session: Session, cmd: c.Select) -> tuple[str, str, tuple[object, ...]]:
    """RFC 3501 §6.3.1 SELECT / §6.3.2 EXAMINE."""
    session.unselect()  # RFC 3501 §6.3.1: a failed SELECT leaves no mailbox selected
    mailbox = session.mailbox(cmd.mailbox)
    view = session.select(mailbox, cmd.readonly, cmd.condstore)
    out = session.out
    flags = [*SYSTEM_FLAGS, *mailbox_keywords(mailbox)]
    out.untagged(Atom("FLAGS"), [Atom(f) for f in flags])
    permanent = [] if cmd.readonly else [*flags, "\\*"]
    out.untagged_status("OK", "Flags permitted", "PERMANENTFLAGS",
                        ([Atom(f) for f in permanent],))
    out.raw(b"* %d EXISTS\r\n* %d RECENT\r\n" % (view.exists, len(view.recent)))
    first_unseen = mailbox.first_unseen_uid()
    if first_unseen is not None:
        seq = view.seq_of(first_unseen)
        if seq is not None:
            out.untagged_status("OK", f"Message {seq} is first unseen", "UNSEEN", (seq,))
    out.untagged_status("OK", "UIDs valid", "UIDVALIDITY", (mailbox.uidvalidity,))
    out.untagged_status("OK", "Predicted next UID", "UIDNEXT", (mailbox.uidnext,))
    mode = "READ-ONLY" if cmd.readonly else "READ-WRITE"
    verb = "EXAMINE" if cmd.readonly else "SELECT"
    return (f"{verb} completed", mode, ())


def check(session: Session, cmd: c.Simple) -> None:
    """RFC 3501 §6.4.1: nothing to checkpoint in memory."""


def close(session: Session, cmd: c.Simple) -> None:
    """RFC 3501 §6.4.2: silently expunge (if read-write) and unselect."""
    view = session.require_view()
    if not view.readonly:
        doomed = _deleted_uids(session, [u for _, u in view.pairs()])
        if doomed:
            session.apply(Expunge(view.mailbox.user, view.mailbox.name, tuple(doomed)))
    session.unselect()


def unselect(session: Session, cmd: c.Simple) -> None:
    """RFC 3691: unselect without expunging."""
    session.unselect()


def expunge(session: Session, cmd: c.Simple) -> None:
    """RFC 3501 §6.4.3: remove \\Deleted messages; EXPUNGE responses follow."""
    _expunge(session, [u for _, u in session.require_view().pairs()])


def uid_expunge(session: Session, cmd: c.UidExpunge) -> None:
    """RFC 4315 §2.1: expunge only the named UIDs that are \\Deleted."""
    view = session.require_view()
    _expunge(session, [u for _, u in view.resolve(cmd.sequence, by_uid=True)])


def _expunge(session: Session, uids: list[int]) -> None:
    view = session.require_view()
    if view.readonly:
        raise No("Mailbox is read-only", "READ-ONLY")
    doomed = _deleted_uids(session, uids)
    if doomed:
        session.apply(Expunge(view.mailbox.user, view.mailbox.name, tuple(doomed)))


def _deleted_uids(session: Session, uids: list[int]) -> list[int]:
    view = session.require_view()
    out = []
    for uid in uids:
        rec = view.record(uid)
        if rec is not None and "\\Deleted" in rec.flags:
            out.append(uid)
    return out
