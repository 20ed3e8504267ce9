"""Applying remote cops to the store, through the rules of conflicts.py.

Every function here is idempotent and order-independent in effect: the same
set of cops applied in any order, any number of times, leaves equal stores
(up to UIDs and UIDVALIDITY, which are local, DESIGN.md §3).  Store ops are
applied with ``Replica.apply_store`` so they are not captured again.

Decisions:
- Folders materialise in the store under the name ``conflicts.display_names``
  gives them; a rename or a create that changes who wins a name renames the
  losers (through temporary names when several move at once).  A display name
  already taken by an unrelated folder falls back to a suffixed one (corner case).
- A recovered message keeps its instance id and remembers the folder it was
  added to (``Msg.origin``): tombstones and DELETE's "known" lists refer to that.
- A "known" cop carries part of a DELETE's known list (lists are chunked so
  every cop stays small); it is keyed by (folder, delete stamp).
"""

from __future__ import annotations

import base64
import datetime
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from twistedmail.store import (
    INBOX,
    Append,
    CreateAccount,
    CreateMailbox,
    DeleteMailbox,
    Expunge,
    Mailbox,
    RenameMailbox,
    SetAcl,
    SetMetadata,
    SetQuota,
    SetSpecialUse,
    StoreError,
    StoreFlags,
    Subscribe,
    Unsubscribe,
)
from twistedmail.store.names import canonical

from . import conflicts
from .cops import Cop, instance_id, instance_str
from .hlc import ZERO, Stamp, stamp
from .registers import Delete, Folder, Msg

if TYPE_CHECKING:
    from .replica import Replica

log = logging.getLogger(__name__)
TEMP_PREFIX = "#cluster-tmp-"  # transient names while folders swap names
_MAX_DEPTH = 16


def apply_cop(r: Replica, cop: Cop, blobs: Mapping[str, bytes]) -> None:
    """Apply one remote (or state) cop; cops of accounts not held change nothing."""
    user = cop.body.get("u")
    if user is not None and not r.holds(user):
        return
    _HANDLERS[cop.kind](r, cop, blobs)


# --- accounts and folders -----------------------------------------------------------


def ensure_account(r: Replica, user: str) -> None:
    """Create ``user``'s account (bare: INBOX only) if this store lacks it."""
    if r.store.has_account(user):
        return
    r.apply_store(CreateAccount(user))
    if r.store.has_account(user):
        box = r.store.mailbox(user, INBOX)
        merge_folder(r, user, box.id, INBOX, ZERO, ZERO)


def merge_folder(
    r: Replica, user: str, fid: str, name: str, st: Stamp, created: Stamp | None,
    use: frozenset[str] | None = None, use_stamp: Stamp | None = None,
    pending: set[str] | None = None,
) -> Folder:
    """Merge a folder's name register (LWW) and create stamp (min); make the
    store show it (rule 4), or with ``pending`` only collect the names to
    reconcile later.  Unparks cops that waited for it."""
    f = r.folders.get(fid)
    fresh = f is None or f.created is None
    if f is None:
        f = r.folders[fid] = Folder(fid, user, name, st, created)
    elif f.user != user:
        log.warning("folder %s claimed for %s but belongs to %s", fid, user, f.user)
        return f
    else:
        if conflicts.lww(st, f.stamp):
            f.name, f.stamp = name, st
        if created is not None and (f.created is None or created < f.created):
            f.created = created
    source = r.recovered_of.get(fid)
    if source is not None:  # a Recovered folder: its registers follow the DELETEs
        follow_deletes(f, r.folders[source])
    if use is not None and use_stamp is not None:
        set_use(r, f, use, use_stamp)
    refresh(r, f, pending)
    if fresh and f.created is not None:
        r.unpark(fid)
    return f


def follow_deletes(rf: Folder, f: Folder) -> None:
    """Rule 5: the Recovered folder ``rf`` of ``f`` is named after ``f``'s latest
    DELETE and created at its first, whatever order they were learnt in."""
    last = f.last_delete()
    if conflicts.lww(last.stamp, rf.stamp):
        rf.name, rf.stamp = conflicts.recovered_name(last.name), last.stamp
    first = min(d.stamp for d in f.deletes)
    if rf.created is None or first < rf.created:
        rf.created = first


def refresh(r: Replica, f: Folder, pending: set[str] | None = None) -> None:
    """Update the claims index for ``f`` and reconcile the names involved
    (or add them to ``pending``: a local op's changes are registered first,
    then reconciled once, as the store already shows them all)."""
    claims = r.claims.setdefault(f.user, {})
    old = r.claim_of.get(f.id)
    want = f.name if f.live else None
    affected: set[str] = set()
    if old != want:
        if old is not None:
            group = claims.get(old, set())
            group.discard(f.id)
            if not group:
                claims.pop(old, None)
            affected.add(old)
            del r.claim_of[f.id]
        if want is not None:
            claims.setdefault(want, set()).add(f.id)
            r.claim_of[f.id] = want
    if want is not None:
        affected.add(want)
    if pending is not None:
        pending.update(affected)
    else:
        reconcile(r, f.user, affected)


def reconcile(r: Replica, user: str, names: Iterable[str]) -> None:
    """Rule 4: make the store show every live claimant of ``names`` under its
    display name, creating folders that are not in the store yet."""
    claims = r.claims.get(user, {})
    moves: list[tuple[str, str]] = []
    for name in sorted(names):
        group = claims.get(name)
        if not group:
            continue
        desired = conflicts.display_names(
            (fid, name, r.folders[fid].created or ZERO) for fid in group)
        for fid in sorted(desired):
            box = r.store.mailbox_by_id(fid)
            if box is None or box.name != desired[fid]:
                moves.append((fid, desired[fid]))
    if len(moves) > 1:  # free every target first: names may swap
        for fid, _ in moves:
            box = r.store.mailbox_by_id(fid)
            if box is not None and box.name != INBOX:
                r.apply_store(RenameMailbox(user, box.name, TEMP_PREFIX + fid, inferiors=False))
    for fid, want in moves:
        _place(r, user, fid, want)


def _lookup(r: Replica, user: str, name: str) -> Mailbox | None:
    try:
        return r.store.mailbox(user, name)
    except StoreError:
        return None


def _place(r: Replica, user: str, fid: str, want: str) -> None:
    occupant = _lookup(r, user, want)
    if occupant is not None and occupant.id != fid:
        want = conflicts.suffixed(want, fid)  # taken by an unrelated folder
        occupant = _lookup(r, user, want)
        if occupant is not None and occupant.id != fid:
            log.warning("folder %s of %s has no free name", fid, user)
            return
    box = r.store.mailbox_by_id(fid)
    if box is not None:
        if box.name != INBOX:
            r.apply_store(RenameMailbox(user, box.name, want, inferiors=False))
        return
    f = r.folders[fid]
    if r.apply_store(CreateMailbox(user, want, fid, f.use, superiors=False)) is None:
        return
    for who, (rights, _) in sorted(f.acl.items()):
        if rights:
            r.apply_store(SetAcl(user, want, who, rights))
    for (scope, entry), (value, _) in sorted(f.meta.items()):
        if value is not None:
            r.apply_store(SetMetadata(user, want, ((entry, value),), scope or user))


def box_of(r: Replica, f: Folder) -> Mailbox | None:
    """The store mailbox of a folder, if it is in the store."""
    return r.store.mailbox_by_id(f.id)


def set_use(r: Replica, f: Folder, use: frozenset[str], st: Stamp) -> None:
    """RFC 6154 special use: a LWW register per folder."""
    if not conflicts.lww(st, f.use_stamp):
        return
    f.use, f.use_stamp = use, st
    box = box_of(r, f)
    if box is not None and box.special_use != use:
        r.apply_store(SetSpecialUse(f.user, box.name, use))


def set_acl(r: Replica, f: Folder, who: str, rights: str, st: Stamp) -> None:
    """RFC 4314 ACL entry: a LWW register per (folder, identifier); "" = none."""
    current = f.acl.get(who)
    if not conflicts.lww(st, current[1] if current else None):
        return
    f.acl[who] = (rights, st)
    box = box_of(r, f)
    if box is not None and box.acl.get(who, "") != rights:
        r.apply_store(SetAcl(f.user, box.name, who, rights))


def set_meta(r: Replica, user: str, f: Folder | None, scope: str, entry: str,
             value: bytes | None, st: Stamp) -> None:
    """RFC 5464 entry: a LWW register per (folder or server, scope, entry)."""
    low = entry.lower()
    table = f.meta if f is not None else r.server_meta
    key = (scope, low)
    current = table.get(key)
    if not conflicts.lww(st, current[1] if current else None):
        return
    table[key] = (value, st)
    if f is None:
        ensure_account(r, user)
        r.apply_store(SetMetadata(user, "", ((low, value),), scope or user))
        return
    box = box_of(r, f)
    if box is not None:
        r.apply_store(SetMetadata(f.user, box.name, ((low, value),), scope or f.user))


# --- messages -------------------------------------------------------------------------


def note_tomb(r: Replica, inst: str, folder: str, user: str) -> None:
    """Rule 2: ``inst`` is dead forever; remember the folder it was added to."""
    old = r.tombs.get(inst)
    r.early.pop(inst, None)
    r.early_user.pop(inst, None)
    if old is not None and (old[0] or not folder):
        return
    r.tombs[inst] = (folder, user)
    if folder:
        r.tombs_by_folder.setdefault(folder, set()).add(inst)


def kill(r: Replica, insts: Iterable[str], folder: str, user: str) -> None:
    """Tombstone ``insts`` (added to ``folder``) and expunge the live ones."""
    by_box: dict[str, list[int]] = {}
    for inst in insts:
        msg = r.msgs.pop(inst, None)
        note_tomb(r, inst, msg.origin if msg is not None else folder, user)
        if msg is None:
            continue
        box = r.store.mailbox_by_id(msg.folder)
        uid = box.uid_of(instance_id(inst)) if box is not None else None
        if box is not None and uid is not None:
            by_box.setdefault(box.id, []).append(uid)
    for box_id, uids in by_box.items():
        box = r.store.mailbox_by_id(box_id)
        if box is not None:
            r.apply_store(Expunge(box.user, box.name, tuple(uids)))


def recovered(r: Replica, f: Folder) -> Folder:
    """Rule 5: the Recovered folder of deleted folder ``f``, created if needed.

    Creating it is announced with an own "folder" cop: whether a node needs it
    depends on the order it learnt things in, so existence is made the union
    of every node's decision (folder cops merge; its id and stamps are derived
    from ``f``'s DELETEs, so every node proposes the same register values)."""
    rid = conflicts.recovered_id(f.id)
    rf = r.folders.get(rid)
    if rf is not None and (rf.created is not None or rf.deleted):
        return rf
    last = f.last_delete()
    first = min(d.stamp for d in f.deletes)
    name = conflicts.recovered_name(last.name)
    ensure_account(r, f.user)
    rf = merge_folder(r, f.user, rid, name, last.stamp, first)
    r.emit("folder", {"u": f.user, "f": rid, "name": name, "st": list(last.stamp),
                      "cs": list(first)})
    return rf


def destination(r: Replica, f: Folder, inst: str) -> Folder | None:
    """Rule 5: where instance ``inst``, added to ``f``, lives: ``f`` if live;
    else, unless a DELETE on the way knew it (then None: it is dead), the
    Recovered folder of ``f`` (recursively, when that was deleted too)."""
    for _ in range(_MAX_DEPTH):
        if not f.deleted:
            return f
        if conflicts.known_by_delete(inst, [d.known for d in f.deletes]):
            return None
        f = recovered(r, f)
    return None


def _date(text: str | None) -> datetime.datetime | None:
    return None if text is None else datetime.datetime.fromisoformat(text)


def _add(r: Replica, cop: Cop, blobs: Mapping[str, bytes]) -> None:
    b = cop.body
    inst, fid, user = b["i"], b["f"], b["u"]
    st = stamp(b["st"])
    fr = [(flag, value, stamp(s)) for flag, value, s in b.get("fr", ())]
    if inst in r.msgs:  # rule 1 (a state cop still merges its registers)
        if fr:
            _flag_updates(r, user, [(inst, fr)])
        return
    f = r.folders.get(fid)
    if f is None or f.created is None and not f.deleted:
        r.park(fid, cop, blobs)
        return
    if inst in r.tombs:  # rule 2
        note_tomb(r, inst, fid, user)
        return
    dest = destination(r, f, inst)
    if dest is None:  # a DELETE knew it: dead
        note_tomb(r, inst, fid, user)
        return
    box = box_of(r, dest)
    if box is None:
        log.warning("add %s to %s not applied (folder %s not in the store)", inst, fid, dest.id)
        return
    data = r.find_blob(b["d"], blobs)
    if data is None:  # the sender lacked it too: wait for the body or a tombstone
        r.park("blob:" + b["d"], cop, blobs)
        return
    regs = {k: v for k, v in r.early.pop(inst, {}).items() if v[1] > st}
    r.early_user.pop(inst, None)
    for flag, value, s in fr:
        conflicts.flag_update(regs, st, flag, value, s)
    flags = conflicts.effective_flags(b["fl"], st, regs)
    op = Append(box.user, box.name, data, flags, _date(b["t"]) or _now(), instance_id(inst),
                _date(b["sv"]), uid=b["uid"])
    if r.apply_store(op) is not None:
        r.msgs[inst] = Msg(box.id, fid, st, regs or None)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


Update = tuple[str, bool, Stamp]


def _flag_updates(r: Replica, user: str, items: Iterable[tuple[str, list[Update]]]) -> None:
    """Rule 3 for many (instance, [(flag, value, stamp)]) at once; the store
    gets one "replace" STORE per (mailbox, resulting flag set)."""
    stores: dict[tuple[str, frozenset[str]], list[int]] = {}
    for inst, updates in items:
        if inst in r.tombs:
            continue  # rule 2
        msg = r.msgs.get(inst)
        if msg is None:  # add not here yet: keep the registers for it
            regs = r.early.setdefault(inst, {})
            r.early_user[inst] = user
            for flag, value, st in updates:
                conflicts.flag_update(regs, None, flag, value, st)
            continue
        regs = msg.regs if msg.regs is not None else {}
        won = [(flag, value) for flag, value, st in updates
               if conflicts.flag_update(regs, msg.stamp, flag, value, st)]
        if not won:
            continue
        msg.regs = regs
        box = r.store.mailbox_by_id(msg.folder)
        uid = box.uid_of(instance_id(inst)) if box is not None else None
        rec = box.get(uid) if box is not None and uid is not None else None
        if box is None or rec is None:
            continue
        current = {fl.lower(): fl for fl in rec.flags}
        for flag, value in won:
            if value:
                current[flag.lower()] = flag
            else:
                current.pop(flag.lower(), None)
        new = frozenset(current.values())
        if new != rec.flags:
            stores.setdefault((box.id, new), []).append(rec.uid)
    for (box_id, flags), uids in stores.items():
        box = r.store.mailbox_by_id(box_id)
        if box is not None:
            r.apply_store(StoreFlags(box.user, box.name, tuple(uids), "replace", flags))


def _flags(r: Replica, cop: Cop, blobs: Mapping[str, bytes]) -> None:
    b = cop.body
    st = stamp(b["st"])
    items = []
    for set_flags, clear_flags, insts in b["ch"]:
        updates = [(f, True, st) for f in set_flags] + [(f, False, st) for f in clear_flags]
        items += [(inst, updates) for inst in insts]
    _flag_updates(r, b["u"], items)


def _expunge(r: Replica, cop: Cop, blobs: Mapping[str, bytes]) -> None:
    kill(r, cop.body["i"], cop.body["f"], cop.body["u"])


# --- folder cops ------------------------------------------------------------------------


def _account(r: Replica, cop: Cop, blobs: Mapping[str, bytes]) -> None:
    user = cop.body["u"]
    ensure_account(r, user)
    for fid, name, use in cop.body["folders"]:
        merge_folder(r, user, fid, name, ZERO, ZERO, frozenset(use), ZERO)


def _folder(r: Replica, cop: Cop, blobs: Mapping[str, bytes]) -> None:
    b = cop.body
    user, fid = b["u"], b["f"]
    st = stamp(b["st"])
    created = stamp(b["cs"]) if "cs" in b else st
    known = r.folders.get(fid)
    if known is None or not known.deleted:
        ensure_account(r, user)
    use = frozenset(b["use"]) if "use" in b else None
    ust = stamp(b["ust"]) if "ust" in b else st
    f = merge_folder(r, user, fid, b["name"], st, created, use, ust)
    if f.user != user:
        return
    for who, rights, s in b.get("acl", ()):
        set_acl(r, f, who, rights, stamp(s))
    for scope, entry, value, s in b.get("meta", ()):
        set_meta(r, user, f, scope, entry, _unb64(value), stamp(s))


def _rename(r: Replica, cop: Cop, blobs: Mapping[str, bytes]) -> None:
    b = cop.body
    f = r.folders.get(b["f"])
    if f is None:
        r.park(b["f"], cop, blobs)
        return
    merge_folder(r, b["u"], b["f"], b["name"], stamp(b["st"]), None)


def _delete(r: Replica, cop: Cop, blobs: Mapping[str, bytes]) -> None:
    b = cop.body
    user, fid, name = b["u"], b["f"], b["name"]
    st = stamp(b["st"])
    f = r.folders.get(fid)
    fresh = f is None
    if f is None:
        f = r.folders[fid] = Folder(fid, user, name, ZERO, None)
    elif f.user != user:
        return
    known = set(b["known"]) | r.dknown.pop((fid, st), ("", set()))[1]
    same = next((d for d in f.deletes if d.stamp == st), None)
    if same is not None:  # this DELETE again, maybe with more of its known list
        extra = known - same.known
        same.known |= extra
        kill(r, extra, fid, user)
        return
    delete_folder(r, f, Delete(st, name, known))
    if fresh:
        r.unpark(fid)


def delete_folder(r: Replica, f: Folder, d: Delete, pending: set[str] | None = None) -> None:
    """Rule 5: record a DELETE of ``f``: what it knew dies, the rest is recovered."""
    f.deletes.append(d)
    kill(r, d.known, f.id, f.user)
    box = box_of(r, f)
    survivors = list(box.records()) if box is not None else []
    rid = conflicts.recovered_id(f.id)
    r.recovered_of[rid] = f.id
    rf = r.folders.get(rid)
    if rf is not None:  # its registers follow the DELETEs
        follow_deletes(rf, f)
        refresh(r, rf)
    for rec in survivors:  # what the deleter did not know is recovered
        inst = instance_str(rec.instance_id)
        dest = destination(r, f, inst)
        tbox = box_of(r, dest) if dest is not None else None
        if tbox is None:
            kill(r, [inst], f.id, f.user)
            continue
        op = Append(f.user, tbox.name, rec.blob.data, rec.flags, rec.internaldate,
                    rec.instance_id, rec.savedate)
        if r.apply_store(op) is not None and inst in r.msgs:
            r.msgs[inst].folder = tbox.id
    if box is not None and box.name != INBOX:
        r.apply_store(DeleteMailbox(f.user, box.name))
    refresh(r, f, pending)


def _known(r: Replica, cop: Cop, blobs: Mapping[str, bytes]) -> None:
    b = cop.body
    fid, st = b["f"], stamp(b["st"])
    f = r.folders.get(fid)
    same = next((d for d in f.deletes if d.stamp == st), None) if f is not None else None
    if same is None:
        r.dknown.setdefault((fid, st), (b["u"], set()))[1].update(b["i"])
        return
    extra = set(b["i"]) - same.known
    same.known |= extra
    kill(r, extra, fid, b["u"])


def _park_unknown(r: Replica, cop: Cop, blobs: Mapping[str, bytes]) -> Folder | None:
    f = r.folders.get(cop.body["f"])
    if f is None or f.created is None and not f.deleted:
        r.park(cop.body["f"], cop, blobs)
        return None
    return f if f.user == cop.body["u"] else None


def _acl(r: Replica, cop: Cop, blobs: Mapping[str, bytes]) -> None:
    f = _park_unknown(r, cop, blobs)
    if f is not None:
        set_acl(r, f, cop.body["who"], cop.body["rights"], stamp(cop.body["st"]))


def _use(r: Replica, cop: Cop, blobs: Mapping[str, bytes]) -> None:
    f = _park_unknown(r, cop, blobs)
    if f is not None:
        set_use(r, f, frozenset(cop.body["use"]), stamp(cop.body["st"]))


def _meta(r: Replica, cop: Cop, blobs: Mapping[str, bytes]) -> None:
    b = cop.body
    f = None
    if b["f"]:
        f = _park_unknown(r, cop, blobs)
        if f is None:
            return
    actor = b["actor"] or b["u"]
    st = stamp(b["st"])
    for entry, value in b["e"]:
        scope = actor if entry.lower().startswith("/private") else ""
        set_meta(r, b["u"], f, scope, entry, _unb64(value), st)


def _unb64(value: str | None) -> bytes | None:
    return None if value is None else base64.b64decode(value.encode("ascii"), validate=True)


# --- account-level registers --------------------------------------------------------------


def _sub(r: Replica, cop: Cop, blobs: Mapping[str, bytes]) -> None:
    b = cop.body
    key = (b["u"], canonical(b["name"]))
    st = stamp(b["st"])
    current = r.subs.get(key)
    if not conflicts.lww(st, current[1] if current else None):
        return
    r.subs[key] = (b["on"], st)
    ensure_account(r, b["u"])
    op = Subscribe(b["u"], b["name"]) if b["on"] else Unsubscribe(b["u"], b["name"])
    r.apply_store(op)


def _quota(r: Replica, cop: Cop, blobs: Mapping[str, bytes]) -> None:
    b = cop.body
    st = stamp(b["st"])
    current = r.quotas.get(b["root"])
    if not conflicts.lww(st, current[1] if current else None):
        return
    limits = tuple((name, value) for name, value in b["limits"])
    r.quotas[b["root"]] = (limits, st)
    r.apply_store(SetQuota(b["root"], limits))


def _reserve(r: Replica, cop: Cop, blobs: Mapping[str, bytes]) -> None:
    node, top = cop.body["node"], cop.body["top"]
    if top > r.reservations.get(node, 0):
        r.reservations[node] = top


_HANDLERS: dict[str, Any] = {
    "account": _account,
    "folder": _folder,
    "rename": _rename,
    "delete": _delete,
    "known": _known,
    "add": _add,
    "flags": _flags,
    "expunge": _expunge,
    "sub": _sub,
    "acl": _acl,
    "use": _use,
    "meta": _meta,
    "quota": _quota,
    "reserve": _reserve,
}

