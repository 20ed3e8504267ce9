"""Receiver + parser together on mutated real command streams (tests/unit/test_wire.py and
test_parser.py fuzz each alone): ParseError is the only failure, the outcome does not
depend on fragmentation, and memory stays bounded."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.harness import COMMANDS, examples, mutate
from twistedmail.imap.parser import ParseError, parse_request
from twistedmail.imap.wire import Receiver, Request

MAX_LINE, MAX_LITERAL = 300, 64


def outcomes(chunks: list[bytes], plus: bool, utf8: bool) -> list[object]:
    """Events, with each Request replaced by its parsed command (or ParseError text)."""
    receiver = Receiver(max_line=MAX_LINE, max_literal=MAX_LITERAL, literal_plus=plus)
    out: list[object] = []
    for chunk in chunks:
        for event in receiver.feed(chunk):
            if isinstance(event, Request):
                try:
                    out.append(parse_request(event, utf8))
                except ParseError as err:
                    assert err.message and err.message.isprintable(), err.message
                    out.append(("BAD", err.tag, err.message))
            else:
                out.append(event)
            assert receiver.buffered <= MAX_LINE + MAX_LITERAL + len(chunk) + 1
    return out


@examples(300)
@given(st.lists(st.tuples(st.sampled_from(COMMANDS), st.integers(0, 2**32 - 1)),
                min_size=1, max_size=5),
       st.lists(st.integers(0, 5000), max_size=8), st.booleans(), st.booleans())
def test_mutated_stream_split_invariant(cases: list[tuple[bytes, int]], cuts: list[int],
                                       plus: bool, utf8: bool) -> None:
    """Mutated pipelined commands: only ParseError, and any split gives the same outcome."""
    stream = b"".join(mutate(random.Random(seed), cmd) + b"\r\n" for cmd, seed in cases)
    whole = outcomes([stream], plus, utf8)
    points = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    parts = [stream[a:b] for a, b in zip(points, points[1:], strict=False)]
    assert outcomes(parts, plus, utf8) == whole


@examples(200)
@given(st.binary(max_size=400), st.booleans())
def test_random_bytes_byte_by_byte(data: bytes, utf8: bool) -> None:
    """Random bytes fed one at a time give the same outcome as all at once."""
    whole = outcomes([data], True, utf8)
    assert outcomes([data[i:i + 1] for i in range(len(data))], True, utf8) == whole


def test_parser_error_messages_are_printable_for_8bit_tags() -> None:
    """A BAD for garbage after a valid tag names no raw control/8-bit bytes."""
    got = outcomes([b"a1 FETCH 1 (BODY[\xff\x00])\r\n", b"a2 \x01\x7f\r\n"], True, False)
    assert [o[0] for o in got] == ["BAD", "BAD"]  # type: ignore[index]
