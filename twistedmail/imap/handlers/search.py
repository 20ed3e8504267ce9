"""SEARCH and UID SEARCH (RFC 3501 §6.4.4, §6.4.8), with RFC 4731 ESEARCH
``RETURN (...)`` options and RFC 5182 SEARCHRES ``RETURN (SAVE)``.

The messages a search looks at are one :class:`TargetSet` per selected view,
kept in ``view.cache`` until the view notices a change, so repeated searches
do not rebuild 10k wrappers.  SORT and THREAD reuse :func:`matching`.
"""

from __future__ import annotations

import time
from typing import Any

from twistedmail.imap import commands as c
from twistedmail.imap import modseq, rev2
from twistedmail.imap.errors import Bad, CommandFailed, No
from twistedmail.imap.objectid import emailid, threadid
from twistedmail.imap.responses import Atom, quote
from twistedmail.imap.search import SearchContext, SearchError, TargetSet, check_charset
from twistedmail.imap.search import search as run_search
from twistedmail.imap.seqset import compress
from twistedmail.imap.session import Session

_CACHE_KEY = "search-targets"


class _Target:
    """A message as one session's SEARCH sees it (mutable fields read from the record)."""

    __slots__ = ("seq", "rec", "recent", "data", "cache")

    def __init__(self, seq: int, rec: Any, recent: bool) -> None:
        self.seq = seq
        self.rec = rec
        self.recent = recent
        blob = rec.blob
        self.data = blob.data  # immutable, shared: no copy
        self.cache = blob.cache

    uid = property(lambda self: self.rec.uid)
    flags = property(lambda self: self.rec.flags)
    modseq = property(lambda self: self.rec.modseq)
    size = property(lambda self: len(self.data))
    internaldate = property(lambda self: self.rec.internaldate)
    savedate = property(lambda self: self.rec.savedate or self.rec.internaldate)  # RFC 8514
    emailid = property(lambda self: emailid(self.rec.blob))  # RFC 8474 §5.1
    threadid = property(lambda self: threadid(self.rec.blob))  # RFC 8474 §5.2


def targets_of(session: Session) -> TargetSet:
    """The selected view's messages as search targets (cached on the view)."""
    view = session.require_view()
    recent = view.recent
    cached = view.cache.get(_CACHE_KEY)
    if cached is not None and cached[0] is recent:  # a replaced \Recent set: rebuild
        return cached[1]
    get = view.mailbox.get
    found = TargetSet([_Target(seq, rec, uid in recent)
                       for seq, uid in enumerate(view.uids, 1)
                       if (rec := get(uid)) is not None])
    view.cache[_CACHE_KEY] = (recent, found)
    return found


def matching(session: Session, key: c.SearchKey, charset: str | None) -> list[Any]:
    """The targets matching ``key``, in sequence order (SEARCH, SORT, THREAD)."""
    try:
        check_charset(charset)
    except SearchError as err:
        raise No(str(err) or "Unsupported charset", "BADCHARSET",
                 ([Atom("UTF-8"), Atom("US-ASCII")],)) from None
    view = session.require_view()
    ctx = SearchContext(max_seq=view.exists, max_uid=view.max_uid(), now=time.time(),
                        saved=session.saved_search)
    try:
        return run_search(key, targets_of(session), ctx)
    except SearchError as err:
        if err.code:
            raise No(str(err), err.code) from None
        raise Bad(str(err) or "Invalid search key") from None


def search(session: Session, cmd: c.Search) -> None:
    """RFC 3501 §6.4.4 SEARCH, §6.4.8 UID SEARCH, RFC 4731 §3.1 RETURN options."""
    save = cmd.returns is not None and "SAVE" in cmd.returns
    try:
        hits = matching(session, cmd.key, cmd.charset)
    except CommandFailed:
        if save:
            session.saved_search = frozenset()  # RFC 5182 §2.1: a failed SAVE empties $
        raise
    numbers = [t.uid if cmd.uid else t.seq for t in hits]
    by_modseq = modseq.uses_modseq(cmd.key)  # RFC 7162 §3.1.5: enables CONDSTORE
    if by_modseq:
        modseq.activate(session)
    returns = rev2.search_as_esearch(session, cmd.returns)  # RFC 9051 §6.4.4: ESEARCH
    if returns is None:
        recs = [t.rec for t in hits] if by_modseq else []
        session.out.raw(search_line(numbers, modseq.search_suffix(recs)))
        return
    options = frozenset(returns) or frozenset(("ALL",))  # RFC 4731 §3.1: () is ALL
    if save:
        session.saved_search = frozenset(t.uid for t in _to_save(hits, options))
    if options != {"SAVE"}:  # RFC 5182 §2.4: SAVE alone sends no ESEARCH
        recs = [t.rec for t in _to_save(hits, options)] if by_modseq else []
        session.out.raw(esearch_line(cmd.tag, cmd.uid, numbers, options,
                                     modseq.esearch_suffix(recs)))  # RFC 7162 §3.1.10


def _to_save(hits: list[Any], options: frozenset[str]) -> list[Any]:
    """RFC 5182 §2.4: with MIN and/or MAX but neither ALL nor COUNT, only those
    are saved; otherwise every match is."""
    if not hits or options & {"ALL", "COUNT"} or not options & {"MIN", "MAX"}:
        return hits
    return [hits[0]] * ("MIN" in options) + [hits[-1]] * ("MAX" in options)


def search_line(numbers: list[int], suffix: bytes = b"") -> bytes:
    """``* SEARCH n n n`` (RFC 3501 §7.2.5); ``suffix`` e.g. `` (MODSEQ n)``."""
    return b"* SEARCH" + b"".join(b" %d" % n for n in numbers) + suffix + b"\r\n"


def esearch_line(tag: str, uid: bool, numbers: list[int], options: frozenset[str],
                 extra: bytes = b"") -> bytes:
    """RFC 4731 §3.1 ``* ESEARCH (TAG "t") [UID] [MIN n] [MAX n] [ALL set] [COUNT n]``.

    ``numbers`` ascend.  MIN, MAX and ALL are left out when nothing matched;
    COUNT is always given when asked for.  ``extra`` is appended data
    (e.g. `` MODSEQ n``, RFC 7162 §3.1.5)."""
    parts = [b"* ESEARCH (TAG " + quote(tag.encode("ascii")) + b")"]
    if uid:
        parts.append(b"UID")
    if numbers:
        if "MIN" in options:
            parts.append(b"MIN %d" % numbers[0])
        if "MAX" in options:
            parts.append(b"MAX %d" % numbers[-1])
        if "ALL" in options:
            parts.append(b"ALL " + compress(numbers).encode("ascii"))
    if "COUNT" in options:
        parts.append(b"COUNT %d" % len(numbers))
    return b" ".join(parts) + extra + b"\r\n"
