"""The response encoder: NIL, numbers, quoted vs literal strings, lists, atoms."""

from __future__ import annotations

import pytest

from twistedmail.imap.responses import Atom, Literal, Responder, encode, status_line


@pytest.mark.parametrize(("value", "wire"), [
    (None, b"NIL"),
    (0, b"0"),
    (4294967295, b"4294967295"),
    (b"plain", b'"plain"'),
    ("text", b'"text"'),
    (b"", b'""'),
    (b'say "hi" \\o/', b'"say \\"hi\\" \\\\o/"'),
    (b"two\r\nlines", b"{10}\r\ntwo\r\nlines"),
    (b"caf\xc3\xa9", b"{5}\r\ncaf\xc3\xa9"),
    (b"x" * 2000, b"{2000}\r\n" + b"x" * 2000),
    (Atom("\\Seen"), b"\\Seen"),
    (Literal(b"abc"), b"{3}\r\nabc"),
    ([], b"()"),
    ([Atom("A"), 1, None], b"(A 1 NIL)"),
])
def test_encode_values(value, wire):
    """Each value type encodes per RFC 3501 §4 (quoted only for safe 7-bit text)."""
    assert encode(value) == wire


def test_leading_lists_have_no_separator():
    """RFC 3501 §9: `1*body SP subtype` and `"(" 1*address ")"` have no SP between lists."""
    assert encode([[1], [2], b"mixed", [b"a"]]) == b'((1)(2) "mixed" ("a"))'
    assert encode([[b"n", None, b"m", b"h"], [b"o", None, b"p", b"q"]]) == (
        b'(("n" NIL "m" "h")("o" NIL "p" "q"))')
    assert encode([b"date", [[b"a"]], [[b"b"]]]) == b'("date" (("a")) (("b")))'


def test_bool_and_unknown_types_refused():
    """Only the documented types encode; anything else is a programming error."""
    with pytest.raises(TypeError):
        encode(True)
    with pytest.raises(TypeError):
        encode(object())


def test_status_line_never_contains_crlf_inside():
    """resp-text cannot carry CR/LF (RFC 3501 §9 TEXT-CHAR); an empty text is filled."""
    line = status_line("a1", "NO", "bad\r\nthing", "TRYCREATE")
    assert line == b"a1 NO [TRYCREATE] bad  thing\r\n"
    assert status_line("*", "OK", "") == b"* OK done\r\n"


def test_responder_batches_into_one_take():
    """A Responder hands back everything queued in one bytes object, then is empty."""
    out = Responder()
    out.untagged(Atom("CAPABILITY"), Atom("IMAP4rev1"))
    out.continuation("go")
    out.tagged("t", "OK", "done", "READ-WRITE")
    assert out.take() == b"* CAPABILITY IMAP4rev1\r\n+ go\r\nt OK [READ-WRITE] done\r\n"
    assert out.take() == b""
