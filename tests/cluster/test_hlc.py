"""Hybrid logical clock (twistedmail/cluster/hlc.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twistedmail.cluster.hlc import HLC, ZERO, is_stamp, stamp


def test_now_increases_when_wall_clock_goes_back() -> None:
    """A clock stepping backwards still gives strictly increasing stamps."""
    walls = iter([100, 100, 50, 49, 200, 10])
    clock = HLC("a", lambda: next(walls))
    stamps = [clock.now() for _ in range(6)]
    assert stamps == sorted(stamps) and len(set(stamps)) == 6
    assert stamps[4] == (200, 0, "a")


def test_observe_orders_later_stamps_after_the_observed_one() -> None:
    """After observing a stamp from a fast node, our stamps come after it."""
    clock = HLC("a", lambda: 10)
    seen = (5_000, 7, "b")
    clock.observe(seen)
    assert clock.now() > seen
    assert clock.now()[:2] == (5_000, 9)


def test_node_breaks_ties_and_zero_is_below_all() -> None:
    """Equal wall/logical parts are ordered by node; ZERO precedes any stamp."""
    a, b = HLC("a", lambda: 1).now(), HLC("b", lambda: 1).now()
    assert a < b and a != b
    assert a > ZERO


def test_stamp_validation() -> None:
    """stamp() accepts [int, int, str] and refuses anything else."""
    assert stamp([1, 2, "x"]) == (1, 2, "x")
    for bad in ([1, 2], [1, -1, "x"], ["1", 2, "x"], [1, 2, 3], None, [True, 0, "x"]):
        assert not is_stamp(bad)
        with pytest.raises(ValueError):
            stamp(bad)  # type: ignore[arg-type]


@given(st.lists(st.one_of(st.integers(0, 10**6), st.tuples(st.integers(0, 10**6),
                                                             st.integers(0, 50)))))
def test_monotonic_under_any_wall_and_observations(events: list) -> None:
    """Any mix of wall readings and observations keeps now() strictly increasing."""
    wall = [0]
    clock = HLC("n", lambda: wall[0])
    last = ZERO
    for event in events:
        if isinstance(event, tuple):
            clock.observe((event[0], event[1], "m"))
            seen = (event[0], event[1], "m")
            nxt = clock.now()
            assert nxt > seen
        else:
            wall[0] = event
            nxt = clock.now()
        assert nxt > last
        last = nxt
