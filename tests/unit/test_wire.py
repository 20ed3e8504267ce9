"""The sans-I/O command receiver (twistedmail.imap.wire)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twistedmail.imap.wire import (
    Event,
    LineTooLong,
    LiteralTooBig,
    NeedContinuation,
    RawLine,
    Receiver,
    Request,
)

# A pipelined stream exercising every literal form, empty lines and bare LF.
STREAM = (
    b"a1 NOOP\r\n"
    b"a2 LOGIN {3}\r\nfoo {4+}\r\nb\r\nr\r\n"
    b"\r\n"
    b"a3 APPEND INBOX ~{5}\r\nx\x00\r\n}\r\n"
    b"a4 FETCH 1 FLAGS\n"
    b"a5 SEARCH TEXT {0}\r\n\r\n"
    b'a6 LOGIN "{3}" ~{2+}\r\nhi\r\n'
)
STREAM_EVENTS: list[Event] = [
    Request("a1", b"a1 NOOP"),
    NeedContinuation(3),
    Request("a2", b"a2 LOGIN {3}\r\n {4+}\r\n", (b"foo", b"b\r\nr")),
    NeedContinuation(5),
    Request("a3", b"a3 APPEND INBOX ~{5}\r\n", (b"x\x00\r\n}",)),
    Request("a4", b"a4 FETCH 1 FLAGS"),
    NeedContinuation(0),
    Request("a5", b"a5 SEARCH TEXT {0}\r\n", (b"",)),
    Request("a6", b'a6 LOGIN "{3}" ~{2+}\r\n', (b"hi",)),
]


def feed_all(chunks: list[bytes], **kwargs: int | bool) -> list[Event]:
    """Feed ``chunks`` one by one to a fresh receiver and collect the events."""
    receiver = Receiver(**kwargs)  # type: ignore[arg-type]
    events: list[Event] = []
    for chunk in chunks:
        events.extend(receiver.feed(chunk))
    return events


def test_pipelined_stream_in_one_feed() -> None:
    """Several pipelined commands in one feed give every event in order."""
    assert feed_all([STREAM]) == STREAM_EVENTS


@pytest.mark.parametrize("split", range(len(STREAM) + 1))
def test_every_split_point(split: int) -> None:
    """Splitting the stream anywhere (inside CRLF, "{123}", a literal) changes nothing."""
    assert feed_all([STREAM[:split], STREAM[split:]]) == STREAM_EVENTS


def test_byte_by_byte() -> None:
    """Feeding one byte at a time gives the same events."""
    assert feed_all([STREAM[i : i + 1] for i in range(len(STREAM))]) == STREAM_EVENTS


@given(st.lists(st.integers(0, len(STREAM)), max_size=12))
def test_random_fragmentation(cuts: list[int]) -> None:
    """Any set of cut points gives the same events."""
    points = [0, *sorted(cuts), len(STREAM)]
    chunks = [STREAM[a:b] for a, b in zip(points, points[1:], strict=False)]
    assert feed_all(chunks) == STREAM_EVENTS


TOKENS = [
    b"a ",
    b"t7 ",
    b"NOOP",
    b"{3}",
    b"{0}",
    b"{5+}",
    b"~{2}",
    b"{40+}",
    b"{9999}",
    b"\r\n",
    b"\n",
    b"\r",
    b"x" * 30,
    b"t" * 140,
    b" ",
    b"}",
    b"{",
    b"+",
    b"~",
]


@settings(max_examples=300)
@given(
    st.lists(st.sampled_from(TOKENS), max_size=30),
    st.lists(st.integers(0, 2000), max_size=6),
    st.sampled_from([20, 50, 300]),
    st.sampled_from([4, 30, 10000]),
    st.booleans(),
)
def test_generated_streams_split_invariant_and_bounded(
    tokens: list[bytes], cuts: list[int], max_line: int, max_literal: int, plus: bool
) -> None:
    """With tight limits, any stream gives the same events however it is split,
    and the receiver never holds more than max_line + max_literal (+CR)."""
    stream = b"".join(tokens)
    kwargs = {"max_line": max_line, "max_literal": max_literal, "literal_plus": plus}
    expected = feed_all([stream], **kwargs)
    points = [0, *sorted(c % (len(stream) + 1) for c in cuts), len(stream)]
    receiver = Receiver(max_line=max_line, max_literal=max_literal, literal_plus=plus)
    got: list[Event] = []
    for a, b in zip(points, points[1:], strict=False):
        got += receiver.feed(stream[a:b])
        assert receiver.buffered <= max_line + max_literal + 1
    assert got == expected


def test_continuation_is_requested_before_literal_data() -> None:
    """NeedContinuation comes as soon as the marker line ends, before the data."""
    r = Receiver()
    assert r.feed(b"a LOGIN {3}\r") == []
    assert r.feed(b"\n") == [NeedContinuation(3)]
    assert r.feed(b"fo") == []
    assert r.feed(b"o {3}\r\n") == [NeedContinuation(3)]
    assert r.feed(b"bar\r\n") == [Request("a", b"a LOGIN {3}\r\n {3}\r\n", (b"foo", b"bar"))]


def test_non_synchronizing_literal_needs_no_continuation() -> None:
    """RFC 7888 {n+}: no NeedContinuation, the data follows at once."""
    events = feed_all([b"a LOGIN {3+}\r\nfoo {3+}\r\nbar\r\n"])
    assert events == [Request("a", b"a LOGIN {3+}\r\n {3+}\r\n", (b"foo", b"bar"))]


def test_literal_bytes_are_not_interpreted() -> None:
    """CRLF, markers and commands inside a literal are just data."""
    data = b"x\r\nb NOOP\r\n{5}\r\n"
    events = feed_all([b"a APPEND INBOX {%d+}\r\n" % len(data) + data + b"\r\n"])
    assert events == [Request("a", b"a APPEND INBOX {16+}\r\n", (data,))]


def test_marker_not_at_line_end_is_text() -> None:
    """A "{3}" in the middle of a line is not a literal (no CRLF follows it in line)."""
    assert feed_all([b"a LOGIN {3} x\r\n"]) == [Request("a", b"a LOGIN {3} x")]


def test_malformed_markers_are_text() -> None:
    """Non-numeric or oversized digit strings are not literal markers."""
    events = feed_all([b"a X {}\r\nb X {1a}\r\nc X {%s}\r\n" % (b"9" * 21)])
    assert [e.line for e in events if isinstance(e, Request)] == [
        b"a X {}",
        b"b X {1a}",
        b"c X {" + b"9" * 21 + b"}",
    ]


def test_bare_lf_is_a_line_end() -> None:
    """A bare LF ends a line; after a marker it is normalised to CRLF in ``line``."""
    events = feed_all([b"a LOGIN {1+}\nu p\nb NOOP\n"])
    assert events == [Request("a", b"a LOGIN {1+}\r\n p", (b"u",)), Request("b", b"b NOOP")]


def test_lone_cr_is_data() -> None:
    """A CR not followed by LF stays in the line (the parser rejects it)."""
    assert feed_all([b"a NO\rOP\r\n"]) == [Request("a", b"a NO\rOP")]


def test_empty_lines_are_ignored() -> None:
    """Stray empty lines between commands produce no events."""
    assert feed_all([b"\r\n\n\r\na NOOP\r\n\r\n"]) == [Request("a", b"a NOOP")]


@pytest.mark.parametrize(
    ("line", "tag"),
    [
        (b"a1 NOOP", "a1"),
        (b"NOOP", "NOOP"),
        (b"+ NOOP", None),
        (b"a{ NOOP", None),
        (b" NOOP", None),
        (b"t]x NOOP", "t]x"),
        (b"\xc3\xa9 NOOP", None),
    ],
)
def test_tag_best_effort(line: bytes, tag: str | None) -> None:
    """Request.tag is the first token when it is a valid RFC 3501 tag, else None."""
    assert feed_all([line + b"\r\n"]) == [Request(tag, line)]


def test_zero_length_sync_literal() -> None:
    """{0} still asks for continuation and yields an empty literal."""
    assert feed_all([b"a LOGIN {0}\r\n {0+}\r\n\r\n"]) == [
        NeedContinuation(0),
        Request("a", b"a LOGIN {0}\r\n {0+}\r\n", (b"", b"")),
    ]


def test_large_literal_linear_and_joined_once() -> None:
    """A 10 MB literal in 16 KB chunks is assembled exactly (speed: bench, not tests)."""
    payload = bytes(range(256)) * (10 * 1024 * 1024 // 256)
    r = Receiver()
    assert r.feed(b"a APPEND INBOX {%d}\r\n" % len(payload)) == [NeedContinuation(len(payload))]
    events: list[Event] = []
    for i in range(0, len(payload), 16384):
        events += r.feed(payload[i : i + 16384])
    events += r.feed(b"\r\n")
    assert len(events) == 1 and isinstance(events[0], Request)
    assert events[0].literals == (payload,)


# --- limits -------------------------------------------------------------------


def test_long_line_is_counted_not_buffered() -> None:
    """10 MB without CRLF: one early LineTooLong, tiny buffer, then normal service."""
    r = Receiver(max_line=1000)
    events = r.feed(b"t7 APPEND INBOX ")
    chunk = b"x" * 65536
    for _ in range(160):
        events += r.feed(chunk)
        assert r.buffered <= 1000
    assert events == [LineTooLong("t7")]
    assert r.feed(b"still junk\r\nb NOOP\r\n") == [Request("b", b"b NOOP")]


def test_long_line_in_one_chunk_detected_at_line_end() -> None:
    """A complete over-long line arriving at once is reported when it ends."""
    events = feed_all([b"a NOOP " + b"x" * 200 + b"\r\nb NOOP\r\n"], max_line=100)
    assert events == [LineTooLong("a"), Request("b", b"b NOOP")]


def test_line_limit_counts_all_segments_of_a_command() -> None:
    """max_line bounds the command text across literal continuations."""
    stream = b"a LOGIN {1+}\r\nu " + b"y" * 60 + b" {1+}\r\np" + b"z" * 60 + b"\r\nb NOOP\r\n"
    assert feed_all([stream], max_line=100) == [LineTooLong("a"), Request("b", b"b NOOP")]


def test_discarded_line_ending_in_non_sync_literal_skips_payload() -> None:
    """A too-long line ending in {n+}: its payload is skipped, not run as commands."""
    stream = b"a X " + b"q" * 200 + b" {12+}\r\nz DELETE x\r\n\r\nb NOOP\r\n"
    assert feed_all([stream], max_line=100) == [LineTooLong("a"), Request("b", b"b NOOP")]
    chunks = [stream[i : i + 7] for i in range(0, len(stream), 7)]
    assert feed_all(chunks, max_line=100) == [LineTooLong("a"), Request("b", b"b NOOP")]


def test_sync_literal_too_big_is_not_requested() -> None:
    """An over-limit {n}: LiteralTooBig, no continuation, the command is dropped."""
    r = Receiver(max_literal=10)
    assert r.feed(b"a APPEND INBOX {11}\r\n") == [LiteralTooBig("a", 11, True)]
    assert r.feed(b"b NOOP\r\n") == [Request("b", b"b NOOP")]
    assert r.buffered == 0


def test_non_sync_literal_too_big_is_skipped() -> None:
    """An over-limit {n+}: exactly n bytes and the rest of the line are skipped."""
    payload = b"c NOOP\r\n" * 2_000_000  # 16 MB of would-be commands
    r = Receiver(max_literal=1000)
    events = r.feed(b"a APPEND INBOX {%d+}\r\n" % len(payload))
    for i in range(0, len(payload), 65536):
        events += r.feed(payload[i : i + 65536])
        assert r.buffered <= 100
    events += r.feed(b" trailing junk\r\nb NOOP\r\n")
    assert events == [LiteralTooBig("a", len(payload), False), Request("b", b"b NOOP")]


def test_literal_limit_is_per_command_total() -> None:
    """max_literal bounds the sum of one command's literals."""
    stream = b"a LOGIN {6+}\r\nabcdef {6+}\r\nghijkl\r\nb NOOP\r\n"
    assert feed_all([stream], max_literal=10) == [
        LiteralTooBig("a", 6, False),
        Request("b", b"b NOOP"),
    ]


def test_literal_minus_without_literal_plus() -> None:
    """literal_plus=False is LITERAL- (RFC 7888 §4): {n+} only up to 4096 octets."""
    small = feed_all([b"a LOGIN {1+}\r\nu {1+}\r\np\r\n"], literal_plus=False)
    assert small == [Request("a", b"a LOGIN {1+}\r\n {1+}\r\n", (b"u", b"p"))]
    big = b"a APPEND INBOX {4097+}\r\n" + b"z" * 4097 + b"\r\nb NOOP\r\n"
    assert feed_all([big], literal_plus=False) == [
        LiteralTooBig("a", 4097, False),
        Request("b", b"b NOOP"),
    ]
    assert feed_all([big])[0] == Request("a", b"a APPEND INBOX {4097+}\r\n", (b"z" * 4097,))


# --- line mode and control -------------------------------------------------------


def test_line_mode_returns_raw_lines() -> None:
    """In line_mode lines come back verbatim, markers and empty lines included."""
    r = Receiver()
    r.line_mode = True
    assert r.feed(b"dGVzdA==\r\nabc {3}\r\n\r\nDONE\n") == [
        RawLine(b"dGVzdA=="),
        RawLine(b"abc {3}"),
        RawLine(b""),
        RawLine(b"DONE"),
    ]


def test_line_mode_long_line() -> None:
    """An over-long raw line is reported untagged and discarded."""
    r = Receiver(max_line=10)
    r.line_mode = True
    assert r.feed(b"x" * 50) == [LineTooLong(None)]
    assert r.feed(b"yy\r\nok\r\n") == [RawLine(b"ok")]


def test_next_event_lets_mode_switch_between_pipelined_lines() -> None:
    """Pulling events one at a time lets the protocol flip line_mode in between."""
    r = Receiver()
    r.push(b"a AUTHENTICATE PLAIN\r\nAHUAcA==\r\nb NOOP\r\n")
    assert r.next_event() == Request("a", b"a AUTHENTICATE PLAIN")
    r.line_mode = True
    assert r.next_event() == RawLine(b"AHUAcA==")
    r.line_mode = False
    assert r.next_event() == Request("b", b"b NOOP")
    assert r.next_event() is None


def test_reset_drops_pending_input() -> None:
    """reset() forgets queued bytes and partial commands (STARTTLS injection)."""
    r = Receiver()
    r.push(b"a STARTTLS\r\nb LOGIN {3}\r\nfo")
    assert r.next_event() == Request("a", b"a STARTTLS")
    r.reset()
    assert r.buffered == 0
    assert r.feed(b"c NOOP\r\n") == [Request("c", b"c NOOP")]


def test_events_are_frozen() -> None:
    """Events are immutable values."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        Request("a", b"a NOOP").line = b""  # type: ignore[misc]
