"""Messages and mailboxes: the read-only views the IMAP layer works from.

``Blob`` holds message bytes once (content-addressed by SHA-256) and is shared
by every record of those bytes; ``BlobPool`` reference-counts them.
``MessageRecord`` is one message in one mailbox.  ``Mailbox`` indexes its
records.  Only ``MailStore.apply`` mutates these (through the ``_``-prefixed
methods); everyone else reads.

Invariants:
- ``Mailbox._uids`` is strictly ascending, equals the keys of ``_records`` in
  the same order (so ``records()`` is ascending without sorting), and every
  uid is < ``uidnext``.  ``uidnext`` never decreases except on ``_renumber``
  (Regenerate), which also changes UIDVALIDITY (RFC 3501 §2.3.1.1).
- ``highestmodseq`` >= every record's ``modseq`` and never decreases.
- ``_unseen`` == {uid | "\\Seen" not in flags}; ``_unseen_heap`` holds every
  member of ``_unseen`` (plus stale entries, dropped lazily).
- ``recent_uids`` is a subset of the uids; ``total_size`` is the sum of sizes.
- ``_by_instance`` maps the instance id of every record to its uid (one
  record per instance id in a mailbox; ``uid_of`` reads it).
- Stored flags are canonical: system flags spelt as in ``SYSTEM_FLAGS``, each
  keyword spelt as first seen in this mailbox (flags compare case-insensitively,
  RFC 3501 §2.3.2); never "\\Recent", which is session state.
- ``BlobPool``: refcount(digest) == number of records (all mailboxes) using it;
  a blob is dropped when it reaches 0.
"""

from __future__ import annotations

import datetime
import hashlib
import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .changes import Change, FlagsChanged, NoSuchMessage

# RFC 3501 §2.3.2 system flags; \Recent is not storable (session state).
SYSTEM_FLAGS = {f.lower(): f for f in ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")}
RECENT = "\\recent"
SEEN = "\\Seen"
_FLAG_CACHE_LIMIT = 4096
_SMALL_EXPUNGE = 32
_TOMBSTONE_LIMIT = 100_000  # per mailbox; the older half is dropped past it
_COMBINE: dict[str, Callable[[frozenset[str], frozenset[str]], frozenset[str]]] = {
    "add": frozenset.union,  # +FLAGS
    "remove": frozenset.difference,  # -FLAGS
    "replace": lambda old, flags: flags,  # FLAGS
}


class Blob:
    """Immutable message bytes, stored once; ``cache`` is a free slot for
    derived data (the IMAP layer's parsed MIME) and is excluded from equality."""

    __slots__ = ("data", "digest", "cache")
    data: bytes
    digest: str
    cache: dict[Any, Any]

    def __init__(self, data: bytes, digest: str | None = None) -> None:
        _set_data(self, data)
        _set_digest(self, digest or hashlib.sha256(data).hexdigest())
        _set_cache(self, {})

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Blob is immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Blob) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"Blob({self.digest[:12]}…, {len(self.data)} bytes)"


# Slot setters: Blob.__setattr__ refuses every assignment after __init__.
_set_data = Blob.__dict__["data"].__set__
_set_digest = Blob.__dict__["digest"].__set__
_set_cache = Blob.__dict__["cache"].__set__


class BlobPool:
    """Content-addressed, reference-counted blob table shared by a store."""

    __slots__ = ("_blobs", "_refs", "bytes_stored")

    def __init__(self) -> None:
        self._blobs: dict[str, Blob] = {}
        self._refs: dict[str, int] = {}
        self.bytes_stored = 0

    def acquire(self, data: bytes) -> Blob:
        """The shared Blob for ``data`` (created if new), with one more reference."""
        digest = hashlib.sha256(data).hexdigest()
        blob = self._blobs.get(digest)
        if blob is None:
            blob = self._blobs[digest] = Blob(data, digest)
            self._refs[digest] = 1
            self.bytes_stored += len(data)
        else:
            self._refs[digest] += 1
        return blob

    def share(self, blob: Blob) -> Blob:
        """One more reference to an already pooled blob."""
        self._refs[blob.digest] += 1
        return blob

    def release(self, blob: Blob) -> None:
        """Drop one reference; forget the blob at zero."""
        digest = blob.digest
        left = self._refs[digest] - 1
        if left:
            self._refs[digest] = left
        else:
            del self._refs[digest], self._blobs[digest]
            self.bytes_stored -= len(blob.data)

    def get(self, digest: str) -> Blob | None:
        """The pooled blob with this SHA-256 hex digest, or None."""
        return self._blobs.get(digest)

    def refcount(self, digest: str) -> int:
        """References held on ``digest`` (0 if unknown)."""
        return self._refs.get(digest, 0)

    def refcounts(self) -> dict[str, int]:
        """A copy of the digest -> refcount table (for checks and metrics)."""
        return dict(self._refs)

    def __len__(self) -> int:
        return len(self._blobs)


@dataclass(slots=True)
class MessageRecord:
    """One message in one mailbox.  Read-only outside the store."""

    uid: int
    blob: Blob
    flags: frozenset[str]
    internaldate: datetime.datetime
    modseq: int
    instance_id: tuple[str, int]
    # RFC 8514 SAVEDATE: when the message was saved into this mailbox (APPEND,
    # COPY, MOVE); often the very internaldate object, so usually no extra memory.
    savedate: datetime.datetime | None = None

    @property
    def size(self) -> int:
        """RFC822.SIZE: the message length in octets."""
        return len(self.blob.data)


class Mailbox:
    """One mailbox: records by UID, plus cheap counters for SELECT / STATUS."""

    __slots__ = (
        "id",
        "user",
        "name",
        "uidvalidity",
        "uidnext",
        "highestmodseq",
        "recent_uids",
        "total_size",
        "_uids",
        "_records",
        "_by_instance",
        "_unseen",
        "_unseen_heap",
        "_keywords",
        "_flag_cache",
        "_gone_modseqs",
        "_gone_uids",
        "vanished_floor",
        "special_use",
        "metadata",
        "acl",
    )

    def __init__(self, mailbox_id: str, user: str, name: str, uidvalidity: int) -> None:
        self.id = mailbox_id
        self.user = user
        self.name = name
        self.uidvalidity = uidvalidity
        self.uidnext = 1
        self.highestmodseq = 0
        self.recent_uids: set[int] = set()  # RFC 3501 §2.3.2 \Recent, unclaimed
        self.total_size = 0
        self._uids: list[int] = []
        self._records: dict[int, MessageRecord] = {}
        self._by_instance: dict[tuple[str, int], int] = {}
        self._unseen: set[int] = set()
        self._unseen_heap: list[int] = []
        self._keywords: dict[str, str] = {}  # lower-case -> spelling in this mailbox
        self._flag_cache: dict[frozenset[str], frozenset[str]] = {}
        # RFC 7162 §3.2.7 tombstones: UID _gone_uids[i] was expunged at mod-sequence
        # _gone_modseqs[i] (ascending).  Bounded by _TOMBSTONE_LIMIT: older ones are
        # dropped and ``vanished_floor`` is the largest mod-sequence dropped, so
        # vanished_since() answers exactly only for mod-sequences >= it.
        self._gone_modseqs: list[int] = []
        self._gone_uids: list[int] = []
        self.vanished_floor = 0
        self.special_use: frozenset[str] = frozenset()  # RFC 6154 attributes
        # RFC 5464: (owner of a /private entry or "" for /shared, lower-case
        # entry name) -> value.
        self.metadata: dict[tuple[str, str], bytes] = {}
        self.acl: dict[str, str] = {}  # RFC 4314 identifier -> rights (store/acl.py)

    def __repr__(self) -> str:
        return f"<Mailbox {self.user}:{self.name!r} uv={self.uidvalidity} n={len(self._uids)}>"

    # --- reading ---------------------------------------------------------

    def uids(self) -> list[int]:
        """Ascending UIDs.  Returns the LIVE internal list (O(1)): do not mutate
        it; it changes in place with later ops, so copy it for a snapshot."""
        return self._uids

    def get(self, uid: int) -> MessageRecord | None:
        """The record with ``uid``, or None."""
        return self._records.get(uid)

    def record(self, uid: int) -> MessageRecord:
        """The record with ``uid``, or ``NoSuchMessage``."""
        rec = self._records.get(uid)
        if rec is None:
            raise NoSuchMessage(f"no message with UID {uid} in {self.name!r}")
        return rec

    def uid_of(self, instance_id: tuple[str, int]) -> int | None:
        """The uid of the record with this instance id, or None."""
        return self._by_instance.get(instance_id)

    def records(self) -> Iterable[MessageRecord]:
        """Every record in ascending UID order (a live view, O(1))."""
        return self._records.values()

    def __len__(self) -> int:
        return len(self._uids)

    def __contains__(self, uid: object) -> bool:
        return uid in self._records

    def unseen_count(self) -> int:
        """Messages without \\Seen (STATUS UNSEEN), O(1)."""
        return len(self._unseen)

    def first_unseen_uid(self) -> int | None:
        """Lowest UID without \\Seen (SELECT's [UNSEEN n]), amortised O(log n)."""
        heap, unseen = self._unseen_heap, self._unseen
        while heap and heap[0] not in unseen:
            heapq.heappop(heap)
        return heap[0] if heap else None

    def keywords(self) -> list[str]:
        """Every keyword ever stored in this mailbox, sorted (for FLAGS)."""
        return sorted(self._keywords.values())

    def claim_recent(self, uids: Iterable[int] | None = None) -> set[int]:
        """Remove and return those of ``uids`` (all if None) still \\Recent.

        RFC 3501 §2.3.2: exactly one session sees a message as \\Recent.  Local
        session bookkeeping, not an op."""
        got = set(self.recent_uids) if uids is None else self.recent_uids.intersection(uids)
        self.recent_uids -= got
        return got

    # --- flags (MailStore only: these register keywords) -------------------

    def _canon_flags(self, flags: frozenset[str]) -> frozenset[str]:
        """``flags`` spelt canonically for this mailbox, registering new keywords.

        Results are interned, so equal flag sets share one frozenset."""
        cache = self._flag_cache
        hit = cache.get(flags)
        if hit is not None:
            return hit
        out: set[str] = set()
        for flag in sorted(flags):  # sorted: deterministic spelling choice
            low = flag.lower()
            if low == RECENT:
                continue
            system = SYSTEM_FLAGS.get(low)
            if system is not None:
                out.add(system)
            else:
                out.add(self._keywords.setdefault(low, flag))
        if len(cache) > _FLAG_CACHE_LIMIT:
            cache.clear()
        result = cache.setdefault(frozenset(out), frozenset(out))
        cache[flags] = result
        return result

    def _known_flags(self, flags: frozenset[str]) -> frozenset[str]:
        """Canonical spelling of those ``flags`` that can be present here
        (for removal: unknown keywords are on no message)."""
        out: set[str] = set()
        for flag in flags:
            low = flag.lower()
            spelt = SYSTEM_FLAGS.get(low) or self._keywords.get(low)
            if spelt is not None:
                out.add(spelt)
        return frozenset(out)

    def _intern_flags(self, flags: frozenset[str]) -> frozenset[str]:
        """The shared instance of an already canonical flag set."""
        if len(self._flag_cache) > _FLAG_CACHE_LIMIT:
            self._flag_cache.clear()  # only sharing is lost, never correctness
        return self._flag_cache.setdefault(flags, flags)

    # --- mutation (MailStore only) ---------------------------------------

    def _add(
        self,
        blob: Blob,
        flags: frozenset[str],
        internaldate: datetime.datetime,
        instance_id: tuple[str, int],
        modseq: int,
        savedate: datetime.datetime | None = None,
        uid: int | None = None,
    ) -> MessageRecord:
        """Add a record; ``uid`` is used when given and >= ``uidnext`` (a
        replicated message keeps its origin's UID when free, DESIGN.md §3)."""
        if uid is None or uid < self.uidnext:
            uid = self.uidnext
        self.uidnext = uid + 1
        rec = MessageRecord(uid, blob, flags, internaldate, modseq, instance_id, savedate)
        self._records[uid] = rec
        self._by_instance[instance_id] = uid
        self._uids.append(uid)
        self.recent_uids.add(uid)
        self.total_size += len(blob.data)
        if SEEN not in flags:
            self._unseen.add(uid)
            heapq.heappush(self._unseen_heap, uid)
        return rec

    def _store_flags(
        self, uids: Iterable[int], mode: str, flags: frozenset[str], since: int | None
    ) -> tuple[list[Change], list[int]]:
        """STORE ``flags`` (canonical) on ``uids`` with one new modseq (RFC 7162
        §3.1).  Returns (FlagsChanged for real changes, uids failing
        UNCHANGEDSINCE).  Absent uids are skipped silently."""
        combine = _COMBINE[mode]
        modseq = self.highestmodseq + 1
        records, unseen, heap, box_id = self._records, self._unseen, self._unseen_heap, self.id
        memo: dict[frozenset[str], tuple[frozenset[str], bool, bool, bool]] = {}
        changes: list[Change] = []
        failed: list[int] = []
        for uid in uids:
            rec = records.get(uid)
            if rec is None:
                continue
            if since is not None and rec.modseq > since:
                failed.append(uid)  # RFC 7162 §3.2: left alone, reported
                continue
            old = rec.flags
            hit = memo.get(old)  # few distinct flag sets: compute each once
            if hit is None:
                new = self._intern_flags(combine(old, flags))
                hit = memo[old] = (new, new != old, SEEN in old, SEEN in new)
            new, differs, was_seen, now_seen = hit
            if not differs:
                continue
            rec.flags = new
            rec.modseq = modseq
            if was_seen != now_seen:
                if now_seen:
                    unseen.discard(uid)
                else:
                    unseen.add(uid)
                    heapq.heappush(heap, uid)
            changes.append(FlagsChanged(box_id, uid, new, modseq, old))
        if changes:
            self.highestmodseq = modseq
            self._compact_heap()
        return changes, failed

    def vanished_since(self, modseq: int) -> list[int] | None:
        """UIDs expunged at a mod-sequence above ``modseq``, ascending (RFC 7162
        §3.2.5.1 VANISHED (EARLIER)); None when tombstones that old were dropped."""
        if modseq < self.vanished_floor:
            return None
        return sorted(self._gone_uids[bisect_right(self._gone_modseqs, modseq):])

    def _bury(self, uids: list[int], modseq: int) -> None:
        """Remember that ``uids`` were expunged at ``modseq`` (>= every earlier one)."""
        self._gone_modseqs.extend([modseq] * len(uids))
        self._gone_uids.extend(uids)
        if len(self._gone_uids) > _TOMBSTONE_LIMIT:
            cut = len(self._gone_uids) // 2
            self.vanished_floor = self._gone_modseqs[cut - 1]
            del self._gone_modseqs[:cut], self._gone_uids[:cut]

    def _compact_heap(self) -> None:
        if len(self._unseen_heap) > 2 * len(self._unseen) + 64:
            self._unseen_heap = sorted(self._unseen)  # a sorted list is a heap

    def _expunge(self, uids: Iterable[int]) -> list[MessageRecord]:
        """Remove those of ``uids`` (ascending) present; return their records."""
        records = self._records
        gone = [records.pop(uid) for uid in uids if uid in records]
        if not gone:
            return gone
        live = self._uids
        if len(gone) <= _SMALL_EXPUNGE:
            for rec in gone:
                del live[bisect_left(live, rec.uid)]
        else:
            dead = {rec.uid for rec in gone}
            live[:] = [uid for uid in live if uid not in dead]
        for rec in gone:
            self._by_instance.pop(rec.instance_id, None)
            self._unseen.discard(rec.uid)
            self.recent_uids.discard(rec.uid)
            self.total_size -= len(rec.blob.data)
        self._compact_heap()
        return gone

    def _renumber(self, uidvalidity: int) -> None:
        """Regenerate: UIDs become 1..n in current order under a new UIDVALIDITY."""
        renum: dict[int, int] = {}
        records: dict[int, MessageRecord] = {}
        for new_uid, rec in enumerate(self._records.values(), 1):
            renum[rec.uid] = new_uid
            rec.uid = new_uid
            records[new_uid] = rec
        self._records = records
        self._uids[:] = records.keys()
        self._by_instance = {rec.instance_id: rec.uid for rec in records.values()}
        recent = {renum[uid] for uid in self.recent_uids}
        self.recent_uids.clear()
        self.recent_uids.update(recent)
        self._unseen = {renum[uid] for uid in self._unseen}
        self._unseen_heap = sorted(self._unseen)
        self.uidnext = len(records) + 1
        self.uidvalidity = uidvalidity
        self._gone_modseqs, self._gone_uids = [], []  # old UIDs mean nothing now
        self.vanished_floor = self.highestmodseq

    def _check(self) -> None:
        """Assert this mailbox's invariants (tests and debugging)."""
        uids = self._uids
        assert uids == list(self._records), "uid list out of step with records"
        assert all(a < b for a, b in zip(uids, uids[1:], strict=False)), "uids not ascending"
        assert not uids or uids[-1] < self.uidnext, "uidnext not above every uid"
        assert all(r.uid == u for u, r in self._records.items()), "record uid mismatch"
        assert self._by_instance == {r.instance_id: u for u, r in self._records.items()}
        assert all(r.modseq <= self.highestmodseq for r in self._records.values())
        unseen = {r.uid for r in self._records.values() if SEEN not in r.flags}
        assert unseen == self._unseen, "unseen set wrong"
        assert unseen <= set(self._unseen_heap), "unseen heap misses a uid"
        assert self.first_unseen_uid() == (min(unseen) if unseen else None)
        assert self.recent_uids <= set(uids), "recent uid not in mailbox"
        assert self.total_size == sum(r.size for r in self._records.values())
        gone = self._gone_modseqs
        assert len(gone) == len(self._gone_uids), "tombstone lists out of step"
        assert gone == sorted(gone) and all(self.vanished_floor <= m for m in gone[:1])
        assert not gone or gone[-1] <= self.highestmodseq, "tombstone above highestmodseq"
        for rec in self._records.values():
            assert not any(f.lower() == RECENT for f in rec.flags), "\\Recent stored"
            assert rec.internaldate.tzinfo is not None, "naive internaldate"
