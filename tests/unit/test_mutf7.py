"""Modified UTF-7 mailbox-name codec (RFC 3501 §5.1.3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twistedmail.imap.mutf7 import decode, encode

PAIRS = [
    ("~peter/mail/台北/日本語", b"~peter/mail/&U,BTFw-/&ZeVnLIqe-"),  # RFC 3501 §5.1.3
    ("&", b"&-"),
    ("", b""),
    ("INBOX", b"INBOX"),
    ("a&b", b"a&-b"),
    ("Entwürfe", b"Entw&APw-rfe"),
    ("台&", b"&U,A-&-"),
    ("😀", b"&2D3eAA-"),  # astral plane: a surrogate pair in UTF-16
    ("tab\there", b"tab&AAk-here"),  # controls are not printable ASCII: BASE64
    ("~!-_ []{}", b"~!-_ []{}"),
]

INVALID = [
    (b"&", "unterminated"),
    (b"&U,BTFw", "unterminated"),
    (b"&AGE-", "printable ASCII"),  # "a" must represent itself
    (b"&ACY-", "printable ASCII"),  # "&" must be "&-"
    (b"&U,BTFw-&ZeVnLIqe-", "null shift"),
    (b"&U-", "truncated"),
    (b"&U,BTFx-", "padding"),  # non-zero padding bits
    (b"&AAAA-", "odd"),  # 3 octets of UTF-16
    (b"&2D0-", "surrogate"),  # lone high surrogate
    (b"caf\xc3\xa9", "invalid octet"),  # raw 8-bit is not modified UTF-7
    (b"a\x00b", "invalid octet"),
    (b"&U/BTFw-", "unterminated"),  # "/" is not in the modified alphabet
]


@pytest.mark.parametrize(("text", "wire"), PAIRS)
def test_encode(text: str, wire: bytes) -> None:
    """encode() produces the canonical modified UTF-7 form."""
    assert encode(text) == wire


@pytest.mark.parametrize(("text", "wire"), PAIRS)
def test_decode(text: str, wire: bytes) -> None:
    """decode() inverts the canonical form."""
    assert decode(wire) == text


@pytest.mark.parametrize(("wire", "reason"), INVALID)
def test_decode_rejects(wire: bytes, reason: str) -> None:
    """Malformed or non-minimal encodings raise ValueError naming the problem."""
    with pytest.raises(ValueError, match=reason):
        decode(wire)


def test_encode_rejects_lone_surrogate() -> None:
    """A str that UTF-16 cannot carry is a ValueError, not UnicodeError leakage."""
    with pytest.raises(ValueError):
        encode("a\ud800b")


@given(st.text())
def test_roundtrip_text(text: str) -> None:
    """decode(encode(s)) == s for every str without lone surrogates."""
    assert decode(encode(text)) == text


@given(st.binary(max_size=40))
def test_decode_is_total_and_canonical(data: bytes) -> None:
    """Random bytes either fail with ValueError or are the canonical encoding."""
    try:
        text = decode(data)
    except ValueError:
        return
    assert encode(text) == data
