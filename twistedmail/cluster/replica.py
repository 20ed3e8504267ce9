"""Replica: cluster-wide state over one node's MailStore (DESIGN.md §4).

No Twisted imports.  The transport (link.py / service.py) moves cops and
bodies; the Replica decides what they mean.

- Local capture (capture.py): the Replica subscribes to the store and turns
  every successful LOCAL op into cops, numbered 1, 2, 3 ... under this
  process's incarnation id, appended to the log and handed to ``listeners``.
  Ops the Replica itself applies for remote cops are recognised by identity
  and never re-emitted.  Regenerate is local only (UIDs are never replicated,
  DESIGN.md §3); DeleteAccount is not replicated either (accounts come from
  the config, which every node shares).
- Remote apply (apply.py): idempotent, per-origin FIFO, conflict rules in
  conflicts.py.  A cop whose folder is not known yet is parked until the
  folder arrives (it still counts as applied in the version vector).  An add
  whose body the sender lacks too (``absent``) waits for the body
  (``wanted_blobs`` / ``offer_blobs``) or for its tombstone.  Applying remote
  cops may make OWN cops (a derived Recovered folder is announced, rule 5):
  listeners are then called before ``receive`` returns.
- Snapshots (snapshot.py): seq-0 state cops recreating everything held; applying
  them is a merge through the same rules.

Decisions:
- Instance ids in the store are (incarnation, n): the MailStore runs with
  node_name = incarnation, so ids never repeat across restarts.  On the wire
  they are "incarnation:n" strings (cops.instance_str).
- ``node`` (for "reserve" cops) is the incarnation up to its first "~".
- The log keeps at most ``log_limit`` cops per origin; ``missing_since``
  answers None when a peer needs older ones (send a snapshot instead).
- A snapshot covers the accounts this node holds; a peer should take it from
  a node holding (at least) the accounts it holds itself.
- ``summary()`` spells keywords in lower case (their spelling is per mailbox
  and may differ between nodes; RFC 3501 §2.3.2: flags are case-insensitive).

Invariants:
- ``vv()[o]`` is the highest seq of origin ``o`` such that every cop 1..seq
  was applied (parked ones included); cops above a gap are held.
- The log of origin ``o`` is a contiguous run of seqs ending at ``vv()[o]``.
- Store state of held accounts == what the registers imply (see registers.py).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from twistedmail.store import Change, MailStore, Op, StoreError

from . import apply as _apply
from . import capture as _capture
from . import snapshot as _snapshot
from .conflicts import FlagReg
from .cops import Cop, MissingBlobs, instance_str, max_stamp
from .hlc import HLC, Stamp
from .registers import Folder, Msg, Parked, Spare

__all__ = ["Cop", "MissingBlobs", "Replica", "Snapshot"]
log = logging.getLogger(__name__)
_BLOB = "blob:"  # parked-key prefix: adds waiting for their body


@dataclass(slots=True)
class Snapshot:
    """State cops (seq 0), the version vector they cover, and the digests of the
    bodies they reference that this node holds (fetch them with ``blob``; a
    referenced body not listed is absent here, see ``receive``)."""

    cops: list[Cop]
    vv: dict[str, int]
    blobs: list[str] = field(default_factory=list)


class Replica:
    """Cluster-wide state over one MailStore; see the module docstring."""

    def __init__(
        self,
        store: MailStore,
        incarnation: str,
        hlc: HLC,
        holds: Callable[[str], bool] = lambda u: True,
        log_limit: int = 200_000,
    ) -> None:
        self.store = store
        self.incarnation = incarnation
        self.node = incarnation.split("~", 1)[0]
        self.hlc = hlc
        self.holds = holds
        self.log_limit = log_limit
        self.seq = 0
        self.listeners: list[Callable[[list[Cop]], None]] = []
        self.reservations: dict[str, int] = {}
        self.apply_errors = 0
        # registers (registers.py)
        self.folders: dict[str, Folder] = {}
        self.claims: dict[str, dict[str, set[str]]] = {}  # user -> name -> live ids
        self.claim_of: dict[str, str] = {}  # live folder id -> the name it claims
        self.recovered_of: dict[str, str] = {}  # Recovered folder id -> deleted folder id
        self.msgs: dict[str, Msg] = {}
        self.tombs: dict[str, tuple[str, str]] = {}  # instance -> (added-to folder, user)
        self.tombs_by_folder: dict[str, set[str]] = {}
        self.early: dict[str, dict[str, FlagReg]] = {}
        self.early_user: dict[str, str] = {}
        self.subs: dict[tuple[str, str], tuple[bool, Stamp]] = {}
        self.quotas: dict[str, tuple[tuple[tuple[str, int], ...], Stamp]] = {}
        # RFC 5464 server entries: (scope, lower-case entry) -> (value or None, stamp)
        self.server_meta: dict[tuple[str, str], tuple[bytes | None, Stamp]] = {}
        # parts of DELETE known lists whose DELETE has not come yet:
        # (folder, delete stamp) -> (user, instances)
        self.dknown: dict[tuple[str, Stamp], tuple[str, set[str]]] = {}
        self.parked: dict[str, list[Parked]] = {}
        self.spare = Spare()
        # replication bookkeeping
        self._vv: dict[str, int] = {incarnation: 0}
        self._log: dict[str, deque[Cop]] = {}
        self._held: dict[str, dict[int, Parked]] = {}
        self._remote_ops: dict[int, Op] = {}
        self._pending: list[Cop] = []
        self._adopt()
        self.unsubscribe = store.subscribe(self._on_store)

    # --- version vector, log ----------------------------------------------------

    def vv(self) -> dict[str, int]:
        """origin -> highest contiguous seq applied (own origin included)."""
        return dict(self._vv)

    def missing_since(self, peer_vv: Mapping[str, int]) -> list[Cop] | None:
        """The cops a peer with ``peer_vv`` lacks, in per-origin order; None when
        the log no longer reaches back far enough (send a snapshot)."""
        out: list[Cop] = []
        for origin, top in self._vv.items():
            have = peer_vv.get(origin, 0)
            if not isinstance(have, int) or have >= top:
                continue
            entries = self._log.get(origin)
            if not entries or entries[0].seq > have + 1:
                return None
            # The tail, walked from the right: O(cops missing), not O(log length)
            # (deque slicing from the left would walk the whole log on every push).
            tail = list(islice(reversed(entries), top - have))
            tail.reverse()
            out.extend(tail)
        return out

    def _logged(self, cop: Cop) -> None:
        entries = self._log.get(cop.origin)
        if entries is None:
            entries = self._log[cop.origin] = deque()
        entries.append(cop)
        if len(entries) > self.log_limit:
            entries.popleft()

    # --- local capture --------------------------------------------------------------

    def emit(self, kind: str, body: dict[str, Any], blobs: Sequence[str] = ()) -> Cop:
        """Make, log and queue an own cop (listeners get it after the op)."""
        self.seq += 1
        cop = Cop(self.incarnation, self.seq, kind, body, tuple(blobs))
        self._vv[self.incarnation] = self.seq
        self._logged(cop)
        self._pending.append(cop)
        return cop

    def _on_store(self, op: Op, changes: list[Change]) -> None:
        if self._remote_ops.pop(id(op), None) is not None:
            return  # applied for a remote cop: never re-emitted
        _capture.capture(self, op, changes)
        self._flush()

    def _flush(self) -> None:
        cops, self._pending = self._pending, []
        if not cops:
            return
        for listener in list(self.listeners):
            try:
                listener(cops)
            except Exception:  # a transport bug must not break local writes
                log.exception("replica listener %r failed", listener)

    def _adopt(self) -> None:
        """Turn what the store already holds into own cops (a store used
        before the Replica was attached, e.g. a node's public folders)."""
        if not _snapshot.adopt(self):
            return
        for cop in _snapshot.state_cops(self):
            self.emit(cop.kind, cop.body, cop.blobs)
        self._pending = []

    def reserve(self, top: int) -> None:
        """Record (and replicate) that this node reserved UIDVALIDITY counters
        up to ``top`` (DESIGN.md §3)."""
        if top > self.reservations.get(self.node, 0):
            self.reservations[self.node] = top
        self.emit("reserve", {"node": self.node, "top": top})
        self._flush()

    # --- remote apply -------------------------------------------------------------

    def apply_store(self, op: Op) -> list[Change] | None:
        """Apply ``op`` for a remote cop (not captured); None if the store refused."""
        self._remote_ops[id(op)] = op
        try:
            return self.store.apply(op)
        except StoreError as err:
            self._remote_ops.pop(id(op), None)
            self.apply_errors += 1
            log.warning("replicated %s refused by the store: %s", type(op).__name__, err)
            return None

    def receive(self, cops: Sequence[Cop], blobs: Mapping[str, bytes],
                absent: Collection[str] = ()) -> None:
        """Apply a batch of live cops: idempotent, per-origin FIFO (gaps held).

        ``MissingBlobs`` (nothing applied) when an add needs a body found
        neither in ``blobs`` nor here, unless a later cop of the batch kills
        it.  ``absent``: digests the sender said it does not have (the message
        died there, or it relays an account it does not hold); adds needing
        them wait here for the body (``wanted_blobs``) or their tombstone."""
        fresh = [c for c in cops if c.origin != self.incarnation and self._is_new(c)]
        self._check_blobs(fresh, blobs, absent)
        for cop in sorted(fresh, key=lambda c: (c.origin, c.seq)):
            if cop.seq == 0:
                self._apply(cop, blobs)
            elif self._is_new(cop):  # a duplicate within the batch is skipped
                self._accept(cop, blobs)
        self._retry_waiting(blobs)
        self._flush()  # e.g. a Recovered folder this made (apply.recovered)

    def wanted_blobs(self) -> list[str]:
        """Digests of bodies that adds applied without them are waiting for."""
        return sorted(k[len(_BLOB):] for k in self.parked if k.startswith(_BLOB))

    def offer_blobs(self, blobs: Mapping[str, bytes]) -> None:
        """Bodies fetched for ``wanted_blobs``: the adds waiting for them apply."""
        self._retry_waiting(blobs)
        self._flush()

    def _retry_waiting(self, blobs: Mapping[str, bytes]) -> None:
        for key in [k for k in self.parked if k.startswith(_BLOB)]:
            items = self.parked[key]
            if self.find_blob(key[len(_BLOB):], blobs) is None and not any(
                    item.cop.body.get("i") in self.tombs for item in items):
                continue
            del self.parked[key]
            for item in items:
                self._apply(item.cop, blobs)

    def _is_new(self, cop: Cop) -> bool:
        return cop.seq == 0 or (cop.seq > self._vv.get(cop.origin, 0)
                                and cop.seq not in self._held.get(cop.origin, ()))

    def _accept(self, cop: Cop, blobs: Mapping[str, bytes]) -> None:
        origin = cop.origin
        if cop.seq != self._vv.get(origin, 0) + 1:
            data = self._grab(cop, blobs)
            self.spare.hold(data)
            self._held.setdefault(origin, {})[cop.seq] = Parked(cop, data)
            return
        self._apply_logged(cop, blobs)
        self._drain(origin)

    def _drain(self, origin: str) -> None:
        """Apply held cops of ``origin`` while they follow on."""
        held = self._held.get(origin)
        while held:
            item = held.pop(self._vv.get(origin, 0) + 1, None)
            if item is None:
                break
            self._apply_logged(item.cop, item.data)
            self.spare.release(item.data)
        if held is not None and not held:
            del self._held[origin]

    def _apply_logged(self, cop: Cop, blobs: Mapping[str, bytes]) -> None:
        self._vv[cop.origin] = cop.seq
        self._logged(cop)
        self._apply(cop, blobs)

    def _apply(self, cop: Cop, blobs: Mapping[str, bytes]) -> None:
        try:
            stamp = max_stamp(cop.body)  # later own writes must come after all we saw
            if stamp is not None:
                self.hlc.observe(stamp)
            _apply.apply_cop(self, cop, blobs)
        except (KeyError, TypeError, ValueError, StoreError) as err:  # logged, skipped
            self.apply_errors += 1
            log.warning("cop %s:%d (%s) not applied: %r", cop.origin, cop.seq, cop.kind, err)

    def _grab(self, cop: Cop, blobs: Mapping[str, bytes]) -> dict[str, bytes]:
        """The bodies ``cop`` will need later, copied out of ``blobs`` / the store."""
        out: dict[str, bytes] = {}
        for digest in cop.blobs:
            data = self.find_blob(digest, blobs)
            if data is not None:
                out[digest] = data
        return out

    def _check_blobs(self, cops: Sequence[Cop], blobs: Mapping[str, bytes],
                     absent: Collection[str] = ()) -> None:
        dying: set[str] = set()
        for cop in cops:
            if cop.kind in ("expunge", "known"):
                dying.update(cop.body.get("i", ()))
            elif cop.kind == "delete":
                dying.update(cop.body.get("known", ()))
        missing: set[str] = set()
        for cop in cops:
            if cop.kind != "add" or not self.holds(str(cop.body.get("u"))):
                continue
            inst = cop.body.get("i")
            if inst in self.msgs or inst in self.tombs or inst in dying:
                continue
            missing.update(d for d in cop.blobs if self.find_blob(d, blobs) is None)
        missing.difference_update(absent)
        if missing:
            raise MissingBlobs(sorted(missing))

    def find_blob(self, digest: str, blobs: Mapping[str, bytes] | None = None) -> bytes | None:
        """A body by digest: from ``blobs``, the store's pool or held cops."""
        if blobs is not None:
            data = blobs.get(digest)
            if data is not None:
                return data
        blob = self.store.blobs.get(digest)
        if blob is not None:
            return blob.data
        return self.spare.get(digest)

    def blob(self, digest: str) -> bytes | None:
        """The body with this SHA-256 hex digest, if held here."""
        return self.find_blob(digest)

    def park(self, folder_id: str, cop: Cop, blobs: Mapping[str, bytes]) -> None:
        """Keep ``cop`` until folder ``folder_id`` is known."""
        data = self._grab(cop, blobs)
        self.spare.hold(data)
        self.parked.setdefault(folder_id, []).append(Parked(cop, data))

    def unpark(self, folder_id: str) -> None:
        """Apply the cops that waited for ``folder_id``."""
        for item in self.parked.pop(folder_id, []):
            self._apply(item.cop, item.data)
            self.spare.release(item.data)

    # --- snapshots ------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Everything held here as seq-0 state cops, with the VV they cover."""
        cops = _snapshot.state_cops(self)
        digests = sorted({d for c in cops for d in c.blobs if self.find_blob(d) is not None})
        return Snapshot(cops, self.vv(), digests)

    def apply_snapshot_cops(self, cops: Sequence[Cop], blobs: Mapping[str, bytes],
                            absent: Collection[str] = ()) -> None:
        """Merge state cops (any seq is treated as state); ``MissingBlobs`` and
        ``absent`` as for ``receive``."""
        self._check_blobs(cops, blobs, absent)
        for cop in cops:
            self._apply(cop, blobs)
        self._retry_waiting(blobs)
        self._flush()

    def finish_snapshot(self, vv: Mapping[str, int]) -> None:
        """The snapshot covered ``vv``: raise ours to it, then drain held cops."""
        for origin, top in vv.items():
            if origin == self.incarnation or not isinstance(top, int):
                continue
            if top > self._vv.get(origin, 0):
                self._vv[origin] = top
                self._log.pop(origin, None)  # a gap: this log can't serve peers
            held = self._held.get(origin)
            if held:
                for seq in [s for s in held if s <= top]:
                    self.spare.release(held.pop(seq).data)
            self._drain(origin)
        self._flush()

    # --- checks -------------------------------------------------------------------

    def summary(self) -> dict[str, dict[str, list[tuple[str, str, tuple[str, ...]]]]]:
        """{user: {folder name: sorted [(instance, digest, sorted flags)]}} over
        the accounts held here: replicas converged <=> equal summaries."""
        out: dict[str, dict[str, list[tuple[str, str, tuple[str, ...]]]]] = {}
        for user in self.store.users():
            if not self.holds(user):
                continue
            boxes = out[user] = {}
            for box in self.store.mailboxes(user):
                boxes[box.name] = sorted(
                    (instance_str(rec.instance_id), rec.blob.digest, _flag_key(rec.flags))
                    for rec in box.records()
                )
        return out

    def held_count(self) -> int:
        """Cops waiting for a gap to fill plus cops parked for a folder."""
        return sum(map(len, self._held.values())) + sum(map(len, self.parked.values()))


def _flag_key(flags: frozenset[str]) -> tuple[str, ...]:
    return tuple(sorted(f if f.startswith("\\") else f.lower() for f in flags))
