"""Modified UTF-7 (RFC 3501 §5.1.3, imap/mutf7.py) beyond tests/unit/test_mutf7.py:
dense shift-sequence soups and mutated valid names are rejected or canonical, and any
name a client may CREATE comes back byte-identical from the server."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.harness import FuzzPeer, capture_failures, examples
from tests.fuzz.imapsyntax import check_stream, parse_values
from twistedmail.imap import mutf7
from twistedmail.imap.responses import quote

_SOUP = st.lists(st.sampled_from([b"&", b"-", b"&-", b"A", b"AG", b"AGE", b"AMk", b"U,BT",
                                  b"Fw", b"+", b",", b"/", b"a", b"~", b"\x7f", b"\xc3\xa9",
                                  b"ZeVnLIqe", b"2D3e", b"2D3", b"3gA"]), max_size=12)


def canonical_or_value_error(data: bytes) -> None:
    """decode(data) is ValueError, or text whose encoding is exactly ``data``."""
    try:
        text = mutf7.decode(data)
    except ValueError:
        return
    assert mutf7.encode(text) == data


@examples(500)
@given(_SOUP)
def test_shift_sequence_soup(parts: list[bytes]) -> None:
    """Dense '&'/base64/'-' soups (padding, bad bits, empty runs): reject or canonical."""
    canonical_or_value_error(b"".join(parts))


@examples(300)
@given(st.text(min_size=1, max_size=12), st.integers(0, 2**32 - 1))
def test_mutated_encodings(text: str, seed: int) -> None:
    """One edit of a valid encoding: reject or canonical (never another exception)."""
    rng = random.Random(seed)
    buf = bytearray(mutf7.encode(text))
    pos = rng.randrange(len(buf) + 1)
    choice = rng.choice([b"&", b"-", b"A", b"/", b"", b"\x00", b"\xff"])
    buf[pos:pos + rng.randint(0, 2)] = choice
    canonical_or_value_error(bytes(buf))


_NAME = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="%*/"),
                min_size=1, max_size=10)


@examples(100)
@given(_NAME)
def test_created_names_come_back_identical(name: str) -> None:
    """CREATE <mutf7 name> then LIST returns the same wire bytes (or CREATE refused cleanly)."""
    peer = FuzzPeer(seed_messages=False)
    wire = mutf7.encode(name)
    with capture_failures() as failures:
        out = peer.send(b"c1 CREATE " + quote(wire) + b"\r\n")
        listed = peer.send(b'c2 LIST "" ' + quote(wire) + b"\r\n")
    assert not failures
    check_stream(out + listed)
    if b"c1 OK" not in out:
        assert b"c1 NO" in out or b"c1 BAD" in out, out
        return
    lines = [r for r in listed.split(b"\r\n") if r.startswith(b"* LIST ")]
    assert len(lines) == 1, listed
    assert parse_values(lines[0][2:])[-1] in (wire, name.encode()), lines[0]
