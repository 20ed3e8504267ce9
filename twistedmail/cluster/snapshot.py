"""Snapshots: the whole replicated state of the held accounts as seq-0 cops.

Applying a snapshot is a merge through the ordinary apply path (conflicts rule
7), so a snapshot can land on an empty store (a restarted node) or on a store
with state of its own.  Order of the cops: reservations, quotas, accounts,
subscriptions, server metadata, tombstones, early flag registers, deleted
folders (their DELETEs first, so they never materialise), live folders,
messages per folder in UID order (the local UID as hint, so a node restarted
from a peer's snapshot gets that peer's UIDs), then pending DELETE lists and
parked cops (copied at seq 0: every cop is a merge).  Cops held above a gap
are left out: they are not applied here, and a snapshot must not show more
than its sender shows (else the two would differ for good if the gap never
fills, e.g. its origin died).

``adopt`` registers what a store holds before a Replica is attached to it
(stamps = now; INBOX gets the zero stamp like every account's INBOX).
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from twistedmail.store import INBOX

from .capture import chunks
from .cops import Cop, instance_str
from .hlc import ZERO, Stamp
from .registers import Folder, Msg

if TYPE_CHECKING:
    from .replica import Replica


def adopt(r: Replica) -> bool:
    """Register the store's existing content; True if there was any."""
    st = r.hlc.now()
    found = False
    for user in r.store.users():
        if not r.holds(user):
            continue
        found = True
        for box in r.store.mailboxes(user):
            fst = ZERO if box.name == INBOX else st
            f = Folder(box.id, user, box.name, fst, fst, use=box.special_use, use_stamp=fst)
            f.acl = {who: (rights, st) for who, rights in box.acl.items()}
            f.meta = {key: (value, st) for key, value in box.metadata.items()}
            r.folders[box.id] = f
            r.claims.setdefault(user, {}).setdefault(box.name, set()).add(box.id)
            r.claim_of[box.id] = box.name
            for rec in box.records():
                r.msgs[instance_str(rec.instance_id)] = Msg(box.id, box.id, st)
        for name in r.store.subscriptions(user):
            r.subs[(user, name)] = (True, st)
    for key, value in r.store.server_metadata().items():
        r.server_meta[key] = (value, st)
    return found


def _b64(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode("ascii")


def _st(stamp: Stamp) -> list[Any]:
    return list(stamp)


def state_cops(r: Replica) -> list[Cop]:
    """Every register and message of the held accounts as seq-0 cops."""
    out: list[Cop] = []

    def put(kind: str, body: dict[str, Any], blobs: tuple[str, ...] = ()) -> None:
        out.append(Cop(r.incarnation, 0, kind, body, blobs))

    for node, top in sorted(r.reservations.items()):
        put("reserve", {"node": node, "top": top})
    for root, (limits, st) in sorted(r.quotas.items()):
        put("quota", {"root": root, "limits": [list(p) for p in limits], "st": _st(st)})
    users = [u for u in r.store.users() if r.holds(u)]
    for user in users:
        put("account", {"u": user, "folders": []})
    for (user, name), (on, st) in sorted(r.subs.items()):
        if r.holds(user):
            put("sub", {"u": user, "name": name, "on": on, "st": _st(st)})
    for (scope, entry), (value, st) in sorted(r.server_meta.items()):
        owner = scope or (users[0] if users else "")
        if owner:
            put("meta", {"u": owner, "f": "", "actor": owner, "e": [[entry, _b64(value)]],
                         "st": _st(st)})
    _tombs(r, put)
    _early(r, put)
    folders = sorted((f for f in r.folders.values() if r.holds(f.user)),
                     key=lambda f: (f.user, f.name, f.id))
    for f in folders:
        if f.deleted:
            _deletes(f, put)
    for f in folders:
        if f.created is not None:
            put("folder", _folder_body(f))
    for f in folders:
        if f.live:
            _messages(r, f, put)
    for (fid, st), (user, insts) in sorted(r.dknown.items()):
        for part in chunks(sorted(insts)):
            put("known", {"u": user, "f": fid, "st": _st(st), "i": part})
    # Parked cops count as applied, so they travel; held ones (above a gap) do
    # not: the snapshot shows what this node applied, no more.
    waiting = [p for items in r.parked.values() for p in items]
    for item in waiting:
        put(item.cop.kind, item.cop.body, item.cop.blobs)
    return out


def _tombs(r: Replica, put: Any) -> None:
    groups: dict[tuple[str, str], list[str]] = {}
    for inst, (folder, user) in r.tombs.items():
        if user and r.holds(user):
            groups.setdefault((user, folder), []).append(inst)
    for (user, folder), insts in sorted(groups.items()):
        for part in chunks(sorted(insts)):
            put("expunge", {"u": user, "f": folder, "i": part})


def _early(r: Replica, put: Any) -> None:
    for inst, regs in sorted(r.early.items()):
        user = r.early_user.get(inst, "")
        if not user or not r.holds(user):
            continue
        for _, (value, st, spelling) in sorted(regs.items()):
            change = [[spelling], [], [inst]] if value else [[], [spelling], [inst]]
            put("flags", {"u": user, "st": _st(st), "ch": [change]})


def _deletes(f: Folder, put: Any) -> None:
    for d in f.deletes:
        parts = chunks(sorted(d.known))
        for part in parts[:-1]:
            put("known", {"u": f.user, "f": f.id, "st": _st(d.stamp), "i": part})
        put("delete", {"u": f.user, "f": f.id, "name": d.name, "st": _st(d.stamp),
                       "known": parts[-1]})


def _folder_body(f: Folder) -> dict[str, Any]:
    assert f.created is not None
    body: dict[str, Any] = {"u": f.user, "f": f.id, "name": f.name, "st": _st(f.stamp),
                            "cs": _st(f.created)}
    if f.use_stamp is not None:
        body["use"], body["ust"] = sorted(f.use), _st(f.use_stamp)
    if f.acl:
        body["acl"] = [[who, rights, _st(st)] for who, (rights, st) in sorted(f.acl.items())]
    if f.meta:
        body["meta"] = [[scope, entry, _b64(value), _st(st)]
                        for (scope, entry), (value, st) in sorted(f.meta.items())]
    return body


def _messages(r: Replica, f: Folder, put: Any) -> None:
    box = r.store.mailbox_by_id(f.id)
    if box is None:
        return
    for rec in box.records():
        inst = instance_str(rec.instance_id)
        msg = r.msgs.get(inst)
        if msg is None:
            continue
        saved = rec.savedate
        body: dict[str, Any] = {
            "u": f.user, "f": msg.origin, "i": inst, "d": rec.blob.digest,
            "fl": sorted(rec.flags), "t": rec.internaldate.isoformat(),
            "sv": saved.isoformat() if saved is not None and saved != rec.internaldate else None,
            "uid": rec.uid, "st": _st(msg.stamp),
        }
        if msg.regs:
            body["fr"] = [[spelling, value, _st(st)]
                          for _, (value, st, spelling) in sorted(msg.regs.items())]
        put("add", body, (rec.blob.digest,))
