"""Search keys (parse_search.py + search.py) end to end: generated search programs,
run by a real session over the seeded mailbox, obey the boolean algebra of
RFC 3501 §6.4.4 (NOT is the complement, OR the union, a list the intersection),
and mutated programs are answered with valid responses, never a server bug."""

from __future__ import annotations

import random
import re

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.harness import FuzzPeer, capture_failures, examples, mutate
from tests.fuzz.imapsyntax import check_stream

_LEAVES = st.sampled_from([
    b"ALL", b"SEEN", b"UNSEEN", b"FLAGGED", b"DELETED", b"RECENT", b"NEW", b"OLD", b"DRAFT",
    b"ANSWERED", b"KEYWORD $Work", b"UNKEYWORD $Work", b"SUBJECT kumquat", b"FROM bob",
    b'TO "example"', b"CC x", b"BCC y", b"BODY caf", b"TEXT K\xc3\xa4se", b"TEXT xylophonist",
    b"HEADER Content-Type multipart", b"HEADER X-None \"\"", b"LARGER 300", b"SMALLER 300",
    b"SINCE 1-Feb-1994", b"BEFORE 1-Jan-2000", b"ON 7-Feb-1994", b"SENTBEFORE 8-Feb-1994",
    b"SENTSINCE 1-Jan-1970", b"SENTON 7-Feb-1994", b"UID 2:*", b"UID 1,3", b"1", b"2:*",
    b"*", b"1:4294967295", b"MODSEQ 2", b"YOUNGER 100", b"OLDER 100", b"SAVEDBEFORE 1-Jan-2000",
    b"SAVEDATESUPPORTED", b"SUBJECT {7}\r\nkumquat",
])


def _program(depth: int = 3) -> st.SearchStrategy[bytes]:
    return st.recursive(
        _LEAVES,
        lambda inner: st.one_of(
            inner.map(lambda k: b"NOT " + k),
            st.tuples(inner, inner).map(lambda ab: b"OR " + ab[0] + b" " + ab[1]),
            st.lists(inner, min_size=1, max_size=3).map(lambda ks: b"(" + b" ".join(ks) + b")"),
        ),
        max_leaves=6,
    )


PROGRAMS = _program()
_PEER: list[FuzzPeer] = []
_NUMBERS = re.compile(rb"\* SEARCH((?: [0-9]+)*)(?: \(MODSEQ [0-9]+\))?\r\n")  # RFC 7162 §3.1.5


def search(program: bytes) -> set[int]:
    """Run ``SEARCH program`` (literals via LITERAL+) on the shared peer; its result."""
    if not _PEER:
        _PEER.append(FuzzPeer())
        _PEER[0].send(b"f1 STORE 1 +FLAGS ($Work \\Flagged)\r\n")
    peer = _PEER[0]
    wire = program.replace(b"{7}\r\n", b"{7+}\r\n")
    with capture_failures() as failures:
        out = peer.send(b"q1 SEARCH " + wire + b"\r\n")
    assert not failures
    check_stream(out)
    assert out.endswith(b"q1 OK SEARCH completed\r\n"), out
    m = _NUMBERS.search(out)
    assert m is not None, out
    return {int(n) for n in m.group(1).split()}


@examples(150)
@given(PROGRAMS, PROGRAMS)
def test_boolean_algebra(a: bytes, b: bytes) -> None:
    """NOT a = ALL - a; OR a b = a | b; (a b) = a & b; results within 1..EXISTS."""
    every = search(b"ALL")
    sa, sb = search(a), search(b)
    assert sa <= every and sb <= every
    assert search(b"NOT " + a) == every - sa
    assert search(b"OR " + a + b" " + b) == sa | sb
    assert search(b"(" + a + b" " + b + b")") == sa & sb


@examples(200)
@given(PROGRAMS, st.integers(0, 2**32 - 1))
def test_mutated_programs(program: bytes, seed: int) -> None:
    """Mutated search programs get a valid answer: results or a clear BAD/NO."""
    peer = FuzzPeer() if not _PEER else _PEER[0]
    with capture_failures() as failures:
        out = peer.send(b"q2 SEARCH " + mutate(random.Random(seed), program) + b"\r\n")
        out += peer.settle()
    assert not failures
    for r in check_stream(out):
        assert b"[SERVERBUG]" not in r.raw
    if peer.done:
        _PEER.clear()
