"""Local capture: a successful local store op becomes own cops (DESIGN.md §2, §4).

The translation works on the op's change records, so every op kind the IMAP
layer uses is covered by the same few cases: MailboxCreated -> "folder",
MailboxRenamed -> "rename", MailboxDeleted -> "known"* + "delete",
MessagesAdded -> "add" per message (APPEND, COPY, MOVE, RENAME INBOX,
cross-account COPY), FlagsChanged -> "flags", MessagesExpunged -> "expunge",
(Un)Subscribed -> "sub", AclChanged -> "acl", SpecialUseChanged -> "use",
MetadataChanged -> "meta", QuotaChanged -> "quota"; CreateAccount -> one
"account" cop.  Regenerate and DeleteAccount are not replicated.

Invariants:
- Registers are updated exactly as ``apply.py`` would update them for the
  emitted cops, so a node's own state equals what its cops make elsewhere.
- Instance lists are split into cops of at most ``CHUNK`` instances.
- All cops of one op share nothing mutable; each carries its own HLC stamp
  (the flags of one op share one stamp).
"""

from __future__ import annotations

import base64
import datetime
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from twistedmail.store import (
    AccountCreated,
    AclChanged,
    Change,
    CreateAccount,
    DeleteAccount,
    FlagsChanged,
    MailboxCreated,
    MailboxDeleted,
    MailboxRenamed,
    MessagesAdded,
    MessagesExpunged,
    MetadataChanged,
    Op,
    QuotaChanged,
    Regenerate,
    SetMetadata,
    SpecialUseChanged,
    Subscribed,
    Unsubscribed,
)

from . import apply as _apply
from .cops import instance_str
from .hlc import ZERO, Stamp
from .registers import Delete, Msg

if TYPE_CHECKING:
    from .replica import Replica

log = logging.getLogger(__name__)
CHUNK = 500  # instances per cop: keeps each encoded cop far below 64 KiB


def chunks(items: Sequence[str]) -> list[list[str]]:
    """``items`` in lists of at most ``CHUNK`` (one empty list if none)."""
    return [list(items[i:i + CHUNK]) for i in range(0, len(items), CHUNK)] or [[]]


def capture(r: Replica, op: Op, changes: list[Change]) -> None:
    """Emit the cops of one local op (see the module docstring)."""
    if isinstance(op, Regenerate) or not changes:
        return
    if isinstance(op, DeleteAccount):
        log.warning("DeleteAccount %s is not replicated", op.user)
        return
    if isinstance(op, CreateAccount) and isinstance(changes[0], AccountCreated):
        _account(r, op.user, changes)
        return
    flags = _Flags(r)
    names: dict[str, set[str]] = {}  # user -> folder names to reconcile (rule 4)
    for change in changes:
        handler = _HANDLERS.get(type(change))
        if handler is FlagsChanged:
            flags.add(change)  # type: ignore[arg-type]
        elif handler in _FOLDER_HANDLERS:
            handler(r, op, change, names.setdefault(change.user, set()))  # type: ignore[attr-defined]
        elif handler is not None:
            handler(r, op, change)
    flags.emit()
    for user, affected in names.items():
        _apply.reconcile(r, user, affected)


def _stamp(r: Replica) -> list[Any]:
    return list(r.hlc.now())


def _account(r: Replica, user: str, changes: list[Change]) -> None:
    folders = []
    for change in changes:
        if isinstance(change, MailboxCreated):
            box = r.store.mailbox_by_id(change.mailbox_id)
            use = box.special_use if box is not None else frozenset()
            folders.append([change.mailbox_id, change.name, sorted(use)])
            _apply.merge_folder(r, user, change.mailbox_id, change.name, ZERO, ZERO, use, ZERO)
    r.emit("account", {"u": user, "folders": folders})


def _created(r: Replica, op: Op, ch: MailboxCreated, pending: set[str]) -> None:
    st = r.hlc.now()
    box = r.store.mailbox_by_id(ch.mailbox_id)
    use = box.special_use if box is not None else frozenset()
    _apply.merge_folder(r, ch.user, ch.mailbox_id, ch.name, st, st, use, st, pending)
    r.emit("folder", {"u": ch.user, "f": ch.mailbox_id, "name": ch.name, "st": list(st),
                      "use": sorted(use)})


def _renamed(r: Replica, op: Op, ch: MailboxRenamed, pending: set[str]) -> None:
    st = r.hlc.now()
    created = None if ch.mailbox_id in r.folders else st
    _apply.merge_folder(r, ch.user, ch.mailbox_id, ch.new, st, created, pending=pending)
    r.emit("rename", {"u": ch.user, "f": ch.mailbox_id, "name": ch.new, "st": list(st)})


def _deleted(r: Replica, op: Op, ch: MailboxDeleted, pending: set[str]) -> None:
    st = r.hlc.now()
    # What the deleter knew: its messages, and those expunged from it before
    # (so no peer takes an expunge it hasn't seen yet for unknown mail, rule 5).
    known = [instance_str(i) for i in ch.instances]
    known += sorted(r.tombs_by_folder.get(ch.mailbox_id, set()) - set(known))
    parts = chunks(known)
    for part in parts[:-1]:
        r.emit("known", {"u": ch.user, "f": ch.mailbox_id, "st": list(st), "i": part})
    r.emit("delete", {"u": ch.user, "f": ch.mailbox_id, "name": ch.name, "st": list(st),
                      "known": parts[-1]})
    f = r.folders.get(ch.mailbox_id)
    if f is None:
        f = _apply.merge_folder(r, ch.user, ch.mailbox_id, ch.name, st, st, pending=pending)
    _apply.delete_folder(r, f, Delete(st, ch.name, set(known)), pending)


def _added(r: Replica, op: Op, ch: MessagesAdded) -> None:
    box = r.store.mailbox_by_id(ch.mailbox_id)
    if box is None:
        return
    for uid in ch.uids:
        rec = box.get(uid)
        if rec is None:
            continue
        inst = instance_str(rec.instance_id)
        st = r.hlc.now()
        r.msgs[inst] = Msg(box.id, box.id, st)
        saved = rec.savedate
        r.emit("add", {
            "u": box.user, "f": box.id, "i": inst, "d": rec.blob.digest,
            "fl": sorted(rec.flags) if rec.flags else [], "t": _iso(rec.internaldate),
            "sv": _iso(saved) if saved is not None and saved != rec.internaldate else None,
            "uid": uid, "st": list(st),
        }, (rec.blob.digest,))


_last_iso: list[Any] = [None, ""]  # (datetime, its ISO form): APPENDs of one second share it


def _iso(when: datetime.datetime) -> str:
    """``when.isoformat()``, remembered for the last value (same instant and zone:
    equal datetimes in different zones print differently)."""
    last = _last_iso[0]
    if last is None or when != last or when.tzinfo != last.tzinfo:
        _last_iso[0], _last_iso[1] = when, when.isoformat()
    return str(_last_iso[1])


class _Flags:
    """Flag changes of one op, grouped by (set, cleared) for compact cops."""

    def __init__(self, r: Replica) -> None:
        self.r = r
        self.stamp: Stamp | None = None
        self.groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[str]] = {}
        self.user = ""

    def add(self, ch: FlagsChanged) -> None:
        r = self.r
        box = r.store.mailbox_by_id(ch.mailbox_id)
        rec = box.get(ch.uid) if box is not None else None
        if box is None or rec is None:
            return
        if self.stamp is None:
            self.stamp = r.hlc.now()
        self.user = box.user
        old = {f.lower() for f in ch.old}
        new = {f.lower() for f in ch.flags}
        set_flags = tuple(sorted(f for f in ch.flags if f.lower() not in old))
        cleared = tuple(sorted(f for f in ch.old if f.lower() not in new))
        inst = instance_str(rec.instance_id)
        msg = r.msgs.get(inst)
        if msg is not None:
            regs = msg.regs if msg.regs is not None else {}
            for flag in set_flags:
                regs[flag.lower()] = (True, self.stamp, flag)
            for flag in cleared:
                regs[flag.lower()] = (False, self.stamp, flag)
            msg.regs = regs
        self.groups.setdefault((set_flags, cleared), []).append(inst)

    def emit(self) -> None:
        if self.stamp is None:
            return
        st = list(self.stamp)
        for (set_flags, cleared), insts in self.groups.items():
            for part in chunks(insts):
                self.r.emit("flags", {"u": self.user, "st": st,
                                      "ch": [[list(set_flags), list(cleared), part]]})


def _expunged(r: Replica, op: Op, ch: MessagesExpunged) -> None:
    box_user = _user_of(r, ch.mailbox_id)
    by_origin: dict[str, list[str]] = {}
    for ident in ch.instances:
        inst = instance_str(ident)
        msg = r.msgs.pop(inst, None)
        origin = msg.origin if msg is not None else ch.mailbox_id
        _apply.note_tomb(r, inst, origin, box_user)
        by_origin.setdefault(origin, []).append(inst)
    for origin, insts in by_origin.items():
        for part in chunks(insts):
            r.emit("expunge", {"u": box_user, "f": origin, "i": part})


def _user_of(r: Replica, box_id: str) -> str:
    f = r.folders.get(box_id)
    if f is not None:
        return f.user
    box = r.store.mailbox_by_id(box_id)
    return box.user if box is not None else ""


def _subscribed(r: Replica, op: Op, ch: Subscribed | Unsubscribed) -> None:
    st = r.hlc.now()
    on = isinstance(ch, Subscribed)
    r.subs[(ch.user, ch.name)] = (on, st)
    r.emit("sub", {"u": ch.user, "name": ch.name, "on": on, "st": list(st)})


def _acl(r: Replica, op: Op, ch: AclChanged) -> None:
    f = r.folders.get(ch.mailbox_id)
    if f is None:
        return
    st = r.hlc.now()
    f.acl[ch.identifier] = (ch.rights, st)
    r.emit("acl", {"u": f.user, "f": f.id, "who": ch.identifier, "rights": ch.rights,
                   "st": list(st)})


def _use(r: Replica, op: Op, ch: SpecialUseChanged) -> None:
    f = r.folders.get(ch.mailbox_id)
    if f is None:
        return
    st = r.hlc.now()
    f.use, f.use_stamp = ch.special_use, st
    r.emit("use", {"u": f.user, "f": f.id, "use": sorted(ch.special_use), "st": list(st)})


def _metadata(r: Replica, op: Op, ch: MetadataChanged) -> None:
    if not isinstance(op, SetMetadata):
        return
    actor = op.actor or op.user
    values = {name.lower(): value for name, value in op.entries}
    f = r.folders.get(ch.mailbox_id) if ch.mailbox_id else None
    if ch.mailbox_id and f is None:
        return
    st = r.hlc.now()
    entries = []
    for low in ch.entries:
        value = values.get(low)
        scope = actor if low.startswith("/private") else ""
        table = f.meta if f is not None else r.server_meta
        table[(scope, low)] = (value, st)
        entries.append([low, None if value is None else base64.b64encode(value).decode()])
    r.emit("meta", {"u": ch.user, "f": ch.mailbox_id, "actor": actor, "e": entries,
                    "st": list(st)})


def _quota(r: Replica, op: Op, ch: QuotaChanged) -> None:
    st = r.hlc.now()
    r.quotas[ch.root] = (ch.limits, st)
    r.emit("quota", {"root": ch.root, "limits": [list(p) for p in ch.limits], "st": list(st)})


_FOLDER_HANDLERS = (_created, _renamed, _deleted)
_HANDLERS: dict[type, Any] = {
    MailboxCreated: _created,
    MailboxRenamed: _renamed,
    MailboxDeleted: _deleted,
    MessagesAdded: _added,
    FlagsChanged: FlagsChanged,
    MessagesExpunged: _expunged,
    Subscribed: _subscribed,
    Unsubscribed: _subscribed,
    AclChanged: _acl,
    SpecialUseChanged: _use,
    MetadataChanged: _metadata,
    QuotaChanged: _quota,
}
