"""Hybrid logical clock (Kulkarni et al. 2014) for last-writer-wins registers.

A stamp is ``(wall_ms, logical, node)``; stamps compare as tuples, so the node
string breaks ties and two nodes never make equal stamps (DESIGN.md §4: flags
are last-writer-wins on a hybrid logical clock).

Invariants:
- ``now()`` is strictly increasing on one clock, whatever the wall clock does.
- After ``observe(s)``, every later ``now()`` is greater than ``s``: a change
  made after seeing another is ordered after it (causality is kept even when
  the two nodes' wall clocks disagree).
- No Twisted imports; the wall clock is injected (milliseconds).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

Stamp = tuple[int, int, str]
ZERO: Stamp = (0, 0, "")  # below every stamp a clock makes


def wall_ms() -> int:
    """The system clock in whole milliseconds."""
    return int(time.time() * 1000)


class HLC:
    """A hybrid logical clock owned by ``node``."""

    __slots__ = ("node", "wall_ms", "_wall", "_logical")

    def __init__(self, node: str, wall_ms: Callable[[], int] = wall_ms) -> None:
        self.node = node
        self.wall_ms = wall_ms
        self._wall = 0
        self._logical = 0

    def now(self) -> Stamp:
        """A stamp greater than every stamp made or observed so far."""
        wall = int(self.wall_ms())
        if wall > self._wall:
            self._wall, self._logical = wall, 0
        else:
            self._logical += 1
        return (self._wall, self._logical, self.node)

    def observe(self, stamp: Stamp) -> None:
        """Remember a stamp seen from elsewhere, so later ``now()`` exceed it."""
        wall, logical = stamp[0], stamp[1]
        if (wall, logical) > (self._wall, self._logical):
            self._wall, self._logical = wall, logical

    def last(self) -> Stamp:
        """The largest stamp made or observed (not a fresh one)."""
        return (self._wall, self._logical, self.node)


def is_stamp(value: Any) -> bool:
    """True for a JSON-decoded stamp: [int >= 0, int >= 0, str]."""
    return (
        isinstance(value, list | tuple)
        and len(value) == 3
        and type(value[0]) is int
        and type(value[1]) is int
        and value[0] >= 0
        and value[1] >= 0
        and isinstance(value[2], str)
    )


def stamp(value: Sequence[Any]) -> Stamp:
    """A stamp from its JSON form (a list); ``ValueError`` if malformed."""
    if not is_stamp(value):
        raise ValueError(f"not a stamp: {value!r:.80}")
    return (value[0], value[1], value[2])
