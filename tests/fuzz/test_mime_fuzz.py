"""MIME rendering (mime.py, mimeparse.py, fetchrender.py) on generated and mutated
real-world messages: ENVELOPE / BODY / BODYSTRUCTURE never raise and, put on the
wire, parse back as IMAP values of the RFC 3501 §7.4.2 shape (tests/fuzz/shapes.py).
tests/unit/test_mime.py checks the Python values; this checks the encoded bytes."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.harness import MESSAGES, examples, mutate
from tests.fuzz.shapes import check_message
from tests.unit.test_mime import CORPUS, exercise

REAL = list(MESSAGES) + list(CORPUS)

_HEADER = st.sampled_from([
    b"Subject: =?utf-8?b?w6k=?= \xff", b'From: "Last, First" <a@b>, (comment) c@d', b"To: g: h@i;",
    b"Cc: <@route:x@y>", b"Date: not a date", b"Message-ID: <\x00>", b"In-Reply-To: <a@b> <c@d>",
    b"Content-Language: en, de-CH", b"Content-Location: x", b"Content-MD5: abc",
    b"Content-Disposition: attachment; filename*0*=utf-8''a%20; filename*1=b",
    b"Content-Description: \"quoted \\\" desc\"", b"Content-ID: <cid@x>", b"Reply-To:",
    b"Content-Transfer-Encoding: x-uuencode", b"Content-Transfer-Encoding: Base64 (c)",
])
_LEAF_TYPE = st.sampled_from([
    b"text/plain; charset=utf-8", b"text/html", b"application/pdf; name=\"a\\\"b.pdf\"",
    b"image/png", b"message/rfc822", b"message/global", b"text/plain; format=flowed; x*=y",
    b"TEXT/PLAIN; CHARSET=\"US-ASCII\" (c)", b"multipart/mixed", b"x/y;;;", b"",
])


@st.composite
def entities(draw: st.DrawFn, depth: int = 0) -> bytes:
    """A MIME entity: headers, then a leaf body or a multipart of nested entities."""
    headers = draw(st.lists(_HEADER, max_size=3))
    if depth < 3 and draw(st.booleans()):
        boundary = draw(st.sampled_from([b"b", b"=_x", b"a b", b"b" * 70, b"--"])) + b"%d" % depth
        sub = draw(st.sampled_from([b"mixed", b"alternative", b"digest", b"related"]))
        parts = draw(st.lists(entities(depth + 1), max_size=3))
        headers.append(b'Content-Type: multipart/%s; boundary="%s"' % (sub, boundary))
        body = b"preamble\r\n" + b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts)
        body += draw(st.sampled_from([b"--" + boundary + b"--\r\nepilogue", b""]))
    else:
        headers.append(b"Content-Type: " + draw(_LEAF_TYPE))
        body = draw(st.sampled_from([b"", b"hello\r\n", b"SGVsbG8=\r\n", b"caf=C3=A9=\r\n",
                                     b"Subject: inner\r\n\r\nx\r\n", b"\xff\x00\r\n.\r\n"]))
    eol = draw(st.sampled_from([b"\r\n", b"\n"]))
    return eol.join(headers).replace(b"\r\n", eol) + eol + eol + body


@examples(300)
@given(entities())
def test_generated_multipart_renders_valid_imap(raw: bytes) -> None:
    """Generated nested multiparts: valid wire syntax and shape; sections match sizes."""
    check_message(raw)
    exercise(raw)


@examples(300)
@given(st.sampled_from(REAL), st.integers(0, 2**32 - 1))
def test_mutated_real_messages_render_valid_imap(raw: bytes, seed: int) -> None:
    """Real messages with random edits (boundaries, CRLF, quotes, 8-bit): valid IMAP."""
    check_message(mutate(random.Random(seed), raw, rounds=8))


@examples(100)
@given(st.binary(max_size=400))
def test_random_bytes_render_valid_imap(raw: bytes) -> None:
    """Arbitrary bytes as a message still give valid ENVELOPE/BODYSTRUCTURE bytes."""
    check_message(raw)
