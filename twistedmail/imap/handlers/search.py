"""SEARCH and UID SEARCH (RFC 3501 §6.4.4, §6.4.8)."""

from __future__ import annotations

import time
from typing import Any

from twistedmail.imap import commands as c
from twistedmail.imap.errors import Bad, No
from twistedmail.imap.responses import Atom
from twistedmail.imap.search import SearchContext, SearchError, check_charset
from twistedmail.imap.search import search as run_search
from twistedmail.imap.session import Session


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
