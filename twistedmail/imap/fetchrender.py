"""The FETCH renderer: one compiled function per requested item (RFC 3501 §7.4.2).

A FETCH of many messages compiles its item list once into a tuple of small
functions, each returning the bytes of one ``name value`` pair; derived data
(parsed MIME, encoded ENVELOPE/BODYSTRUCTURE) is cached on the message blob,
which all sessions and folders share.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

from twistedmail.imap.commands import FetchAtt, Section
from twistedmail.imap.errors import No
from twistedmail.imap.mime import NotLeaf, ParsedMessage, top_header_fields
from twistedmail.imap.mimeparse import decode_transfer
from twistedmail.imap.objectid import emailid, threadid
from twistedmail.imap.preview import preview_of
from twistedmail.imap.responses import encode, quote

ItemFn = Callable[[Any, int, bool], bytes]  # (record, seq, recent) -> b"NAME value"

MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
          "Dec")


def parsed(blob: Any) -> ParsedMessage:
    """The blob's parsed MIME view, built once and shared."""
    cache = blob.cache
    msg = cache.get("mime")
    if msg is None:
        msg = cache["mime"] = ParsedMessage(blob.data)
    return msg


@lru_cache(maxsize=65536)
def internaldate(value: datetime) -> bytes:
    """``"17-Jul-1996 02:44:25 -0700"`` (RFC 3501 §9 date-time)."""
    offset = value.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    hh, mm = divmod(abs(minutes), 60)
    return (f'"{value.day:2d}-{MONTHS[value.month]}-{value.year:04d} '
            f'{value.hour:02d}:{value.minute:02d}:{value.second:02d} {sign}{hh:02d}{mm:02d}"'
            ).encode("ascii")


@lru_cache(maxsize=4096)
def flags_bytes(flags: frozenset[str], recent: bool) -> bytes:
    """``FLAGS (...)``: the flags sorted, then ``\\Recent`` when it applies."""
    names = sorted(flags)
    if recent:
        names.append("\\Recent")
    return b"FLAGS (" + " ".join(names).encode("utf-8") + b")"


def _uid(rec: Any, seq: int, recent: bool) -> bytes:
    return b"UID %d" % rec.uid


def _flags(rec: Any, seq: int, recent: bool) -> bytes:
    return flags_bytes(rec.flags, recent)


def _internaldate(rec: Any, seq: int, recent: bool) -> bytes:
    return b"INTERNALDATE " + internaldate(rec.internaldate)


def _size(rec: Any, seq: int, recent: bool) -> bytes:
    return b"RFC822.SIZE %d" % rec.size


def _modseq(rec: Any, seq: int, recent: bool) -> bytes:
    return b"MODSEQ (%d)" % rec.modseq


def _cached_structure(key: str, build: Callable[[ParsedMessage], Any]) -> ItemFn:
    prefix = key.encode("ascii") + b" "

    def render(rec: Any, seq: int, recent: bool) -> bytes:
        cache = rec.blob.cache
        value = cache.get(key)
        if value is None:
            value = cache[key] = encode(build(parsed(rec.blob)))
        return prefix + value

    return render


# Renderers of a whole message body carry this attribute: the item name to put before
# ``{n}CRLF<blob.data>``, so a COMPRESS connection can splice the cached deflated body.
WHOLE_BODY = "whole_body"


def _literal(data: bytes | None) -> bytes:
    if data is None:
        return b"NIL"
    return b"{%d}\r\n%s" % (len(data), data)


def section_name(section: Section) -> bytes:
    """The section spec as echoed in the response, e.g. ``1.HEADER.FIELDS (FROM)``."""
    parts = ".".join(str(n) for n in section.part)
    text = section.text or ""
    if text.startswith("HEADER.FIELDS"):
        text += " (" + " ".join(section.fields) + ")"
    joined = parts + ("." if parts and text else "") + text
    return joined.encode("utf-8")


def _section_bytes(msg: ParsedMessage, section: Section) -> bytes | None:
    return msg.section(section.part, section.text, section.fields)


def _body_section(att: FetchAtt, label: bytes) -> ItemFn:
    section = att.section or Section()
    partial = att.partial
    name = label + b"[" + section_name(section) + b"]"
    if partial is not None:
        name += b"<%d>" % partial[0]
    name += b" "

    top_fields = not section.part and section.text == "HEADER.FIELDS"

    def render(rec: Any, seq: int, recent: bool) -> bytes:
        if not section.part and section.text is None:
            data: bytes | None = rec.blob.data
        elif top_fields:
            data = top_header_fields(rec.blob.data, section.fields)
        else:
            data = _section_bytes(parsed(rec.blob), section)
        if partial is not None and data is not None:
            data = data[partial[0]:partial[0] + partial[1]]
        return name + _literal(data)

    if not section.part and section.text is None and partial is None:
        setattr(render, WHOLE_BODY, name)
    return render


def _rfc822(kind: str | None, label: bytes) -> ItemFn:
    def render(rec: Any, seq: int, recent: bool) -> bytes:
        if kind is None:
            data = rec.blob.data
        elif kind == "HEADER":
            data = parsed(rec.blob).header_bytes()
        else:
            data = parsed(rec.blob).text_bytes()
        return label + _literal(data)

    if kind is None:
        setattr(render, WHOLE_BODY, label)
    return render


_SIMPLE: dict[str, ItemFn] = {
    "UID": _uid,
    "FLAGS": _flags,
    "INTERNALDATE": _internaldate,
    "RFC822.SIZE": _size,
    "MODSEQ": _modseq,
    "ENVELOPE": _cached_structure("ENVELOPE", lambda m: m.envelope()),
    "BODYSTRUCTURE": _cached_structure("BODYSTRUCTURE", lambda m: m.bodystructure(True)),
    "RFC822": _rfc822(None, b"RFC822 "),
    "RFC822.HEADER": _rfc822("HEADER", b"RFC822.HEADER "),
    "RFC822.TEXT": _rfc822("TEXT", b"RFC822.TEXT "),
}
_BODY_NO_EXT = _cached_structure("BODY", lambda m: m.bodystructure(False))


# --- RFC 3516 BINARY, RFC 8970 PREVIEW, RFC 8514 SAVEDATE, RFC 8474 ids -----------


def binary_bytes(blob: Any, part: tuple[int, ...]) -> bytes | None:
    """Decoded content of ``BINARY[part]`` (RFC 3516 §4.2); None if no such part.

    NO for a multipart / message part (RFC 9051 §6.4.5: leaf parts only) and
    ``NO [UNKNOWN-CTE]`` for an encoding we cannot undo (RFC 3516 §4.3)."""
    try:
        found = parsed(blob).binary(part)
    except NotLeaf:
        raise No("BINARY is only defined for leaf body parts") from None
    if found is None:
        return None
    prefix, encoding, content = found
    data = decode_transfer(encoding, content)
    if data is None:
        raise No(f"Unknown Content-Transfer-Encoding {encoding[:40].decode('latin-1')!r}",
                 "UNKNOWN-CTE")
    return prefix + data if prefix else data


def _binary(att: FetchAtt) -> ItemFn:
    part = (att.section or Section()).part
    partial = att.partial
    name = b"BINARY[" + ".".join(map(str, part)).encode("ascii") + b"]"
    if partial is not None:
        name += b"<%d>" % partial[0]  # RFC 3516 §4.2: origin octet echoed
    name += b" "

    def render(rec: Any, seq: int, recent: bool) -> bytes:
        data = binary_bytes(rec.blob, part)
        if data is None:
            return name + b"NIL"
        if partial is not None:
            data = data[partial[0]:partial[0] + partial[1]]
        if b"\x00" in data:  # RFC 3516 §4.2: NUL octets need literal8
            return name + b"~{%d}\r\n%s" % (len(data), data)
        return name + _literal(data)

    return render


def _binary_size(att: FetchAtt) -> ItemFn:
    part = (att.section or Section()).part
    name = b"BINARY.SIZE[" + ".".join(map(str, part)).encode("ascii") + b"] "

    def render(rec: Any, seq: int, recent: bool) -> bytes:
        data = binary_bytes(rec.blob, part)  # RFC 3516 §4.2; a missing part has 0
        return name + b"%d" % (0 if data is None else len(data))

    return render


def _preview(rec: Any, seq: int, recent: bool) -> bytes:
    return b"PREVIEW " + quote(preview_of(rec.blob))  # RFC 8970 §3.2


def _savedate(rec: Any, seq: int, recent: bool) -> bytes:
    saved = rec.savedate or rec.internaldate  # RFC 8514 §4: never NIL here
    return b"SAVEDATE " + internaldate(saved)


def _emailid(rec: Any, seq: int, recent: bool) -> bytes:
    return b"EMAILID (" + emailid(rec.blob).encode("ascii") + b")"  # RFC 8474 §5.1


def _threadid(rec: Any, seq: int, recent: bool) -> bytes:
    return b"THREADID (" + threadid(rec.blob).encode("ascii") + b")"  # RFC 8474 §5.2


_SIMPLE.update({
    "PREVIEW": _preview,
    "SAVEDATE": _savedate,
    "EMAILID": _emailid,
    "THREADID": _threadid,
})


class UnsupportedItem(Exception):
    """A fetch item this renderer does not know."""


def compile_items(atts: tuple[FetchAtt, ...]) -> tuple[ItemFn, ...]:
    """One render function per attribute, in the client's order."""
    fns: list[ItemFn] = []
    for att in atts:
        if att.section is not None:
            if att.name == "BODY":
                fns.append(_body_section(att, b"BODY"))
            elif att.name == "BINARY":
                fns.append(_binary(att))
            else:
                fns.append(_binary_size(att))
        elif att.name == "BODY":
            fns.append(_BODY_NO_EXT)
        elif att.name in _SIMPLE:
            fns.append(_SIMPLE[att.name])
        else:
            raise UnsupportedItem(att.name)
    return tuple(fns)


def sets_seen(att: FetchAtt) -> bool:
    """True for items that set \\Seen (RFC 3501 §6.4.5: BODY[...] without PEEK, RFC822(.TEXT))."""
    if att.section is not None:  # RFC 3516 §4.2: BINARY too, but not BINARY.SIZE
        return not att.peek and att.name != "BINARY.SIZE"
    return att.name in ("RFC822", "RFC822.TEXT")
