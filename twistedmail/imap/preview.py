"""PREVIEW text of a message (RFC 8970 §3.1).

The preview is the start of the first text part a person would read: the
first ``text/plain`` leaf that is not an attachment, else the first such
``text/html`` leaf with its markup stripped.  It is decoded (transfer encoding
and charset), whitespace runs become one space, control characters are
dropped, and at most 256 characters are kept (RFC 8970 §3.1: the preview MUST
NOT be longer than 256 characters).  A message without such a part has the
empty preview (``PREVIEW ""``).  Parts inside message/rfc822 attachments are
not looked at.

The result is cached on the shared message blob: at most 256 characters, so a
few hundred bytes per distinct message.
"""

from __future__ import annotations

import codecs
import html
import re
from typing import Any

from twistedmail.imap.mime import MimePart, ParsedMessage, transfer_encoding
from twistedmail.imap.mimeparse import decode_transfer

__all__ = ["MAX_CHARS", "preview_of", "preview_text"]

MAX_CHARS = 256  # RFC 8970 §3.1
CACHE_KEY = "PREVIEW"
_SCAN_LIMIT = 64 * 1024  # raw part bytes looked at: plenty for 256 characters
# Control and zero-width characters are dropped; str.split() folds whitespace.
_DROP = dict.fromkeys(
    [c for c in (*range(0x20), *range(0x7F, 0xA0)) if not chr(c).isspace()]
    + [0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF]
)
# HTML: drop invisible elements and comments, then every tag.
_HTML_HIDDEN = re.compile(
    r"<(script|style|head|title|template)\b.*?(?:</\1\s*>|\Z)|<!--.*?(?:-->|\Z)",
    re.IGNORECASE | re.DOTALL,
)
_HTML_BREAK = re.compile(r"<(?:br|/?p|/?div|/?li|/?tr|/?h[1-6])\b[^>]*>", re.IGNORECASE)
_HTML_TAG = re.compile(r"<[!/?A-Za-z][^>]*(?:>|\Z)")


def preview_of(blob: Any) -> bytes:
    """The blob's preview text as UTF-8, computed once and cached on the blob."""
    cache = blob.cache
    text = cache.get(CACHE_KEY)
    if text is None:
        msg = cache.get("mime")  # reuse a parse FETCH already made; never cache a new one
        text = cache[CACHE_KEY] = preview_text(msg if msg is not None else ParsedMessage(blob.data))
    return text


def preview_text(msg: ParsedMessage) -> bytes:
    """RFC 8970 preview text of ``msg`` (UTF-8, at most 256 characters)."""
    plain = html_part = None
    for part in msg.leaves():
        kind = _text_kind(part)
        if kind == b"plain":
            plain = part
            break
        if kind == b"html" and html_part is None:
            html_part = part
    if plain is not None:
        text = _decoded(plain)
    elif html_part is not None:
        text = strip_html(_decoded(html_part))
    else:
        return b""
    return normalise(text).encode("utf-8")


def normalise(text: str) -> str:
    """One space for each whitespace run, no control characters, 256 characters at most.

    Works on a growing prefix, so a long text costs no more than a short one."""
    size = 1024
    while True:
        head = " ".join(text[:size].translate(_DROP).split())
        if len(head) > MAX_CHARS or size >= len(text):
            return head[:MAX_CHARS].rstrip()
        size *= 8


def strip_html(text: str) -> str:
    """Visible text of an HTML fragment: no hidden elements, tags or entities."""
    text = _HTML_HIDDEN.sub(" ", text)
    text = _HTML_BREAK.sub(" ", text)
    return html.unescape(_HTML_TAG.sub("", text))


def _text_kind(part: MimePart) -> bytes | None:
    """b"plain" / b"html" for a readable inline text part, else None."""
    ct = part.ctype()
    if ct is None:
        subtype = b"plain"  # RFC 2045 §5.2 default
    elif ct[0].lower() == b"text":
        subtype = ct[1].lower()
    else:
        return None
    if subtype not in (b"plain", b"html"):
        return None
    disposition = part.get(b"CONTENT-DISPOSITION")
    if disposition is not None and disposition.lstrip().lower().startswith(b"attachment"):
        return None
    return subtype


def _decoded(part: MimePart) -> str:
    """The part's text: transfer encoding and charset removed (unknown -> UTF-8)."""
    body = part.body()[:_SCAN_LIMIT]
    data = decode_transfer(transfer_encoding(part), body)
    if data is None:  # unknown transfer encoding: the raw text is the best guess
        data = body
    return data.decode(_charset(part), "replace")


def _charset(part: MimePart) -> str:
    """A Python codec for the part's charset; UTF-8 when absent, unknown or us-ascii."""
    ct = part.ctype()
    for name, value in ct[2] if ct else ():
        if name.lower() == b"charset":
            label = value.decode("ascii", "replace").strip().lower()
            try:
                codec = codecs.lookup(label).name
            except LookupError:
                return "utf-8"
            # us-ascii mail often carries UTF-8 anyway; UTF-8 reads ASCII the same.
            return "utf-8" if codec == "ascii" else codec
    return "utf-8"
