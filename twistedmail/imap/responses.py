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
_CONTROLS = bytes(range(0, 32)) + b"\x7f"  # never allowed in a quoted string


def _utf8_quotable(data: bytes) -> bool:
    """RFC 6855 §3 utf8-quoted: 8-bit octets allowed when they are valid UTF-8."""
    if len(data) > _QUOTED_MAX or data.translate(None, _CONTROLS) != data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class Atom(str):
    """A value sent verbatim (an atom, flag or pre-formatted token)."""

    __slots__ = ()


class MailboxName(bytes):
    """A mailbox name in modified UTF-7 (RFC 3501 §5.1.3) that keeps its Unicode
    form in ``text``: sent as UTF-8 when the session enabled UTF8=ACCEPT (RFC 6855 §3)."""

    text: str

    @classmethod
    def of(cls, name: str) -> MailboxName:
        """The wire name of ``name``."""
        from twistedmail.imap.mutf7 import encode as mutf7_encode

        out = cls(mutf7_encode(name))
        out.text = name
        return out


class Literal(bytes):
    """Bytes always sent as a literal ``{n}CRLF<bytes>``."""

    __slots__ = ()


class Literal8(bytes):
    """Bytes sent as ``~{n}CRLF<bytes>`` (RFC 3516 literal8: may hold NUL)."""

    __slots__ = ()


def quote(data: bytes, utf8: bool = False) -> bytes:
    """Return ``data`` as an IMAP string: quoted if possible, else a literal.

    ``utf8``: UTF8=ACCEPT is enabled, so UTF-8 may be quoted (RFC 6855 §3)."""
    unsafe = len(data) > _QUOTED_MAX or data.translate(None, _UNSAFE) != data
    if unsafe and not (utf8 and _utf8_quotable(data)):
        return b"{%d}\r\n%s" % (len(data), data)
    if b'"' in data or b"\\" in data:
        data = data.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    return b'"' + data + b'"'


def literal(data: bytes) -> bytes:
    """Return ``data`` as a synchronising-literal form (server side)."""
    return b"{%d}\r\n%s" % (len(data), data)


def encode(value: object, utf8: bool = False) -> bytes:
    """Encode one value (see module docstring) into IMAP syntax (``utf8``: RFC 6855)."""
    if value is None:
        return b"NIL"
    if isinstance(value, Atom):
        return value.encode("utf-8")
    if isinstance(value, Literal):
        return literal(bytes(value))
    if isinstance(value, Literal8):
        return b"~" + literal(bytes(value))
    if isinstance(value, bytes):
        if utf8 and type(value) is MailboxName:
            return quote(value.text.encode("utf-8"), True)  # RFC 6855 §3
        return quote(value, utf8)
    if isinstance(value, str):
        return quote(value.encode("utf-8"), utf8)
    if isinstance(value, bool):
        raise TypeError("bool is not an IMAP value")
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, (list, tuple)):
        return b"(" + _join_list(value, utf8) + b")"
    raise TypeError(f"cannot encode {type(value).__name__}")


def _join_list(values: Sequence[object], utf8: bool = False) -> bytes:
    """Elements joined by SP, except a leading run of lists, written with no separator:
    RFC 3501 §9 ``body-type-mpart = 1*body SP media-subtype`` and ``"(" 1*address ")"``."""
    lead = 0
    while lead < len(values) and isinstance(values[lead], (list, tuple)):
        lead += 1
    if lead == 0:
        return b" ".join(encode(v, utf8) for v in values)
    head = b"".join(encode(v, utf8) for v in values[:lead])
    if lead == len(values):
        return head
    return head + b" " + b" ".join(encode(v, utf8) for v in values[lead:])


def encode_seq(values: Iterable[object], utf8: bool = False) -> bytes:
    """Encode several values separated by spaces (no parentheses)."""
    return b" ".join(encode(v, utf8) for v in values)


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

    __slots__ = ("chunks", "utf8", "packed")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.utf8 = False  # RFC 6855 §3: UTF8=ACCEPT enabled (utf8-quoted, UTF-8 names)
        # (index in chunks, that chunk pre-deflated) for COMPRESS splicing (compress.py)
        self.packed: list[tuple[int, bytes]] = []

    def raw(self, data: bytes) -> None:
        """Queue pre-encoded bytes (used by the FETCH renderer's fast path)."""
        self.chunks.append(data)

    def untagged(self, *values: object) -> None:
        """``* v1 v2 ...`` CRLF."""
        self.chunks.append(b"* " + encode_seq(values, self.utf8) + CRLF)

    def untagged_status(self, status: str, text: str, code: str | None = None,
                        code_args: Sequence[object] = ()) -> None:
        """``* OK [CODE args] text``."""
        self.chunks.append(status_line("*", status, text, code, code_args))

    def tagged(self, tag: str, status: str, text: str, code: str | None = None,
               code_args: Sequence[object] = ()) -> None:
        """The tagged completion line."""
        self.chunks.append(status_line(tag, status, text, code, code_args))

    def continuation(self, text: str = "Ready") -> None:
        """``+ text`` (RFC 3501 §7.5); an empty text gives ``+ `` (an empty SASL challenge)."""
        body = _resp_text(text) if text else b""
        self.chunks.append(b"+ " + body + CRLF)

    def splice(self, data: bytes, packed: bytes) -> None:
        """Queue ``data`` (a message body) with ``packed``, its self-contained DEFLATE
        form, which a COMPRESS connection sends verbatim (compress.Deflate.splice)."""
        self.packed.append((len(self.chunks), packed))
        self.chunks.append(data)

    def take(self) -> bytes:
        """Return everything queued and reset."""
        data = b"".join(self.chunks)
        self.chunks.clear()
        if self.packed:
            self.packed = []
        return data

    def take_parts(self) -> tuple[list[bytes], list[tuple[int, bytes]]]:
        """Everything queued as (chunks, packed), and reset (see :meth:`splice`)."""
        chunks, packed = self.chunks, self.packed
        self.chunks, self.packed = [], []
        return chunks, packed
