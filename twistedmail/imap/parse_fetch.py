"""FETCH and STORE argument parsing (RFC 3501 §6.4.5, §6.4.6, §9).

Extensions: RFC 3516 BINARY[...] / BINARY.PEEK / BINARY.SIZE, RFC 7162
MODSEQ / CHANGEDSINCE / UNCHANGEDSINCE, RFC 8474 EMAILID / THREADID,
RFC 8514 SAVEDATE, RFC 8970 PREVIEW (plain name only).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from twistedmail.imap.commands import Fetch, FetchAtt, Section, Store

if TYPE_CHECKING:
    from twistedmail.imap.parser import Reader

MAX32 = 1 << 32  # RFC 3501 §9 number
MAX63 = 1 << 63  # RFC 7162 §7 mod-sequence-value

_NAME = re.compile(rb"[A-Za-z0-9.]+")
_PART = re.compile(rb"[0-9]+(?:\.[0-9]+)*")  # RFC 3501 §9 section-part
_TEXT = re.compile(rb"(?i:HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME)")
_PARTIAL = re.compile(rb"<([0-9]{1,10})\.([0-9]{1,10})>")  # "<" number "." nz-number ">"
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+")  # RFC 5322 §3.6.8 ftext
_STORE_ITEM = re.compile(rb"([+-]?)(?i:FLAGS)((?i:\.SILENT)?)")  # RFC 3501 §9 store-att-flags

# Attributes that take no section (RFC 3501 §9 fetch-att plus extensions).
_PLAIN = {
    name: FetchAtt(name)
    for name in (
        "ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822", "RFC822.HEADER", "RFC822.SIZE",
        "RFC822.TEXT", "BODY", "BODYSTRUCTURE", "UID", "MODSEQ", "EMAILID", "THREADID",
        "SAVEDATE", "PREVIEW",
    )
}
# RFC 3501 §6.4.5 macros (only valid on their own, not inside a list).
_MACROS = {
    "FAST": (_PLAIN["FLAGS"], _PLAIN["INTERNALDATE"], _PLAIN["RFC822.SIZE"]),
    "ALL": (_PLAIN["FLAGS"], _PLAIN["INTERNALDATE"], _PLAIN["RFC822.SIZE"], _PLAIN["ENVELOPE"]),
    "FULL": (
        _PLAIN["FLAGS"], _PLAIN["INTERNALDATE"], _PLAIN["RFC822.SIZE"], _PLAIN["ENVELOPE"],
        _PLAIN["BODY"],
    ),
}
_ATTS_CACHE: dict[bytes, tuple[tuple[FetchAtt, ...], int | None, bool]] = {}
_CACHE_SIZE = 256  # entries; cleared wholesale when full
_CACHE_KEY_MAX = 512  # longest remainder worth memoising
_SECTIONED = frozenset(("BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE"))
_LAZY = re.compile(rb" \((?i:LAZY)(?: (?i:LAZY))*\)")  # RFC 8970 §6 preview-mod


def _header_name(r: Reader) -> str:
    """One header-fld-name (astring), upper-cased."""
    raw = r.astring("header field name")
    if _FIELD_NAME.fullmatch(raw) is None:
        r.fail("Invalid header field name")
    return raw.decode("ascii").upper()


def _part(r: Reader) -> tuple[int, ...]:
    """RFC 3501 §9 section-part = nz-number *("." nz-number), possibly absent."""
    m = r.match(_PART)
    if m is None:
        return ()
    nums = m.group().split(b".")
    if any(len(n) > 10 or int(n) == 0 or int(n) >= MAX32 for n in nums):
        r.fail("Invalid section part number")
    return tuple(int(n) for n in nums)


def _section(r: Reader) -> Section:
    """RFC 3501 §9 section = "[" [section-spec] "]" (the "[" is consumed here)."""
    r.expect(b"[", "[")
    part = _part(r)
    if r.skip(b"]"):
        return Section(part)
    if part:
        r.expect(b".", ". or ] after section part")
    m = r.match(_TEXT)
    if m is None:
        r.fail("Invalid section")
    text = m.group().upper().decode("ascii")
    if text == "MIME" and not part:
        r.fail("MIME requires a section part")  # RFC 3501 §9 section-text
    fields: tuple[str, ...] = ()
    if text.startswith("HEADER.FIELDS"):
        r.sp()
        fields = tuple(r.plist(lambda: _header_name(r), "header field"))
    r.expect(b"]", "] after section")
    return Section(part, text, fields)


def _binary_section(r: Reader) -> Section:
    """RFC 3516 §4.1 section-binary = "[" [section-part] "]"."""
    r.expect(b"[", "[")
    part = _part(r)
    r.expect(b"]", "] after binary section part")
    return Section(part)


def _partial(r: Reader) -> tuple[int, int] | None:
    m = r.match(_PARTIAL)
    if m is None:
        if r.peek() == 0x3C:
            r.fail("Invalid partial range")
        return None
    offset, count = int(m.group(1)), int(m.group(2))
    if offset >= MAX32 or count >= MAX32 or count == 0:
        r.fail("Invalid partial range")  # "<" number "." nz-number ">"
    return offset, count


def fetch_att(r: Reader) -> FetchAtt:
    """One RFC 3501 §9 fetch-att (or an extension attribute)."""
    m = r.match(_NAME)
    if m is None:
        r.fail("Expected fetch attribute")
    name = m.group().upper().decode("ascii")
    if r.peek() != 0x5B:  # "["
        att = _PLAIN.get(name)
        if att is None:
            r.fail(f"Unknown fetch attribute {name[:30]}")
        if name == "PREVIEW" and (lazy := _LAZY.match(r.data, r.pos)) is not None:
            # RFC 8970 §3.2: "PREVIEW" [SP "(" preview-mod *(SP preview-mod) ")"];
            # the preview is always produced at once, so LAZY changes nothing.
            r.pos = lazy.end()
        return att
    if name not in _SECTIONED:
        r.fail(f"Unknown fetch attribute {name[:30]}[")
    if name.startswith("BODY"):
        return FetchAtt("BODY", _section(r), name == "BODY.PEEK", _partial(r))
    if name == "BINARY.SIZE":
        return FetchAtt(name, _binary_section(r))
    return FetchAtt("BINARY", _binary_section(r), name == "BINARY.PEEK", _partial(r))


def _atts(r: Reader) -> tuple[FetchAtt, ...]:
    """Macro, single att, or "(" fetch-att *(SP fetch-att) ")"."""
    if r.peek() == 0x28:
        return tuple(r.plist(lambda: fetch_att(r), "fetch attribute"))
    start = r.pos
    m = r.match(_NAME)
    if m is not None and r.peek() != 0x5B:
        macro = _MACROS.get(m.group().upper().decode("ascii"))
        if macro is not None:
            return macro
    r.pos = start
    return (fetch_att(r),)


def _modifier(r: Reader, name: bytes, nonzero: bool) -> int:
    """RFC 4466 §2.4 ``"(" NAME SP mod-sequence ")"``, the only modifier we accept."""
    r.expect(b"(", "(")
    if not r.try_word(name):
        r.fail(f"Unsupported modifier, expected {name.decode()}")
    r.sp()
    value = r.number(name.decode(), MAX63, nonzero)
    r.expect(b")", ") after modifier")
    return value


def _atts_and_modifier(r: Reader) -> tuple[tuple[FetchAtt, ...], int | None, bool]:
    """fetch-att list, then RFC 4466 §2.4 fetch-modifiers: RFC 7162 §3.1.4.1
    ``CHANGEDSINCE n`` and §3.2.6 ``VANISHED`` (only together with CHANGEDSINCE)."""
    atts = _atts(r)
    changedsince = None
    vanished = False
    if r.skip(b" "):
        r.expect(b"(", "(")
        while True:
            if changedsince is None and r.try_word(b"CHANGEDSINCE"):
                r.sp()
                changedsince = r.number("CHANGEDSINCE", MAX63, True)
            elif not vanished and r.try_word(b"VANISHED"):
                vanished = True
            else:
                r.fail("Unsupported modifier, expected CHANGEDSINCE or VANISHED")
            if not r.skip(b" "):
                break
        r.expect(b")", ") after modifier")
        if vanished and changedsince is None:
            r.fail("Unsupported modifier VANISHED without CHANGEDSINCE")  # RFC 7162 §3.2.6
    return atts, changedsince, vanished


def parse_fetch(r: Reader, tag: str, uid: bool) -> Fetch:
    """FETCH arguments (RFC 3501 §6.4.5) with RFC 7162 §3.1.4 CHANGEDSINCE.

    Clients repeat the same attribute lists, so the parse of a short,
    literal-free remainder of the line is memoised (results are immutable)."""
    r.sp()
    seq = r.seqset()
    r.sp()
    rest = r.data[r.pos :]
    hit = _ATTS_CACHE.get(rest)
    if hit is None:
        hit = _atts_and_modifier(r)
        if r.pos == len(r.data) and len(rest) <= _CACHE_KEY_MAX and b"\r\n" not in rest:
            if len(_ATTS_CACHE) >= _CACHE_SIZE:
                _ATTS_CACHE.clear()
            _ATTS_CACHE[rest] = hit
    else:
        r.pos = len(r.data)
    if hit[2] and not uid:
        r.fail("VANISHED is only allowed in UID FETCH")  # RFC 7162 §3.2.6
    return Fetch(tag, seq, hit[0], uid, hit[1], hit[2])


def parse_store(r: Reader, tag: str, uid: bool) -> Store:
    """STORE arguments (RFC 3501 §6.4.6) with RFC 7162 §3.1.3 UNCHANGEDSINCE."""
    r.sp()
    seq = r.seqset()
    r.sp()
    unchangedsince = None
    if r.peek() == 0x28:
        unchangedsince = _modifier(r, b"UNCHANGEDSINCE", nonzero=False)
        r.sp()
    m = r.match(_STORE_ITEM)
    if m is None:
        r.fail("Expected FLAGS, +FLAGS or -FLAGS")
    r.sp()
    if r.peek() == 0x28:
        flags = r.flag_list()
    else:  # RFC 3501 §9: flag *(SP flag) without parentheses
        items = [r.flag()]
        while r.skip(b" "):
            items.append(r.flag())
        flags = tuple(items)
    return Store(tag, seq, m.group(1).decode(), bool(m.group(2)), flags, uid, unchangedsince)
