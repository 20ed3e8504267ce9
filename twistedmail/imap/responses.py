"""The one IMAP response encoder: it alone knows atom / quoted / literal rules.

Values handed to :func:`encode` (RFC 3501 §4, §9):

* ``None`` → ``NIL``
* ``int`` → a number
* ``bytes`` / ``str`` → a string: quoted when safe, a literal otherwise
* :class:`Atom` → sent as-is (flags, keywords, item names, response codes)
* :class:`Literal` → always a literal (message bodies)
* ``list`` / ``tuple`` → a parenthesised list

Handlers never build response bytes themselves; they hand values to a
:class:`Responder`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

CRLF = b"\r\n"
_QUOTED_MAX = 1024
# Bytes that force a literal: NUL, CR, LF and 8-bit (RFC 3501 §4.3 quoted is 7-bit TEXT-CHAR).
_UNSAFE = bytes(range(0, 32)) + bytes(range(127, 256))
_NEEDS_ESCAPE = (b'"', b"\\")


class Atom(str):
    """A value sent verbatim (an atom, flag or pre-formatted token)."""

    __slots__ = ()


class Literal(bytes):
    """Bytes always sent as a literal ``{n}CRLF<bytes>``."""

    __slots__ = ()


def quote(data: bytes) -> bytes:
    """Return ``data`` as an IMAP string: quoted if possible, else a literal."""
    if len(data) > _QUOTED_MAX or data.translate(None, _UNSAFE) != data:
        return b"{%d}\r\n%s" % (len(data), data)
    if b'"' in data or b"\\" in data:
        data = data.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    return b'"' + data + b'"'


def literal(data: bytes) -> bytes:
    """Return ``data`` as a synchronising-literal form (server side)."""
    return b"{%d}\r\n%s" % (len(data), data)


def encode(value: object) -> bytes:
    """Encode one value (see module docstring) into IMAP syntax."""
    if value is None:
        return b"NIL"
    if isinstance(value, Atom):
        return value.encode("utf-8")
    if isinstance(value, Literal):
        return literal(bytes(value))
    if isinstance(value, bytes):
        return quote(value)
    if isinstance(value, str):
        return quote(value.encode("utf-8"))
    if isinstance(value, bool):
        raise TypeError("bool is not an IMAP value")
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, (list, tuple)):
        return b"(" + _join_list(value) + b")"
    raise TypeError(f"cannot encode {type(value).__name__}")


def _join_list(values: Sequence[object]) -> bytes:
    """Elements joined by SP, except a leading run of lists, written with no separator:
    RFC 3501 §9 ``body-type-mpart = 1*body SP media-subtype`` and ``"(" 1*address ")"``."""
    lead = 0
    while lead < len(values) and isinstance(values[lead], (list, tuple)):
        lead += 1
    if lead == 0:
        return b" ".join(encode(v) for v in values)
    head = b"".join(encode(v) for v in values[:lead])
    if lead == len(values):
        return head
    return head + b" " + b" ".join(encode(v) for v in values[lead:])


def encode_seq(values: Iterable[object]) -> bytes:
    """Encode several values separated by spaces (no parentheses)."""
    return b" ".join(encode(v) for v in values)


def flag_list(flags: Iterable[str]) -> bytes:
    """``(\\Seen $Junk)`` from flag names."""
    return ("(" + " ".join(flags) + ")").encode("utf-8")


def code_bytes(code: str | None, args: Sequence[object] = ()) -> bytes:
    """A response code ``[CODE args]`` (RFC 3501 §7.1) or b"" when there is none."""
    if not code:
        return b""
    if not args:
        return b"[" + code.encode("ascii") + b"] "
    return b"[" + code.encode("ascii") + b" " + encode_seq(args) + b"] "


def status_line(tag: str, status: str, text: str, code: str | None = None,
                code_args: Sequence[object] = ()) -> bytes:
    """``tag OK [CODE] text`` with CRLF; ``tag`` may be ``*`` for untagged."""
    safe_text = _resp_text(text)
    return (tag.encode("utf-8") + b" " + status.encode("ascii") + b" "
            + code_bytes(code, code_args) + safe_text + CRLF)


def _resp_text(text: str) -> bytes:
    """resp-text must be TEXT-CHAR (RFC 3501 §9): no CR/LF; never empty."""
    out = text.replace("\r", " ").replace("\n", " ").encode("utf-8", "replace")
    return out or b"done"


class Responder:
    """Collects response bytes for one flush, so a reply goes out in one write."""

    __slots__ = ("chunks",)

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def raw(self, data: bytes) -> None:
        """Queue pre-encoded bytes (used by the FETCH renderer's fast path)."""
        self.chunks.append(data)

    def untagged(self, *values: object) -> None:
        """``* v1 v2 ...`` CRLF."""
        self.chunks.append(b"* " + encode_seq(values) + CRLF)

    def untagged_status(self, status: str, text: str, code: str | None = None,
                        code_args: Sequence[object] = ()) -> None:
        """``* OK [CODE args] text``."""
        self.chunks.append(status_line("*", status, text, code, code_args))

    def tagged(self, tag: str, status: str, text: str, code: str | None = None,
               code_args: Sequence[object] = ()) -> None:
        """The tagged completion line."""
        self.chunks.append(status_line(tag, status, text, code, code_args))

    def continuation(self, text: str = "Ready") -> None:
        """``+ text`` (RFC 3501 §7.5)."""
        self.chunks.append(b"+ " + _resp_text(text) + CRLF)

    def take(self) -> bytes:
        """Return everything queued and reset."""
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data
