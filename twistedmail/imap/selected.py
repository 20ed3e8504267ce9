"""The per-session view of the selected mailbox.

Invariants:
  * ``uids`` is this session's sequence-number map: ``uids[seq-1]`` is the UID of
    message ``seq``.  It is strictly ascending and changes only in :meth:`flush`,
    so sequence numbers never shift behind the client's back (RFC 3501 §7.4.1).
  * Changes made by any session are queued here when the store reports them and
    are announced only by :meth:`flush`; EXPUNGE is announced only when the
    caller says it may be (never during FETCH, STORE, SEARCH — RFC 3501 §7.4.1).
  * A UID in ``uids`` whose message the store has expunged stays addressable
    until the expunge is announced; commands skip it.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from typing import Any

from twistedmail.imap.commands import SequenceSet
from twistedmail.imap.fetchrender import flags_bytes
from twistedmail.imap.responses import Responder
from twistedmail.imap.seqset import compress
from twistedmail.store import (
    FlagsChanged,
    Mailbox,
    MailboxDeleted,
    MailStore,
    MessageRecord,
    MessagesAdded,
    MessagesExpunged,
)


class SelectedView:
    """What one session sees of its selected mailbox."""

    def __init__(self, mailbox: Mailbox, readonly: bool, condstore: bool = False) -> None:
        self.mailbox = mailbox
        self.readonly = readonly
        self.condstore = condstore
        self.qresync = False  # RFC 7162 §3.2.10: announce expunges as VANISHED
        self.uids: list[int] = list(mailbox.uids())
        self.recent: set[int] = set() if readonly else mailbox.claim_recent()
        self.pending_expunged: set[int] = set()
        self.pending_flags: set[int] = set()
        self.pending_added = False
        self.deleted = False
        self.suppress_own_flags = False
        self.on_update: Callable[[], None] | None = None  # set while IDLE
        self.cache: dict[str, Any] = {}  # derived data (SEARCH targets); cleared on change
        self.accept: Callable[[Any], bool] | None = None  # RFC 5465 NOTIFY filter
        self.on_added: Callable[[Responder, SelectedView, list[int]], None] | None = None
        self.no_recent = False  # RFC 9051: an IMAP4rev2 session has no \\Recent

    # --- lookups -----------------------------------------------------------

    @property
    def exists(self) -> int:
        """Number of messages as the client knows them."""
        return len(self.uids)

    def seq_of(self, uid: int) -> int | None:
        """Sequence number of ``uid`` in this view, or None."""
        i = bisect_left(self.uids, uid)
        if i < len(self.uids) and self.uids[i] == uid:
            return i + 1
        return None

    def max_uid(self) -> int:
        """Largest UID in the view (0 when empty)."""
        return self.uids[-1] if self.uids else 0

    def resolve(self, seqset: SequenceSet, by_uid: bool,
                saved: frozenset[int] = frozenset()) -> list[tuple[int, int]]:
        """(seq, uid) pairs named by ``seqset``, ascending, in this view.

        RFC 3501 §6.4.8: a UID range names the UIDs that exist in it; ``*`` is the
        largest UID (or sequence number).  RFC 5182: ``$`` names the saved UIDs."""
        if seqset.saved:
            return [(s, u) for s, u in self.pairs() if u in saved]
        if not by_uid:
            return self._resolve_seqs(seqset)
        return self._resolve_uids(seqset)

    def _resolve_seqs(self, seqset: SequenceSet) -> list[tuple[int, int]]:
        """Sequence numbers clamped to 1..len: ``1:4294967295`` never builds 4G ints
        (found by fuzzing, tests/fuzz/test_protocol_fuzz.py)."""
        uids = self.uids
        count = len(uids)
        picked: set[int] = set()
        for r in seqset.ranges:
            lo = count if r.start < 0 else r.start
            hi = count if r.end < 0 else r.end
            if lo > hi:
                lo, hi = hi, lo
            picked.update(range(max(lo, 1), min(hi, count) + 1))
        return [(n, uids[n - 1]) for n in sorted(picked)]

    def _resolve_uids(self, seqset: SequenceSet) -> list[tuple[int, int]]:
        uids = self.uids
        largest = uids[-1] if uids else 0
        picked: set[int] = set()
        for r in seqset.ranges:
            lo = largest if r.start < 0 else r.start
            hi = largest if r.end < 0 else r.end
            if lo > hi:
                lo, hi = hi, lo
            start, end = bisect_left(uids, lo), bisect_right(uids, hi)
            picked.update(range(start, end))
        return [(i + 1, uids[i]) for i in sorted(picked)]

    def pairs(self) -> Iterator[tuple[int, int]]:
        """All (seq, uid) pairs."""
        return ((i + 1, u) for i, u in enumerate(self.uids))

    def record(self, uid: int) -> MessageRecord | None:
        """The store's record, or None when it has been expunged meanwhile."""
        return self.mailbox.get(uid)

    # --- store notifications -------------------------------------------------

    def notice(self, change: Any) -> None:
        """Queue a change the store reported for this mailbox."""
        self.cache.clear()
        if self.accept is not None and not self.accept(change):
            return  # RFC 5465: this session's NOTIFY settings leave it out
        if isinstance(change, MessagesAdded):
            self.pending_added = True
        elif isinstance(change, MessagesExpunged):
            self.pending_expunged.update(u for u in change.uids if self.seq_of(u))
        elif isinstance(change, FlagsChanged):
            if not self.suppress_own_flags:
                self.pending_flags.add(change.uid)
        elif isinstance(change, MailboxDeleted):
            self.deleted = True
        else:
            return
        if self.on_update is not None:
            self.on_update()

    def has_pending(self) -> bool:
        """True if a flush would send something."""
        return bool(self.pending_added or self.pending_expunged or self.pending_flags)

    # --- announcing ------------------------------------------------------------

    def flush(self, out: Responder, allow_expunge: bool, with_uid: bool = False) -> None:
        """Announce queued changes (RFC 3501 §7.3.1 EXISTS, §7.4.1 EXPUNGE, §7.4.2 FETCH)."""
        self.cache.clear()
        if allow_expunge and self.pending_expunged:
            self._flush_expunged(out)
        if self.pending_flags:
            self._flush_flags(out, with_uid)
        if self.pending_added:
            self._flush_added(out)

    def _flush_expunged(self, out: Responder) -> None:
        gone = self.pending_expunged
        if self.qresync:  # RFC 7162 §3.2.10: VANISHED replaces EXPUNGE
            out.raw(b"* VANISHED %s\r\n" % compress(sorted(gone)).encode("ascii"))
        else:
            for uid in sorted(gone, reverse=True):
                seq = self.seq_of(uid)
                if seq is not None:
                    out.raw(b"* %d EXPUNGE\r\n" % seq)
        self.uids = [u for u in self.uids if u not in gone]
        self.recent.difference_update(gone)
        self.pending_flags.difference_update(gone)
        self.pending_expunged = set()

    def _flush_flags(self, out: Responder, with_uid: bool) -> None:
        for uid in sorted(self.pending_flags):
            seq = self.seq_of(uid)
            rec = self.mailbox.get(uid)
            if seq is None or rec is None:
                continue
            out.raw(b"* %d FETCH (%s)\r\n" % (seq, self.flags_item(rec, with_uid)))
        self.pending_flags = set()

    def flags_item(self, rec: MessageRecord, with_uid: bool) -> bytes:
        """``FLAGS (...)`` [``UID n``] [``MODSEQ (n)``] for an unsolicited FETCH."""
        item = flags_bytes(rec.flags, rec.uid in self.recent)
        if with_uid or self.condstore:
            item = b"UID %d " % rec.uid + item
        if self.condstore:
            item += b" MODSEQ (%d)" % rec.modseq
        return item

    def _flush_added(self, out: Responder) -> None:
        self.pending_added = False
        store_uids = self.mailbox.uids()
        start = bisect_right(store_uids, self.max_uid())
        new = list(store_uids[start:])
        if not new:
            return
        self.uids.extend(new)
        if not self.readonly and not self.no_recent:
            self.recent.update(self.mailbox.claim_recent(new))
        out.raw(b"* %d EXISTS\r\n" % len(self.uids))
        if not self.no_recent:
            out.raw(b"* %d RECENT\r\n" % len(self.recent))
        if self.on_added is not None:  # RFC 5465 §5.2 MessageNew fetch attributes
            self.on_added(out, self, new)


class Watchers:
    """Routes store changes to the views of the sessions that selected a mailbox."""

    def __init__(self, store: MailStore) -> None:
        self.views: dict[str, set[SelectedView]] = {}
        store.subscribe(self._on_apply)

    @classmethod
    def of(cls, store: MailStore) -> Watchers:
        """The one Watchers of ``store`` (created on first use)."""
        existing = getattr(store, "_imap_watchers", None)
        if existing is None:
            existing = cls(store)
            store._imap_watchers = existing  # type: ignore[attr-defined]
        return existing

    def add(self, view: SelectedView) -> None:
        """Start routing changes of ``view.mailbox`` to ``view``."""
        self.views.setdefault(view.mailbox.id, set()).add(view)

    def remove(self, view: SelectedView) -> None:
        """Stop routing to ``view``."""
        views = self.views.get(view.mailbox.id)
        if views is not None:
            views.discard(view)
            if not views:
                del self.views[view.mailbox.id]

    def _on_apply(self, op: object, changes: list[Any]) -> None:
        for change in changes:
            mailbox_id = getattr(change, "mailbox_id", None)
            if mailbox_id is None:
                continue
            for view in list(self.views.get(mailbox_id, ())):
                view.notice(change)
