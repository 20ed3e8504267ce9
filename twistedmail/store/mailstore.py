"""MailStore: the in-memory, op-based mail store of one node.

Plain synchronous Python (no Twisted).  ``apply(op)`` is the only mutator; it
returns typed changes and then tells the listeners.  Readers get ``Mailbox``
views.

Invariants:
- Atomic ops: an op either applies fully or raises ``StoreError`` having
  changed nothing a reader can see (it may burn UIDVALIDITY counters, which
  only ever grow).
- Deterministic: the same sequence of calls (ops, ``next_instance_id``) on
  stores built with equal arguments and clocks gives equal state.  The only
  store state an op consumes besides mailboxes is the instance-id counter
  (COPY / MOVE / RENAME INBOX give their new message instances fresh ids) and
  the UIDVALIDITY allocator.
- Every mailbox is in ``_by_id`` and in its account's ``boxes`` under its
  canonical name.  A mailbox id is never reused for another mailbox, even
  after deletion (RFC 8474 MAILBOXID); derived ids skip used ones.
- Every account has INBOX (RFC 3501 §5.1).  Superiors of a mailbox may be
  missing (after DELETE); LIST shows them as \\Noselect.
- A mailbox's UIDVALIDITY is always the one the allocator last recorded (or
  carried) for its name or below it; see ``uidvalidity.py``.
- Blobs are shared by digest; the pool's refcounts equal the number of records
  referencing each blob.
- Listeners see every successful op exactly once, in apply order (ops applied
  by a listener are queued behind the current one); a listener's exception is
  counted in ``listener_errors`` and does not stop the others.
"""

from __future__ import annotations

import datetime
import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from . import acl as _acl
from . import metadata as _metadata
from . import names
from .changes import (
    AccountCreated,
    AccountDeleted,
    AclChanged,
    Cannot,
    CannotDelete,
    Change,
    Copied,
    MailboxCreated,
    MailboxDeleted,
    MailboxExists,
    MailboxRegenerated,
    MailboxRenamed,
    MessagesAdded,
    MessagesExpunged,
    MetadataChanged,
    NoSuchAccount,
    NoSuchMailbox,
    QuotaChanged,
    SpecialUseChanged,
    StoreFailed,
    Subscribed,
    Unsubscribed,
)
from .mailbox import BlobPool, Mailbox, MessageRecord
from .ops import (
    Append,
    Copy,
    CreateAccount,
    CreateMailbox,
    DeleteAccount,
    DeleteAcl,
    DeleteMailbox,
    Expunge,
    Op,
    Regenerate,
    RenameMailbox,
    SetAcl,
    SetMetadata,
    SetQuota,
    SetSpecialUse,
    StoreFlags,
    Subscribe,
    Unsubscribe,
)
from .uidvalidity import UidValidityAllocator, check_root, split

Listener = Callable[[Op, list[Change]], None]
log = logging.getLogger(__name__)
# Namespace for mailbox ids the store derives (INBOX, implicit superiors).
_ID_NAMESPACE = uuid.UUID("5d0f7c1e-2a4b-4f58-9a49-6c1b8e0f3d27")


class _Account:
    __slots__ = ("user", "boxes", "subs")

    def __init__(self, user: str) -> None:
        self.user = user
        self.boxes: dict[str, Mailbox] = {}  # canonical name -> mailbox
        self.subs: set[str] = set()


class MailStore:
    """All accounts and mailboxes of one node, changed only by ``apply``."""

    def __init__(
        self,
        node_name: str,
        uidvalidity_root: int,
        clock: Callable[[], float] = time.time,
        uidvalidity_state: dict[str, dict[str, int]] | None = None,
    ) -> None:
        self.node_name = node_name
        self.uidvalidity_root = check_root(uidvalidity_root)
        self.roots_used = {self.uidvalidity_root}  # set_root: folders may keep older roots
        self.clock = clock
        self.allocator = UidValidityAllocator(uidvalidity_root, clock, uidvalidity_state)
        self.blobs = BlobPool()
        self.listener_errors = 0
        self.last_listener_error: Exception | None = None
        self._accounts: dict[str, _Account] = {}
        self._by_id: dict[str, Mailbox] = {}
        self._used_ids: set[str] = set()  # every mailbox id ever live here
        self._instance_seq = 0
        self._server_meta: dict[tuple[str, str], bytes] = {}  # RFC 5464 server entries
        self._quotas: dict[str, tuple[tuple[str, int], ...]] = {}  # RFC 9208 root -> limits
        self._listeners: list[tuple[object, Listener]] = []
        self._listener_order: tuple[Listener, ...] = ()
        self._queue: deque[tuple[Op, list[Change]]] = deque()
        self._notifying = False
        self._handlers: dict[type[Op], Callable[[Any], list[Change]]] = {
            CreateAccount: self._create_account,
            DeleteAccount: self._delete_account,
            CreateMailbox: self._create_mailbox,
            DeleteMailbox: self._delete_mailbox,
            RenameMailbox: self._rename_mailbox,
            Subscribe: self._subscribe,
            Unsubscribe: self._unsubscribe,
            Append: self._append,
            StoreFlags: self._store_flags,
            Expunge: self._expunge,
            Copy: self._copy,
            Regenerate: self._regenerate,
            SetSpecialUse: self._set_special_use,
            SetMetadata: self._set_metadata,
            SetAcl: self._set_acl,
            DeleteAcl: self._delete_acl,
            SetQuota: self._set_quota,
        }

    # --- applying ops and notifying ------------------------------------------

    def apply(self, op: Op) -> list[Change]:
        """Apply ``op``; return its changes or raise ``StoreError`` (no change)."""
        handler = self._handlers.get(type(op))
        if handler is None:
            raise TypeError(f"not a store op: {op!r:.200}")
        changes = handler(op)
        if self._listener_order:
            self._notify(op, changes)
        return changes

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(op, changes)`` after each successful apply, in
        subscription order.  Returns a function that unsubscribes it."""
        token = object()
        self._listeners.append((token, listener))
        self._listener_order = tuple(fn for _, fn in self._listeners)

        def unsubscribe() -> None:
            self._listeners = [(t, fn) for t, fn in self._listeners if t is not token]
            self._listener_order = tuple(fn for _, fn in self._listeners)

        return unsubscribe

    def _notify(self, op: Op, changes: list[Change]) -> None:
        self._queue.append((op, changes))
        if self._notifying:
            return  # a listener applied an op: deliver it after the current one
        self._notifying = True
        try:
            while self._queue:
                queued_op, queued_changes = self._queue.popleft()
                for listener in self._listener_order:
                    try:
                        listener(queued_op, queued_changes)
                    except Exception as e:  # a bad listener must not break the store
                        self.listener_errors += 1
                        self.last_listener_error = e
                        log.exception("store listener %r failed", listener)
        finally:
            self._notifying = False

    # --- reading ---------------------------------------------------------------

    def next_instance_id(self) -> tuple[str, int]:
        """A fresh message instance id (node_name, n), n strictly increasing."""
        self._instance_seq += 1
        return (self.node_name, self._instance_seq)

    def set_root(self, root: int) -> None:
        """``set-root``: allocate with ``root`` from now on; existing folders keep
        their UIDVALIDITY (an older root) until their next Regenerate."""
        self.uidvalidity_root = self.allocator.root = check_root(root)
        self.roots_used.add(root)

    def has_account(self, user: str) -> bool:
        """True if ``user`` has an account here."""
        return user in self._accounts

    def users(self) -> list[str]:
        """Every account name, sorted."""
        return sorted(self._accounts)

    def mailbox(self, user: str, name: str) -> Mailbox:
        """The mailbox ``name`` of ``user``: "INBOX" matches case-insensitively
        (RFC 3501 §5.1), other names case-sensitively.  Raises
        ``NoSuchAccount`` / ``NoSuchMailbox``."""
        return self._find(self._account(user), name)

    def mailbox_by_id(self, mailbox_id: str) -> Mailbox | None:
        """The live mailbox with this id, or None."""
        return self._by_id.get(mailbox_id)

    def mailboxes(self, user: str) -> list[Mailbox]:
        """Every mailbox of ``user``, sorted by name."""
        boxes = self._account(user).boxes
        return [boxes[name] for name in sorted(boxes)]

    def subscriptions(self, user: str) -> set[str]:
        """A copy of the subscribed names; they need not exist (RFC 3501 §6.3.6)."""
        return set(self._account(user).subs)

    def quota_limits(self, root: str) -> tuple[tuple[str, int], ...] | None:
        """The limits SetQuota gave ``root`` (RFC 9208), or None if never set."""
        return self._quotas.get(root)

    def blob_count(self) -> int:
        """Distinct message bodies held."""
        return len(self.blobs)

    def bytes_stored(self) -> int:
        """Total bytes of distinct message bodies held."""
        return self.blobs.bytes_stored

    def _account(self, user: str) -> _Account:
        acct = self._accounts.get(user)
        if acct is None:
            raise NoSuchAccount(f"no account {user!r}")
        return acct

    @staticmethod
    def _find(acct: _Account, name: str) -> Mailbox:
        box = acct.boxes.get(name)
        if box is None:
            box = acct.boxes.get(names.canonical(name))
            if box is None:
                raise NoSuchMailbox(f"no mailbox {name!r}")
        return box

    def _box(self, user: str, name: str) -> Mailbox:
        acct = self._accounts.get(user)
        if acct is not None:  # fast path: exact canonical name
            box = acct.boxes.get(name)
            if box is not None:
                return box
        return self._find(self._account(user), name)

    # --- accounts -------------------------------------------------------------

    def _create_account(self, op: CreateAccount) -> list[Change]:
        if op.user in self._accounts:
            return []  # idempotent
        # Nodes derive the same INBOX id from the user name (a re-created
        # account's INBOX gets the next unused derivation).
        box_id = self._derive_id(f"inbox\0{op.user}", names.INBOX)
        uidvalidity = self.allocator.allocate(op.user, names.INBOX)
        specials = [(names.validate(n), attr) for n, attr in op.special_mailboxes]
        acct = self._accounts[op.user] = _Account(op.user)
        self._add_box(acct, box_id, names.INBOX, uidvalidity)
        changes: list[Change] = [AccountCreated(op.user)]
        changes.append(MailboxCreated(op.user, names.INBOX, box_id))
        for name, attr in specials:  # RFC 6154 default special-use mailboxes
            missing = [p for p in [*names.parents(name), name] if p not in acct.boxes]
            seed = f"special\0{op.user}"
            changes += self._create_boxes(acct, [(p, self._derive_id(seed, p)) for p in missing])
            box = acct.boxes[name]
            box.special_use = box.special_use | {attr}
        return changes

    def _delete_account(self, op: DeleteAccount) -> list[Change]:
        acct = self._account(op.user)
        changes: list[Change] = []
        for box in self.mailboxes(op.user):
            changes.append(self._drop_box(acct, box))
        del self._accounts[op.user]
        _metadata.drop_scope(self._server_meta, op.user)
        changes.append(AccountDeleted(op.user))
        return changes

    # --- mailboxes ---------------------------------------------------------------

    def _create_mailbox(self, op: CreateMailbox) -> list[Change]:
        acct = self._account(op.user)
        name = names.for_create(op.name)  # RFC 3501 §6.3.3 trailing delimiter
        if name in acct.boxes:
            raise MailboxExists(f"mailbox {name!r} already exists")
        if not op.mailbox_id or op.mailbox_id in self._used_ids:
            raise MailboxExists(f"mailbox id {op.mailbox_id!r} empty or already used")
        # RFC 3501 §6.3.3: SHOULD create missing superiors.
        missing = [p for p in names.parents(name) if p not in acct.boxes]
        if not op.superiors:
            missing = []
        plan = [(p, self._derive_id(op.mailbox_id, p)) for p in missing]
        plan.append((name, op.mailbox_id))
        changes = self._create_boxes(acct, plan)
        acct.boxes[name].special_use = op.special_use  # RFC 6154 §3 CREATE USE
        return changes

    def _create_boxes(self, acct: _Account, plan: list[tuple[str, str]]) -> list[Change]:
        """Create (name, id) pairs; all UIDVALIDITYs are allocated first."""
        values = [self.allocator.allocate(acct.user, name) for name, _ in plan]
        changes: list[Change] = []
        for (name, box_id), uidvalidity in zip(plan, values, strict=True):
            self._add_box(acct, box_id, name, uidvalidity)
            changes.append(MailboxCreated(acct.user, name, box_id))
        return changes

    def _delete_mailbox(self, op: DeleteMailbox) -> list[Change]:
        acct = self._account(op.user)
        box = self._find(acct, op.name)
        if box.name == names.INBOX:
            raise CannotDelete("INBOX cannot be deleted")  # RFC 3501 §6.3.4
        # RFC 3501 §6.3.4: inferiors are kept; the name's UIDVALIDITY history
        # stays in the allocator, so a re-created mailbox gets a larger one.
        return [self._drop_box(acct, box)]

    def _rename_mailbox(self, op: RenameMailbox) -> list[Change]:
        acct = self._account(op.user)
        src = self._find(acct, op.old)
        new = names.validate(op.new)
        if new in acct.boxes:
            raise MailboxExists(f"mailbox {new!r} already exists")  # RFC 3501 §6.3.5
        # Without a seed, ids derive from this store's node name too: the same
        # RENAME on another node (or incarnation) must not mint the same ids.
        seed = op.id_seed or f"rename\0{self.node_name}\0{op.user}\0{src.name}\0{new}"
        missing = [p for p in names.parents(new) if p not in acct.boxes]
        plan = [(p, self._derive_id(seed, p)) for p in missing]
        if src.name == names.INBOX:
            return self._rename_inbox(acct, src, new, plan, seed)
        if op.inferiors and names.is_inferior(new, src.name):
            raise Cannot(f"cannot rename {src.name!r} under itself")
        old = src.name
        moving = [old] + sorted(n for n in acct.boxes if names.is_inferior(n, old))
        if not op.inferiors:  # one folder only, no superiors (replication)
            moving, plan = [old], []
        targets = [names.rebase(n, old, new) for n in moving]
        for target in targets:
            names.validate(target)  # an inferior may become too long
            if target in acct.boxes and target not in moving:
                raise MailboxExists(f"mailbox {target!r} already exists")
        # Same UID map, so UIDVALIDITY may stay -- unless a target name showed
        # that value (or a larger one) before (RFC 3501 §2.3.1.1).
        boxes = [acct.boxes[name] for name in moving]
        values = [
            self.allocator.carry(acct.user, t, b.uidvalidity)
            for t, b in zip(targets, boxes, strict=True)
        ]
        changes = self._create_boxes(acct, plan)
        return changes + self._move_names(acct, boxes, targets, values)

    def _move_names(
        self, acct: _Account, boxes: list[Mailbox], targets: list[str], values: list[int]
    ) -> list[Change]:
        """RFC 3501 §6.3.5: rename ``boxes`` (a mailbox and its inferiors)."""
        for box in boxes:
            del acct.boxes[box.name]
        changes: list[Change] = []
        regenerated: list[Change] = []
        for box, target, value in zip(boxes, targets, values, strict=True):
            old_name, box.name = box.name, target
            acct.boxes[target] = box
            changes.append(MailboxRenamed(acct.user, old_name, target, box.id))
            if value != box.uidvalidity:
                box.uidvalidity = value
                regenerated.append(MailboxRegenerated(box.id, value))
        return changes + regenerated

    def _rename_inbox(
        self, acct: _Account, inbox: Mailbox, new: str, plan: list[tuple[str, str]], seed: str
    ) -> list[Change]:
        """RFC 3501 §6.3.5: RENAME INBOX moves its messages to a new mailbox;
        INBOX stays (empty) and its inferiors are not moved."""
        plan.append((new, self._derive_id(seed, new)))
        changes = self._create_boxes(acct, plan)
        dst = acct.boxes[new]
        uids = list(inbox.uids())
        if uids:
            added, _ = self._copy_records(inbox, dst, uids)
            expunged = self._expunge_uids(inbox, uids)
            assert expunged is not None
            changes += [added, expunged]
        return changes

    def _regenerate(self, op: Regenerate) -> list[Change]:
        box = self._box(op.user, op.mailbox)
        value = self.allocator.allocate(op.user, box.name)
        box._renumber(value)
        return [MailboxRegenerated(box.id, value)]

    def _add_box(self, acct: _Account, box_id: str, name: str, uidvalidity: int) -> Mailbox:
        box = Mailbox(box_id, acct.user, name, uidvalidity)
        acct.boxes[name] = box
        self._by_id[box_id] = box
        self._used_ids.add(box_id)
        return box

    def _drop_box(self, acct: _Account, box: Mailbox) -> Change:
        for rec in box.records():
            self.blobs.release(rec.blob)
        del acct.boxes[box.name], self._by_id[box.id]
        gone = tuple(rec.instance_id for rec in box.records())
        return MailboxDeleted(acct.user, box.name, box.id, gone)

    def _derive_id(self, seed: str, name: str) -> str:
        """A deterministic mailbox id from (seed, name), never used here before."""
        base = uuid.uuid5(_ID_NAMESPACE, seed)
        for attempt in itertools.count():
            label = name if attempt == 0 else f"{name}\0{attempt}"
            candidate = uuid.uuid5(base, label).hex
            if candidate not in self._used_ids:
                return candidate
        raise AssertionError("unreachable")  # pragma: no cover

    # --- subscriptions ---------------------------------------------------------

    def _subscribe(self, op: Subscribe) -> list[Change]:
        acct = self._account(op.user)
        name = names.validate(op.name)
        if name in acct.subs:
            return []
        acct.subs.add(name)
        return [Subscribed(op.user, name)]

    def _unsubscribe(self, op: Unsubscribe) -> list[Change]:
        acct = self._account(op.user)
        name = names.canonical(op.name)
        if name not in acct.subs:
            return []
        acct.subs.discard(name)
        return [Unsubscribed(op.user, name)]

    # --- messages --------------------------------------------------------------

    def _append(self, op: Append) -> list[Change]:
        box = self._box(op.user, op.mailbox)
        node, seq = op.instance_id
        if node == self.node_name and seq > self._instance_seq:
            self._instance_seq = seq  # replayed ops never collide with new ids
        flags = box._canon_flags(op.flags)
        modseq = box.highestmodseq = box.highestmodseq + 1  # RFC 7162 §3.1
        rec = box._add(self.blobs.acquire(op.data), flags, op.internaldate, op.instance_id, modseq,
                       op.savedate or op.internaldate,  # RFC 8514 SAVEDATE
                       op.uid or None)  # UID hint (DESIGN.md §3)
        return [MessagesAdded(box.id, (rec.uid,))]

    def _store_flags(self, op: StoreFlags) -> list[Change]:
        box = self._box(op.user, op.mailbox)
        # For removal, unknown keywords are on no message: don't register them.
        remove = op.mode == "remove"
        flags = box._known_flags(op.flags) if remove else box._canon_flags(op.flags)
        changes, failed = box._store_flags(op.uids, op.mode, flags, op.unchangedsince)
        if failed:
            changes.append(StoreFailed(box.id, tuple(failed)))  # RFC 7162 §3.2
        return changes

    def _expunge(self, op: Expunge) -> list[Change]:
        box = self._box(op.user, op.mailbox)
        change = self._expunge_uids(box, op.uids)
        return [change] if change is not None else []

    def _expunge_uids(self, box: Mailbox, uids: Iterable[int]) -> MessagesExpunged | None:
        """Remove ``uids`` (ascending); a MessagesExpunged, or None if none existed."""
        gone = box._expunge(uids)
        if not gone:
            return None
        for rec in gone:
            self.blobs.release(rec.blob)
        # RFC 7162 §3.2: expunge increments the mailbox mod-sequence.
        box.highestmodseq += 1
        box._bury([rec.uid for rec in gone], box.highestmodseq)  # RFC 7162 §3.2.7
        return MessagesExpunged(box.id, tuple(rec.uid for rec in gone), box.highestmodseq,
                                tuple(rec.instance_id for rec in gone))

    def _copy(self, op: Copy) -> list[Change]:
        acct = self._account(op.user)
        src = self._find(acct, op.src)
        dst = self._find(self._account(op.dst_user) if op.dst_user else acct, op.dst)
        uids = [uid for uid in op.uids if uid in src]
        if not uids:
            return []
        savedate = op.savedate or datetime.datetime.fromtimestamp(int(self.clock()), datetime.UTC)
        added, copied = self._copy_records(src, dst, uids, savedate)  # RFC 8514: saved now
        changes: list[Change] = [added, copied]
        if op.move:  # RFC 6851 §3.3: copy, then expunge from the source
            expunged = self._expunge_uids(src, uids)
            assert expunged is not None
            changes.append(expunged)
        return changes

    def _copy_records(
        self, src: Mailbox, dst: Mailbox, uids: list[int],
        savedate: datetime.datetime | None = None,
    ) -> tuple[MessagesAdded, Copied]:
        """Copy existing ``uids`` of ``src`` to ``dst`` (RFC 3501 §6.4.7: flags
        and internal date kept, \\Recent set); bodies are shared.  The copies'
        savedate is ``savedate``, or the source's when None (RENAME INBOX)."""
        recs: list[MessageRecord] = [src._records[uid] for uid in uids]
        modseq = dst.highestmodseq = dst.highestmodseq + 1
        pairs: list[tuple[int, int]] = []
        for rec in recs:
            flags = dst._canon_flags(rec.flags)  # keyword spelling of ``dst``
            blob = self.blobs.share(rec.blob)
            new = dst._add(blob, flags, rec.internaldate, self.next_instance_id(), modseq,
                           savedate or rec.savedate)
            pairs.append((rec.uid, new.uid))
        new_uids = tuple(new_uid for _, new_uid in pairs)
        return MessagesAdded(dst.id, new_uids), Copied(src.id, dst.id, tuple(pairs))

    # --- access control and quotas (RFC 4314, RFC 9208) -------------------------

    def _set_acl(self, op: SetAcl) -> list[Change]:
        box = self._box(op.user, op.mailbox)
        rights = _acl.canonical(_acl.parse_rights(op.rights))
        if box.acl.get(op.identifier, "") == rights:
            return []
        if rights:
            box.acl[op.identifier] = rights
        else:
            del box.acl[op.identifier]
        return [AclChanged(box.id, op.identifier, rights)]

    def _delete_acl(self, op: DeleteAcl) -> list[Change]:
        box = self._box(op.user, op.mailbox)
        if box.acl.pop(op.identifier, None) is None:
            return []
        return [AclChanged(box.id, op.identifier, "")]

    def _set_quota(self, op: SetQuota) -> list[Change]:
        self._quotas[op.root] = op.limits
        return [QuotaChanged(op.root, op.limits)]

    # --- special use and metadata (RFC 6154, RFC 5464) ---------------------------

    def server_metadata(self) -> dict[tuple[str, str], bytes]:
        """The server's METADATA table ((scope, entry) -> value, see
        ``metadata.py``); read-only for callers."""
        return self._server_meta

    def _set_special_use(self, op: SetSpecialUse) -> list[Change]:
        box = self._box(op.user, op.name)
        if box.special_use == op.special_use:
            return []
        box.special_use = op.special_use
        return [SpecialUseChanged(box.id, op.special_use)]

    def _set_metadata(self, op: SetMetadata) -> list[Change]:
        actor = op.actor or op.user
        if op.mailbox:
            box = self._box(op.user, op.mailbox)
            table, box_id = box.metadata, box.id
        else:
            self._account(op.user)
            table, box_id = self._server_meta, ""
        changed = _metadata.apply_entries(table, op.entries, actor)
        return [MetadataChanged(op.user, box_id, changed)] if changed else []

    # --- checking ----------------------------------------------------------------

    def check_invariants(self) -> None:
        """Assert every store invariant (tests, debugging); O(total messages)."""
        refs: dict[str, int] = {}
        seen_ids: set[str] = set()
        for user, acct in self._accounts.items():
            assert names.INBOX in acct.boxes, f"{user} has no INBOX"
            for name, box in acct.boxes.items():
                assert box.name == name == names.validate(name), f"bad name {name!r}"
                assert box.user == user and self._by_id.get(box.id) is box
                assert box.id not in seen_ids, f"duplicate id {box.id}"
                seen_ids.add(box.id)
                root, counter = split(box.uidvalidity)
                assert root in self.roots_used, f"root {root} never used here"
                assert 0 < counter <= self.allocator.last(user, name), "uidvalidity ahead"
                box._check()
                for rec in box.records():
                    refs[rec.blob.digest] = refs.get(rec.blob.digest, 0) + 1
                    node, seq = rec.instance_id
                    assert node != self.node_name or seq <= self._instance_seq
        assert seen_ids == set(self._by_id), "stale mailbox ids"
        assert seen_ids <= self._used_ids, "live id not recorded as used"
        assert refs == self.blobs.refcounts(), "blob refcounts wrong"
