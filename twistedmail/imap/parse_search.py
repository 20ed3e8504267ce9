"""SEARCH argument parsing (RFC 3501 §6.4.4, §9), and the date rules it shares
with APPEND (RFC 3501 §9 date, date-time).

Extensions: RFC 4731 ``RETURN (...)``, RFC 5182 ``$``, RFC 7162 MODSEQ,
RFC 5032 OLDER / YOUNGER; RFC 5256 SORT and THREAD (same search program,
after sort criteria or a threading algorithm and a mandatory charset).

The top level is ALWAYS wrapped in ``SearchKey("AND", keys)``, even for a
single key, so handlers see one shape.  String arguments stay ``bytes``
(they may be 8-bit, interpreted per CHARSET); the charset name and header
field names are upper-cased ``str``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

from twistedmail.imap.commands import Search, SearchKey, Sort, Thread

if TYPE_CHECKING:
    from twistedmail.imap.parser import Reader

MAX32 = 1 << 32  # RFC 3501 §9 number
MAX63 = 1 << 63  # RFC 9051 §9 number64, RFC 7162 §7 mod-sequence-valzer
MAX_DEPTH = 100  # nesting of NOT / OR / parentheses (bounds recursion)

_NO_ARG = frozenset((
    "ALL", "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "NEW", "OLD", "RECENT", "SEEN",
    "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN",
    "SAVEDATESUPPORTED",  # RFC 8514 §3
))
_STRING = frozenset(("BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"))
_DATE = frozenset(("BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE",
                   "SAVEDBEFORE", "SAVEDON", "SAVEDSINCE"))  # RFC 8514 §3
_OBJECTID_KEYS = frozenset(("EMAILID", "THREADID"))  # RFC 8474 §6
_OBJECTID = re.compile(rb"[A-Za-z0-9_-]{1,255}(?![A-Za-z0-9_-])")  # RFC 8474 §7 objectid
_WITH_ARG = _STRING | _DATE | frozenset((
    "KEYWORD", "UNKEYWORD", "LARGER", "SMALLER", "UID", "OLDER", "YOUNGER", "HEADER", "MODSEQ",
    "NOT", "OR",
)) | _OBJECTID_KEYS
_RETURN_OPTS = frozenset(("MIN", "MAX", "ALL", "COUNT", "SAVE"))  # RFC 4731 §3.1, RFC 5182 §2
_ENTRY_TYPES = frozenset(("PRIV", "SHARED", "ALL"))  # RFC 7162 §7 entry-type-req
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}
# RFC 3501 §9 date = date-text / DQUOTE date-text DQUOTE; date-day = 1*2DIGIT
_DATE_TEXT = rb"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})"
_DATE_RE = re.compile(_DATE_TEXT + rb'|"' + _DATE_TEXT + rb'"')
# RFC 3501 §9 date-time (date-day-fixed = (SP DIGIT) / 2DIGIT; one digit tolerated).
DATE_TIME = re.compile(
    rb'"( ?[0-9]|[0-9]{2})-([A-Za-z]{3})-([0-9]{4}) '
    rb'([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"'
)
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+")  # RFC 5322 §3.6.8 ftext
_SEQ_START = frozenset(b"0123456789*$")


def _date(r: Reader) -> dt.date:
    m = r.match(_DATE_RE)
    if m is None:
        r.fail("Invalid date")
    day, mon, year = m.groups()[:3] if m.group(1) else m.groups()[3:]
    month = _MONTHS.get(mon.upper().decode("ascii"))
    if month is None:
        r.fail("Invalid month in date")
    try:
        return dt.date(int(year), month, int(day))
    except ValueError:
        r.fail("Invalid date")


def date_time(r: Reader) -> dt.datetime:
    """RFC 3501 §9 date-time -> aware datetime."""
    m = r.match(DATE_TIME)
    if m is None:
        r.fail("Invalid date-time")
    day, mon, year, hh, mm, ss, sign, zh, zm = m.groups()
    month = _MONTHS.get(mon.upper().decode("ascii"))
    if month is None or int(zm) >= 60:
        r.fail("Invalid date-time")
    offset = dt.timedelta(hours=int(zh), minutes=int(zm)) * (-1 if sign == b"-" else 1)
    try:
        zone = dt.timezone(offset)
        return dt.datetime(int(year), month, int(day), int(hh), int(mm), int(ss), tzinfo=zone)
    except ValueError:
        r.fail("Invalid date-time")


def _header(r: Reader) -> SearchKey:
    """HEADER SP header-fld-name SP astring (the SP before the name is consumed)."""
    name = r.astring("header field name")
    if _FIELD_NAME.fullmatch(name) is None:
        r.fail("Invalid header field name")
    r.sp()
    return SearchKey("HEADER", (name.decode("ascii").upper(), r.astring("search string")))


def _modseq(r: Reader) -> SearchKey:
    """RFC 7162 §3.1.5: MODSEQ [SP entry-name SP entry-type-req] SP mod-sequence-valzer."""
    if r.peek() == 0x22:
        r.quoted()  # entry-name, e.g. "/flags/\\Seen": not used (no per-flag modseqs)
        r.sp()
        if r.word("MODSEQ entry type") not in _ENTRY_TYPES:
            r.fail("Invalid MODSEQ entry type")
        r.sp()
    return SearchKey("MODSEQ", (r.number("MODSEQ", MAX63),))


def _with_arg(r: Reader, op: str) -> SearchKey | None:
    """Keys taking exactly one argument, after their SP; None if ``op`` is not one."""
    if op in _STRING:
        return SearchKey(op, (r.astring("search string"),))
    if op in _DATE:
        return SearchKey(op, (_date(r),))
    if op == "KEYWORD" or op == "UNKEYWORD":
        return SearchKey(op, (r.atom("keyword").decode("ascii"),))
    if op == "LARGER" or op == "SMALLER":
        return SearchKey(op, (r.number(op, MAX63),))
    if op == "UID":
        return SearchKey(op, (r.seqset(),))
    if op == "OLDER" or op == "YOUNGER":  # RFC 5032 §3
        return SearchKey(op, (r.number(op, MAX32, nonzero=True),))
    if op == "HEADER":
        return _header(r)
    if op == "MODSEQ":
        return _modseq(r)
    if op in _OBJECTID_KEYS:  # RFC 8474 §6: EMAILID / THREADID SP objectid
        m = r.match(_OBJECTID)
        if m is None:
            r.fail(f"Invalid {op} object id")
        return SearchKey(op, (m.group().decode("ascii"),))
    return None


def search_key(r: Reader, depth: int = 0) -> SearchKey:
    """One RFC 3501 §9 search-key (recursive for NOT, OR and parentheses)."""
    if depth > MAX_DEPTH:
        r.fail("Search program too deeply nested")
    c = r.peek()
    if c in _SEQ_START:
        return SearchKey("SEQSET", (r.seqset(),))
    if c == 0x28:
        keys = r.plist(lambda: search_key(r, depth + 1), "search key")
        return SearchKey("AND", tuple(keys))
    op = r.word("search key")
    if op in _NO_ARG:
        return SearchKey(op)
    if op not in _WITH_ARG:
        r.fail(f"Unknown search key {op[:30]}")
    r.sp()
    if op == "NOT":
        return SearchKey(op, (search_key(r, depth + 1),))
    if op == "OR":
        first = search_key(r, depth + 1)
        r.sp()
        return SearchKey(op, (first, search_key(r, depth + 1)))
    key = _with_arg(r, op)
    assert key is not None  # op is in _WITH_ARG
    return key


def _returns(r: Reader) -> tuple[str, ...]:
    """RFC 4731 §3.1 search-return-opts (after "RETURN SP")."""
    opts = r.plist(lambda: r.word("RETURN option"), "RETURN option", empty=True)
    for opt in opts:
        if opt not in _RETURN_OPTS:
            r.fail(f"Unknown SEARCH RETURN option {opt[:30]}")
    return tuple(opts)


def parse_search(r: Reader, tag: str, uid: bool) -> Search:
    """SEARCH [RETURN (...)] [CHARSET astring] 1*(SP search-key).

    ``returns`` is None without RETURN, ``()`` for ``RETURN ()`` (which
    RFC 4731 §3.1 defines as ALL)."""
    r.sp()
    returns = None
    if r.try_word(b"RETURN"):
        r.sp()
        returns = _returns(r)
        r.sp()
    charset = None
    if r.try_word(b"CHARSET"):
        r.sp()
        charset = r.ascii(r.astring("charset"), "charset").upper()
        r.sp()
    return Search(tag, _program(r), charset, uid, returns)


def _program(r: Reader) -> SearchKey:
    """1*(SP search-key) after the first SP, wrapped in a top-level AND."""
    keys = [search_key(r)]
    while r.skip(b" "):
        keys.append(search_key(r))
    return SearchKey("AND", tuple(keys))


# RFC 5256 §5 sort-key, plus RFC 5957 §4 DISPLAYFROM / DISPLAYTO.
SORT_KEYS = frozenset((
    "ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO",
))
THREAD_ALGORITHMS = frozenset(("ORDEREDSUBJECT", "REFERENCES"))  # RFC 5256 §3


def _sort_criterion(r: Reader) -> tuple[str, bool]:
    """RFC 5256 §5 sort-criterion = ["REVERSE" SP] sort-key."""
    key = r.word("sort key")
    reverse = key == "REVERSE"
    if reverse:
        r.sp()
        key = r.word("sort key")
    if key not in SORT_KEYS:
        r.fail(f"Unknown sort key {key[:30]}")
    return key, reverse


def _charset(r: Reader) -> str:
    """RFC 5256 §5 charset = atom / quoted (mandatory for SORT and THREAD)."""
    raw = r.quoted() if r.peek() == 0x22 else r.atom("charset")
    return r.ascii(raw, "charset").upper()


def parse_sort(r: Reader, tag: str, uid: bool) -> Sort:
    """RFC 5256 §5: SORT SP sort-criteria SP charset 1*(SP search-key)."""
    r.sp()
    criteria = r.plist(lambda: _sort_criterion(r), "sort criterion")
    r.sp()
    charset = _charset(r)
    r.sp()
    return Sort(tag, tuple(criteria), _program(r), charset, uid)


def parse_thread(r: Reader, tag: str, uid: bool) -> Thread:
    """RFC 5256 §5: THREAD SP thread-alg SP charset 1*(SP search-key)."""
    r.sp()
    algorithm = r.word("threading algorithm")
    if algorithm not in THREAD_ALGORITHMS:
        r.fail(f"Unsupported threading algorithm {algorithm[:30]}")
    r.sp()
    charset = _charset(r)
    r.sp()
    return Thread(tag, algorithm, _program(r), charset, uid)
