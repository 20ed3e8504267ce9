"""HeartbeatMembership: up / suspect / down from heartbeat answers (DESIGN.md §4)."""

from __future__ import annotations

import pytest

from twistedmail.cluster.membership import DOWN, SUSPECT, UP, HeartbeatMembership


class FakeClock:
    """A settable clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make() -> tuple[HeartbeatMembership, FakeClock, list[tuple[str, str, str]]]:
    clock = FakeClock()
    members = HeartbeatMembership(["n2", "n3"], clock, suspect_after=1.5, down_after=3.0)
    seen: list[tuple[str, str, str]] = []
    members.listeners.append(lambda node, old, new: seen.append((node, old, new)))
    return members, clock, seen


def test_never_heard_is_down() -> None:
    """A peer that never answered is down and not live."""
    members, _, seen = make()
    members.tick()
    assert members.state("n2") == DOWN
    assert members.live() == set()
    assert seen == []


def test_heard_is_up_with_vv_and_ready() -> None:
    """An answer makes the peer up and records its VV and readiness."""
    members, _, seen = make()
    members.heard("n2", {"n2~a": 3}, True)
    assert members.state("n2") == UP
    assert members.info("n2").vv == {"n2~a": 3}
    assert members.info("n2").ready is True
    assert members.live() == {"n2"}
    assert members.live(["n3"]) == set()
    assert seen == [("n2", DOWN, UP)]


def test_silence_goes_suspect_then_down_then_up_again() -> None:
    """Silence past suspect_after -> suspect, past down_after -> down; an answer -> up."""
    members, clock, seen = make()
    members.heard("n2")
    clock.now += 1.0
    members.tick()
    assert members.state("n2") == UP
    clock.now += 0.5
    members.tick()
    assert members.state("n2") == SUSPECT
    assert members.live() == set()
    clock.now += 1.5
    members.tick()
    assert members.state("n2") == DOWN
    members.heard("n2")
    assert seen == [("n2", DOWN, UP), ("n2", UP, SUSPECT), ("n2", SUSPECT, DOWN),
                    ("n2", DOWN, UP)]


def test_lost_link_is_suspect_at_once_and_down_later() -> None:
    """A dropped link makes an up peer suspect at once; silence then makes it down."""
    members, clock, seen = make()
    members.heard("n3")
    members.lost("n3")
    assert members.state("n3") == SUSPECT
    members.tick()
    assert members.state("n3") == SUSPECT
    clock.now += 3.0
    members.tick()
    assert members.state("n3") == DOWN
    assert seen == [("n3", DOWN, UP), ("n3", UP, SUSPECT), ("n3", SUSPECT, DOWN)]


def test_new_incarnation_forgets_old_vv() -> None:
    """A peer that restarted (new incarnation) has none of its old VV."""
    members, _, _ = make()
    members.identify("n2", "n2~a", 2)
    members.heard("n2", {"x": 5})
    members.identify("n2", "n2~a", 2)
    assert members.info("n2").vv == {"x": 5}
    members.identify("n2", "n2~b", 2)
    assert members.info("n2").vv == {}
    assert members.info("n2").incarnation == "n2~b"


def test_unknown_nodes_are_ignored() -> None:
    """Answers from a node that is not a configured peer change nothing."""
    members, _, seen = make()
    members.heard("mallory")
    members.lost("mallory")
    assert members.state("mallory") == DOWN
    assert seen == []


def test_bad_timeouts_rejected() -> None:
    """suspect_after must be positive and not above down_after."""
    with pytest.raises(ValueError):
        HeartbeatMembership([], FakeClock(), suspect_after=3.0, down_after=1.0)
