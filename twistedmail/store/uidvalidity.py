"""UIDVALIDITY allocation: the Domino rule (DESIGN.md §3).

UIDVALIDITY = (root << 24) | counter.  ``root`` is the node's configured byte
(0–255), so two nodes never present the same value; ``counter`` (1..2**24-1) is
kept per (user, folder name) and only ever grows.

RFC 3501 §2.3.1.1: if UIDs from an earlier session fail to persist, the
UIDVALIDITY MUST be greater than the one used before.  A folder name is what a
client caches by, so the rule is kept per name: DELETE + CREATE, RENAME onto a
name, Regenerate and a node restart all give the name a larger value.

Invariants:
- ``last(user, name)`` never decreases; every ``allocate`` returns a counter
  strictly above it, so a name never shows one UIDVALIDITY for two UID maps.
- A counter never passes ``MAX_COUNTER``: ``UidValidityExhausted`` instead of
  wrapping.
- Wall-clock floor: a fresh counter is at least the whole minutes elapsed since
  2025-01-01T00:00Z (``EPOCH``) on the injected clock.  A node that restarts
  with an empty memory therefore still issues values above those it issued
  before, PROVIDED no single name was allocated more than once per minute on
  average before the restart (a burst of k allocations in one minute pushes
  that name's counter k-1 minutes ahead of the clock, and a restart within that
  lead can repeat a value).  That is the documented limit of the clock floor;
  ``state`` (a caller-persisted mapping) and ``floor_provider`` (e.g. a
  generation recorded on peers, the cluster milestone) close the gap.  The
  clock floor reaches 2**24 minutes in 2056.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from .changes import UidValidityExhausted

EPOCH = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC).timestamp()
COUNTER_BITS = 24
MAX_COUNTER = (1 << COUNTER_BITS) - 1
MAX_ROOT = 255


def check_root(root: int) -> int:
    """``root`` if it is a valid node root byte, else ``ValueError``."""
    if isinstance(root, bool) or not isinstance(root, int) or not 0 <= root <= MAX_ROOT:
        raise ValueError(f"uidvalidity root must be an int in 0..{MAX_ROOT}, got {root!r}")
    return root


def encode(root: int, counter: int) -> int:
    """(root << 24) | counter, validating both parts."""
    check_root(root)
    if not 1 <= counter <= MAX_COUNTER:
        raise UidValidityExhausted(f"uidvalidity counter {counter} outside 1..{MAX_COUNTER}")
    return (root << COUNTER_BITS) | counter


def split(uidvalidity: int) -> tuple[int, int]:
    """(root, counter) of a UIDVALIDITY value."""
    return uidvalidity >> COUNTER_BITS, uidvalidity & MAX_COUNTER


def clock_floor(now: float) -> int:
    """Whole minutes since ``EPOCH`` (never negative)."""
    return max(0, int((now - EPOCH) // 60))


class UidValidityAllocator:
    """Hands out UIDVALIDITY values per (user, folder name) for one node.

    ``state`` maps user -> {name -> last counter}; pass a mapping you persist
    (and reload) to survive restarts without relying on the clock.  It is
    updated in place.  ``floor_provider``, if given, returns an extra lower
    bound for fresh counters (the cluster milestone's peer-recorded generation).
    """

    def __init__(
        self,
        root: int,
        clock: Callable[[], float],
        state: dict[str, dict[str, int]] | None = None,
        floor_provider: Callable[[], int] | None = None,
    ) -> None:
        self.root = check_root(root)
        self.clock = clock
        self.state: dict[str, dict[str, int]] = {} if state is None else state
        self.floor_provider = floor_provider
        # Called with every counter issued, before it is used: a node-wide
        # reservation (e.g. the node's state file) can record it first.
        self.on_issue: Callable[[int], None] | None = None

    def last(self, user: str, name: str) -> int:
        """The highest counter ever recorded for the name (0 if none)."""
        return self.state.get(user, {}).get(name, 0)

    def floor(self) -> int:
        """The lower bound for a fresh counter right now."""
        low = clock_floor(self.clock())
        if self.floor_provider is not None:
            low = max(low, self.floor_provider())
        return low

    def allocate(self, user: str, name: str) -> int:
        """A fresh UIDVALIDITY for ``name``: above anything it had before."""
        counter = max(self.last(user, name) + 1, self.floor())
        value = encode(self.root, counter)  # RFC 3501 §2.3.1.1: never wrap
        self._record(user, name, counter)
        return value

    def carry(self, user: str, name: str, uidvalidity: int) -> int:
        """The UIDVALIDITY a mailbox renamed onto ``name`` should present.

        It keeps ``uidvalidity`` (its UID map is unchanged) when that is above
        anything ``name`` showed before; otherwise it needs a fresh one, or a
        client that cached the old ``name`` could mistake the two maps."""
        root, counter = split(uidvalidity)
        if root == self.root and counter > self.last(user, name):
            self._record(user, name, counter)
            return uidvalidity
        return self.allocate(user, name)

    def _record(self, user: str, name: str, counter: int) -> None:
        if self.on_issue is not None:
            self.on_issue(counter)
        names = self.state.setdefault(user, {})
        if counter > names.get(name, 0):
            names[name] = counter
