"""The MIME side of IMAP FETCH: ENVELOPE, BODY/BODYSTRUCTURE and BODY[section].

:class:`ParsedMessage` wraps the raw RFC 5322 bytes of one stored message.
Construction is free; the header/body split happens on first use and the
MIME tree is built only when BODYSTRUCTURE or a numbered section is asked
for.  Parsing is done on the bytes with ``bytes.find`` (no ``email`` object
model) and never raises, whatever the input.

Results are *encoder values*: ``None`` = NIL, ``int`` = number, ``bytes`` =
string (the encoder picks quoted or literal), ``list`` = parenthesised list.

Rendering note for the encoder (RFC 3501 §9): ``body-type-mpart = 1*body SP
media-subtype`` and an address list is ``"(" 1*address ")"`` -- adjacent
bodies / addresses are written with *no* SP between them.  Both are the only
lists here whose first element is a list, so the rule is: "if a list starts
with a list, write its leading run of list elements without separators".
Everywhere else elements are separated by one SP.

Conventions (Dovecot-compatible unless noted):

* Type, subtype, parameter names and values keep the case of the header;
  defaults are lower case: ``"text" "plain" ("charset" "us-ascii")``,
  encoding ``"7bit"``; message/rfc822 is written ``"message" "rfc822"``.
* A Content-Type without a valid ``type/subtype`` is treated as absent
  (RFC 2045 §5.2), except ``text`` alone which keeps its parameters.
* Content-* headers are honoured even without MIME-Version.
* multipart/* without a usable boundary has no children and is rendered like
  Dovecot: one empty ``text/plain`` placeholder part, then the subtype.
  Section numbers inside it do not exist.
* A boundary that is never closed ends at the enclosing boundary or EOF; a
  boundary matches as a line prefix, the longest active boundary wins
  (RFC 2046 §5.1.1, as Dovecot does).
* Size is the exact octet count of the stored body (Dovecot reports the
  CRLF-normalised size; identical for CRLF-stored mail); lines is the number
  of LF characters in the body.
* First occurrence wins for duplicated headers.  Missing local-part/domain in
  an address become "MISSING_MAILBOX"/"MISSING_DOMAIN" (a NIL host would mean
  a group marker, RFC 3501 §7.4.2).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache

from twistedmail.imap.mimeparse import (
    IDENTITY_CTES,
    Field,
    field_value,
    header_fields,
    parse_addresses,
    parse_content_type,
    parse_language,
    parse_params,
    parse_token_header,
    skip_cfws,
    split_header,
)

__all__ = ["MimePart", "NotLeaf", "ParsedMessage", "transfer_encoding"]

MAX_DEPTH = 100  # nesting limit (Dovecot's default max nested MIME parts)
MAX_PARTS = 10000  # total MIME parts parsed per message

LEAF, MULTIPART, MESSAGE, OPAQUE = 0, 1, 2, 3

# (line start, boundary, is close-delimiter, index after the line)
Hit = tuple[int, bytes, bool, int]
CType = tuple[bytes, bytes, list[tuple[bytes, bytes]]]

_UNSET = object()
_DEFAULT_CHARSET = [b"charset", b"us-ascii"]  # RFC 2045 §5.2


class _Part:
    """One MIME entity: header at ``[start, fend)``, body at ``[bstart, bend)``."""

    __slots__ = (
        "raw", "start", "fend", "bstart", "bend", "headers_only",
        "kind", "children", "message", "_fields", "_index", "_ctype",
    )

    def __init__(self, raw: bytes, start: int, fend: int, bstart: int, bend: int) -> None:
        self.raw = raw
        self.start, self.fend, self.bstart, self.bend = start, fend, bstart, bend
        self.headers_only = False  # no blank line: everything is header
        self.kind = LEAF
        self.children: list[_Part] = []
        self.message: _Part | None = None  # encapsulated message (MESSAGE)
        self._fields: list[Field] | None = None
        self._index: dict[bytes, Field] | None = None
        self._ctype: object = _UNSET

    def fields(self) -> list[Field]:
        """Header fields in order (cached)."""
        if self._fields is None:
            self._fields = header_fields(self.raw, self.start, self.fend)
        return self._fields

    def get(self, name: bytes) -> bytes | None:
        """Unfolded value of the first field called ``name`` (upper case)."""
        if self._index is None:
            self._index = {f[0]: f for f in reversed(self.fields())}
        field = self._index.get(name)
        return None if field is None else field_value(self.raw, field)

    def ctype(self) -> CType | None:
        """Parsed Content-Type, None if absent or invalid (RFC 2045 §5.2)."""
        if self._ctype is _UNSET:
            self._ctype = _content_type(self.get(b"CONTENT-TYPE"))
        return self._ctype  # type: ignore[return-value]

    def header(self) -> bytes:
        """Header bytes including the terminating blank line."""
        return self.raw[self.start:self.bstart]

    def body(self) -> bytes:
        """Body bytes (for a multipart: preamble, parts and epilogue)."""
        return self.raw[self.bstart:self.bend]


MimePart = _Part


class NotLeaf(Exception):
    """BINARY of a multipart or message/rfc822 part (RFC 9051 §6.4.5: leaf parts only)."""


def transfer_encoding(part: _Part) -> bytes:
    """The part's Content-Transfer-Encoding token, lower case (RFC 2045 §6.1)."""
    return _encoding(part.get(b"CONTENT-TRANSFER-ENCODING")).lower()


def _content_type(value: bytes | None) -> CType | None:
    """Normalise a Content-Type value; ``text`` alone means text/plain."""
    if value is None:
        return None
    ct = parse_content_type(value)
    if ct is None or ct[1]:
        return ct
    return (b"text", b"plain", ct[2]) if ct[0].lower() == b"text" else None


# --- structure parsing ---------------------------------------------------------


class _Ctx:
    """Per-parse state: the raw bytes, boundary search memo and part budget."""

    __slots__ = ("raw", "memo", "count")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.memo: dict[bytes, tuple[int, int]] = {}
        self.count = 0

    def find(self, boundary: bytes, pos: int) -> int:
        """Start of the first line at/after ``pos`` beginning ``--boundary``."""
        memo = self.memo.get(boundary)
        if memo is not None and memo[0] <= pos and (memo[1] < 0 or memo[1] >= pos):
            return memo[1]
        raw = self.raw
        if pos == 0 and raw.startswith(b"--" + boundary):
            found = 0
        else:
            i = raw.find(b"\n--" + boundary, pos - 1 if pos else 0)
            found = i + 1 if i >= 0 else -1
        self.memo[boundary] = (pos, found)
        return found

    def next_hit(self, stack: tuple[bytes, ...], pos: int) -> Hit | None:
        """The nearest delimiter line of any active boundary (RFC 2046 §5.1.1).

        Boundaries match as a line prefix; on a tie the longest wins."""
        best, which = -1, b""
        for boundary in stack:
            at = self.find(boundary, pos)
            if at >= 0 and (best < 0 or at < best or (at == best and len(boundary) > len(which))):
                best, which = at, boundary
        if best < 0:
            return None
        raw = self.raw
        after = best + 2 + len(which)
        nl = raw.find(b"\n", after)
        return best, which, raw.startswith(b"--", after), len(raw) if nl < 0 else nl + 1

    def content_end(self, hit: Hit | None, floor: int) -> int:
        """Where content stops before ``hit``: its preceding CRLF belongs to it."""
        if hit is None:
            return len(self.raw)
        end = hit[0]
        if end <= floor:
            return floor
        end -= 1
        if end > floor and self.raw[end - 1] == 13:
            end -= 1
        return end


def _parse_entity(
    ctx: _Ctx, start: int, stack: tuple[bytes, ...], depth: int, digest: bool
) -> tuple[_Part, Hit | None]:
    """Parse the entity at ``start``; return it and the delimiter that ended it."""
    hit = ctx.next_hit(stack, start)
    fend, bstart = split_header(ctx.raw, start, hit[0] if hit else len(ctx.raw))
    if fend < 0:  # no blank line before the next boundary / EOF
        end = ctx.content_end(hit, start)
        part = _Part(ctx.raw, start, end, end, end)
        part.headers_only = True
    else:
        part = _Part(ctx.raw, start, fend, bstart, -1)
    return part, _fill(ctx, part, stack, depth, digest, hit)


def _fill(
    ctx: _Ctx, part: _Part, stack: tuple[bytes, ...], depth: int, digest: bool,
    hit: Hit | None,
) -> Hit | None:
    """Classify ``part`` and parse its body; return the delimiter that ended it."""
    part.kind, boundary = _classify(part, depth, digest)
    if part.headers_only:
        if part.kind == MESSAGE:
            part.message = _Part(ctx.raw, part.bend, part.bend, part.bend, part.bend)
        return hit
    if part.kind == MULTIPART and boundary and ctx.count < MAX_PARTS:
        return _fill_multipart(ctx, part, stack, depth, boundary)
    if part.kind == MESSAGE:  # RFC 2046 §5.2.1: the body is a whole message
        inner, stop = _parse_entity(ctx, part.bstart, stack, depth + 1, False)
        part.message, part.bend = inner, inner.bend
        return stop
    part.bend = ctx.content_end(hit, part.bstart)
    return hit


def _classify(part: _Part, depth: int, digest: bool) -> tuple[int, bytes]:
    """(kind, boundary) from the Content-Type."""
    ct = part.ctype()
    if ct is None:  # RFC 2046 §5.1.5: digest parts default to message/rfc822
        kind = MESSAGE if digest else LEAF
        return (OPAQUE if kind == MESSAGE and depth >= MAX_DEPTH else kind), b""
    major = ct[0].lower()
    if major == b"multipart":
        if depth >= MAX_DEPTH:
            return MULTIPART, b""
        return MULTIPART, next((v for k, v in ct[2] if k.lower() == b"boundary"), b"")
    if major == b"message" and ct[1].lower() == b"rfc822":
        return (OPAQUE if depth >= MAX_DEPTH else MESSAGE), b""
    return LEAF, b""


def _fill_multipart(
    ctx: _Ctx, part: _Part, stack: tuple[bytes, ...], depth: int, boundary: bytes
) -> Hit | None:
    """Split a multipart body on ``boundary`` (RFC 2046 §5.1.1)."""
    inner = stack + (boundary,)
    ct = part.ctype()
    digest = ct is not None and ct[1].lower() == b"digest"
    hit = ctx.next_hit(inner, part.bstart)  # skips the preamble
    while True:
        if hit is None:  # never closed: runs to EOF
            part.bend = len(ctx.raw)
            return None
        if hit[1] != boundary:  # an enclosing boundary ends us too
            part.bend = ctx.content_end(hit, part.bstart)
            return hit
        if hit[2] or ctx.count >= MAX_PARTS:  # close-delimiter: epilogue follows
            stop = ctx.next_hit(stack, hit[3])
            part.bend = ctx.content_end(stop, part.bstart)
            return stop
        ctx.count += 1
        child, hit = _parse_entity(ctx, hit[3], inner, depth + 1, digest)
        part.children.append(child)


# --- rendering -------------------------------------------------------------------


def _envelope(part: _Part) -> list:
    """RFC 3501 §7.4.2 ENVELOPE of the message whose header is ``part``'s."""
    get = part.get
    origin = get(b"FROM")
    return [
        get(b"DATE"),
        get(b"SUBJECT"),
        _addresses(origin),
        _addresses(get(b"SENDER")) or _addresses(origin),  # default: From (RFC 3501 §7.4.2)
        _addresses(get(b"REPLY-TO")) or _addresses(origin),
        _addresses(get(b"TO")),
        _addresses(get(b"CC")),
        _addresses(get(b"BCC")),
        get(b"IN-REPLY-TO"),
        get(b"MESSAGE-ID"),
    ]


def _addresses(value: bytes | None) -> list | None:
    """Address list or None (absent / empty)."""
    return None if not value else parse_addresses(value)


def _body(part: _Part, extended: bool) -> list:
    """BODY (extended=False) or BODYSTRUCTURE of ``part`` (RFC 3501 §7.4.2)."""
    if part.kind == MULTIPART:
        return _body_multipart(part, extended)
    return _body_single(part, extended)


def _body_multipart(part: _Part, extended: bool) -> list:
    """``1*body SP media-subtype [SP body-ext-mpart]``."""
    out: list = [_body(child, extended) for child in part.children]
    if not out:  # no parts is not allowed: Dovecot writes an empty text/plain
        out.append(_empty_body(extended))
    ct = part.ctype()
    out.append(ct[1] if ct else b"mixed")
    if extended:
        out.append(_param_list(ct[2] if ct else [], False))
        out.extend(_ext_common(part))
    return out


def _empty_body(extended: bool) -> list:
    """A 0-octet text/plain body (placeholder child of an empty multipart)."""
    out: list = [b"text", b"plain", list(_DEFAULT_CHARSET), None, None, b"7bit", 0, 0]
    return out + [None, None, None, None] if extended else out


def _body_single(part: _Part, extended: bool) -> list:
    """``body-type-basic / body-type-msg / body-type-text`` [SP body-ext-1part]."""
    major, minor, params = _media_type(part)
    text = part.kind == LEAF and major.lower() == b"text"
    out = [
        major, minor, _param_list(params, text),
        part.get(b"CONTENT-ID"), part.get(b"CONTENT-DESCRIPTION"),
        _encoding(part.get(b"CONTENT-TRANSFER-ENCODING")),
        part.bend - part.bstart,
    ]
    if text:  # body-type-text: body-fld-lines
        out.append(part.raw.count(b"\n", part.bstart, part.bend))
    elif part.kind == MESSAGE and part.message is not None:  # body-type-msg
        inner = part.message
        lines = part.raw.count(b"\n", part.bstart, part.bend)
        out += [_envelope(inner), _body(inner, extended), lines]
    if extended:
        out.append(part.get(b"CONTENT-MD5"))
        out.extend(_ext_common(part))
    return out


def _media_type(part: _Part) -> tuple[bytes, bytes, list[tuple[bytes, bytes]]]:
    """(type, subtype, params) as rendered, with the RFC 2045 §5.2 default."""
    ct = part.ctype()
    params = ct[2] if ct else []
    if part.kind == MESSAGE:
        return b"message", b"rfc822", params
    if part.kind == OPAQUE:  # nesting limit reached: contents not parsed
        return b"application", b"octet-stream", params
    if ct is None:
        return b"text", b"plain", []
    return ct


def _param_list(params: list[tuple[bytes, bytes]], text: bool) -> list | None:
    """``body-fld-param``: flat (name value ...) list; text gets a charset."""
    out: list = []
    charset = False
    for name, value in params:
        out += (name, value)
        charset = charset or name.lower() == b"charset"
    if text and not charset:
        out += _DEFAULT_CHARSET
    return out or None


def _encoding(value: bytes | None) -> bytes:
    """Content-Transfer-Encoding token (RFC 2045 §6.1), default "7bit"."""
    if value is None:
        return b"7bit"
    token, end = parse_token_header(value)
    if token is None or skip_cfws(value, end) != len(value):
        return b"7bit"
    return token


def _ext_common(part: _Part) -> list:
    """``body-fld-dsp SP body-fld-lang SP body-fld-loc`` (RFC 2183, 3282, 2557)."""
    language = part.get(b"CONTENT-LANGUAGE")
    return [
        _disposition(part.get(b"CONTENT-DISPOSITION")),
        None if language is None else parse_language(language),
        part.get(b"CONTENT-LOCATION"),
    ]


def _disposition(value: bytes | None) -> list | None:
    """``("type" (params))`` per RFC 2183 §2, or None."""
    if value is None:
        return None
    token, end = parse_token_header(value)
    if token is None:
        return None
    return [token, _param_list(parse_params(value, end), False)]


# --- sections ----------------------------------------------------------------------


def _wanted(fields: Iterable[str | bytes]) -> frozenset[bytes]:
    """Upper-cased field names as bytes (cached for the usual tuple argument)."""
    if isinstance(fields, tuple):
        return _wanted_cached(fields)
    return _wanted_uncached(fields)


@lru_cache(maxsize=256)
def _wanted_cached(fields: tuple[str | bytes, ...]) -> frozenset[bytes]:
    return _wanted_uncached(fields)


def _wanted_uncached(fields: Iterable[str | bytes]) -> frozenset[bytes]:
    out = set()
    for name in fields:
        if isinstance(name, str):
            name = name.encode("latin-1", "replace")
        out.add(name.strip().upper())
    return frozenset(out)


@lru_cache(maxsize=256)
def _fields_regex(wanted: frozenset[bytes]) -> re.Pattern[bytes]:
    """A regex finding whole fields (folded lines included) named in ``wanted``."""
    names = b"|".join(re.escape(n) for n in sorted(wanted) if n)
    return re.compile(rb"^(?:" + names + rb")[ \t]*:[^\n]*\n?(?:[ \t][^\n]*\n?)*",
                      re.IGNORECASE | re.MULTILINE)


def _filter_header(part: _Part, fields: Iterable[str | bytes], keep: bool) -> bytes:
    """HEADER.FIELDS (keep=True) / HEADER.FIELDS.NOT: raw fields + CRLF."""
    wanted = _wanted(fields)
    raw = part.raw
    if keep and part._fields is None and wanted - {b""}:
        # Fast path without splitting (and caching) every field of the header.
        regex = _fields_regex(wanted)
        chunks = regex.findall(raw, part.start, part.fend)
    else:
        chunks = [raw[f[1]:f[2]] for f in part.fields() if (f[0] in wanted) == keep]
    if chunks and not chunks[-1].endswith(b"\n"):
        chunks.append(b"\r\n")
    chunks.append(b"\r\n")  # RFC 3501 §6.4.5: the blank line is always included
    return b"".join(chunks)


def _message_section(
    msg: _Part, spec: str, fields: Iterable[str | bytes]
) -> bytes | None:
    """HEADER / TEXT / HEADER.FIELDS[.NOT] of a (possibly encapsulated) message."""
    if spec == "HEADER":
        return msg.header()
    if spec == "TEXT":
        return msg.body()
    if spec == "HEADER.FIELDS":
        return _filter_header(msg, fields, True)
    if spec == "HEADER.FIELDS.NOT":
        return _filter_header(msg, fields, False)
    return None


def top_header_fields(raw: bytes, fields: tuple[str, ...]) -> bytes:
    """``BODY[HEADER.FIELDS (...)]`` of a whole message, without building a parse tree.

    The FETCH hot path for header syncs (RFC 3501 §6.4.5); same bytes as
    ``ParsedMessage(raw).section((), "HEADER.FIELDS", fields)``."""
    wanted = _wanted(fields)
    fend, _ = split_header(raw, 0, len(raw))
    if fend < 0:
        fend = len(raw)
    chunks = _fields_regex(wanted).findall(raw, 0, fend) if wanted - {b""} else []
    if chunks and not chunks[-1].endswith(b"\n"):
        chunks.append(b"\r\n")
    chunks.append(b"\r\n")
    return b"".join(chunks)


class ParsedMessage:
    """Lazily parsed view of one message for FETCH (RFC 3501 §6.4.5, §7.4.2)."""

    __slots__ = ("raw", "_root", "_built")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw if type(raw) is bytes else bytes(raw)
        self._root: _Part | None = None
        self._built = False

    def _top(self) -> _Part:
        """The top-level entity with its header/body split done (cheap)."""
        if self._root is None:
            raw = self.raw
            fend, bstart = split_header(raw, 0, len(raw))
            root = _Part(raw, 0, fend, bstart, len(raw))
            if fend < 0:  # no blank line: the whole message is header
                root.fend = root.bstart = len(raw)
                root.headers_only = True
            self._root = root
        return self._root

    def _tree(self) -> _Part:
        """The top-level entity with its full MIME tree."""
        root = self._top()
        if not self._built:
            _fill(_Ctx(self.raw), root, (), 0, False, None)
            self._built = True
        return root

    def envelope(self) -> list:
        """ENVELOPE (RFC 3501 §7.4.2)."""
        return _envelope(self._top())

    def bodystructure(self, extended: bool = True) -> list:
        """BODYSTRUCTURE, or BODY when ``extended`` is False (RFC 3501 §7.4.2)."""
        return _body(self._tree(), extended)

    def header_bytes(self) -> bytes:
        """RFC822.HEADER: the top-level header including the blank line."""
        return self._top().header()

    def text_bytes(self) -> bytes:
        """RFC822.TEXT: the top-level body."""
        return self._top().body()

    def section(
        self, part: tuple[int, ...], text: str | None, fields: tuple[str, ...] = ()
    ) -> bytes | None:
        """BODY[<section>] contents (RFC 3501 §6.4.5); None if it does not exist.

        ``text`` is None, "MIME", "HEADER", "TEXT", "HEADER.FIELDS" or
        "HEADER.FIELDS.NOT" (``fields`` then lists the names)."""
        spec = None if text is None else text.upper()
        if not part:
            if spec is None:
                return self.raw
            return _message_section(self._top(), spec, fields)
        node = self._resolve(part)
        if node is None:
            return None
        if spec is None:
            return node.body()
        if spec == "MIME":
            return node.header()
        if node.message is None:  # HEADER/TEXT need a message/rfc822 part
            return None
        return _message_section(node.message, spec, fields)

    def binary(self, part: tuple[int, ...]) -> tuple[bytes, bytes, bytes] | None:
        """What RFC 3516 §4.2 ``BINARY[part]`` decodes, as ``(prefix, encoding,
        content)``: the answer is ``prefix`` + ``content`` with the (lower-case)
        encoding removed.  None if the part does not exist; NotLeaf for a
        multipart or message/rfc822 part.  ``BINARY[]`` is the whole message: a
        single-part message's body is decoded and its Content-Transfer-Encoding
        field dropped; a multipart message is returned as stored."""
        if part:
            node = self._resolve(part)
            if node is None:
                return None
            if node.kind == MULTIPART or node.kind == MESSAGE:
                raise NotLeaf(".".join(map(str, part)))
            return b"", transfer_encoding(node), node.body()
        root = self._tree()
        encoding = transfer_encoding(root)
        if root.kind != LEAF or encoding in IDENTITY_CTES:
            return b"", b"binary", self.raw
        raw = self.raw
        kept = [raw[f[1]:f[2]] for f in root.fields() if f[0] != b"CONTENT-TRANSFER-ENCODING"]
        return b"".join(kept) + raw[root.fend:root.bstart], encoding, root.body()

    def leaves(self) -> Iterator[_Part]:
        """Leaf entities in MIME order, not descending into message/rfc822 (PREVIEW)."""
        stack = [self._tree()]
        while stack:
            node = stack.pop()
            if node.kind == MULTIPART:
                stack.extend(reversed(node.children))
            elif node.kind == LEAF:
                yield node

    def _resolve(self, path: tuple[int, ...]) -> _Part | None:
        """Walk part numbers like Dovecot's imap_msgpart_find (RFC 3501 §6.4.5).

        A non-multipart entity only has part 1 (itself); numbers continue into
        a message/rfc822 part's encapsulated message."""
        node = self._tree()
        last = len(path) - 1
        for i, num in enumerate(path):
            if node.kind == MULTIPART:
                if not 1 <= num <= len(node.children):
                    return None
                node = node.children[num - 1]
            elif num != 1 or (i < last and node.message is None):
                return None
            if i < last and node.message is not None:
                node = node.message
        return node
