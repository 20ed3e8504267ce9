"""Byte-level helpers for :mod:`twistedmail.imap.mime`: header fields, MIME
parameters and RFC 5322 address lists.

Everything here works on raw ``bytes`` and never raises on malformed input;
values come back as the exact header bytes (8-bit data untouched, RFC 2047
encoded-words left encoded), because IMAP returns them as-is (RFC 3501 §7.4.2).
The parsing rules follow Dovecot's tolerant lib-mail parsers where that
matters to clients (parameter order, RFC 2231 merging, MISSING_* fillers).
"""

from __future__ import annotations

import binascii
import re

Field = tuple[bytes, int, int, int]  # (NAME-UPPER, start, end incl. newline, colon or -1)
Segment = tuple[int, bool, bytes, bytes]  # RFC 2231 (index, extended, value, original name)

MISSING_MAILBOX = b"MISSING_MAILBOX"
MISSING_DOMAIN = b"MISSING_DOMAIN"

# --- header blocks -----------------------------------------------------------


def split_header(raw: bytes, start: int, limit: int) -> tuple[int, int]:
    """Find the blank line ending the header that starts at ``start``.

    Returns ``(fields_end, body_start)``: fields_end is where the blank line
    begins, body_start is just after it (RFC 5322 §2.1: header, empty line,
    body).  Bare LF is accepted as a line end.  ``(-1, -1)`` if no blank line
    occurs before ``limit``."""
    if start >= limit:
        return -1, -1
    first = raw[start]
    if first == 10:  # header is empty: the message starts with the blank line
        return start, start + 1
    if first == 13 and raw.startswith(b"\r\n", start) and start + 2 <= limit:
        return start, start + 2
    crlf = raw.find(b"\n\r\n", start, limit)
    lf = raw.find(b"\n\n", start, limit if crlf < 0 else crlf + 2)
    if lf >= 0 and (crlf < 0 or lf < crlf):
        return lf + 1, lf + 2
    if crlf >= 0:
        return crlf + 1, crlf + 3
    return -1, -1


# One field: name, optional WSP, colon, value, then WSP-led continuation lines
# (RFC 5322 §2.2.3).  A line without a colon matches as a nameless field.
# Groups: whole field, text before the colon, name.  Matches are contiguous.
_FIELD = re.compile(rb"((?:(([^ \t\r\n:]+)[ \t]*):)?[^\n]*\n?(?:[ \t][^\n]*\n?)*)")


def header_fields(raw: bytes, start: int, end: int) -> list[Field]:
    """Split ``raw[start:end]`` into header fields, keeping folded lines.

    Each field is ``(NAME, start, end, colon)`` with NAME upper-cased and
    stripped of WSP before the colon (RFC 5322 §4.5.3 obs-optional); a line
    without a colon gets the name ``b""`` and colon -1, so it is kept for
    HEADER / HEADER.FIELDS.NOT but never matches a field name."""
    out: list[Field] = []
    append = out.append
    pos = start
    for whole, prefix, name in _FIELD.findall(raw, start, end):
        if not whole:
            break
        stop = pos + len(whole)
        if name:
            append((name.upper(), pos, stop, pos + len(prefix)))
        else:
            append((b"", pos, stop, -1))
        pos = stop
    return out


def field_value(raw: bytes, field: Field) -> bytes:
    """The unfolded value of a field (RFC 5322 §2.2.3), WSP-trimmed."""
    _name, _start, end, colon = field
    value = raw[colon + 1:end]
    if b"\n" in value:
        value = value.replace(b"\r\n", b"").replace(b"\n", b"")
    return value.strip(b" \t\r")


# --- MIME tokens and parameters (RFC 2045 §5.1, RFC 2231) ---------------------

# RFC 2045 token: any CHAR except SPACE, CTLs and tspecials; 8-bit tolerated.
_TOKEN_CHARS = rb'[^\x00-\x20()<>@,;:\\"/\[\]?=\x7f]+'
_TOKEN = re.compile(_TOKEN_CHARS)
# Tolerant unquoted parameter value: up to ';', whitespace, quote or comment.
_LOOSE_VALUE = re.compile(rb'[^;\s"(]+')
_QUOTED = re.compile(rb'"((?:[^"\\]++|\\.)*+)(?:"|\\?\Z)', re.S)


def skip_cfws(v: bytes, pos: int) -> int:
    """Skip whitespace and (nested) comments (RFC 5322 §3.2.2 CFWS)."""
    n = len(v)
    while pos < n:
        c = v[pos]
        if c in (32, 9, 13, 10):
            pos += 1
        elif c == 40:  # "("
            pos = _skip_comment(v, pos)
        else:
            break
    return pos


def _skip_comment(v: bytes, pos: int) -> int:
    """Index just past the comment opening at ``pos`` (or end if unclosed)."""
    depth = 0
    n = len(v)
    while pos < n:
        c = v[pos]
        if c == 92:  # backslash: quoted-pair
            pos += 2
            continue
        if c == 40:
            depth += 1
        elif c == 41:
            depth -= 1
            if depth == 0:
                return pos + 1
        pos += 1
    return n


def unquote(body: bytes) -> bytes:
    """Remove quoted-pair backslashes (RFC 5322 §3.2.1)."""
    i = body.find(b"\\")
    if i < 0:
        return body
    out = []
    start = 0
    while i >= 0:
        out.append(body[start:i])
        out.append(body[i + 1:i + 2] or b"\\")  # a final lone "\\" is kept
        start = i + 2
        i = body.find(b"\\", start)
    out.append(body[start:])
    return b"".join(out)


def parse_content_type(v: bytes) -> tuple[bytes, bytes, list[tuple[bytes, bytes]]] | None:
    """RFC 2045 §5.1 ``type "/" subtype *(";" parameter)``, tolerantly.

    Returns None when no type token is present (the caller then applies the
    text/plain default); a missing subtype comes back as ``b""``."""
    m = _SIMPLE_CTYPE.match(v)
    if m is not None:
        return m.group(1), m.group(2), parse_params(v, m.end())
    pos = skip_cfws(v, 0)
    m = _TOKEN.match(v, pos)
    if m is None:
        return None
    ctype = m.group()
    pos = skip_cfws(v, m.end())
    subtype = b""
    if v[pos:pos + 1] == b"/":
        pos = skip_cfws(v, pos + 1)
        m = _TOKEN.match(v, pos)
        if m is not None:
            subtype = m.group()
            pos = m.end()
    return ctype, subtype, parse_params(v, pos)


def parse_token_header(v: bytes) -> tuple[bytes | None, int]:
    """A leading token (Content-Transfer-Encoding, Content-Disposition)."""
    pos = skip_cfws(v, 0)
    m = _TOKEN.match(v, pos)
    if m is None:
        return None, pos
    return m.group(), m.end()


# Fast path: a well-formed ``; name=value`` or ``; name="quoted"`` parameter.
_SIMPLE_PARAM = re.compile(
    rb'[ \t]*;[ \t]*(' + _TOKEN_CHARS + rb')[ \t]*=[ \t]*'
    rb'(?:"((?:[^"\\]++|\\.)*+)"|([^;\s"(]+))[ \t]*',
    re.S,
)
_SIMPLE_CTYPE = re.compile(
    rb'[ \t]*(' + _TOKEN_CHARS + rb')[ \t]*/[ \t]*(' + _TOKEN_CHARS + rb')[ \t]*'
)


def _simple_params(v: bytes, pos: int) -> list[tuple[bytes, bytes]] | None:
    """All parameters via the fast path, or None if the value needs slack."""
    out: list[tuple[bytes, bytes]] = []
    n = len(v)
    match = _SIMPLE_PARAM.match
    while pos < n:
        m = match(v, pos)
        if m is None:
            return None
        name, quoted, plain = m.groups()
        out.append((name, plain if quoted is None else unquote(quoted)))
        pos = m.end()
    return out


def parse_params(v: bytes, pos: int) -> list[tuple[bytes, bytes]]:
    """``*(";" attribute "=" value)`` with real-world slack.

    Garbage up to the next ';' is skipped, a parameter without '=' is
    dropped, ``name=`` gives an empty value, an unterminated quoted string
    runs to the end, duplicates are kept in order (Dovecot does the same).
    RFC 2231 continuations are merged afterwards (see merge_rfc2231)."""
    simple = _simple_params(v, pos)
    if simple is not None and not any(b"*" in name for name, _ in simple):
        return simple
    out: list[tuple[bytes, bytes]] = []
    n = len(v)
    while True:
        semi = v.find(b";", pos)
        if semi < 0:
            break
        pos = skip_cfws(v, semi + 1)
        m = _TOKEN.match(v, pos)
        if m is None:
            continue
        name = m.group()
        pos = skip_cfws(v, m.end())
        if pos >= n or v[pos] != 61:  # "="
            continue
        pos = skip_cfws(v, pos + 1)
        value, pos = _param_value(v, pos)
        out.append((name, value))
    if any(b"*" in name for name, _ in out):
        return merge_rfc2231(out)
    return out


def _param_value(v: bytes, pos: int) -> tuple[bytes, int]:
    """A quoted-string or a loose token value starting at ``pos``."""
    if v[pos:pos + 1] == b'"':
        m = _QUOTED.match(v, pos)
        if m is not None:
            return unquote(m.group(1)), m.end()
        return v[pos + 1:], len(v)
    m = _LOOSE_VALUE.match(v, pos)
    if m is None:
        return b"", pos
    return m.group(), m.end()


def merge_rfc2231(params: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Join RFC 2231 §3 continuations ``name*0``, ``name*1*`` ... into one.

    Like Dovecot, the joined value stays encoded: the key becomes ``name*``
    when any segment is extended (``charset'lang'%xx`` is kept raw, RFC 2231
    §4), otherwise ``name``.  Sets with missing or repeated indexes are left
    unmerged.  Merged parameters follow the plain ones."""
    plain: list[tuple[bytes, bytes]] = []
    groups: dict[bytes, tuple[bytes, list[Segment]]] = {}
    for name, value in params:
        key, idx, ext = _split_2231(name)
        if key is None:
            plain.append((name, value))
        else:
            groups.setdefault(key.lower(), (key, []))[1].append((idx, ext, value, name))
    for key, segs in groups.values():
        plain.extend(_join_segments(key, segs))
    return plain


def _split_2231(name: bytes) -> tuple[bytes | None, int, bool]:
    """``name*3*`` -> (name, 3, True); ``name*`` -> (name, 0, True)."""
    star = name.find(b"*")
    if star <= 0:
        return None, 0, False
    rest = name[star + 1:]
    ext = rest.endswith(b"*")
    digits = rest[:-1] if ext else rest
    if digits and (not digits.isdigit() or len(digits) > 4):
        return None, 0, False
    if not digits and not ext:
        return None, 0, False
    return name[:star], int(digits) if digits else 0, ext


def _join_segments(key: bytes, segs: list[Segment]) -> list[tuple[bytes, bytes]]:
    """Concatenate one parameter's segments, or return them as given if broken.

    Non-extended segments of an extended value get '%' escaped, and a
    leading ``''`` if the first one is plain (RFC 2231 §4.1, as Dovecot)."""
    ordered = sorted(segs, key=lambda s: s[0])
    if [s[0] for s in ordered] != list(range(len(ordered))):
        return [(name, value) for _i, _e, value, name in segs]
    extended = any(s[1] for s in ordered)
    parts = [b"''"] if extended and not ordered[0][1] else []
    for _idx, ext, value, _name in ordered:
        parts.append(value.replace(b"%", b"%25") if extended and not ext else value)
    return [(key + b"*" if extended else key, b"".join(parts))]


def parse_language(v: bytes) -> list | None:
    """Content-Language (RFC 3282 §2): comma-separated language tags."""
    out: list = []
    pos = skip_cfws(v, 0)
    while True:
        m = _TOKEN.match(v, pos)
        if m is None:
            break
        out.append(m.group())
        pos = skip_cfws(v, m.end())
        if v[pos:pos + 1] != b",":
            break
        pos = skip_cfws(v, pos + 1)
    return out or None


# --- RFC 5322 §3.4 address lists ----------------------------------------------

_ADDR_TOKEN = re.compile(
    rb'(?P<ws>[ \t\r\n]+)'
    rb'|(?P<q>"(?:[^"\\]++|\\.)*+(?:"|\\?\Z))'
    rb'|(?P<lit>\[(?:[^\]\\]++|\\.)*+(?:\]|\\?\Z))'
    rb'|(?P<sp>[<>@,;:])'
    rb'|(?P<atom>[^ \t\r\n"()\[\]<>@,;:\\]+)'
    rb'|(?P<other>.)',
    re.S,
)

Token = tuple[str, bytes]  # kind: "a" word, "c" comment, or a special char


def _addr_tokens(v: bytes) -> list[Token]:
    """Lex an address header into words, comments and specials."""
    out: list[Token] = []
    pos, n = 0, len(v)
    match = _ADDR_TOKEN.match
    while pos < n:
        if v[pos] == 40:  # "(" comment
            end = _skip_comment(v, pos)
            out.append(("c", unquote(v[pos + 1:end - 1 if v[end - 1] == 41 else end])))
            pos = end
            continue
        m = match(v, pos)
        if m is None:  # pragma: no cover - the "other" branch matches anything
            break
        kind = m.lastgroup
        text = m.group()
        if kind == "q":
            body = text[1:-1] if len(text) > 1 and text.endswith(b'"') else text[1:]
            out.append(("a", unquote(body)))
        elif kind in ("atom", "lit", "other"):
            out.append(("a", text))
        elif kind == "sp":
            out.append((text.decode("latin-1"), text))
        pos = m.end()
    return out


def _glue(tokens: list[Token]) -> bytes:
    """Join words with single spaces; specials attach without spaces."""
    parts: list[bytes] = []
    glued = True
    for kind, text in tokens:
        if kind == "c":
            continue
        if kind == "a":
            if not glued:
                parts.append(b" ")
            glued = False
        else:
            glued = True
        parts.append(text)
    return b"".join(parts)


def _mailbox(tokens: list[Token]) -> list | None:
    """One mailbox (name-addr or addr-spec) -> [name, adl, mailbox, host]."""
    if not any(kind in ("a", "<") for kind, _ in tokens):  # stray specials only
        return None
    kinds = [kind for kind, _ in tokens]
    if "<" in kinds:
        lt = kinds.index("<")
        name = _glue(tokens[:lt]) or None
        inner = tokens[lt + 1:]
        if ">" in kinds[lt + 1:]:
            inner = inner[:kinds[lt + 1:].index(">")]
        adl, mailbox, host = _angle_addr(inner)
    else:
        adl = None
        mailbox, host = _addr_spec(tokens)
        comments = [text for kind, text in tokens if kind == "c"]
        name = comments[-1].strip() if comments and comments[-1].strip() else None
    return [name, adl, mailbox or MISSING_MAILBOX, host or MISSING_DOMAIN]


def _angle_addr(tokens: list[Token]) -> tuple[bytes | None, bytes, bytes]:
    """``[route ":"] local-part "@" domain`` inside angle brackets."""
    adl = None
    kinds = [kind for kind, _ in tokens if kind != "c"]
    tokens = [t for t in tokens if t[0] != "c"]
    if kinds[:1] == ["@"] and ":" in kinds:  # RFC 5322 §4.4 obs-route
        colon = kinds.index(":")
        adl = b"".join(text for _, text in tokens[:colon]) or None
        tokens = tokens[colon + 1:]
    mailbox, host = _addr_spec(tokens)
    return adl, mailbox, host


def _addr_spec(tokens: list[Token]) -> tuple[bytes, bytes]:
    """``local-part "@" domain`` split at the first '@' (tolerant)."""
    words = [t for t in tokens if t[0] != "c"]
    for i, (kind, _text) in enumerate(words):
        if kind == "@":
            local = b"".join(text for _, text in words[:i])
            return local, b"".join(text for _, text in words[i + 1:])
    return _glue(words), b""


_ATEXT = rb'[^"\\,;:<>@()\[\] \t\r\n]'
# Fast path for the common shapes: ``a@b``, ``Name <a@b>``, ``"Name" <a@b>``
# separated by commas.  Built without ambiguous quantifiers (linear time).
_SIMPLE_ADDR = re.compile(
    rb'[ \t]*(?:((?:"(?:[^"\\\r\n]++|\\[^\r\n])*+")|' + _ATEXT + rb'+(?:[ \t]+' + _ATEXT + rb'+)*)?'
    rb'[ \t]*<(' + _ATEXT + rb'+)@(' + _ATEXT + rb'+)>'
    rb'|(' + _ATEXT + rb'+)@(' + _ATEXT + rb'+))[ \t]*(?:,|\Z)'
)


def _simple_addresses(v: bytes) -> list | None:
    """Parse ``v`` with the fast path, or None if it needs the full parser."""
    out: list = []
    pos, n = 0, len(v)
    match = _SIMPLE_ADDR.match
    while pos < n:
        m = match(v, pos)
        if m is None:
            return None
        name, local, domain, local2, domain2 = m.groups()
        if local is None:
            out.append([None, None, local2, domain2])
        else:
            if name is not None:
                name = unquote(name[1:-1]) if name[:1] == b'"' else b" ".join(name.split())
            out.append([name or None, None, local, domain])
        pos = m.end()
    return out


def parse_addresses(v: bytes) -> list | None:
    """Parse an address-list into RFC 3501 §7.4.2 address structures.

    Groups become ``[NIL NIL name NIL] ... [NIL NIL NIL NIL]``; an empty or
    unparseable value gives None.  Missing local part / domain are filled
    with MISSING_MAILBOX / MISSING_DOMAIN like Dovecot, because a NIL host
    would make clients read the address as a group marker (RFC 3501 §7.4.2).
    """
    simple = _simple_addresses(v)
    if simple is not None:
        return simple or None
    out: list = []
    cur: list[Token] = []
    in_group = in_route = False
    for tok in _addr_tokens(v):
        kind = tok[0]
        if kind == "," and not in_route:
            _flush(cur, out)
        elif kind == ";":
            _flush(cur, out)
            if in_group:
                out.append([None, None, None, None])
                in_group = False
        elif kind == ":" and not in_group and not in_route and _is_group_name(cur):
            out.append([None, None, _glue(cur), None])
            cur.clear()
            in_group = True
        else:
            if kind == ":" or kind == ">":
                in_route = False
            elif kind == "@" and cur and cur[-1][0] == "<":
                in_route = True
            cur.append(tok)
    _flush(cur, out)
    if in_group:
        out.append([None, None, None, None])
    return out or None


def _is_group_name(cur: list[Token]) -> bool:
    """True if the pending tokens can be a group's display-name."""
    return any(k == "a" for k, _ in cur) and not any(k in ("@", "<", ">") for k, _ in cur)


def _flush(cur: list[Token], out: list) -> None:
    """Emit the pending mailbox (if any) and reset the token buffer."""
    addr = _mailbox(cur)
    if addr is not None:
        out.append(addr)
    cur.clear()


# --- Content-Transfer-Encoding (RFC 2045 §6) ------------------------------------

IDENTITY_CTES = frozenset((b"7bit", b"8bit", b"binary"))  # RFC 2045 §6.2: no decoding
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_B64_JUNK = bytes(c for c in range(256) if c not in _B64_ALPHABET)
_QP_PADDING = re.compile(rb"[ \t]+(?=\r?\n|\Z)")


def decode_base64(data: bytes) -> bytes:
    """RFC 2045 §6.8 base64, tolerantly: characters outside the alphabet are
    ignored, data ends at the first "=", a dangling sextet is dropped."""
    clean = data.translate(None, _B64_JUNK)
    pad = clean.find(b"=")
    if pad >= 0:
        clean = clean[:pad]
    extra = len(clean) % 4
    if extra == 1:
        clean = clean[:-1]
    elif extra:
        clean += b"=" * (4 - extra)
    return binascii.a2b_base64(clean)


def decode_quoted_printable(data: bytes) -> bytes:
    """RFC 2045 §6.7 quoted-printable: soft line breaks removed, ``=XX``
    decoded, trailing transport padding dropped (rule 3); bad escapes kept."""
    if (b" \n" in data or b"\t\n" in data or b" \r\n" in data or b"\t\r\n" in data
            or data.endswith((b" ", b"\t"))):
        data = _QP_PADDING.sub(b"", data)
    return binascii.a2b_qp(data)


def decode_transfer(encoding: bytes, data: bytes) -> bytes | None:
    """``data`` with the Content-Transfer-Encoding ``encoding`` (lower-case
    token) removed; None when the encoding is unknown (RFC 3516 UNKNOWN-CTE)."""
    if encoding in IDENTITY_CTES:
        return data
    if encoding == b"base64":
        return decode_base64(data)
    if encoding == b"quoted-printable":
        return decode_quoted_printable(data)
    return None
