"""A strict IMAP *response* grammar checker: the oracle of the fuzz tests.

It cuts a server output stream into responses and checks each one against the
shapes of RFC 3501 §7 / RFC 9051 §7: continuation ``+ text``, status responses
(tagged or untagged OK/NO/BAD, untagged PREAUTH/BYE) with an optional ``[code]``,
and untagged data, whose tokens are atoms, numbers, NIL, quoted strings (only
``\\"`` and ``\\\\`` escapes, no CR/LF/NUL), literals ``{n}`` / ``~{n}`` and
parenthesised lists.  :func:`parse_values` also turns one encoded value (a
BODYSTRUCTURE, an ENVELOPE) into Python values for shape checks.

Invariants
----------
* Linear in the input; every loop advances ``pos`` or raises.
* Any deviation raises :class:`SyntaxProblem` naming the offset and the bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TAG = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\+]+')  # RFC 3501 §9 tag
_LITERAL = re.compile(rb"~?\{([0-9]{1,10})\}\r\n")
_LITERAL_AT_END = re.compile(rb"~?\{([0-9]{1,10})\}\Z")
_ATOM_STOP = frozenset(b' ()"\r\n{') | frozenset(range(0, 32)) | {0x7F}
# atom [SP 1*<TEXT-CHAR except "]">] "]"; 8-bit only as UTF-8 (checked after).
_CODE = re.compile(rb'[^\x00-\x20\x7f(){%*"\\\]]+(?: [^\x00\r\n\]]+)?\]')
_STATUS = (b"OK", b"NO", b"BAD", b"PREAUTH", b"BYE")
_TAGGED_STATUS = (b"OK", b"NO", b"BAD")  # RFC 3501 §7.1


class SyntaxProblem(AssertionError):
    """The server sent something that is not an IMAP response."""


class Atom(str):
    """An atom (or number-like token) as it appeared on the wire."""


@dataclass(frozen=True)
class Response:
    """One response: ``kind`` is "+", "*" or "tagged"; ``raw`` has no final CRLF."""

    kind: str
    tag: str | None
    status: bytes | None
    raw: bytes


def _fail(data: bytes, pos: int, why: str) -> SyntaxProblem:
    return SyntaxProblem(f"{why} at {pos}: {data[max(0, pos - 40):pos + 40]!r}")


def split_responses(data: bytes) -> list[bytes]:
    """Cut ``data`` into responses; a data response's literals stay inside it."""
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        start = pos
        while True:
            nl = data.find(b"\r\n", pos)
            if nl < 0:
                raise _fail(data, start, "unterminated response")
            m = _LITERAL_AT_END.search(data, max(pos, nl - 14), nl)
            if m is None or _is_status(data[start:nl]):
                pos = nl + 2
                break
            pos = nl + 2 + int(m.group(1))
            if pos > len(data):
                raise _fail(data, start, "literal runs past the end of the output")
        out.append(data[start:pos - 2])
    return out


def _is_status(line: bytes) -> bool:
    """Status responses and continuations carry text, where "{3}" is just text."""
    if line.startswith(b"+"):
        return True
    head = line.split(b" ", 2)
    if line.startswith(b"* "):
        return len(head) > 1 and head[1].upper() in _STATUS
    return len(head) > 1 and head[1].upper() in _TAGGED_STATUS


def check_stream(data: bytes) -> list[Response]:
    """Every response in ``data``, each checked; raises :class:`SyntaxProblem`."""
    return [check_response(raw) for raw in split_responses(data)]


def check_response(raw: bytes) -> Response:
    """Check one response (without its final CRLF)."""
    if raw.startswith(b"+"):
        if raw != b"+" and not raw.startswith(b"+ "):
            raise _fail(raw, 0, "continuation without SP")
        _check_text(raw, 2)
        return Response("+", None, None, raw)
    if raw.startswith(b"* "):
        word = raw[2:].split(b" ", 1)[0]
        if word.upper() in _STATUS:
            _check_resp_text(raw, 2 + len(word))
            return Response("*", None, word.upper(), raw)
        if not word:
            raise _fail(raw, 2, "empty untagged response")
        end = _items(raw, 2, None)
        if end != len(raw):
            raise _fail(raw, end, "trailing bytes")
        return Response("*", None, None, raw)
    m = _TAG.match(raw)
    if m is None or raw[m.end():m.end() + 1] != b" ":
        raise _fail(raw, 0, "not a tag")
    word = raw[m.end() + 1:].split(b" ", 1)[0]
    if word not in _TAGGED_STATUS:
        raise _fail(raw, m.end() + 1, "tagged response without OK/NO/BAD")
    _check_resp_text(raw, m.end() + 1 + len(word))
    return Response("tagged", m.group().decode("ascii"), word, raw)


def _check_resp_text(raw: bytes, pos: int) -> None:
    """RFC 3501 §9 resp-text = ["[" resp-text-code "]" SP] text, after the status word."""
    if pos == len(raw):
        return  # RFC 9051 allows an empty text
    if raw[pos:pos + 1] != b" ":
        raise _fail(raw, pos, "no SP after the status")
    pos += 1
    if raw[pos:pos + 1] == b"[":
        pos = _resp_code(raw, pos + 1)
        if pos == len(raw):
            return
        if raw[pos:pos + 1] != b" ":
            raise _fail(raw, pos, "no SP after the response code")
        pos += 1
    _check_text(raw, pos)


def _resp_code(raw: bytes, pos: int) -> int:
    """RFC 3501 §9 resp-text-code; its catch-all form ``atom [SP 1*<any TEXT-CHAR
    except "]">]`` covers every code with arguments (BADURL echoes client text).
    Returns the offset after "]"."""
    m = _CODE.match(raw, pos)
    if m is None:
        raise _fail(raw, pos, "bad response code")
    try:
        m.group().decode("utf-8")
    except UnicodeDecodeError:
        raise _fail(raw, pos, "response code is not UTF-8") from None
    return m.end()


def _check_text(raw: bytes, pos: int) -> None:
    """RFC 3501 §9 text = 1*TEXT-CHAR (any CHAR but CR, LF); UTF-8 per RFC 9051."""
    text = raw[pos:]
    if b"\x00" in text or b"\r" in text or b"\n" in text:
        raise _fail(raw, pos, "NUL/CR/LF in text")
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail(raw, pos, "text is not UTF-8") from None


def _items(raw: bytes, pos: int, close: int | None, out: list[object] | None = None) -> int:
    """Parse SP-separated values from ``pos`` until ``close`` (or the end)."""
    first = True
    while pos < len(raw) and (close is None or raw[pos] != close):
        if not first:
            if raw[pos] == 0x20:
                pos += 1
            elif not (raw[pos] == 0x28 and raw[pos - 1] == 0x29):  # ")(" (THREAD)
                raise _fail(raw, pos, "values not separated by SP")
        first = False
        pos = _value(raw, pos, close, out)
    return pos


def _value(raw: bytes, pos: int, close: int | None, out: list[object] | None) -> int:
    if pos >= len(raw):
        raise _fail(raw, pos, "value expected")
    c = raw[pos]
    if c == 0x28:  # "("
        inner: list[object] = []
        pos = _items(raw, pos + 1, 0x29, inner)
        if raw[pos:pos + 1] != b")":
            raise _fail(raw, pos, "unbalanced (")
        if out is not None:
            out.append(inner)
        return pos + 1
    if c == 0x22:  # '"'
        return _quoted(raw, pos, out)
    m = _LITERAL.match(raw, pos)
    if m is not None:
        end = m.end() + int(m.group(1))
        if end > len(raw):
            raise _fail(raw, pos, "short literal")
        if out is not None:
            out.append(raw[m.end():end])
        return end
    return _atom(raw, pos, close, out)


def _quoted(raw: bytes, pos: int, out: list[object] | None) -> int:
    i = pos + 1
    buf = bytearray()
    while i < len(raw):
        c = raw[i]
        if c == 0x22:
            try:
                bytes(buf).decode("utf-8")  # RFC 6855 utf8-quoted; 7-bit otherwise
            except UnicodeDecodeError:
                raise _fail(raw, pos, "8-bit quoted string is not UTF-8") from None
            if out is not None:
                out.append(bytes(buf))
            return i + 1
        if c == 0x5C:
            if raw[i + 1:i + 2] not in (b'"', b"\\"):
                raise _fail(raw, i, "bad escape in quoted string")
            buf.append(raw[i + 1])
            i += 2
            continue
        if c in (0, 0x0A, 0x0D):
            raise _fail(raw, i, "CR/LF/NUL in quoted string")
        buf.append(c)
        i += 1
    raise _fail(raw, pos, "unterminated quoted string")


def _atom(raw: bytes, pos: int, close: int | None, out: list[object] | None) -> int:
    """An atom; "[...]" inside it (BODY[HEADER.FIELDS (A B)]<0>) may hold SP and lists,
    but "[" is also a plain ATOM-CHAR (a keyword "$[x", RFC 3501 §9)."""
    start = pos
    while pos < len(raw) and raw[pos] not in _ATOM_STOP and raw[pos] != close:
        if raw[pos] >= 0x80:
            raise _fail(raw, pos, "8-bit octet outside a string")
        if raw[pos] == 0x5B:  # "["
            pos = _bracket(raw, pos)
        pos += 1
    if pos == start:
        raise _fail(raw, pos, "empty atom")
    if out is not None:
        text = raw[start:pos].decode("ascii")
        out.append(None if text == "NIL" else int(text) if text.isdigit() else Atom(text))
    return pos


def _bracket(raw: bytes, pos: int) -> int:
    """The offset of the "]" closing the "[" at ``pos``, or ``pos`` if none closes it."""
    try:
        end = _items(raw, pos + 1, 0x5D)
    except SyntaxProblem:
        return pos
    return end if raw[end:end + 1] == b"]" else pos


def parse_values(data: bytes) -> list[object]:
    """The values of one encoded item list: NIL → None, numbers → int, strings → bytes."""
    out: list[object] = []
    end = _items(data, 0, None, out)
    if end != len(data):
        raise _fail(data, end, "trailing bytes")
    return out
