"""Content-Transfer-Encoding decoding (RFC 2045 §6) and the BINARY view of a message."""

from __future__ import annotations

import base64
import binascii
import quopri

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twistedmail.imap.mime import NotLeaf, ParsedMessage
from twistedmail.imap.mimeparse import (
    decode_base64,
    decode_quoted_printable,
    decode_transfer,
)


@given(st.binary(max_size=2000))
def test_base64_roundtrip(data):
    """Whatever base64.encodebytes produces (76-char lines) decodes back exactly."""
    assert decode_base64(base64.encodebytes(data).replace(b"\n", b"\r\n")) == data


@given(st.binary(max_size=500))
def test_base64_never_raises(junk):
    """Arbitrary bytes never make the decoder raise (bad mail must not break FETCH)."""
    assert isinstance(decode_base64(junk), bytes)


@pytest.mark.parametrize("encoded, decoded", [
    (b"aGVsbG8=", b"hello"),
    (b"aGVsbG8", b"hello"),  # missing padding
    (b"aGVs\r\nbG8=\r\n", b"hello"),
    (b"aG!Vs bG8\t=", b"hello"),  # junk and whitespace ignored (RFC 2045 §6.8)
    (b"aGVsbG8=garbage after pad", b"hello"),  # "=" ends the data
    (b"aGVsbG8gdw", b"hello w"),  # missing "=="
    (b"aGVsbG8gd", b"hello "),  # a dangling sextet is dropped
    (b"", b""),
])
def test_base64_tolerant(encoded, decoded):
    """base64 decoding is lenient the way mail readers are."""
    assert decode_base64(encoded) == decoded


@given(st.binary(max_size=1000))
def test_quoted_printable_roundtrip(data):
    """Python's own quoted-printable encoding (binary-safe) decodes back exactly."""
    assert decode_quoted_printable(quopri.encodestring(data, quotetabs=True)) == data


@pytest.mark.parametrize("encoded, decoded", [
    (b"caf=C3=A9", b"caf\xc3\xa9"),
    (b"caf=c3=a9", b"caf\xc3\xa9"),  # lower-case hex accepted
    (b"soft=\r\nbreak", b"softbreak"),
    (b"soft=\nbreak", b"softbreak"),
    (b"pad   \r\nnext\t\r\n", b"pad\r\nnext\r\n"),  # RFC 2045 §6.7 rule 3
    (b"keep  =\r\nx", b"keep  x"),  # whitespace before a soft break is data
    (b"end   ", b"end"),
    (b"bad=ZZ", b"bad=ZZ"),  # an invalid escape is kept
    (b"a=3Db", b"a=b"),
])
def test_quoted_printable_cases(encoded, decoded):
    """Quoted-printable rules of RFC 2045 §6.7."""
    assert decode_quoted_printable(encoded) == decoded


@pytest.mark.parametrize("encoding, data, out", [
    (b"7bit", b"x=41", b"x=41"),
    (b"8bit", b"\xff", b"\xff"),
    (b"binary", b"\x00", b"\x00"),
    (b"base64", b"QQ==", b"A"),
    (b"quoted-printable", b"=41", b"A"),
    (b"x-uuencode", b"x", None),
    (b"x-gzip64", b"x", None),
])
def test_decode_transfer(encoding, data, out):
    """Known encodings decode; unknown ones give None (RFC 3516 UNKNOWN-CTE)."""
    assert decode_transfer(encoding, data) == out


MSG = (
    b"Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
    b"--b\r\nContent-Transfer-Encoding: Base64\r\n\r\nQUJD\r\n"
    b"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nbody\r\n"
    b"--b--\r\n"
)


def test_binary_view_of_parts():
    """ParsedMessage.binary: (prefix, lower-case encoding, content) per leaf part."""
    msg = ParsedMessage(MSG)
    assert msg.binary((1,)) == (b"", b"base64", b"QUJD")
    assert msg.binary((2, 1)) == (b"", b"7bit", b"body")
    assert msg.binary((3,)) is None
    assert msg.binary(()) == (b"", b"binary", MSG)
    with pytest.raises(NotLeaf):
        msg.binary((2,))


def test_binary_view_of_single_part_message():
    """BINARY[] of a single-part message drops the Content-Transfer-Encoding field."""
    raw = b"A: 1\r\nContent-Transfer-Encoding:\r\n  quoted-printable\r\nB: 2\r\n\r\n=41\r\n"
    prefix, encoding, content = ParsedMessage(raw).binary(())
    assert (prefix, encoding, content) == (b"A: 1\r\nB: 2\r\n\r\n", b"quoted-printable", b"=41\r\n")


def test_binary_of_headers_only_message():
    """A message without a body still has a BINARY[] (no crash, empty content)."""
    prefix, encoding, content = ParsedMessage(b"Content-Transfer-Encoding: base64\r\n").binary(())
    assert content == b"" and encoding == b"base64"
    assert binascii.a2b_base64(b"") == decode_transfer(encoding, content)
