"""Per-message lazy index used by SEARCH (RFC 3501 §6.4.4).

One :class:`MessageIndex` lives in each message's shared cache slot under the
key ``"search"``.  It never holds a second copy of the message: it records
where the body starts, the casefolded values of the header fields somebody
searched for, the parsed Date: header, and -- only for messages that need it
-- the decoded text of encoded (base64 / quoted-printable / 8-bit) text
parts and RFC 2047 encoded words.

Every function here accepts arbitrary bytes and never raises.
"""

from __future__ import annotations

import binascii
import datetime
import email.parser
import email.policy
import email.utils
import functools
import re
from typing import Any

CACHE_KEY = "search"

# Dovecot (index-mail.c, index_mail_cache_sent_date) stores time 0 for a
# missing or unparseable Date: header, so SENTBEFORE matches such messages,
# SENTSINCE does not, and SENTON matches only 1-Jan-1970.  We copy that.
EPOCH_DATE = datetime.date(1970, 1, 1)

UNSET: Any = object()  # "not computed yet" marker for lazily filled slots

# Field haystacks cached per message; beyond this (a client searching many
# odd HEADER names) values are recomputed instead of growing every message.
MAX_CACHED_FIELDS = 12

# RFC 5322 §2.2.3: a fold is CRLF followed by WSP; we also accept bare LF.
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
# RFC 2047 §2: encoded-word = "=?" charset "?" encoding "?" encoded-text "?="
_EWORD = re.compile(r"=\?([^?\s]+)\?([QqBb])\?([^?\s]*)\?=")
_MIME_HINTS = (b"base64", b"quoted-printable")


def fold_needle(needle: bytes) -> str:
    """The needle as a casefolded str (UTF-8; stray 8-bit bytes kept via surrogates)."""
    return needle.decode("utf-8", "surrogateescape").casefold()


def text_of(raw: bytes) -> str:
    """Header or body bytes as str: UTF-8 (RFC 6532), other bytes as surrogates."""
    return raw.decode("utf-8", "surrogateescape")


def body_start(data: bytes) -> int:
    """Offset of the body: just after the first empty line, len(data) if none.

    RFC 5322 §2.1: the header ends at the first empty line.  A message without
    one is all header (as Dovecot treats it).  CRLF and bare LF both count."""
    if data.startswith(b"\r\n"):
        return 2
    if data.startswith(b"\n"):
        return 1
    best = len(data)
    for sep in (b"\n\r\n", b"\n\n"):  # "\n\r\n" covers CRLF CRLF; CRLF first
        pos = data.find(sep, 0, best)
        if pos >= 0:
            best = pos + len(sep)
    return best


@functools.lru_cache(maxsize=256)
def _field_patterns(lname: str) -> tuple[re.Pattern[bytes], re.Pattern[bytes]]:
    """Regexes for field ``lname``: (on the first line, on any later line).

    RFC 5322 §2.2 / §4.5.3 (obs-optional): name, optional WSP, colon, value
    with its folds.  The later-line form starts with a literal newline, which
    lets the regex engine skip ahead quickly."""
    name = re.escape(lname.encode("utf-8", "surrogateescape"))
    field = name + rb"[ \t]*:(.*(?:\r?\n[ \t].*)*)"
    return re.compile(field, re.I), re.compile(rb"\n" + field, re.I)


def raw_values(data: bytes, end: int, lname: str) -> list[bytes]:
    """Every unfolded, stripped raw value of field ``lname`` in ``data[:end]``."""
    first, later = _field_patterns(lname)
    found = [m.group(1) for m in later.finditer(data, 0, end)]
    m = first.match(data, 0, end)
    if m is not None:
        found.insert(0, m.group(1))
    return [_FOLD.sub(b"", v).strip(b" \t\r\n") for v in found]


# --- RFC 2047 encoded words ----------------------------------------------------


def decode_charset(raw: bytes, charset: str) -> str:
    """``raw`` decoded with ``charset``; unknown or broken charsets fall back to UTF-8."""
    try:
        return raw.decode(charset, "replace")
    except Exception:  # LookupError, non-text codecs, codec bugs: never raise
        return raw.decode("utf-8", "replace")


def _word_bytes(encoding: str, payload: str) -> bytes | None:
    """The octets of one encoded word's text, or None if they are malformed."""
    data = payload.encode("utf-8", "surrogateescape")
    if encoding in "Qq":
        return binascii.a2b_qp(data, header=True)  # RFC 2047 §4.2: "_" is space
    try:
        return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        return None


def decode_words(text: str) -> str:
    """Decode RFC 2047 encoded words in ``text``; malformed words are kept as-is.

    RFC 2047 §6.2: whitespace between adjacent encoded words is dropped.  Runs
    of words in the same charset are joined before decoding so that a
    multi-byte character split across two words survives."""
    if "=?" not in text:
        return text
    out: list[str] = []
    pending = bytearray()
    charset = ""
    pos = 0
    for m in _EWORD.finditer(text):
        octets = _word_bytes(m.group(2), m.group(3))
        if octets is None:
            continue
        gap = text[pos : m.start()]
        adjacent = pos > 0 and not gap.strip(" \t\r\n")
        word_cs = m.group(1).split("*", 1)[0].lower()  # RFC 2231 §5: charset*lang
        if pending and (not adjacent or word_cs != charset):
            out.append(decode_charset(bytes(pending), charset))
            pending.clear()
        if not adjacent:
            out.append(gap)
        charset = word_cs
        pending += octets
        pos = m.end()
    if pending:
        out.append(decode_charset(bytes(pending), charset))
    out.append(text[pos:])
    return "".join(out)


def field_haystack(values: list[bytes]) -> str | None:
    """Searchable form of a field: casefolded raw and decoded values, NUL-joined.

    None when the field is absent (RFC 3501 §6.4.4 HEADER "" needs the
    difference between "absent" and "present but empty")."""
    if not values:
        return None
    parts: list[str] = []
    for raw in values:
        text = text_of(raw)
        parts.append(text.casefold())
        decoded = decode_words(text)
        if decoded != text:
            parts.append(decoded.casefold())
    return "\x00".join(parts)


# --- Date: header ------------------------------------------------------------


def sent_date(values: list[bytes]) -> datetime.date:
    """Date part of the first Date: header in its own zone (RFC 3501 §6.4.4 SENT*).

    Missing or unparseable dates become 1-Jan-1970, like Dovecot."""
    if not values:
        return EPOCH_DATE
    try:
        parsed = email.utils.parsedate_tz(values[0].decode("ascii", "replace"))
        if parsed is None:
            return EPOCH_DATE
        return datetime.date(parsed[0], parsed[1], parsed[2])
    except Exception:  # parsedate_tz and date() reject odd input in odd ways
        return EPOCH_DATE


# --- decoded text (for non-ASCII and transfer-encoded content) ---------------


def body_needs_decoding(data: bytes, low: bytes) -> bool:
    """Cheap over-approximation: might a text part be encoded or 8-bit?

    ``low`` is ``data.lower()``, which the caller computed for the raw search.
    Content-Transfer-Encoding may sit in the message header, so look everywhere."""
    return not data.isascii() or any(hint in low for hint in _MIME_HINTS)


def _part_text(part: Any) -> str | None:
    """Decoded text of one leaf text/* part if its raw form differs, else None."""
    cte = str(part.get("content-transfer-encoding", "")).strip().lower()
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return None
    if cte not in ("base64", "quoted-printable") and payload.isascii():
        return None  # raw bytes already say the same thing
    charset = part.get_content_charset() or "utf-8"
    return decode_charset(payload, charset)


def decoded_body(data: bytes) -> str | None:
    """Casefolded decoded text of the text/* parts that raw search cannot see.

    Returns None when there are none, so plain messages cache nothing."""
    try:
        msg = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(data)
        texts = []
        for part in msg.walk():
            if part.is_multipart() or part.get_content_maintype() != "text":
                continue
            text = _part_text(part)
            if text:
                texts.append(text.casefold())
    except Exception:  # the email package on hostile input: treat as plain
        return None
    return "\x00".join(texts) if texts else None


def decoded_header(data: bytes, end: int) -> str | None:
    """Casefolded header block with encoded words decoded, None if unchanged."""
    raw = data[:end]
    if raw.isascii() and b"=?" not in raw:
        return None
    text = text_of(_FOLD.sub(b"", raw))
    decoded = decode_words(text)
    if decoded == text and text.isascii():
        return None
    return decoded.casefold()


# --- the per-message index ---------------------------------------------------


class MessageIndex:
    """Lazily filled search facts about one message (lives in ``cache["search"]``)."""

    __slots__ = ("body_start", "fields", "sent", "dec_header", "dec_body", "plain")

    def __init__(self, data: bytes) -> None:
        self.body_start = body_start(data)
        self.fields: dict[str, str | None] = {}
        self.sent: datetime.date | None = None
        self.dec_header: str | None = UNSET
        self.dec_body: str | None = UNSET
        self.plain = False  # True once we know decoding reveals nothing new

    def field(self, lname: str, data: bytes) -> str | None:
        """Searchable haystack for lower-cased field ``lname`` (None if absent)."""
        try:
            return self.fields[lname]
        except KeyError:
            hay = field_haystack(raw_values(data, self.body_start, lname))
            if len(self.fields) < MAX_CACHED_FIELDS:
                self.fields[lname] = hay
            return hay

    def sent_date(self, data: bytes) -> datetime.date:
        """The Date: header's date (cached)."""
        if self.sent is None:
            self.sent = sent_date(raw_values(data, self.body_start, "date"))
        return self.sent

    def decoded(self, data: bytes, low: bytes | None) -> tuple[str | None, str | None]:
        """(decoded header, decoded body) -- each None when raw search suffices.

        ``low`` is ``data.lower()`` if the caller has it (saves recomputing)."""
        if self.dec_body is UNSET:
            self.dec_header = decoded_header(data, self.body_start)
            lowered = data.lower() if low is None else low
            self.dec_body = decoded_body(data) if body_needs_decoding(data, lowered) else None
            self.plain = self.dec_header is None and self.dec_body is None
        return self.dec_header, self.dec_body


def index_of(cache: dict[str, Any], data: bytes) -> MessageIndex:
    """The message's index, created on first use."""
    idx: MessageIndex | None = cache.get(CACHE_KEY)
    if idx is None:
        idx = cache[CACHE_KEY] = MessageIndex(data)
    return idx
