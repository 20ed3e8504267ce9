"""Message object ids (RFC 8474 §5): EMAILID and THREADID.

Both are derived from the message content alone, so every node of a cluster
computes the same ids without coordination or per-message state:

* EMAILID (§5.1) is ``M`` + the first 24 hex digits of the blob's SHA-256
  digest (the Cyrus convention).  A COPY or MOVE shares the blob, so the copy
  keeps its EMAILID (§5.1 MUST); identical content appended twice gets the
  same id, which is the same immutable message.
* THREADID (§5.2) is ``T`` + 16 hex digits of a hash of the thread root: the
  first message-id in References:, else the first in In-Reply-To:, else the
  message's own Message-ID:.  A reply therefore joins the thread of the
  message that started it; replies whose References: were trimmed of the root
  start a new thread.  A message without any of those fields is a thread of
  its own (derived from its EMAILID).  Ids never change (§5.2 MUST).

Ids are ``1*255(ALPHA / DIGIT / "_" / "-")`` (RFC 8474 §7 objectid).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from twistedmail.imap.mimeparse import split_header

__all__ = ["OBJECTID", "emailid", "threadid", "thread_root"]

OBJECTID = re.compile(rb"[A-Za-z0-9_-]{1,255}")  # RFC 8474 §7
_FIELD = rb"(references|in-reply-to|message-id)[ \t]*:"
_FIRST_FIELD = re.compile(_FIELD, re.IGNORECASE)
_NEXT_FIELD = re.compile(rb"\n" + _FIELD, re.IGNORECASE)
_VALUE = re.compile(rb"[^\n]*\n?(?:[ \t][^\n]*\n?)*")  # RFC 5322 §2.2.3 folded value
_MSG_ID = re.compile(rb"<([^<>\s]+)>")
_ORDER = (b"references", b"in-reply-to", b"message-id")


def emailid(blob: Any) -> str:
    """RFC 8474 §5.1 EMAILID of the message held in ``blob``."""
    return "M" + blob.digest[:24]


def threadid(blob: Any) -> str:
    """RFC 8474 §5.2 THREADID of the message held in ``blob``.

    Not cached (a few microseconds per message; no memory per message)."""
    root = thread_root(blob.data)
    if root is None:
        return "T" + blob.digest[24:40]
    return "T" + hashlib.sha256(root).hexdigest()[:16]


def thread_root(raw: bytes) -> bytes | None:
    """The message-id (without brackets) naming the thread's first message, or None."""
    fend, _ = split_header(raw, 0, len(raw))
    end = len(raw) if fend < 0 else fend
    found: dict[bytes, bytes] = {}
    first = _FIRST_FIELD.match(raw, 0, end)
    hits = [first] if first is not None else []
    hits.extend(_NEXT_FIELD.finditer(raw, 0, end))
    for hit in hits:
        name = hit.group(1).lower()
        if name not in found:  # first occurrence wins
            folded = _VALUE.match(raw, hit.end(), end)
            found[name] = folded.group() if folded is not None else b""
    for name in _ORDER:
        value = found.get(name)
        if value is not None:
            m = _MSG_ID.search(value)
            if m is not None:
                return m.group(1)
    return None
