"""SEARCH key evaluation (RFC 3501 §6.4.4, RFC 7162, RFC 5032, RFC 5182)."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twistedmail.imap.commands import STAR, SearchKey, SeqRange, SequenceSet
from twistedmail.imap.search import (
    SearchContext,
    SearchError,
    check_charset,
    compile_key,
    number_matcher,
    search,
)
from twistedmail.imap.searchindex import (
    CACHE_KEY,
    MAX_CACHED_FIELDS,
    body_start,
    decode_words,
)

UTC = dt.UTC
PST = dt.timezone(dt.timedelta(hours=-8))
KIRIBATI = dt.timezone(dt.timedelta(hours=14))
NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


@dataclass
class Msg:
    """Minimal Target implementation."""

    data: bytes = b"Subject: x\r\n\r\nbody\r\n"
    uid: int = 1
    seq: int = 1
    flags: frozenset[str] = frozenset()
    recent: bool = False
    modseq: int = 1
    internaldate: dt.datetime = NOW
    cache: dict[str, Any] = field(default_factory=dict)
    size: int = -1

    def __post_init__(self) -> None:
        if self.size < 0:
            self.size = len(self.data)


def K(op: str, *args: object) -> SearchKey:
    return SearchKey(op, tuple(args))


def ctx_for(msgs: list[Msg], saved: frozenset[int] = frozenset()) -> SearchContext:
    return SearchContext(
        max_seq=len(msgs),
        max_uid=max((m.uid for m in msgs), default=0),
        now=NOW.timestamp(),
        saved=saved,
    )


def matches(key: SearchKey, msg: Msg, ctx: SearchContext | None = None) -> bool:
    return compile_key(key, ctx or ctx_for([msg]))(msg)


def uids(key: SearchKey, msgs: list[Msg], ctx: SearchContext | None = None) -> list[int]:
    return [t.uid for t in search(key, msgs, ctx or ctx_for(msgs))]


def mail(*headers: str, body: str = "hello world\r\n", nl: str = "\r\n") -> bytes:
    return (nl.join(headers) + nl + nl + body).encode("utf-8")


def seqset(*ranges: tuple[int, int], saved: bool = False) -> SequenceSet:
    return SequenceSet(tuple(SeqRange(a, b) for a, b in ranges), saved=saved)


# --- charset -------------------------------------------------------------------


@pytest.mark.parametrize("cs", [None, "US-ASCII", "utf-8", "Utf-8", "us-ascii"])
def test_check_charset_accepts_ascii_and_utf8(cs: str | None) -> None:
    """No charset, US-ASCII and UTF-8 are accepted in any case."""
    check_charset(cs)


def test_check_charset_rejects_others_with_badcharset() -> None:
    """Other charsets raise SearchError with code BADCHARSET (RFC 3501 §6.4.4)."""
    with pytest.raises(SearchError) as info:
        check_charset("ISO-8859-1")
    assert info.value.code == "BADCHARSET"


# --- flags ---------------------------------------------------------------------

FLAG_KEYS = [
    ("ANSWERED", "\\Answered"),
    ("DELETED", "\\Deleted"),
    ("DRAFT", "\\Draft"),
    ("FLAGGED", "\\Flagged"),
    ("SEEN", "\\Seen"),
]


def test_all_matches_everything() -> None:
    """ALL matches every message."""
    msgs = [Msg(uid=1), Msg(uid=2, data=b"")]
    assert uids(K("ALL"), msgs) == [1, 2]


@pytest.mark.parametrize(("op", "flag"), FLAG_KEYS)
def test_flag_key_and_its_negation(op: str, flag: str) -> None:
    """ANSWERED..SEEN match the flag; the UN- form matches its absence."""
    with_flag, without = Msg(uid=1, flags=frozenset({flag})), Msg(uid=2)
    assert uids(K(op), [with_flag, without]) == [1]
    assert uids(K("UN" + op), [with_flag, without]) == [2]


def test_recent_old_new() -> None:
    """RECENT, OLD = NOT RECENT, NEW = RECENT UNSEEN (RFC 3501 §6.4.4)."""
    recent_unseen = Msg(uid=1, recent=True)
    recent_seen = Msg(uid=2, recent=True, flags=frozenset({"\\Seen"}))
    old_unseen = Msg(uid=3)
    msgs = [recent_unseen, recent_seen, old_unseen]
    assert uids(K("RECENT"), msgs) == [1, 2]
    assert uids(K("NEW"), msgs) == [1]
    assert uids(K("OLD"), msgs) == [3]  # not "NOT NEW", which would add uid 2


def test_keyword_is_case_insensitive() -> None:
    """KEYWORD compares keyword names case-insensitively; UNKEYWORD negates."""
    tagged, other = Msg(uid=1, flags=frozenset({"$Junk"})), Msg(uid=2, flags=frozenset({"x"}))
    assert uids(K("KEYWORD", "$junk"), [tagged, other]) == [1]
    assert uids(K("KEYWORD", "$Junk"), [tagged, other]) == [1]
    assert uids(K("UNKEYWORD", "$JUNK"), [tagged, other]) == [2]


# --- sizes, modseq, sets -------------------------------------------------------


def test_larger_and_smaller_are_strict() -> None:
    """LARGER/SMALLER compare RFC822.SIZE strictly."""
    msgs = [Msg(uid=1, size=99), Msg(uid=2, size=100), Msg(uid=3, size=101)]
    assert uids(K("LARGER", 100), msgs) == [3]
    assert uids(K("SMALLER", 100), msgs) == [1]


def test_modseq_is_greater_or_equal() -> None:
    """MODSEQ n matches mod-sequences >= n (RFC 7162 §3.1.5)."""
    msgs = [Msg(uid=1, modseq=4), Msg(uid=2, modseq=5), Msg(uid=3, modseq=6)]
    assert uids(K("MODSEQ", 5), msgs) == [2, 3]


def _numbered(n: int, uid_step: int = 10) -> list[Msg]:
    return [Msg(seq=i, uid=i * uid_step) for i in range(1, n + 1)]


def test_sequence_set_with_star_and_reversed_range() -> None:
    """Sequence sets resolve "*" to the message count; a:b equals b:a."""
    msgs = _numbered(6)
    assert uids(K("SEQSET", seqset((5, STAR))), msgs) == [50, 60]
    assert uids(K("SEQSET", seqset((4, 2), (6, 6))), msgs) == [20, 30, 40, 60]
    assert uids(K("SEQSET", seqset((STAR, STAR))), msgs) == [60]


def test_uid_set_star_is_largest_uid() -> None:
    """UID sets resolve "*" to the largest UID; 559:* includes it (RFC 3501 §6.4.8)."""
    msgs = _numbered(3)
    assert uids(K("UID", seqset((20, STAR))), msgs) == [20, 30]
    assert uids(K("UID", seqset((559, STAR))), msgs) == [30]
    assert uids(K("UID", seqset((1, 15))), msgs) == [10]


def test_saved_result_matches_saved_uids() -> None:
    """ "$" (RFC 5182) matches the saved UIDs for both SEQSET and UID keys."""
    msgs = _numbered(4)
    ctx = ctx_for(msgs, saved=frozenset({20, 40, 99}))
    assert uids(K("SEQSET", seqset(saved=True)), msgs, ctx) == [20, 40]
    assert uids(K("UID", seqset(saved=True)), msgs, ctx) == [20, 40]
    assert uids(K("UID", seqset(saved=True)), msgs, ctx_for(msgs)) == []


@given(
    st.lists(
        st.tuples(
            st.sampled_from([STAR, 1, 2, 3, 5, 8, 13, 40]),
            st.sampled_from([STAR, 1, 4, 6, 9, 21, 50]),
        ),
        max_size=8,
    ),
    st.integers(0, 60),
)
def test_number_matcher_agrees_with_sequence_set(
    ranges: list[tuple[int, int]], largest: int
) -> None:
    """number_matcher (merged, bisected) agrees with SequenceSet.contains."""
    sset = seqset(*ranges)
    contains = number_matcher(sset, largest)
    for n in range(0, 62):
        assert contains(n) == sset.contains(n, largest)


# --- dates ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "day"),
    [
        (dt.datetime(2024, 1, 1, 23, 30, tzinfo=PST), dt.date(2024, 1, 1)),  # 2 Jan in UTC
        (dt.datetime(2024, 1, 2, 0, 30, tzinfo=KIRIBATI), dt.date(2024, 1, 2)),  # 1 Jan in UTC
        (dt.datetime(2024, 1, 1, 0, 0, tzinfo=UTC), dt.date(2024, 1, 1)),
    ],
)
def test_internal_date_keys_use_the_date_in_its_own_zone(when: dt.datetime, day: dt.date) -> None:
    """BEFORE/ON/SINCE compare INTERNALDATE's own calendar date, ignoring time and zone."""
    msg = Msg(internaldate=when)
    next_day = day + dt.timedelta(days=1)
    assert matches(K("ON", day), msg)
    assert not matches(K("ON", next_day), msg)
    assert matches(K("SINCE", day), msg) and not matches(K("SINCE", next_day), msg)
    assert matches(K("BEFORE", next_day), msg) and not matches(K("BEFORE", day), msg)


def test_sent_date_keys_use_the_date_header_in_its_own_zone() -> None:
    """SENTBEFORE/SENTON/SENTSINCE use the Date: header's own calendar date."""
    msg = Msg(data=mail("Date: Mon, 1 Jan 2024 23:30:00 -0800", "Subject: s"))
    jan1, jan2 = dt.date(2024, 1, 1), dt.date(2024, 1, 2)
    assert matches(K("SENTON", jan1), msg) and not matches(K("SENTON", jan2), msg)
    assert matches(K("SENTSINCE", jan1), msg) and not matches(K("SENTSINCE", jan2), msg)
    assert matches(K("SENTBEFORE", jan2), msg) and not matches(K("SENTBEFORE", jan1), msg)


@pytest.mark.parametrize("headers", [("Subject: no date",), ("Date: yesterday-ish",)])
def test_missing_or_bad_date_header_is_the_epoch_like_dovecot(headers: tuple[str, ...]) -> None:
    """A missing/unparseable Date: counts as 1-Jan-1970 (Dovecot's sent_date 0)."""
    msg = Msg(data=mail(*headers))
    assert not matches(K("SENTON", dt.date(2024, 1, 1)), msg)
    assert not matches(K("SENTSINCE", dt.date(2000, 1, 1)), msg)
    assert matches(K("SENTBEFORE", dt.date(2000, 1, 1)), msg)
    assert matches(K("SENTON", dt.date(1970, 1, 1)), msg)


def test_older_and_younger_split_at_the_interval() -> None:
    """OLDER n / YOUNGER n compare INTERNALDATE with now - n seconds (RFC 5032)."""
    hour_ago = Msg(uid=1, internaldate=NOW - dt.timedelta(hours=1))
    day_ago = Msg(uid=2, internaldate=(NOW - dt.timedelta(days=1)).astimezone(PST))
    msgs = [hour_ago, day_ago]
    assert uids(K("OLDER", 7200), msgs) == [2]
    assert uids(K("YOUNGER", 7200), msgs) == [1]
    assert uids(K("YOUNGER", 3600), msgs) == [1]  # exactly n seconds old is "within"


# --- header keys -----------------------------------------------------------------

HEADERS = mail(
    "From: Alice Smith <alice@example.com>",
    "To: Bob <bob@example.org>",
    "Cc: carol@example.net",
    "Bcc: dave@example.net",
    "Subject: Quarterly Report",
)


@pytest.mark.parametrize(
    ("op", "hit", "miss"),
    [
        ("FROM", b"SMITH", b"bob"),
        ("TO", b"bob@EXAMPLE", b"alice"),
        ("CC", b"carol", b"dave"),
        ("BCC", b"Dave@", b"carol"),
        ("SUBJECT", b"quarterly rep", b"annual"),
    ],
)
def test_address_and_subject_keys(op: str, hit: bytes, miss: bytes) -> None:
    """FROM/TO/CC/BCC/SUBJECT: case-insensitive substring of that field only."""
    msg = Msg(data=HEADERS)
    assert matches(K(op, hit), msg)
    assert not matches(K(op, miss), msg)


def test_header_field_only_counts_in_the_header() -> None:
    """A "Subject:" line in the body is not a header field."""
    msg = Msg(data=mail("From: a@b", body="Subject: hidden\r\n"))
    assert not matches(K("SUBJECT", b"hidden"), msg)


def test_every_occurrence_of_a_field_counts() -> None:
    """Several To: lines are all searched."""
    msg = Msg(data=mail("To: first@example.com", "Subject: s", "To: second@example.com"))
    assert matches(K("TO", b"second@"), msg)
    assert matches(K("TO", b"first@"), msg)


def test_folded_header_is_unfolded() -> None:
    """Folded values are searched unfolded (RFC 5322 §2.2.3)."""
    msg = Msg(data=mail("Subject: a long\r\n  folded subject"))
    assert matches(K("SUBJECT", b"long  folded"), msg)


def test_header_key_with_arbitrary_field_and_case() -> None:
    """HEADER matches any field name case-insensitively, and not name prefixes."""
    msg = Msg(data=mail("x-mailer: FancyMail 2.0", "X-Foobar: yes"))
    assert matches(K("HEADER", "X-Mailer", b"fancymail"), msg)
    assert not matches(K("HEADER", "X-Mailer", b"other"), msg)
    assert not matches(K("HEADER", "X-Foo", b""), msg)


def test_header_with_empty_string_matches_presence() -> None:
    """HEADER field "" matches every message that has the field (RFC 3501 §6.4.4)."""
    has, has_empty, lacks = (
        Msg(uid=1, data=mail("X-Spam: yes")),
        Msg(uid=2, data=mail("X-Spam:")),
        Msg(uid=3, data=mail("Subject: s")),
    )
    assert uids(K("HEADER", "x-spam", b""), [has, has_empty, lacks]) == [1, 2]


@pytest.mark.parametrize(
    "subject",
    [
        "=?utf-8?q?Gr=C3=BC=C3=9Fe?= aus Berlin",
        "=?UTF-8?B?R3LDvMOfZQ==?= aus Berlin",
        "=?iso-8859-1?q?Gr=FC=DFe?= aus Berlin",
        "=?utf-8?q?Gr=C3=BC?= =?utf-8?q?=C3=9Fe?= aus Berlin",
        "=?utf-8?b?R3LD?= =?utf-8?b?vMOfZQ==?= aus Berlin",  # "ü" split across words
    ],
)
def test_encoded_word_subject_found_by_utf8_needle(subject: str) -> None:
    """SUBJECT "Grüße" (CHARSET UTF-8) finds RFC 2047 encoded forms of it."""
    msg = Msg(data=mail(f"Subject: {subject}"))
    assert matches(K("SUBJECT", "Grüße aus".encode()), msg)
    assert matches(K("SUBJECT", "GRÜSSE".encode()), msg)  # casefolded: ß == ss
    assert not matches(K("SUBJECT", "Grüße aus Köln".encode()), msg)


def test_encoded_word_raw_text_still_matches() -> None:
    """The raw (undecoded) value is searched too."""
    msg = Msg(data=mail("Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?="))
    assert matches(K("SUBJECT", b"=?UTF-8?Q?gr"), msg)


def test_raw_utf8_header_is_case_insensitive() -> None:
    """8-bit UTF-8 headers (RFC 6532) compare casefolded, non-ASCII included."""
    msg = Msg(data=mail("Subject: ÉTÉ À PARIS"))
    assert matches(K("SUBJECT", "été à".encode()), msg)


def test_decode_words_keeps_malformed_words() -> None:
    """Malformed encoded words are left as they are instead of raising."""
    assert decode_words("=?utf-8?b?Q?= tail") == "=?utf-8?b?Q?= tail"  # 1 char: undecodable
    assert decode_words("=?utf-8?b?###?= tail") == " tail"  # lenient: junk is skipped
    assert decode_words("=?no-such-cs?q?abc?=") == "abc"
    assert decode_words("a =?utf-8?q?x?=  =?utf-8?q?y?= b") == "a xy b"


# --- BODY and TEXT ---------------------------------------------------------------


def test_text_finds_a_header_only_token() -> None:
    """TEXT searches the header as well as the body (RFC 3501 §6.4.4)."""
    msg = Msg(data=mail("X-Tracking: Zebra42", body="nothing here\r\n"))
    assert matches(K("TEXT", b"zebra42"), msg)


def test_text_finds_decoded_encoded_word_in_header() -> None:
    """TEXT also sees RFC 2047-decoded header text; BODY does not."""
    msg = Msg(data=mail("Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=", body="plain body\r\n"))
    assert matches(K("TEXT", "grüße".encode()), msg)
    assert not matches(K("BODY", "grüße".encode()), msg)


def test_body_does_not_find_a_header_only_token() -> None:
    """BODY searches only the body."""
    msg = Msg(data=mail("X-Tracking: Zebra42", body="nothing here\r\n"))
    assert not matches(K("BODY", b"zebra42"), msg)
    assert matches(K("BODY", b"NOTHING"), msg)


def test_text_and_body_miss() -> None:
    """TEXT/BODY do not match absent strings; the empty string matches all."""
    msg = Msg(data=mail("Subject: s"))
    assert not matches(K("TEXT", b"absent"), msg)
    assert not matches(K("BODY", b"absent"), msg)
    assert matches(K("TEXT", b""), msg) and matches(K("BODY", b""), msg)


def _b64_part(text: str, ctype: str = "text/plain; charset=utf-8") -> bytes:
    payload = base64.encodebytes(text.encode("utf-8")).decode().replace("\n", "\r\n")
    return mail(f"Content-Type: {ctype}", "Content-Transfer-Encoding: base64", body=payload)


def test_base64_body_text_found_by_body_and_text() -> None:
    """BODY/TEXT search decoded base64 text parts, non-ASCII case-insensitively."""
    msg = Msg(data=_b64_part("Der Kostenvoranschlag für Straße 7\n"))
    assert matches(K("BODY", b"kostenvoranschlag"), msg)
    assert matches(K("TEXT", b"STRASSE"), msg)
    assert not matches(K("BODY", b"nirgends"), msg)


def test_quoted_printable_soft_breaks_are_decoded() -> None:
    """Quoted-printable soft line breaks do not hide words."""
    body = "Say hel=\r\nlo to Z=C3=BCrich\r\n"
    msg = Msg(
        data=mail(
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: quoted-printable",
            body=body,
        )
    )
    assert matches(K("BODY", b"hello"), msg)
    assert matches(K("BODY", "zürich".encode()), msg)


def test_latin1_8bit_body_found_by_utf8_needle() -> None:
    """8-bit text parts are decoded with their charset before the UTF-8 needle is sought."""
    data = b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\nGr\xfc\xdfe aus K\xf6ln\r\n"
    assert matches(K("BODY", "köln".encode()), Msg(data=data))


def test_non_text_parts_are_not_decoded() -> None:
    """Only text/* parts are decoded (a base64 attachment stays opaque)."""
    msg = Msg(data=_b64_part("secret words", ctype="application/octet-stream"))
    assert not matches(K("BODY", b"secret"), msg)


def test_decoded_text_is_cached_only_for_encoded_messages() -> None:
    """Plain messages cache no decoded text; encoded ones cache it in cache["search"]."""
    plain, encoded = Msg(data=mail("Subject: s")), Msg(data=_b64_part("hidden words"))
    key = K("TEXT", b"nowhere")
    search(key, [plain, encoded], ctx_for([plain, encoded]))
    assert plain.cache[CACHE_KEY].plain and plain.cache[CACHE_KEY].dec_body is None
    assert "hidden words" in encoded.cache[CACHE_KEY].dec_body


def test_multipart_text_parts_are_all_searched() -> None:
    """Every text/* leaf of a multipart message is decoded and searched."""
    inner = base64.b64encode("second part Ünïcode".encode()).decode()
    body = (
        "--b\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n"
        "--b\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64"
        f"\r\n\r\n{inner}\r\n--b--\r\n"
    )
    msg = Msg(data=mail('Content-Type: multipart/alternative; boundary="b"', body=body))
    assert matches(K("BODY", "ünïcode".encode()), msg)
    assert matches(K("BODY", b"first part"), msg)


# --- boolean structure -----------------------------------------------------------


def test_or_not_and_nesting() -> None:
    """OR, NOT and parenthesised AND lists nest to any depth."""
    msgs = [
        Msg(uid=1, flags=frozenset({"\\Seen"})),
        Msg(uid=2, flags=frozenset({"\\Flagged"})),
        Msg(uid=3, flags=frozenset({"\\Seen", "\\Flagged"})),
        Msg(uid=4),
    ]
    assert uids(K("OR", K("SEEN"), K("FLAGGED")), msgs) == [1, 2, 3]
    assert uids(K("NOT", K("OR", K("SEEN"), K("FLAGGED"))), msgs) == [4]
    assert uids(K("AND", K("SEEN"), K("FLAGGED")), msgs) == [3]
    assert uids(K("AND"), msgs) == [1, 2, 3, 4]
    deep = K("NOT", K("NOT", K("AND", K("OR", K("DRAFT"), K("AND", K("SEEN"), K("ALL"))))))
    assert uids(deep, msgs) == [1, 3]
    either = K("OR", K("FLAGGED"), K("UID", seqset((4, 4))))
    nested = K("AND", K("ALL"), K("NOT", K("SEEN")), either)
    assert uids(nested, msgs) == [2, 4]


def test_rfc3501_example() -> None:
    """SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith" (RFC 3501 §6.4.4)."""
    feb94 = dt.datetime(1994, 2, 7, 21, 52, tzinfo=PST)
    msgs = [
        Msg(uid=1, flags=frozenset({"\\Flagged"}), internaldate=feb94, data=mail("From: Jones")),
        Msg(uid=2, flags=frozenset({"\\Flagged"}), internaldate=feb94, data=mail("From: SMITH")),
        Msg(uid=3, internaldate=feb94, data=mail("From: Jones")),
        Msg(
            uid=4,
            flags=frozenset({"\\Flagged"}),
            data=mail("From: Jones"),
            internaldate=dt.datetime(1994, 1, 31, 23, 0, tzinfo=PST),
        ),
    ]
    key = K("AND", K("FLAGGED"), K("SINCE", dt.date(1994, 2, 1)), K("NOT", K("FROM", b"Smith")))
    assert uids(key, msgs) == [1]


def test_search_keeps_input_order() -> None:
    """search() returns matches in the order they were given."""
    msgs = [Msg(uid=u) for u in (5, 2, 9, 1)]
    assert uids(K("ALL"), msgs) == [5, 2, 9, 1]


@pytest.mark.parametrize(
    "key",
    [
        K("NOSUCHKEY"),
        K("NOT"),
        K("OR", K("ALL")),
        K("LARGER", "ten"),
        K("UID", "1:2"),
        K("SEEN", 1),
        K("BEFORE", "1-Jan-2024"),
        K("AND", "ALL"),
    ],
)
def test_malformed_key_trees_raise_search_error(key: SearchKey) -> None:
    """Unknown ops and wrong argument shapes raise SearchError, not TypeError."""
    with pytest.raises(SearchError):
        compile_key(key, ctx_for([]))


# --- malformed messages ------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\r\n\r\n",
        b"Subject: only a header, no separator",
        b"no colon at all\nand LF only",
        b"Subject: lf only\n\nbody text\n",
        b"Subject: \xff\xfe latin\xe9 bytes\r\nFrom: \x00\x01\r\n\r\n\xff\r\n",
        b"Subject: =?utf-8?b?!!!?= =?x-unknown?q?=ZZ?=\r\n\r\n",
        b"Content-Type: text/plain; charset=no-such-charset\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64",
        b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n--",
        b"Date: Mon, 99 Foo 99999 99:99:99 +9999\r\n\r\n",
    ],
)
def test_malformed_messages_never_raise(data: bytes) -> None:
    """Every key evaluates on broken messages without raising."""
    msg = Msg(data=data)
    for key in ALL_KEYS:
        assert matches(key, msg) in (True, False)


def test_message_without_separator_is_all_header() -> None:
    """No empty line: the whole message is header, the body is empty."""
    msg = Msg(data=b"Subject: lonely\r\nX-Other: y")
    assert matches(K("SUBJECT", b"lonely"), msg)
    assert matches(K("HEADER", "x-other", b"y"), msg)
    assert not matches(K("BODY", b"lonely"), msg)
    assert body_start(msg.data) == len(msg.data)


def test_lf_only_message() -> None:
    """Bare-LF line endings work for header fields, folding and body."""
    msg = Msg(data=b"Subject: bare\n lf fold\nFrom: x@y\n\nthe body\n")
    assert matches(K("SUBJECT", b"bare lf"), msg)
    assert matches(K("BODY", b"THE BODY"), msg)
    assert not matches(K("BODY", b"bare"), msg)


ALL_KEYS = [
    K("ALL"),
    K("NEW"),
    K("OLD"),
    K("KEYWORD", "k"),
    K("LARGER", 3),
    K("MODSEQ", 1),
    K("SEQSET", seqset((1, STAR))),
    K("UID", seqset((STAR, 2))),
    K("BEFORE", dt.date(2024, 1, 1)),
    K("SENTON", dt.date(2024, 1, 1)),
    K("SENTBEFORE", dt.date(2024, 1, 1)),
    K("SENTSINCE", dt.date(1990, 1, 1)),
    K("OLDER", 5),
    K("YOUNGER", 5),
    K("FROM", b"x"),
    K("SUBJECT", "ü".encode()),
    K("HEADER", "X-A", b""),
    K("HEADER", "Content-Type", b"text"),
    K("BODY", b"body"),
    K("BODY", "ü".encode()),
    K("TEXT", b"=?"),
    K("TEXT", b"\xff"),
    K("TEXT", b"123"),
    K("OR", K("TEXT", b"a"), K("NOT", K("BODY", b"b"))),
]

# Fragments that steer random messages into header/MIME/encoded-word code paths.
HEADERISH = st.sampled_from(
    b"Subject: |From: |Date: |To: |X-A:|\r\n|\n|\r\n\r\n|\n\n| |\t|:|=?utf-8?q?|=?utf-8?b?|?="
    b"|=C3=BC|\xc3\xbc|\xff|Content-Type: text/plain; charset=|multipart/mixed; boundary=b"
    b"|--b|Content-Transfer-Encoding: |base64|quoted-printable|utf-8|latin1|abc|=|==|\x00"
    b"|Mon, 1 Jan 2024 10:00:00 +0100".split(b"|")
)
MESSAGES = st.one_of(st.binary(max_size=400), st.lists(HEADERISH, max_size=40).map(b"".join))


@settings(max_examples=300, deadline=None)
@given(MESSAGES)
def test_compiled_keys_never_raise_on_random_bytes(data: bytes) -> None:
    """compile_key(key)(target) returns a bool for arbitrary message bytes."""
    msg = Msg(data=data)
    ctx = ctx_for([msg])
    for key in ALL_KEYS:
        assert compile_key(key, ctx)(msg) in (True, False)


ASCII_TEXT = st.text(alphabet="abcXYZ \r\n:-", max_size=200)


@settings(max_examples=200, deadline=None)
@given(ASCII_TEXT, st.text(alphabet="abcXYZ -", min_size=1, max_size=4))
def test_text_on_plain_ascii_equals_caseless_substring(text: str, needle: str) -> None:
    """On plain ASCII messages TEXT is exactly a case-insensitive substring test."""
    data = text.encode()
    expected = needle.lower().encode() in data.lower()
    assert matches(K("TEXT", needle.encode()), Msg(data=data)) == expected


def test_cache_slot_is_reused_between_searches() -> None:
    """The per-message index lives in cache["search"] and survives across searches."""
    msg = Msg(data=HEADERS)
    assert matches(K("SUBJECT", b"report"), msg)
    index = msg.cache[CACHE_KEY]
    assert matches(K("FROM", b"alice"), msg)
    assert msg.cache[CACHE_KEY] is index
    assert set(index.fields) == {"subject", "from"}  # only what was asked for


def test_field_cache_per_message_is_bounded() -> None:
    """Searching many distinct HEADER names does not grow the cache without bound."""
    msg = Msg(data=mail("X-Name-3: three"))
    for i in range(MAX_CACHED_FIELDS + 10):
        assert matches(K("HEADER", f"X-Name-{i}", b"three"), msg) == (i == 3)
    assert len(msg.cache[CACHE_KEY].fields) == MAX_CACHED_FIELDS
    assert matches(K("HEADER", "X-Name-3", b"THREE"), msg)
