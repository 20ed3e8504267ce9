"""Conflict rules of the replicated mailstore (DESIGN.md §4, contract §2).

Each rule is a small pure function the Replica calls; each has a unit test in
tests/cluster/test_conflicts.py.  Replicas converge because every rule is
order-independent: applying the same set of cops in any order (and any number
of times) gives the same state.

1. ``accept_add``: an instance is added at most once; concurrent APPENDs are
   different instances, so both are kept.
2. ``accept_add`` / ``flag_update``: an expunged instance is a permanent
   tombstone: never (re)added, flag changes to it are ignored.
3. ``flag_update`` / ``effective_flags``: flags are last-writer-wins per
   (instance, flag) on the HLC stamp; a flag with no register takes the add's
   stamp (its value is whether the add carried it).  Only real changes write
   a register: a STORE that leaves a flag as it was on its node writes nothing.
4. ``display_names``: a folder's name is a LWW register (``lww``); when live
   folders claim one name, the smallest (create stamp, id) keeps it and every
   other shows as "NAME-<first 8 hex of its id>".
5. ``recovered_id`` / ``recovered_name`` / ``known_by_delete``: DELETE against
   a concurrent APPEND: messages the deleter did not know (and adds arriving
   for a deleted folder) go to "Recovered/<name>", never dropped; through a
   chain of Recovered folders when those were deleted too.  A node creating a
   Recovered folder announces it with a "folder" cop, so its existence is the
   same everywhere (the union of every node's need).
6. ``uid_for``: a remote add keeps its origin's UID when that is >= the
   folder's UIDNEXT; otherwise the replica numbers it (DESIGN.md §3).
7. Snapshot state cops are merges: they go through the very same rules (add if
   absent and not tombstoned, registers by stamp), so ``snapshot_merge`` is
   only ``lww`` for registers and set union for tombstones.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping

from .hlc import Stamp

RECOVERED = "Recovered"
# A flag register: (set?, stamp, spelling).
FlagReg = tuple[bool, Stamp, str]
_FALLBACK_NS = uuid.UUID("8b1d54f6-31c7-4f0e-9d3c-2a6e0c7b5a11")


def accept_add(instance: str, live: Collection[str], tombstones: Collection[str]) -> bool:
    """Rules 1 and 2: add ``instance`` only if it is neither live nor tombstoned."""
    return instance not in live and instance not in tombstones


def lww(new: Stamp, current: Stamp | None) -> bool:
    """Last-writer-wins: a write with stamp ``new`` replaces one with ``current``
    (None = no write yet).  Equal stamps are the same write (idempotence)."""
    return current is None or new > current


def flag_update(
    regs: dict[str, FlagReg], add_stamp: Stamp | None, flag: str, value: bool, stamp: Stamp
) -> bool:
    """Rule 3: record ``flag`` := ``value`` at ``stamp`` if it wins; True if it did.

    The register key is the lower-cased flag (flags compare case-insensitively,
    RFC 3501 §2.3.2).  Without a register the add's stamp is the one to beat;
    ``add_stamp`` None means the add is not known here yet (flag seen first)."""
    key = flag.lower()
    reg = regs.get(key)
    current = reg[1] if reg is not None else add_stamp
    if not lww(stamp, current):
        return False
    regs[key] = (value, stamp, flag)
    return True


def effective_flags(add_flags: Iterable[str], add_stamp: Stamp,
                    regs: Mapping[str, FlagReg]) -> frozenset[str]:
    """Rule 3: the flags of a message: its add's flags, overridden by every
    register whose stamp is above the add's."""
    out = {f.lower(): f for f in add_flags}
    for key, (value, stamp, spelling) in regs.items():
        if stamp > add_stamp:
            if value:
                out[key] = spelling
            else:
                out.pop(key, None)
    return frozenset(out.values())


def suffixed(name: str, folder_id: str) -> str:
    """Rule 4: the name a folder that lost ``name`` shows."""
    return f"{name}-{folder_id[:8]}"


def display_names(claims: Iterable[tuple[str, str, Stamp]]) -> dict[str, str]:
    """Rule 4: folder id -> the name it shows, given live (id, claimed name,
    create stamp) claims of one account.  Per claimed name the smallest
    (create stamp, id) keeps it; the others get ``suffixed`` names."""
    by_name: dict[str, list[tuple[Stamp, str]]] = {}
    for folder_id, name, created in claims:
        by_name.setdefault(name, []).append((created, folder_id))
    out: dict[str, str] = {}
    for name, group in by_name.items():
        group.sort()
        out[group[0][1]] = name
        for _, folder_id in group[1:]:
            out[folder_id] = suffixed(name, folder_id)
    return out


def recovered_id(folder_id: str) -> str:
    """Rule 5: the id of the folder that receives ``folder_id``'s orphans:
    uuid5(folder id, "recovered"), the same on every node."""
    try:
        base = uuid.UUID(hex=folder_id)
    except ValueError:
        base = uuid.uuid5(_FALLBACK_NS, folder_id)
    return uuid.uuid5(base, "recovered").hex


def recovered_name(name: str) -> str:
    """Rule 5: "Recovered/<name>" (INBOX's orphans land in "Recovered/INBOX")."""
    return f"{RECOVERED}/{name}"


def known_by_delete(instance: str, knowns: Iterable[Collection[str]]) -> bool:
    """Rule 5: an instance some DELETE of its folder knew dies with it; one no
    DELETE knew is recovered (a deleter's known list includes the instances it
    saw expunged from the folder, so a late add of those is not "recovered")."""
    return any(instance in known for known in knowns)


def uid_for(hint: int, uidnext: int) -> int | None:
    """Rule 6: the UID a replicated add gets: the origin's ``hint`` when it is
    free here (>= UIDNEXT), else None = "number it yourself"."""
    return hint if hint >= uidnext and hint > 0 else None


def snapshot_merge(current: Stamp | None, incoming: Stamp) -> bool:
    """Rule 7: a snapshot register replaces ours only if its stamp is larger."""
    return lww(incoming, current)
