"""FETCH and UID FETCH (RFC 3501 §6.4.5, §6.4.8)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from twistedmail.imap import commands as c
from twistedmail.imap import modseq
from twistedmail.imap.compress import BODY_CACHE
from twistedmail.imap.errors import Bad, No
from twistedmail.imap.fetchrender import (
    WHOLE_BODY,
    UnsupportedItem,
    compile_items,
    sets_seen,
)
from twistedmail.imap.namespaces import has_right
from twistedmail.imap.selected import SelectedView
from twistedmail.imap.session import Session
from twistedmail.store import StoreFlags

FIRST_SLICE = 32 * 1024  # response bytes rendered before the reactor sends them...
MAX_SLICE = 256 * 1024  # ...doubling per slice up to this
UID_ATT = c.FetchAtt("UID")
FLAGS_ATT = c.FetchAtt("FLAGS")
MODSEQ_ATT = c.FetchAtt("MODSEQ")


def fetch(session: Session, cmd: c.Fetch) -> Deferred[None] | None:
    """Render the requested items for each message named by the set."""
    view = session.require_view()
    atts = cmd.atts
    if cmd.uid and not any(a.name == "UID" and a.section is None for a in atts):
        atts = (UID_ATT, *atts)  # RFC 3501 §6.4.8: UID FETCH always returns UID
    if cmd.changedsince is not None or MODSEQ_ATT in atts:
        atts = _condstore(session, cmd, atts)
    try:
        items = compile_items(atts)
    except UnsupportedItem as err:
        raise Bad(f"Unsupported FETCH item {err}") from None
    pairs = view.resolve(cmd.sequence, cmd.uid, session.saved_search)
    if cmd.changedsince is not None:
        pairs = _changed(session, view, cmd, pairs)
    seen_items: tuple = ()
    if (not view.readonly and any(sets_seen(a) for a in atts)
            and has_right(session, view.mailbox, "s")):  # RFC 4314 §4: \Seen needs "s"
        newly_seen = _mark_seen(session, [u for _, u in pairs])
        if newly_seen:
            seen_items = compile_items(_seen_atts(view, atts))
    else:
        newly_seen = set()
    job = _Job(pairs, items, seen_items, newly_seen, cmd.uid)
    return _stream(session, job)


def _condstore(session: Session, cmd: c.Fetch, atts: tuple[c.FetchAtt, ...]
               ) -> tuple[c.FetchAtt, ...]:
    """RFC 7162 §3.1.4: FETCH MODSEQ or CHANGEDSINCE enables CONDSTORE, and
    CHANGEDSINCE implies the MODSEQ item; §3.2.6: VANISHED needs ENABLE QRESYNC."""
    if cmd.vanished and "QRESYNC" not in session.enabled:
        raise Bad("VANISHED needs ENABLE QRESYNC first", "CLIENTBUG")  # RFC 7162 §3.2.3
    modseq.activate(session)
    return atts if MODSEQ_ATT in atts else (*atts, MODSEQ_ATT)


def _changed(session: Session, view: SelectedView, cmd: c.Fetch,
             pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """RFC 7162 §3.1.4.1: only messages whose mod-sequence is above CHANGEDSINCE
    (expunged ones stay, for EXPUNGEISSUED); §3.2.6 VANISHED (EARLIER) first."""
    since = cmd.changedsince or 0
    if cmd.vanished:
        gone = modseq.vanished(view.mailbox, since, cmd.sequence)
        session.out.raw(modseq.vanished_earlier(gone))
    threshold = modseq.since(since)
    get = view.mailbox.get
    return [(s, u) for s, u in pairs if (rec := get(u)) is None or rec.modseq > threshold]


def _seen_atts(view: SelectedView, atts: tuple[c.FetchAtt, ...]) -> tuple[c.FetchAtt, ...]:
    """Items added for messages this FETCH marked \\Seen: FLAGS, plus UID and MODSEQ
    once CONDSTORE is on (RFC 7162 §3.1.4)."""
    extra = [FLAGS_ATT]
    if view.condstore:
        extra += [UID_ATT, MODSEQ_ATT]
    return tuple(a for a in extra if a not in atts)


def _mark_seen(session: Session, uids: list[int]) -> set[int]:
    """Set \\Seen on the messages a non-PEEK body fetch reads (RFC 3501 §6.4.5)."""
    view = session.require_view()
    unseen = []
    for uid in uids:
        rec = view.record(uid)
        if rec is not None and "\\Seen" not in rec.flags:
            unseen.append(uid)
    if unseen:
        session.apply(StoreFlags(view.mailbox.user, view.mailbox.name, tuple(unseen), "add",
                                 frozenset({"\\Seen"})), own_flags=True)
    return set(unseen)


@dataclass
class _Job:
    """One FETCH being rendered: the messages, the compiled items, what it marked \\Seen."""

    pairs: list[tuple[int, int]]
    items: tuple
    seen_items: tuple
    newly_seen: set[int]
    uid: bool
    budget: int = FIRST_SLICE  # bytes the next slice renders


def _stream(session: Session, job: _Job) -> Deferred[None] | None:
    """Render the responses.  A large FETCH goes out in slices (FIRST_SLICE bytes,
    doubling up to MAX_SLICE): each slice is written before the next is rendered, so
    the client reads (and, under COMPRESS, inflates) while the server renders, and
    other sessions are served between slices.  The session's view cannot change
    meanwhile (the command is in progress), and NOTIFY holds its pushes
    (``session.streaming``), so sequence numbers stay valid; a message another
    session expunges meanwhile is skipped and counted as for RFC 2180 §4.1.2."""
    missing, done = _render(session, job, 0)
    if done == len(job.pairs):
        _check_missing(missing, job.uid)
        return None
    return _Stream(session, job, done, missing).start()


@implementer(IPushProducer)
class _Stream:
    """A FETCH going out in slices.  It is the transport's producer while it runs:
    the transport pauses it while its write buffer is full, so a client that stops
    reading makes the server hold a slice or two, not the whole response."""

    def __init__(self, session: Session, job: _Job, index: int, missing: int) -> None:
        self.session, self.job = session, job
        self.index, self.missing = index, missing
        self.finished: Deferred[None] = Deferred()
        self.paused = self.stopped = self.scheduled = self.ended = False
        self.transport: Any = None

    def start(self) -> Deferred[None]:
        self.session.streaming = True
        transport: Any = getattr(self.session.conn, "transport", None)
        try:
            transport.registerProducer(self, True)
            self.transport = transport
        except (AttributeError, RuntimeError):  # none, or one registered: no pausing
            pass
        self.session.conn.push()
        self.schedule()
        return self.finished

    def schedule(self) -> None:
        if not (self.paused or self.scheduled or self.ended):
            self.scheduled = True
            self.session.node.reactor.callLater(0, _next_slice, self)

    def end(self) -> None:
        self.ended = True
        transport, self.transport = self.transport, None
        if transport is not None:
            transport.unregisterProducer()
        self.session.streaming = False
        if self.session.notifier is not None:
            self.session.notifier.schedule()  # what NOTIFY held back during the stream

    # IPushProducer
    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self.schedule()

    def stopProducing(self) -> None:
        self.stopped, self.paused = True, False
        self.schedule()


def _next_slice(stream: _Stream) -> None:
    stream.scheduled = False
    session, job = stream.session, stream.job
    try:
        if not (session.conn.closing or stream.stopped):  # else the client went away
            job.budget = min(MAX_SLICE, job.budget * 2)
            more, stream.index = _render(session, job, stream.index)
            stream.missing += more
            if stream.index < len(job.pairs):
                session.conn.push()  # may pause the stream (pauseProducing)
                stream.schedule()
                return
        stream.end()
        _check_missing(stream.missing, job.uid)
    except Exception as err:  # noqa: BLE001 - the dispatcher turns it into a response
        if not stream.ended:
            stream.end()
        stream.finished.errback(err)
        return
    stream.finished.callback(None)


def _check_missing(missing: int, uid: bool) -> None:
    if missing and not uid:
        # RFC 2180 §4.1.2: messages expunged by another session cannot be fetched.
        raise No("Some of the requested messages no longer exist", "EXPUNGEISSUED")


def _render(session: Session, job: _Job, start: int) -> tuple[int, int]:
    """Queue the FETCH responses of ``job.pairs[start:]`` until about ``job.budget`` bytes
    are queued; return (messages found expunged, index reached)."""
    if session.conn.compress_active and _whole_bodies(job.items + job.seen_items):
        return _render_spliced(session, job, start)
    view = session.require_view()
    get = view.mailbox.get
    recent = view.recent
    items, seen_items, newly_seen = job.items, job.seen_items, job.newly_seen
    chunks = []
    missing = size = 0
    index = start
    pairs = job.pairs
    while index < len(pairs) and size < job.budget:
        seq, uid = pairs[index]
        index += 1
        rec = get(uid)
        if rec is None:
            missing += 1
            continue
        is_recent = uid in recent
        parts = [fn(rec, seq, is_recent) for fn in items]
        if seen_items and uid in newly_seen:
            parts.extend(fn(rec, seq, is_recent) for fn in seen_items)
        chunk = b"* %d FETCH (%s)\r\n" % (seq, b" ".join(parts))
        size += len(chunk)
        chunks.append(chunk)
    session.out.raw(b"".join(chunks))
    return missing, index


def _whole_bodies(items: tuple) -> bool:
    return any(getattr(fn, WHOLE_BODY, None) is not None for fn in items)


def _render_spliced(session: Session, job: _Job, start: int) -> tuple[int, int]:
    """As :func:`_render`, but each whole body goes out as its cached DEFLATE form
    (RFC 4978 with compress.BodyCache): the text around it is queued separately."""
    view = session.require_view()
    get = view.mailbox.get
    recent = view.recent
    out = session.out
    packed_body = BODY_CACHE.get
    plan = [(fn, getattr(fn, WHOLE_BODY, None)) for fn in job.items]
    plan_seen = plan + [(fn, getattr(fn, WHOLE_BODY, None)) for fn in job.seen_items]
    marked = job.newly_seen if job.seen_items else set()
    pending: list[bytes] = []  # text since the last spliced body
    missing = size = 0
    index = start
    pairs = job.pairs
    while index < len(pairs) and size < job.budget:
        seq, uid = pairs[index]
        index += 1
        rec = get(uid)
        if rec is None:
            missing += 1
            continue
        is_recent = uid in recent
        pending.append(b"* %d FETCH (" % seq)
        sep = b""
        for fn, name in (plan_seen if uid in marked else plan):
            if name is None:
                pending.append(sep + fn(rec, seq, is_recent))
            else:
                blob = rec.blob
                data = blob.data
                pending.append(b"%s%s{%d}\r\n" % (sep, name, len(data)))
                out.raw(b"".join(pending))
                out.splice(data, packed_body(blob))
                size += len(data)
                pending = []
            sep = b" "
        pending.append(b")\r\n")
        size += 64
    if pending:
        out.raw(b"".join(pending))
    return missing, index
