"""SORT (RFC 5256 §3) and the message facts SORT and THREAD share.

* :func:`base_subject` is RFC 5256 §2.1 "base subject" extraction;
* :func:`sent_date` is RFC 5256 §2.2 (Date: header, else INTERNALDATE);
* :func:`sort_targets` orders search hits by a list of sort criteria.

Strings compare with the default ``i;ascii-casemap`` comparator (RFC 5256 §3,
RFC 4790 §9.2): the UTF-8 octets with ASCII letters upper-cased.  Facts that
depend only on the message bytes are cached per blob in ``cache["sort"]``
(a blob is shared by every copy of a message); INTERNALDATE, size and the
sequence number come from the target.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from twistedmail.imap.mimeparse import MISSING_DOMAIN, MISSING_MAILBOX, parse_addresses
from twistedmail.imap.search import Target
from twistedmail.imap.searchindex import decode_words, index_of, raw_values, text_of

__all__ = [
    "SORT_KEYS",
    "Facts",
    "base_subject",
    "facts",
    "sent_date",
    "sort_key",
    "sort_targets",
]

CACHE_KEY = "sort"

# RFC 5256 §3 sort-key, plus RFC 5957 §3 DISPLAYFROM / DISPLAYTO.
SORT_KEYS = frozenset((
    "ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO",
))

# --- RFC 5256 §2.1 base subject ----------------------------------------------
# After step (1) the only WSP left is a single SP, so the ABNF's *WSP is " *".
_BLOB = r"\[[^\[\]]*\] *"  # subj-blob = "[" *BLOBCHAR "]" *WSP
_REFWD = r"(?:re|fwd?) *(?:" + _BLOB + r")?:"  # subj-refwd
_LEADER = re.compile(r"(?:" + _BLOB + r")*" + _REFWD + r"| ", re.I)  # subj-leader
_BLOB_RE = re.compile(_BLOB)
_WSP_RUN = re.compile(r"[ \t\r\n]+")


def base_subject(subject: str) -> tuple[str, bool]:
    """(base subject, was it a reply or forward) for a decoded Subject: value.

    RFC 5256 §2.1 steps (1)-(7); §5.B of REFERENCES counts a message as a
    reply/forward when the extraction removed a subj-refwd, a "(fwd)"
    trailer or a subj-fwd-hdr/subj-fwd-trl pair."""
    s = _WSP_RUN.sub(" ", subject)  # (1) tabs and continuations to space, runs to one
    reply = False
    while True:
        s, fwd = _strip_trailers(s)  # (2)
        reply = reply or fwd
        s, refwd = _strip_leaders(s)  # (3)-(5)
        reply = reply or refwd
        # (6) "[fwd:" subject "]": unwrap and repeat from (2).
        if len(s) >= 6 and s[:5].lower() == "[fwd:" and s.endswith("]"):
            s = s[5:-1]
            reply = True
            continue
        return s, reply  # (7)


def _strip_trailers(s: str) -> tuple[str, bool]:
    """Step (2): remove subj-trailer = "(fwd)" / WSP from the end, repeatedly."""
    fwd = False
    while True:
        if s.endswith(" "):
            s = s.rstrip(" ")
        elif s[-5:].lower() == "(fwd)":
            s = s[:-5]
            fwd = True
        else:
            return s, fwd


def _strip_leaders(s: str) -> tuple[str, bool]:
    """Steps (3)-(5): leaders, then a lone blob if a non-empty base remains."""
    refwd = False
    while True:
        m = _LEADER.match(s)
        if m is not None and m.end() > 0:  # (3)
            refwd = refwd or m.group() != " "
            s = s[m.end():]
            continue
        m = _BLOB_RE.match(s)
        if m is not None and s[m.end():].strip(" "):  # (4) keep a blob that is all there is
            s = s[m.end():]
            continue
        return s, refwd  # (5) nothing more matched


def casemap(text: str) -> bytes:
    """``i;ascii-casemap`` form: UTF-8 octets, ASCII letters upper-cased (RFC 4790 §9.2)."""
    return text.encode("utf-8", "surrogateescape").upper()


# --- per-message facts ---------------------------------------------------------

_MSG_ID = re.compile(rb"<([^<>\s]+)>")


class Facts:
    """Byte-derived facts about one message, computed on first use."""

    __slots__ = ("_data", "_end", "_memo")

    def __init__(self, data: bytes, end: int) -> None:
        self._data = data  # the blob's own bytes (no copy)
        self._end = end  # header end
        self._memo: dict[str, Any] = {}

    def _first(self, lname: str) -> bytes | None:
        values = raw_values(self._data, self._end, lname)
        return values[0] if values else None

    def _get(self, name: str, build: Callable[[], Any]) -> Any:
        try:
            return self._memo[name]
        except KeyError:
            value = self._memo[name] = build()
            return value

    @property
    def subject(self) -> tuple[bytes, bool]:
        """(casemapped base subject, reply/forward) -- RFC 5256 §2.1."""
        return self._get("subject", self._subject)

    def _subject(self) -> tuple[bytes, bool]:
        raw = self._first("subject")
        base, reply = base_subject(decode_words(text_of(raw or b"")))
        return casemap(base), reply

    @property
    def date(self) -> float | None:
        """The Date: header as UTC epoch seconds, None if missing or unparseable."""
        return self._get("date", self._date)

    def _date(self) -> float | None:
        raw = self._first("date")
        if raw is None:
            return None
        try:
            parsed = email.utils.parsedate_tz(raw.decode("ascii", "replace"))
            return None if parsed is None else float(email.utils.mktime_tz(parsed))
        except Exception:  # parsedate_tz/mktime_tz reject odd input in odd ways
            return None

    def address(self, lname: str, display: bool) -> bytes:
        """Sort key of the first address of ``lname`` (RFC 5256 §3, RFC 5957 §3)."""
        return self._get(f"{lname}:{display}",
                         lambda: self._address(lname, display))

    def _address(self, lname: str, display: bool) -> bytes:
        raw = self._first(lname)
        addrs = parse_addresses(raw) if raw else None
        first = next((a for a in addrs or () if a[3] is not None), None)  # skip group markers
        if first is None:
            return b""
        name, _adl, mailbox, host = first
        mailbox = b"" if mailbox == MISSING_MAILBOX else mailbox
        if not display:
            return casemap(text_of(mailbox))  # RFC 5256 §3: addr-mailbox
        if name:
            decoded = decode_words(text_of(name)).strip()
            if decoded:
                return casemap(decoded)  # RFC 5957 §3: the decoded display-name
        host = b"" if host == MISSING_DOMAIN else host
        return casemap(text_of(mailbox + b"@" + host if host else mailbox))  # else addr-spec

    @property
    def message_id(self) -> str | None:
        """The msg-id of Message-ID: without brackets (RFC 5256 §3 REFERENCES (1))."""
        return self._get("msgid", self._message_id)

    def _message_id(self) -> str | None:
        raw = self._first("message-id")
        m = _MSG_ID.search(raw) if raw else None
        return text_of(m.group(1)) if m else None

    @property
    def references(self) -> tuple[str, ...]:
        """References: msg-ids, else the first In-Reply-To: msg-id (RFC 5256 §3 (1))."""
        return self._get("refs", self._references)

    def _references(self) -> tuple[str, ...]:
        raw = b" ".join(raw_values(self._data, self._end, "references"))
        refs = [text_of(m) for m in _MSG_ID.findall(raw)]
        if not refs:
            reply_to = self._first("in-reply-to")
            m = _MSG_ID.search(reply_to) if reply_to else None
            refs = [text_of(m.group(1))] if m else []
        return tuple(refs)


def facts(t: Target) -> Facts:
    """The cached :class:`Facts` of ``t``'s message."""
    cache = t.cache
    found: Facts | None = cache.get(CACHE_KEY)
    if found is None:
        data = t.data
        found = cache[CACHE_KEY] = Facts(data, index_of(cache, data).body_start)
    return found


def sent_date(t: Target) -> float:
    """RFC 5256 §2.2: the Date: header in UTC, else the INTERNALDATE."""
    date = facts(t).date
    return t.internaldate.timestamp() if date is None else date


# --- SORT ----------------------------------------------------------------------------

_KEYS: dict[str, Callable[[Target], Any]] = {
    "ARRIVAL": lambda t: t.internaldate.timestamp(),  # RFC 5256 §3 INTERNALDATE
    "DATE": sent_date,
    "SIZE": lambda t: t.size,
    "SUBJECT": lambda t: facts(t).subject[0],
    "FROM": lambda t: facts(t).address("from", False),
    "TO": lambda t: facts(t).address("to", False),
    "CC": lambda t: facts(t).address("cc", False),
    "DISPLAYFROM": lambda t: facts(t).address("from", True),
    "DISPLAYTO": lambda t: facts(t).address("to", True),
}


def sort_key(name: str) -> Callable[[Target], Any]:
    """The key function of SORT criterion ``name`` (one of SORT_KEYS)."""
    return _KEYS[name]


def sort_targets(targets: Iterable[Target],
                 criteria: Sequence[tuple[str, bool]]) -> list[Target]:
    """``targets`` (in sequence order) sorted by (key, reverse) criteria.

    RFC 5256 §3: later criteria break ties of earlier ones and equal messages
    stay in sequence-number order; REVERSE reverses only its own criterion,
    never that implicit last one.  Stable sorts from the last criterion to
    the first give exactly that (``reverse=True`` keeps equal keys in order)."""
    out = list(targets)
    for name, reverse in reversed(criteria):
        out.sort(key=_KEYS[name], reverse=reverse)
    return out
