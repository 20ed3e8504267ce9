"""The Replica's cluster-wide bookkeeping beside the store (no Twisted).

The store holds what IMAP shows (names, UIDs, flags); these registers hold what
convergence needs and the store has no room for: stamps, tombstones, deleted
folders, claimed (not displayed) folder names, parked cops.

Invariants:
- ``Folder.name`` is the claimed name (a LWW register on ``Folder.stamp``); the
  store shows it, or a suffixed name when another live folder of the account
  claims it too (conflicts rule 4).  ``claims[user][name]`` is the set of
  live folder ids claiming ``name`` ("live": created here, not deleted).
- ``Folder.created`` is the minimum create stamp seen (None: known only from a
  DELETE); a folder with ``deletes`` is dead forever (tombstone).
- ``msgs`` has exactly the live instances of held accounts; ``tombs`` the
  expunged ones (instance -> the folder it was added to, "" if unknown).  The
  two never share a key; tombstones are never dropped.
- ``early`` holds flag registers of instances not added here yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .conflicts import FlagReg
from .cops import Cop
from .hlc import Stamp


@dataclass(slots=True)
class Delete:
    """One DELETE of a folder: its stamp, the name the deleter saw, the
    instances it knew (they die with it)."""

    stamp: Stamp
    name: str
    known: set[str]


@dataclass(slots=True)
class Folder:
    """Registers of one folder (mailbox id)."""

    id: str
    user: str
    name: str
    stamp: Stamp
    created: Stamp | None
    deletes: list[Delete] = field(default_factory=list)
    use: frozenset[str] = frozenset()
    use_stamp: Stamp | None = None
    acl: dict[str, tuple[str, Stamp]] = field(default_factory=dict)
    # (scope, lower-case entry) -> (value or None = deleted, stamp)
    meta: dict[tuple[str, str], tuple[bytes | None, Stamp]] = field(default_factory=dict)

    @property
    def deleted(self) -> bool:
        """True once any DELETE of it was applied (permanent)."""
        return bool(self.deletes)

    @property
    def live(self) -> bool:
        """Created here and never deleted."""
        return self.created is not None and not self.deletes

    def last_delete(self) -> Delete:
        """The DELETE with the largest stamp (its name names the Recovered folder)."""
        return max(self.deletes, key=lambda d: d.stamp)


@dataclass(slots=True)
class Msg:
    """A live instance: where it is, where it was added, its add stamp and
    flag registers (None until a flag changes after the add)."""

    folder: str
    origin: str
    stamp: Stamp
    regs: dict[str, FlagReg] | None = None


@dataclass(slots=True)
class Parked:
    """A cop waiting for something (its folder, its predecessor), with the
    bodies it needs."""

    cop: Cop
    data: dict[str, bytes]


class Spare:
    """Bodies of held / parked add cops, reference-counted by digest."""

    __slots__ = ("_data", "_refs")

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}
        self._refs: dict[str, int] = {}

    def hold(self, data: dict[str, bytes]) -> None:
        """Keep these bodies until ``release``."""
        for digest, body in data.items():
            self._data.setdefault(digest, body)
            self._refs[digest] = self._refs.get(digest, 0) + 1

    def release(self, data: dict[str, bytes]) -> None:
        """Drop one reference on each of these bodies."""
        for digest in data:
            left = self._refs.get(digest, 0) - 1
            if left > 0:
                self._refs[digest] = left
            else:
                self._refs.pop(digest, None)
                self._data.pop(digest, None)

    def get(self, digest: str) -> bytes | None:
        """A held body or None."""
        return self._data.get(digest)
