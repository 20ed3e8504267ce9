"""Sequence sets (RFC 3501 §9): rendering (imap/seqset.py), parsing (parser.py) and
resolution in a selected mailbox (imap/selected.py), against a plain-set model."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.harness import examples
from twistedmail.imap.commands import STAR, SequenceSet
from twistedmail.imap.parser import ParseError, parse_request
from twistedmail.imap.selected import SelectedView
from twistedmail.imap.seqset import compress
from twistedmail.imap.wire import Request

_NUM = st.integers(1, 2**32 - 1)
_BOUND = st.one_of(_NUM, st.just(STAR), st.integers(1, 40))


def parse_set(text: bytes) -> SequenceSet:
    """The sequence set of ``t FETCH <text> FLAGS``."""
    cmd = parse_request(Request("t", b"t FETCH " + text + b" FLAGS"))
    return cmd.sequence  # type: ignore[union-attr]


def model(ranges: list[tuple[int, int]], largest: int) -> set[int]:
    """RFC 3501 §6.4.8 / §9: * is the largest; a:b == b:a; clamp to 1..largest."""
    out: set[int] = set()
    for a, b in ranges:
        lo, hi = sorted(largest if x == STAR else x for x in (a, b))
        out.update(range(max(lo, 1), min(hi, largest) + 1))
    return out


def render(ranges: list[tuple[int, int]]) -> bytes:
    """Wire form of (start, end) pairs, STAR as "*"."""
    def one(x: int) -> str:
        return "*" if x == STAR else str(x)
    return ",".join(f"{one(a)}:{one(b)}" if a != b else one(a) for a, b in ranges).encode()


@examples(300)
@given(st.lists(st.integers(1, 2**32 - 1), max_size=40))
def test_compress_round_trips_through_parser(numbers: list[int]) -> None:
    """compress() output parses back to the same numbers (and keeps their run order)."""
    text = compress(numbers)
    if not numbers:
        assert text == ""
        return
    got = parse_set(text.encode())
    expected = set(numbers)
    assert got.resolve(0) == expected or max(expected) > 10**6  # resolve only for small sets
    assert all(got.contains(n, 0) for n in expected)


@examples(300)
@given(st.lists(st.tuples(_BOUND, _BOUND), min_size=1, max_size=6), st.integers(0, 60))
def test_view_resolution_matches_model(ranges: list[tuple[int, int]], count: int) -> None:
    """Sequence numbers resolve to exactly the model's set, however large the bounds."""
    view = SelectedView.__new__(SelectedView)
    view.uids = [10 + 3 * i for i in range(count)]
    sset = parse_set(render(ranges))
    got = view.resolve(sset, by_uid=False)
    assert [s for s, _ in got] == sorted(model(ranges, count))
    assert all(view.uids[s - 1] == u for s, u in got)
    by_uid = view.resolve(sset, by_uid=True)
    largest = view.uids[-1] if view.uids else 0
    named = model(ranges, largest)
    assert [u for _, u in by_uid] == [u for u in view.uids if u in named]


@examples(300)
@given(st.binary(max_size=30))
def test_garbage_sequence_sets_are_parse_errors(text: bytes) -> None:
    """Any bytes in the sequence-set position: a set of valid bounds, or ParseError."""
    try:
        sset = parse_set(text)
    except ParseError:
        return
    for r in sset.ranges:
        for x in (r.start, r.end):
            assert x == STAR or 1 <= x < 2**32
