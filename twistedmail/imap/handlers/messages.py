"""APPEND SEARCH STORE COPY MOVE."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from twistedmail.imap import commands as c
from twistedmail.imap.errors import Bad, No
from twistedmail.imap.responses import Atom
from twistedmail.imap.search import SearchContext, SearchError, check_charset
from twistedmail.imap.search import search as run_search
from twistedmail.imap.seqset import compress
from twistedmail.imap.session import Session
from twistedmail.store import (
    Append,
    Copied,
    Copy,
    MessagesAdded,
    NoSuchMailbox,
    StoreFailed,
    StoreFlags,
)

Reply = tuple[str, str | None, tuple[object, ...]]


def _target_mailbox(session: Session, name: str) -> Any:
    """The destination of APPEND/COPY: NO [TRYCREATE] if missing (RFC 3501 §6.3.11)."""
    assert session.user is not None
    try:
        return session.store.mailbox(session.user, name)
    except NoSuchMailbox:
        raise No(f"Mailbox does not exist: {name}", "TRYCREATE") from None


def append(session: Session, cmd: c.Append) -> Reply:
    """RFC 3501 §6.3.11, answering APPENDUID (RFC 4315 §3)."""
    mailbox = _target_mailbox(session, cmd.mailbox)
    if not cmd.message:
        raise No("Empty messages are not accepted")
    date = cmd.date if isinstance(cmd.date, datetime) else None
    op = Append.new(session.store, session.username, mailbox.name, cmd.message,
                    flags=frozenset(cmd.flags), internaldate=date)
    changes = session.apply(op)
    uid = next(ch.uids[-1] for ch in changes if isinstance(ch, MessagesAdded))
    return ("APPEND completed", "APPENDUID", (mailbox.uidvalidity, uid))


# --- SEARCH --------------------------------------------------------------------


class _Target:
    """A message as one session's SEARCH sees it (fields read lazily from the record)."""

    __slots__ = ("seq", "rec", "recent")

    def __init__(self, seq: int, rec: Any, recent: bool) -> None:
        self.seq = seq
        self.rec = rec
        self.recent = recent

    uid = property(lambda self: self.rec.uid)
    flags = property(lambda self: self.rec.flags)
    modseq = property(lambda self: self.rec.modseq)
    size = property(lambda self: self.rec.size)
    internaldate = property(lambda self: self.rec.internaldate)
    data = property(lambda self: self.rec.blob.data)
    cache = property(lambda self: self.rec.blob.cache)


def search(session: Session, cmd: c.Search) -> None:
    """RFC 3501 §6.4.4 SEARCH and §6.4.8 UID SEARCH."""
    try:
        check_charset(cmd.charset)
    except SearchError as err:
        raise No(str(err) or "Unsupported charset", "BADCHARSET",
                 ([Atom("UTF-8"), Atom("US-ASCII")],)) from None
    view = session.require_view()
    recent = view.recent
    get = view.mailbox.get
    targets = [_Target(seq, rec, uid in recent) for seq, uid in enumerate(view.uids, 1)
               if (rec := get(uid)) is not None]
    ctx = SearchContext(max_seq=view.exists, max_uid=view.max_uid(), now=time.time(),
                        saved=session.saved_search)
    try:
        hits = run_search(cmd.key, targets, ctx)
    except SearchError as err:
        if err.code:
            raise No(str(err), err.code) from None
        raise Bad(str(err) or "Invalid search key") from None
    numbers = [t.uid if cmd.uid else t.seq for t in hits]
    session.out.raw(b"* SEARCH" + b"".join(b" %d" % n for n in numbers) + b"\r\n")


# --- STORE ---------------------------------------------------------------------

_MODES = {"+": "add", "-": "remove", "": "replace"}


def store(session: Session, cmd: c.Store) -> Reply | None:
    """RFC 3501 §6.4.6 STORE; UNCHANGEDSINCE per RFC 7162 §3.1.3."""
    view = session.require_view()
    if view.readonly:
        raise No("Mailbox is read-only", "READ-ONLY")
    pairs = [(s, u) for s, u in view.resolve(cmd.sequence, cmd.uid, session.saved_search)
             if view.record(u) is not None]
    if not pairs:
        return None
    op = StoreFlags(session.username, view.mailbox.name, tuple(u for _, u in pairs),
                    _MODES[cmd.mode], frozenset(cmd.flags), cmd.unchangedsince)
    changes = session.apply(op, own_flags=True)
    failed = {u for ch in changes if isinstance(ch, StoreFailed) for u in ch.uids}
    if not cmd.silent:
        for seq, uid in pairs:
            rec = view.record(uid)
            if rec is not None and uid not in failed:
                item = view.flags_item(rec, cmd.uid)
                session.out.raw(b"* %d FETCH (%s)\r\n" % (seq, item))
    if failed:
        nums = sorted(u if cmd.uid else view.seq_of(u) or 0 for u in failed)
        return ("Some messages were modified", "MODIFIED", (Atom(compress(nums)),))
    return None


# --- COPY / MOVE -----------------------------------------------------------------


def copy(session: Session, cmd: c.Copy) -> Reply | None:
    """RFC 3501 §6.4.7 COPY, RFC 6851 MOVE, answering COPYUID (RFC 4315 §3)."""
    view = session.require_view()
    dest = _target_mailbox(session, cmd.mailbox)
    if cmd.move and view.readonly:
        raise No("Mailbox is read-only", "READ-ONLY")
    uids = [u for _, u in view.resolve(cmd.sequence, cmd.uid, session.saved_search)
            if view.record(u) is not None]
    if not uids:
        if cmd.move or cmd.uid:
            return None
        raise No("No messages to copy")
    changes = session.apply(Copy(session.username, view.mailbox.name, tuple(uids), dest.name,
                                 cmd.move))
    copied = next((ch for ch in changes if isinstance(ch, Copied)), None)
    if copied is None:
        return None
    src = Atom(compress([a for a, _ in copied.uid_map]))
    dst = Atom(compress([b for _, b in copied.uid_map]))
    if cmd.move:
        # RFC 6851 §4.3: COPYUID goes in an untagged OK before the EXPUNGEs.
        session.out.untagged_status("OK", "Moved", "COPYUID", (dest.uidvalidity, src, dst))
        return None
    return ("COPY completed", "COPYUID", (dest.uidvalidity, src, dst))
