"""ParsedMessage: ENVELOPE, BODY/BODYSTRUCTURE and BODY[section] (RFC 3501 §6.4.5, §7.4.2)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twistedmail.imap import mimeparse
from twistedmail.imap.mime import MAX_DEPTH, ParsedMessage

# --- helpers -------------------------------------------------------------------


def crlf(text: str) -> bytes:
    """A message written with \\n line ends, stored with CRLF."""
    return text.encode("latin-1").replace(b"\n", b"\r\n")


def imap(v: object) -> str:
    """Render an encoder value as IMAP text.

    bytes -> quoted string, None -> NIL; a list that starts with lists writes
    that leading run without SP (RFC 3501 §9 ``1*body`` / ``1*address``)."""
    if v is None:
        return "NIL"
    if isinstance(v, bool):
        raise TypeError("bool is not an encoder value")
    if isinstance(v, int):
        return str(v)
    if isinstance(v, bytes):
        s = v.decode("latin-1")
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        lead = 0
        while lead < len(v) and isinstance(v[0], list) and isinstance(v[lead], list):
            lead += 1
        items = ["".join(imap(x) for x in v[:lead])] if lead else []
        items += [imap(x) for x in v[lead:]]
        return "(" + " ".join(items) + ")"
    raise TypeError(f"not an encoder value: {type(v).__name__}")


def check_types(v: object) -> None:
    """Only None / int / bytes / list may appear (the encoder contract)."""
    if isinstance(v, list):
        for x in v:
            check_types(x)
    else:
        assert v is None or isinstance(v, bytes) or (type(v) is int and v >= 0), repr(v)


def filler(lines: int, octets: int) -> bytes:
    """A body of exactly ``lines`` CRLF-terminated lines totalling ``octets``."""
    text = octets - 2 * lines
    base, extra = divmod(text, lines)
    out = [b"x" * (base + (1 if i < extra else 0)) + b"\r\n" for i in range(lines)]
    return b"".join(out)


def bs(raw: bytes, extended: bool = True) -> str:
    """BODYSTRUCTURE (or BODY) of ``raw`` as IMAP text."""
    return imap(ParsedMessage(raw).bodystructure(extended))


def env(raw: bytes) -> str:
    """ENVELOPE of ``raw`` as IMAP text."""
    return imap(ParsedMessage(raw).envelope())


TEXT_US = '"text" "plain" ("charset" "us-ascii") NIL NIL "7bit"'
NO_EXT = "NIL NIL NIL NIL"

# --- messages ------------------------------------------------------------------

SIMPLE = crlf("""\
From: Alice <alice@example.org>
To: bob@example.com
Subject: Hello
Date: Mon, 7 Feb 1994 21:52:25 -0800
Message-ID: <1@example.org>

Hello Bob,
How are you?
""")

ALTERNATIVE = crlf("""\
From: a@example.org
Subject: alt
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8

plain body

--b1
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<p>html body</p>

--b1--
""")

MIXED = crlf("""\
From: a@example.org
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=XyZ

--XyZ
Content-Type: text/plain

See attachment.

--XyZ
Content-Type: application/pdf; name="doc.pdf"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="doc.pdf"
Content-ID: <att1@example.org>
Content-Description: The document

JVBERi0xLjQK
JSVFT0YK

--XyZ--
""")

NESTED = crlf("""\
From: a@example.org
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

preamble text
--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain

Hi

--inner
Content-Type: text/html

<b>Hi</b>

--inner--

--outer
Content-Type: image/png
Content-Transfer-Encoding: base64

iVBORw0KGgo=

--outer--
epilogue
""")

INNER = crlf("""\
From: Inner Sender <inner@example.net>
To: Group: a@example.com, b@example.com;
Subject: inner
Date: Tue, 1 Jan 2019 00:00:00 +0000
Message-ID: <inner@example.net>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="n"

--n
Content-Type: text/plain

inner plain

--n
Content-Type: text/html

<i>inner</i>

--n--
""")

FORWARD = crlf("""\
From: Fwd <fwd@example.org>
Subject: Fwd: inner
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="m"

--m
Content-Type: text/plain

See below.

--m
Content-Type: message/rfc822
Content-Description: forwarded

""") + INNER + crlf("""
--m--
""")

INNER_LINES = INNER.count(b"\n")
INNER_ENV = (
    '("Tue, 1 Jan 2019 00:00:00 +0000" "inner" (("Inner Sender" NIL "inner" "example.net"))'
    ' (("Inner Sender" NIL "inner" "example.net")) (("Inner Sender" NIL "inner" "example.net"))'
    ' ((NIL NIL "Group" NIL)(NIL NIL "a" "example.com")(NIL NIL "b" "example.com")'
    '(NIL NIL NIL NIL)) NIL NIL NIL "<inner@example.net>")'
)

RFC3501_PLAIN = crlf("""\
Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)
From: Terry Gray <gray@cac.washington.edu>
Subject: IMAP4rev1 WG mtg summary and minutes
To: imap@cac.washington.edu
cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>
Message-Id: <B27397-0100000@cac.washington.edu>
MIME-Version: 1.0
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII
Content-Transfer-Encoding: 7BIT

""") + filler(92, 3028)

RFC3501_MIXED = (
    crlf("""\
MIME-Version: 1.0
Content-Type: MULTIPART/MIXED; BOUNDARY="x"

--x
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII
Content-Transfer-Encoding: 7BIT

""")
    + filler(23, 1152)
    + crlf("""
--x
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII; NAME=cc.diff
Content-ID: <960723163407.20117h@cac.washington.edu>
Content-Description: Compiler diff
Content-Transfer-Encoding: BASE64

""")
    + filler(73, 4554)
    + crlf("""
--x--
""")
)

FOLDED = crlf("""\
Received: from x
\tby y; Mon, 1 Jan 2024
Subject: a folded
 subject line
X-Other: 1
subject: second
From: me@x

body
""")

CORPUS = [SIMPLE, ALTERNATIVE, MIXED, NESTED, FORWARD, RFC3501_PLAIN, FOLDED]

# --- BODYSTRUCTURE / BODY tables ------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(SIMPLE, f"({TEXT_US} 26 2 {NO_EXT})", id="simple"),
        pytest.param(
            ALTERNATIVE,
            '(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 12 1 NIL NIL NIL NIL)'
            '("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 18 1 NIL NIL NIL NIL)'
            ' "alternative" ("boundary" "b1") NIL NIL NIL)',
            id="alternative",
        ),
        pytest.param(
            MIXED,
            f'(({TEXT_US} 17 1 {NO_EXT})'
            '("application" "pdf" ("name" "doc.pdf") "<att1@example.org>" "The document"'
            ' "base64" 24 NIL ("attachment" ("filename" "doc.pdf")) NIL NIL)'
            ' "mixed" ("boundary" "XyZ") NIL NIL NIL)',
            id="mixed-attachment",
        ),
        pytest.param(
            NESTED,
            f'((({TEXT_US} 4 1 {NO_EXT})("text" "html" ("charset" "us-ascii") NIL NIL "7bit"'
            f' 11 1 {NO_EXT}) "alternative" ("boundary" "inner") NIL NIL NIL)'
            '("image" "png" NIL NIL NIL "base64" 14 NIL NIL NIL NIL)'
            ' "mixed" ("boundary" "outer") NIL NIL NIL)',
            id="nested",
        ),
        pytest.param(
            FORWARD,
            f'(({TEXT_US} 12 1 {NO_EXT})'
            f'("message" "rfc822" NIL NIL "forwarded" "7bit" {len(INNER)} {INNER_ENV}'
            f' (({TEXT_US} 13 1 {NO_EXT})("text" "html" ("charset" "us-ascii") NIL NIL "7bit"'
            f' 14 1 {NO_EXT}) "alternative" ("boundary" "n") NIL NIL NIL) {INNER_LINES}'
            ' NIL NIL NIL NIL) "mixed" ("boundary" "m") NIL NIL NIL)',
            id="message-rfc822",
        ),
        pytest.param(
            RFC3501_PLAIN,
            '("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92 NIL NIL NIL NIL)',
            id="rfc3501-6.4.5-example",
        ),
    ],
)
def test_bodystructure_table(raw: bytes, expected: str) -> None:
    """BODYSTRUCTURE of well-formed messages, Dovecot conventions (RFC 3501 §7.4.2)."""
    assert bs(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(SIMPLE, f"({TEXT_US} 26 2)", id="simple"),
        pytest.param(
            RFC3501_PLAIN,
            '("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92)',
            id="rfc3501-6.4.5-example",
        ),
        pytest.param(
            RFC3501_MIXED,
            '(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23)'
            '("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff")'
            ' "<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73)'
            ' "MIXED")',
            id="rfc3501-7.4.2-example",
        ),
        pytest.param(
            FORWARD,
            f'(({TEXT_US} 12 1)("message" "rfc822" NIL NIL "forwarded" "7bit" {len(INNER)}'
            f' {INNER_ENV} (({TEXT_US} 13 1)("text" "html" ("charset" "us-ascii") NIL NIL'
            f' "7bit" 14 1) "alternative") {INNER_LINES}) "mixed")',
            id="message-rfc822",
        ),
    ],
)
def test_body_table(raw: bytes, expected: str) -> None:
    """BODY (non-extensible BODYSTRUCTURE) drops every extension field (RFC 3501 §7.4.2)."""
    assert bs(raw, extended=False) == expected


# --- ENVELOPE ------------------------------------------------------------------------


def test_envelope_rfc3501_sample() -> None:
    """The RFC 3501 §8 sample ENVELOPE, including the cc list and sender defaults."""
    assert env(RFC3501_PLAIN) == (
        '("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes"'
        ' (("Terry Gray" NIL "gray" "cac.washington.edu"))'
        ' (("Terry Gray" NIL "gray" "cac.washington.edu"))'
        ' (("Terry Gray" NIL "gray" "cac.washington.edu"))'
        ' ((NIL NIL "imap" "cac.washington.edu"))'
        ' ((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU"))'
        ' NIL NIL "<B27397-0100000@cac.washington.edu>")'
    )


def test_envelope_simple() -> None:
    """Date/subject/message-id are the raw values; sender and reply-to default to From."""
    alice = '(("Alice" NIL "alice" "example.org"))'
    assert env(SIMPLE) == (
        f'("Mon, 7 Feb 1994 21:52:25 -0800" "Hello" {alice} {alice} {alice}'
        ' ((NIL NIL "bob" "example.com")) NIL NIL NIL "<1@example.org>")'
    )


def test_envelope_address_lists_are_distinct_objects() -> None:
    """Defaulted Sender/Reply-To are equal to From but not aliased to it."""
    e = ParsedMessage(SIMPLE).envelope()
    assert e[2] == e[3] == e[4]
    assert e[2] is not e[3] and e[3] is not e[4]


def test_wsp_before_colon() -> None:
    """``Subject : x`` is the Subject field (RFC 5322 §4.5.3 obsolete syntax)."""
    m = ParsedMessage(b"Subject : spaced\r\n\r\n")
    assert m.envelope()[1] == b"spaced"
    assert m.section((), "HEADER.FIELDS", ("SUBJECT",)) == b"Subject : spaced\r\n\r\n"


def test_envelope_of_empty_message_is_all_nil() -> None:
    """Absent fields are NIL (RFC 3501 §7.4.2)."""
    assert env(b"") == "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"


def test_envelope_explicit_sender_reply_to_and_in_reply_to() -> None:
    """Sender/Reply-To are used when present; empty ones fall back to From."""
    raw = crlf("""\
From: a@x
Sender: s@x
Reply-To:
Cc: c@x
Bcc: d@x
In-Reply-To: <parent@x>

""")
    assert env(raw) == (
        '(NIL NIL ((NIL NIL "a" "x")) ((NIL NIL "s" "x")) ((NIL NIL "a" "x")) NIL'
        ' ((NIL NIL "c" "x")) ((NIL NIL "d" "x")) "<parent@x>" NIL)'
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(b"undisclosed-recipients:;", '((NIL NIL "undisclosed-recipients" NIL)'
                     "(NIL NIL NIL NIL))", id="empty-group"),
        pytest.param(b"A Team: a@x, B <b@y>; c@z", '((NIL NIL "A Team" NIL)(NIL NIL "a" "x")'
                     '("B" NIL "b" "y")(NIL NIL NIL NIL)(NIL NIL "c" "z"))', id="group"),
        pytest.param(b"Unclosed: a@x", '((NIL NIL "Unclosed" NIL)(NIL NIL "a" "x")'
                     "(NIL NIL NIL NIL))", id="unterminated-group"),
        pytest.param(b"root", '((NIL NIL "root" "MISSING_DOMAIN"))', id="missing-host"),
        pytest.param(b"<>", '((NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))', id="null-path"),
        pytest.param(b"Joe <@relay.example,@r2:joe@host>", '(("Joe" "@relay.example,@r2"'
                     ' "joe" "host"))', id="source-route"),
        pytest.param(b"joe@host (Joe Bloggs)", '(("Joe Bloggs" NIL "joe" "host"))',
                     id="comment-name"),
        pytest.param(b'"Bloggs, Joe" <joe@host>', '(("Bloggs, Joe" NIL "joe" "host"))',
                     id="quoted-comma"),
        pytest.param(b'"a \\"q\\" b" <q@h>', '(("a \\"q\\" b" NIL "q" "h"))', id="quoted-pair"),
        pytest.param(b"=?UTF-8?B?SsO2cmc=?= <j@h.de>", '(("=?UTF-8?B?SsO2cmc=?=" NIL "j"'
                     ' "h.de"))', id="encoded-word-kept"),
        pytest.param(b"John  Q.  Public <jqp@x.org>", '(("John Q. Public" NIL "jqp" "x.org"))',
                     id="phrase-spaces"),
        pytest.param(b'"john doe"@example.com', '((NIL NIL "john doe" "example.com"))',
                     id="quoted-local-part"),
        pytest.param(b"user@[192.0.2.1]", '((NIL NIL "user" "[192.0.2.1]"))',
                     id="domain-literal"),
        pytest.param(b"a@x,, ,b@y,", '((NIL NIL "a" "x")(NIL NIL "b" "y"))', id="empty-items"),
        pytest.param(b"Bob <bob@x", '(("Bob" NIL "bob" "x"))', id="unclosed-angle"),
        pytest.param(b"   ", "NIL", id="blank"),
        pytest.param(b",;:", "NIL", id="only-specials"),
    ],
)
def test_envelope_to_addresses(value: bytes, expected: str) -> None:
    """Address parsing: groups, missing parts, routes, comments (RFC 3501 §7.4.2, RFC 5322 §3.4)."""
    parsed = ParsedMessage(b"To: " + value + b"\r\n\r\n").envelope()
    assert imap(parsed[5]) == expected


def test_envelope_keeps_8bit_bytes() -> None:
    """Raw 8-bit header bytes come back byte-identical (no decoding, RFC 3501 §7.4.2)."""
    raw = b"Subject: Caf\xe9 \xff\r\nFrom: J\xf6rg <j\xf6@h\xe9.de>\r\n\r\n"
    e = ParsedMessage(raw).envelope()
    assert e[1] == b"Caf\xe9 \xff"
    assert e[2] == [[b"J\xf6rg", None, b"j\xf6", b"h\xe9.de"]]


def test_envelope_unfolds_and_first_occurrence_wins() -> None:
    """Folded values are unfolded (RFC 5322 §2.2.3); a repeated Subject uses the first."""
    e = ParsedMessage(FOLDED).envelope()
    assert e[1] == b"a folded subject line"
    assert e[2] == [[None, None, b"me", b"x"]]


def test_envelope_of_lf_only_message() -> None:
    """Bare-LF messages parse like CRLF ones."""
    assert env(SIMPLE.replace(b"\r\n", b"\n")) == env(SIMPLE)


# --- sections ------------------------------------------------------------------------


def test_whole_message_header_and_text() -> None:
    """BODY[], BODY[HEADER], BODY[TEXT], RFC822.HEADER/TEXT (RFC 3501 §6.4.5)."""
    m = ParsedMessage(SIMPLE)
    head, _, body = SIMPLE.partition(b"\r\n\r\n")
    assert m.section((), None) is SIMPLE
    assert m.section((), "HEADER") == m.header_bytes() == head + b"\r\n\r\n"
    assert m.section((), "TEXT") == m.text_bytes() == body
    assert m.section((), "text") == body


def test_non_multipart_part_one_is_the_body() -> None:
    """A non-multipart message only has part 1: its body; 1.MIME is its header."""
    m = ParsedMessage(SIMPLE)
    assert m.section((1,), None) == b"Hello Bob,\r\nHow are you?\r\n"
    assert m.section((1,), "MIME") == m.header_bytes()
    assert m.section((2,), None) is None
    assert m.section((1, 2), None) is None


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        ((1,), None, b"--inner\r\nContent-Type: text/plain\r\n\r\nHi\r\n\r\n--inner\r\n"
                     b"Content-Type: text/html\r\n\r\n<b>Hi</b>\r\n\r\n--inner--\r\n"),
        ((1,), "MIME", b'Content-Type: multipart/alternative; boundary="inner"\r\n\r\n'),
        ((1, 1), None, b"Hi\r\n"),
        ((1, 1), "MIME", b"Content-Type: text/plain\r\n\r\n"),
        ((1, 2), None, b"<b>Hi</b>\r\n"),
        ((2,), None, b"iVBORw0KGgo=\r\n"),
        ((2,), "MIME", b"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n"),
        ((2, 1), None, b"iVBORw0KGgo=\r\n"),  # Dovecot: a leaf's "1" is itself
        ((3,), None, None),
        ((0,), None, None),
        ((1, 3), None, None),
        ((2, 2), None, None),
        ((1, 1, 1, 1), None, None),
        ((2,), "HEADER", None),  # HEADER/TEXT need a message/rfc822 part
        ((2,), "TEXT", None),
    ],
)
def test_nested_multipart_sections(path: tuple[int, ...], text: str | None,
                                   expected: bytes | None) -> None:
    """Part numbering through nested multiparts; missing parts are None (RFC 3501 §6.4.5)."""
    assert ParsedMessage(NESTED).section(path, text) == expected


def test_multipart_text_includes_preamble_and_epilogue() -> None:
    """BODY[TEXT] of a multipart message is its whole body, preamble to epilogue."""
    text = ParsedMessage(NESTED).section((), "TEXT")
    assert text is not None
    assert text.startswith(b"preamble text\r\n--outer\r\n")
    assert text.endswith(b"--outer--\r\nepilogue\r\n")


@pytest.mark.parametrize(
    ("path", "text", "fields", "expected"),
    [
        ((2,), None, (), INNER),
        ((2,), "HEADER", (), INNER.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"),
        ((2,), "TEXT", (), INNER.partition(b"\r\n\r\n")[2]),
        ((2,), "MIME", (), b"Content-Type: message/rfc822\r\n"
                           b"Content-Description: forwarded\r\n\r\n"),
        ((2,), "HEADER.FIELDS", ("SUBJECT", "DATE"),
         b"Subject: inner\r\nDate: Tue, 1 Jan 2019 00:00:00 +0000\r\n\r\n"),
        ((2, 1), None, (), b"inner plain\r\n"),
        ((2, 1), "MIME", (), b"Content-Type: text/plain\r\n\r\n"),
        ((2, 2), None, (), b"<i>inner</i>\r\n"),
        ((2, 3), None, (), None),
        ((1,), "HEADER", (), None),
        ((1,), "TEXT", (), None),
    ],
)
def test_message_rfc822_sections(path: tuple[int, ...], text: str | None,
                                 fields: tuple[str, ...], expected: bytes | None) -> None:
    """Sections inside a message/rfc822 part address the encapsulated message (§6.4.5)."""
    assert ParsedMessage(FORWARD).section(path, text, fields) == expected


def test_message_rfc822_with_single_part_inner() -> None:
    """N.1 of a message/rfc822 whose message is not multipart is that message's body."""
    raw = crlf("""\
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: message/rfc822

Subject: in

inner text

--b--
""")
    m = ParsedMessage(raw)
    assert m.section((1, 1), None) == b"inner text\r\n"
    assert m.section((1, 1), "MIME") == b"Subject: in\r\n\r\n"
    assert m.section((1, 2), None) is None
    assert bs(raw, False) == (
        '(("message" "rfc822" NIL NIL NIL "7bit" 27 (NIL "in" NIL NIL NIL NIL NIL NIL NIL NIL)'
        f' ({TEXT_US} 12 1) 3) "mixed")'
    )


def test_top_level_message_rfc822() -> None:
    """A top-level message/rfc822: 1 is the whole inner message, 1.1 its body."""
    raw = crlf("""\
Content-Type: message/rfc822

Subject: inner

hello
""")
    m = ParsedMessage(raw)
    assert m.section((1,), None) == b"Subject: inner\r\n\r\nhello\r\n"
    assert m.section((1, 1), None) == b"hello\r\n"
    assert m.section((1,), "HEADER") == b"Subject: inner\r\n\r\n"
    assert bs(raw, False) == (
        '("message" "rfc822" NIL NIL NIL "7bit" 25 (NIL "inner" NIL NIL NIL NIL NIL NIL NIL NIL)'
        f" ({TEXT_US} 7 1) 3)"
    )


@pytest.mark.parametrize(
    ("spec", "fields", "expected"),
    [
        ("HEADER.FIELDS", ("SUBJECT", "FROM"),
         b"Subject: a folded\r\n subject line\r\nsubject: second\r\nFrom: me@x\r\n\r\n"),
        ("HEADER.FIELDS", ("subject",),
         b"Subject: a folded\r\n subject line\r\nsubject: second\r\n\r\n"),
        ("HEADER.FIELDS.NOT", ("SUBJECT", "FROM"),
         b"Received: from x\r\n\tby y; Mon, 1 Jan 2024\r\nX-Other: 1\r\n\r\n"),
        ("HEADER.FIELDS", ("X-NOPE",), b"\r\n"),
        ("HEADER.FIELDS.NOT", ("RECEIVED", "SUBJECT", "X-OTHER", "FROM"), b"\r\n"),
    ],
)
def test_header_fields(spec: str, fields: tuple[str, ...], expected: bytes) -> None:
    """HEADER.FIELDS[.NOT]: original folded lines in order, then CRLF (RFC 3501 §6.4.5)."""
    assert ParsedMessage(FOLDED).section((), spec, fields) == expected


def test_header_fields_of_lf_only_message() -> None:
    """Matched fields keep their bytes; the final blank line is CRLF."""
    raw = b"A: 1\nB: 2\n x\n\nbody\n"
    m = ParsedMessage(raw)
    assert m.section((), "HEADER.FIELDS", ("B",)) == b"B: 2\n x\n\r\n"
    assert m.section((), "HEADER") == b"A: 1\nB: 2\n x\n\n"


def test_header_fields_without_trailing_newline() -> None:
    """A last field cut off without a line end still gets CRLF before the blank line."""
    m = ParsedMessage(b"Subject: cut")
    assert m.section((), "HEADER.FIELDS", ("SUBJECT",)) == b"Subject: cut\r\n\r\n"


def test_invalid_section_specs() -> None:
    """MIME on the whole message and unknown specifiers are None."""
    m = ParsedMessage(NESTED)
    assert m.section((), "MIME") is None
    assert m.section((1, 1), "BOGUS") is None
    assert m.section((), "BOGUS") is None


# --- extension data -------------------------------------------------------------------


def test_extension_fields() -> None:
    """MD5, disposition params, language list and location (RFC 3501 §7.4.2)."""
    raw = crlf("""\
Content-Type: text/x-myown; charset=us-ascii; foo="quoted\\"string"
Content-ID: <foo@example.com>
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==
Content-Disposition: inline; foo=bar
Content-Description: hellodescription
Content-Language: en, fi, se
Content-Location: http://example.com/test.txt

hello
""")
    assert bs(raw) == (
        '("text" "x-myown" ("charset" "us-ascii" "foo" "quoted\\"string") "<foo@example.com>"'
        ' "hellodescription" "7bit" 7 1 "Q2hlY2sgSW50ZWdyaXR5IQ==" ("inline" ("foo" "bar"))'
        ' ("en" "fi" "se") "http://example.com/test.txt")'
    )


def test_multipart_extension_fields() -> None:
    """body-ext-mpart: params, disposition, language, location of the multipart itself."""
    raw = crlf("""\
Content-Type: multipart/related; boundary=r; type="text/html"
Content-Disposition: inline
Content-Language: de
Content-Location: http://example.com/

--r

x

--r--
""")
    assert bs(raw) == (
        f'(({TEXT_US} 3 1 {NO_EXT}) "related" ("boundary" "r" "type" "text/html")'
        ' ("inline" NIL) ("de") "http://example.com/")'
    )


# --- malformed input --------------------------------------------------------------------


def test_missing_content_type_defaults_to_text_plain() -> None:
    """No Content-Type: text/plain; charset=us-ascii, 7bit (RFC 2045 §5.2)."""
    assert bs(b"Subject: x\r\n\r\nbody\r\n") == f"({TEXT_US} 6 1 {NO_EXT})"


def test_empty_message() -> None:
    """The empty message is an empty text/plain with an empty header."""
    m = ParsedMessage(b"")
    assert bs(b"") == f"({TEXT_US} 0 0 {NO_EXT})"
    assert m.header_bytes() == m.text_bytes() == b""
    assert m.section((1,), None) == b""


def test_header_without_blank_line() -> None:
    """No blank line: everything is header, the body is empty."""
    raw = b"Subject: only header\r\nFrom: a@b\r\n"
    m = ParsedMessage(raw)
    assert m.header_bytes() == raw
    assert m.text_bytes() == b""
    assert bs(raw) == f"({TEXT_US} 0 0 {NO_EXT})"
    assert m.envelope()[1] == b"only header"


def test_body_without_header() -> None:
    """A message starting with a blank line has an empty header."""
    m = ParsedMessage(b"\r\nbody\r\n")
    assert m.header_bytes() == b"\r\n"
    assert m.text_bytes() == b"body\r\n"


@pytest.mark.parametrize(
    ("ctype", "expected"),
    [
        pytest.param(b"text/plain; charset=utf-8;; format=flowed; charset=\"iso-8859-1\";"
                     b" broken; name= ;",
                     '"text" "plain" ("charset" "utf-8" "format" "flowed" "charset" "iso-8859-1"'
                     ' "name" "")', id="odd-params"),
        pytest.param(b"TEXT/HTML; CHARSET=UTF-8", '"TEXT" "HTML" ("CHARSET" "UTF-8")',
                     id="case-kept"),
        pytest.param(b"text/plain (comment); charset=(c) us-ascii (trailing)",
                     '"text" "plain" ("charset" "us-ascii")', id="comments"),
        pytest.param(b"text", '"text" "plain" ("charset" "us-ascii")', id="type-only-text"),
        pytest.param(b"text; charset=koi8-r", '"text" "plain" ("charset" "koi8-r")',
                     id="type-only-text-params"),
        pytest.param(b"image", '"text" "plain" ("charset" "us-ascii")', id="type-only-image"),
        pytest.param(b"/; charset=x", '"text" "plain" ("charset" "us-ascii")', id="garbage"),
        pytest.param(b"", '"text" "plain" ("charset" "us-ascii")', id="empty"),
        pytest.param(b'text/plain; name="unterminated', '"text" "plain" ("name" "unterminated"'
                     ' "charset" "us-ascii")', id="unterminated-quote"),
        pytest.param(b"text/plain; name=my file.txt", '"text" "plain" ("name" "my" "charset"'
                     ' "us-ascii")', id="unquoted-space"),
        pytest.param(b"application/x-foo; name==?utf-8?B?Zm9v?=", '"application" "x-foo"'
                     ' ("name" "=?utf-8?B?Zm9v?=")', id="encoded-word-param"),
    ],
)
def test_tolerant_content_type(ctype: bytes, expected: str) -> None:
    """Odd Content-Type values never fail; params are kept in order (Dovecot-style)."""
    raw = b"Content-Type: " + ctype + b"\r\n\r\nx"
    assert bs(raw, False).startswith("(" + expected + " ")


@pytest.mark.parametrize(
    ("disposition", "expected"),
    [
        pytest.param(b'attachment; filename*0="long"; filename*1="name.txt"',
                     '("attachment" ("filename" "longname.txt"))', id="continuation"),
        pytest.param(b"attachment; filename*0*=utf-8''%E2%82%AC; filename*1=\"5%.txt\"",
                     "(\"attachment\" (\"filename*\" \"utf-8''%E2%82%AC5%25.txt\"))",
                     id="extended-continuation"),
        pytest.param(b"attachment; filename*=utf-8''a%20b.txt",
                     "(\"attachment\" (\"filename*\" \"utf-8''a%20b.txt\"))", id="extended"),
        pytest.param(b"attachment; filename*0=a; filename*2=c",
                     '("attachment" ("filename*0" "a" "filename*2" "c"))', id="gap-kept-raw"),
        pytest.param(b"attachment; size=3; name*1=b; name*0=a",
                     '("attachment" ("size" "3" "name" "ab"))', id="out-of-order"),
        pytest.param(b"; filename=x", "NIL", id="no-type"),
    ],
)
def test_disposition_and_rfc2231(disposition: bytes, expected: str) -> None:
    """Content-Disposition (RFC 2183) with RFC 2231 §3 continuations joined."""
    raw = b"Content-Disposition: " + disposition + b"\r\n\r\nx"
    structure = ParsedMessage(raw).bodystructure()
    assert imap(structure[9]) == expected


@pytest.mark.parametrize(
    ("cte", "expected"),
    [(b"Base64 (comment)", b"Base64"), (b"?invalid", b"7bit"), (b"base64 junk", b"7bit"),
     (b"", b"7bit"), (b"quoted-printable", b"quoted-printable")],
)
def test_transfer_encoding(cte: bytes, expected: bytes) -> None:
    """Content-Transfer-Encoding must be one token, else "7bit" (Dovecot)."""
    raw = b"Content-Transfer-Encoding: " + cte + b"\r\n\r\nx"
    assert ParsedMessage(raw).bodystructure()[5] == expected


def test_mime_headers_without_mime_version() -> None:
    """Content-* headers count even without MIME-Version (as Dovecot does)."""
    assert "MIME-Version" not in MIXED.replace(b"MIME-Version: 1.0\r\n", b"").decode()
    assert bs(MIXED.replace(b"MIME-Version: 1.0\r\n", b"")) == bs(MIXED)


def test_multipart_without_boundary() -> None:
    """multipart/* without a boundary: one empty text/plain placeholder (Dovecot)."""
    raw = b"Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\nbody\r\n"
    m = ParsedMessage(raw)
    assert bs(raw) == f'(({TEXT_US} 0 0 {NO_EXT}) "mixed" NIL NIL NIL NIL)'
    assert bs(raw, False) == f'(({TEXT_US} 0 0) "mixed")'
    assert m.section((1,), None) is None
    assert m.section((), "TEXT") == b"--x\r\n\r\nbody\r\n"


def test_multipart_with_no_parts() -> None:
    """A boundary that never appears gives the same placeholder."""
    raw = b'Content-Type: multipart/mixed; boundary="foo"\r\n\r\n'
    assert bs(raw) == f'(({TEXT_US} 0 0 {NO_EXT}) "mixed" ("boundary" "foo") NIL NIL NIL)'


def test_unclosed_boundary_runs_to_eof() -> None:
    """A multipart never closed ends at EOF; its last part takes the rest."""
    raw = crlf("""\
Content-Type: multipart/mixed; boundary=b

--b

first

--b
Content-Type: text/plain

last part
""")
    assert bs(raw, False) == f'(({TEXT_US} 7 1)({TEXT_US} 11 1) "mixed")'
    assert ParsedMessage(raw).section((2,), None) == b"last part\r\n"


def test_inner_unclosed_boundary_ends_at_outer() -> None:
    """An inner multipart missing its close-delimiter ends at the outer boundary."""
    raw = crlf("""\
Content-Type: multipart/mixed; boundary=out

--out
Content-Type: multipart/alternative; boundary=in

--in

a

--out

b

--out--
""")
    m = ParsedMessage(raw)
    assert bs(raw, False) == f'((({TEXT_US} 3 1) "alternative")({TEXT_US} 3 1) "mixed")'
    assert m.section((2,), None) == b"b\r\n"


def test_boundary_prefix_longest_match() -> None:
    """Boundaries match as line prefixes; the longest active one wins (RFC 2046 §5.1.1)."""
    raw = crlf("""\
Content-Type: multipart/mixed; boundary=abc

--abc
Content-Type: multipart/alternative; boundary=abc-1

--abc-1

one

--abc-1

two

--abc-1--

--abc

three

--abc--
""")
    m = ParsedMessage(raw)
    assert bs(raw, False) == (
        f'((({TEXT_US} 5 1)({TEXT_US} 5 1) "alternative")({TEXT_US} 7 1) "mixed")'
    )
    assert m.section((1, 2), None) == b"two\r\n"


def test_boundary_with_trailing_garbage_and_no_preamble_crlf() -> None:
    """Delimiter lines may carry trailing text; a body may start at the delimiter."""
    raw = b"Content-Type: multipart/mixed; boundary=q\r\n\r\n--q  \r\n\r\nA\r\n--q-- bye\r\n"
    assert bs(raw, False) == f'(({TEXT_US} 1 0) "mixed")'
    assert ParsedMessage(raw).section((1,), None) == b"A"


def test_part_header_cut_by_boundary() -> None:
    """A part whose header runs into the next boundary has an empty body."""
    raw = crlf("""\
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: text/html
--b

ok

--b--
""")
    m = ParsedMessage(raw)
    assert bs(raw, False) == (
        f'(("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 0 0)({TEXT_US} 4 1) "mixed")'
    )
    assert m.section((1,), "MIME") == b"Content-Type: text/html"


def test_lf_only_multipart() -> None:
    """Bare-LF mail splits the same way; sizes count the stored octets."""
    raw = ALTERNATIVE.replace(b"\r\n", b"\n")
    m = ParsedMessage(raw)
    assert bs(raw, False) == (
        '(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 11 1)'
        '("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 17 1) "alternative")'
    )
    assert m.section((1,), None) == b"plain body\n"
    assert m.section((2,), "MIME") == (
        b"Content-Type: text/html; charset=utf-8\n"
        b"Content-Transfer-Encoding: quoted-printable\n\n"
    )


def test_lines_count_line_feeds() -> None:
    """body-fld-lines counts LFs, so an unterminated last line is not counted (Dovecot)."""
    assert bs(b"\r\na\r\nb", False) == f"({TEXT_US} 4 1)"


def test_digest_parts_default_to_message_rfc822() -> None:
    """In multipart/digest a part without Content-Type is message/rfc822 (RFC 2046 §5.1.5)."""
    raw = crlf("""\
Content-Type: multipart/digest; boundary=d

--d

Subject: one

1

--d--
""")
    assert bs(raw, False) == (
        '(("message" "rfc822" NIL NIL NIL "7bit" 19 (NIL "one" NIL NIL NIL NIL NIL NIL NIL NIL)'
        f' ({TEXT_US} 3 1) 3) "digest")'
    )
    assert ParsedMessage(raw).section((1,), "HEADER") == b"Subject: one\r\n\r\n"


def test_duplicate_content_type_first_wins() -> None:
    """Only the first Content-Type counts."""
    raw = b"Content-Type: image/gif\r\nContent-Type: text/html\r\n\r\nGIF"
    assert bs(raw, False) == '("image" "gif" NIL NIL NIL "7bit" 3)'


def test_deep_nesting_is_capped() -> None:
    """Nesting beyond MAX_DEPTH stops expanding instead of recursing without bound."""
    depth = MAX_DEPTH + 50
    raw = b"Content-Type: message/rfc822\r\n\r\n" * depth + b"Subject: core\r\n\r\nend\r\n"
    structure = ParsedMessage(raw).bodystructure()
    level = 0
    while structure[0] == b"message":
        structure = structure[8]
        level += 1
    assert level == MAX_DEPTH
    assert structure[:2] == [b"application", b"octet-stream"]
    mp = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
                  for i in range(depth))
    check_types(ParsedMessage(mp).bodystructure())


def test_many_parts_are_capped() -> None:
    """A part budget bounds work on messages with huge numbers of parts."""
    raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"--b\r\n\r\nx\r\n" * 12000
    structure = ParsedMessage(raw).bodystructure(False)
    assert len(structure) == 10001  # 10000 parts + subtype


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'Content-Type: text/plain; name="' + b"a\\" * 50000 + b"\r\n\r\nx",
                     id="unterminated-quote"),
        pytest.param(b"From: " + b"a " * 50000 + b"\r\n\r\nx", id="phrase-no-address"),
        pytest.param(b"To: " + b"(" * 100000 + b"\r\n\r\nx", id="open-comments"),
        pytest.param(b"x" + b" " * 100000 + b"\r\n\r\n", id="colonless-spaces"),
        pytest.param(b"Content-Type: text/plain" + b"".join(b"; a*%d=x" % i for i in range(5000))
                     + b"\r\n\r\nx", id="rfc2231-flood"),
        pytest.param(b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n"
                              % (i, i) for i in range(MAX_DEPTH)) + b"x\r\n--q\r\n" * 5000,
                     id="deep-boundary-stack"),
    ],
)
def test_pathological_inputs_finish(raw: bytes) -> None:
    """Adversarial headers/bodies parse in linear time (a quadratic path would hang)."""
    exercise(raw)


def test_construction_is_lazy() -> None:
    """Construction does no parsing; the tree is built on first structural use."""
    m = ParsedMessage(NESTED)
    assert m._root is None
    m.header_bytes()
    assert m._root is not None and not m._built
    m.bodystructure()
    assert m._built


def test_accepts_bytes_like() -> None:
    """bytearray / memoryview input is copied to bytes once."""
    assert ParsedMessage(bytearray(SIMPLE)).section((), None) == SIMPLE  # type: ignore[arg-type]


# --- fast paths agree with the tolerant parsers ------------------------------------------

_WORD = st.text("abcXYZ09._-+=?", min_size=1, max_size=6).map(str.encode)
_PHRASE = st.lists(_WORD, min_size=1, max_size=3).map(b" ".join)
_QUOTED = st.text('ab ,;:<>@\\"', max_size=6).map(
    lambda s: b'"' + s.encode().replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"')
_SPEC = st.tuples(_WORD, _WORD).map(lambda t: t[0] + b"@" + t[1])
_MAILBOX = st.one_of(
    _SPEC,
    st.tuples(st.one_of(_PHRASE, _QUOTED, st.just(b"")), _SPEC).map(
        lambda t: t[0] + b" <" + t[1] + b">"),
)


def _slow_addresses(value: bytes) -> list | None:
    """parse_addresses with the regex fast path switched off."""
    original = mimeparse._simple_addresses
    mimeparse._simple_addresses = lambda v: None
    try:
        return mimeparse.parse_addresses(value)
    finally:
        mimeparse._simple_addresses = original


@settings(max_examples=300, deadline=None)
@given(st.lists(_MAILBOX, min_size=1, max_size=4), st.sampled_from([b",", b", ", b" , "]))
def test_address_fast_path_matches_tokenizer(mailboxes: list[bytes], sep: bytes) -> None:
    """The regex fast path gives exactly what the full tokenizer gives."""
    value = sep.join(mailboxes)
    assert mimeparse._simple_addresses(value) is not None
    assert mimeparse.parse_addresses(value) == _slow_addresses(value)


_PARAM = st.tuples(
    st.text("abcXYZ-_", min_size=1, max_size=5).map(str.encode),
    st.one_of(_WORD, _QUOTED),
).map(lambda t: b"; " + t[0] + b"=" + t[1])


@settings(max_examples=300, deadline=None)
@given(st.lists(_PARAM, max_size=4))
def test_param_fast_path_matches_tolerant_parser(params: list[bytes]) -> None:
    """The regex parameter fast path agrees with the char-by-char parser."""
    value = b"".join(params)
    fast = mimeparse._simple_params(value, 0)
    original = mimeparse._simple_params
    mimeparse._simple_params = lambda v, pos: None
    try:
        slow = mimeparse.parse_params(value, 0)
    finally:
        mimeparse._simple_params = original
    assert fast == slow


# --- never raise -------------------------------------------------------------------------


def _part_paths(body: list, prefix: tuple[int, ...]) -> list[tuple[tuple[int, ...], list]]:
    """(part number, body structure) for every non-multipart part in ``body``."""
    if isinstance(body[0], list):
        out = []
        for i, child in enumerate(body):
            if not isinstance(child, list):  # the subtype ends the leading run of parts
                break
            out += _part_paths(child, prefix + (i + 1,))
        return out
    out = [(prefix, body)]
    if body[0] == b"message" and body[1] == b"rfc822":
        inner = body[8]
        out += _part_paths(inner, prefix if isinstance(inner[0], list) else prefix + (1,))
    return out


def exercise(raw: bytes) -> None:
    """Call every API; check types and size/section consistency."""
    m = ParsedMessage(raw)
    check_types(m.envelope())
    assert m.header_bytes() + m.text_bytes() == raw
    assert m.section((), None) == raw
    for spec in ("HEADER", "TEXT", "HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        assert isinstance(m.section((), spec, ("FROM", "CONTENT-TYPE")), bytes)
    check_types(m.bodystructure(False))
    structure = m.bodystructure()
    check_types(structure)
    top = () if isinstance(structure[0], list) else (1,)
    for path, body in _part_paths(structure, top):
        data = m.section(path, None)
        if data is None:  # only the placeholder of an empty multipart
            assert body[6] == 0
            continue
        assert len(data) == body[6]
        assert isinstance(m.section(path, "MIME"), bytes)
        if body[0].lower() == b"text" and isinstance(body[7], int):
            assert body[7] == data.count(b"\n")
        for spec in ("HEADER", "TEXT", "HEADER.FIELDS"):
            m.section(path, spec, ("SUBJECT",))
        m.section(path + (1,), None)


@pytest.mark.parametrize("raw", CORPUS + [RFC3501_MIXED], ids=range(len(CORPUS) + 1))
def test_corpus_is_self_consistent(raw: bytes) -> None:
    """Every part's section length equals its BODYSTRUCTURE size."""
    exercise(raw)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_raise(raw: bytes) -> None:
    """Arbitrary bytes never make any API raise."""
    exercise(raw)


_MIME_LINES = st.sampled_from([
    b"Content-Type: multipart/mixed; boundary=a", b"Content-Type: multipart/digest; boundary=b",
    b"Content-Type: message/rfc822", b"Content-Type: text/plain; charset=\"x", b"--a", b"--a--",
    b"--b", b"--b--", b"--", b"", b"From: \"a, b\" <c@d>, e:;", b"To: g: h@i; (x", b"x",
    b"Content-Disposition: a; b*0=1; b*1*=2", b"Content-Type: multipart/alternative; boundary=a",
    b" folded", b"\tfolded", b"Subject: \xff\x00", b"Content-Transfer-Encoding: base64",
])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_MIME_LINES, max_size=40), st.sampled_from([b"\r\n", b"\n", b"\r"]))
def test_random_mime_line_soup_never_raises(lines: list[bytes], eol: bytes) -> None:
    """MIME-looking line soup (boundaries, nesting, folding) stays consistent."""
    exercise(eol.join(lines))


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(CORPUS),
    st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 40), st.binary(max_size=12)),
             max_size=6),
)
def test_mutated_messages_never_raise(raw: bytes, edits: list[tuple[int, int, bytes]]) -> None:
    """Real messages with random splices (deletions, insertions) never raise."""
    for at, cut, insert in edits:
        at %= len(raw) + 1
        raw = raw[:at] + insert + raw[at + cut:]
    exercise(raw)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_header_value_parsers_never_raise(value: bytes) -> None:
    """Address, parameter and language parsers accept any bytes."""
    check_types(mimeparse.parse_addresses(value))
    mimeparse.parse_content_type(value)
    mimeparse.parse_params(value, 0)
    check_types(mimeparse.parse_language(value))


def test_top_header_fields_matches_section():
    """The header-sync fast path returns the same bytes as section((), HEADER.FIELDS)."""
    from twistedmail.imap.mime import ParsedMessage, top_header_fields

    samples = [
        b"From: a@b\r\nX-Long: one\r\n two\r\nSubject: s\r\n\r\nbody\r\n",
        b"subject : spaced\r\nFROM: x\r\n\r\n",
        b"Subject: no blank line at all",
        b"\r\nbody only\r\n",
        b"From: a\nSubject: lf only\n\nbody\n",
    ]
    for raw in samples:
        for fields in (("FROM", "SUBJECT"), ("X-LONG",), ("NOPE",)):
            expected = ParsedMessage(raw).section((), "HEADER.FIELDS", fields)
            assert top_header_fields(raw, fields) == expected, (raw, fields)
