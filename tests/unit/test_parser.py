"""The command parser (twistedmail.imap.parser): one table row per form and error."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twistedmail.imap.commands import (
    STAR,
    Append,
    AppendMessage,
    Authenticate,
    Command,
    Copy,
    Enable,
    Fetch,
    FetchAtt,
    Id,
    ListCmd,
    Login,
    MailboxCommand,
    Qresync,
    Rename,
    Search,
    SearchKey,
    Section,
    Select,
    SeqRange,
    SequenceSet,
    Simple,
    Status,
    Store,
    UidExpunge,
)
from twistedmail.imap.parser import ParseError, parse_request
from twistedmail.imap.wire import Receiver, Request


@dataclass(frozen=True)
class Err:
    """Expected ParseError whose message contains ``text``."""

    text: str


def parse(wire: bytes) -> Command:
    """Run ``wire`` + CRLF through a Receiver, then parse the one Request."""
    events = [e for e in Receiver().feed(wire + b"\r\n") if isinstance(e, Request)]
    assert len(events) == 1, events
    return parse_request(events[0])


def seq(*ranges: tuple[int, int] | int) -> SequenceSet:
    """SequenceSet from ints and (start, end) pairs."""
    out = [SeqRange(r, r) if isinstance(r, int) else SeqRange(*r) for r in ranges]
    return SequenceSet(tuple(out))


def att(name: str, *args: object, **kw: object) -> FetchAtt:
    """FetchAtt shorthand."""
    return FetchAtt(name, *args, **kw)  # type: ignore[arg-type]


def K(op: str, *args: object) -> SearchKey:  # noqa: N802 - reads like the grammar
    """SearchKey shorthand."""
    return SearchKey(op, args)


def AND(*keys: SearchKey) -> SearchKey:  # noqa: N802
    """A parenthesised list / the top level of a search program."""
    return SearchKey("AND", keys)


def srch(*keys: SearchKey, **kw: object) -> Search:
    """A Search tagged "t" with the top-level AND of ``keys``."""
    return Search("t", AND(*keys), **kw)  # type: ignore[arg-type]


PST = dt.timezone(-dt.timedelta(hours=7))
FLAGS, IDATE, SIZE, ENV = att("FLAGS"), att("INTERNALDATE"), att("RFC822.SIZE"), att("ENVELOPE")

SIMPLE_ROWS = [
    (b"t " + name.encode(), Simple("t", name))
    for name in (
        "CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "CHECK", "CLOSE", "EXPUNGE", "UNSELECT",
        "IDLE", "NAMESPACE",
    )
] + [
    (b"t noop", Simple("t", "NOOP")),
    (b"t Capability", Simple("t", "CAPABILITY")),
    (b"t NOOP   ", Simple("t", "NOOP")),  # trailing spaces tolerated
    (b"t NOOP x", Err("Unexpected extra arguments: x")),
    (b"t LOGOUT ()", Err("Unexpected extra arguments")),
    (b"t FROB", Err("Unknown command")),
    (b"t UID FROB 1", Err("Unknown UID command")),
    (b"t UID", Err("Missing argument")),
    (b"+ NOOP", Err("invalid tag")),
    (b"t  NOOP", Err("Expected command name")),
    (b"t", Err("Missing argument")),
    (b"t NO\rOP", Err("Unknown command NO")),
    (b"t NOOP\r", Err("Unexpected extra arguments")),
]

SESSION_ROWS = [
    (b"a001 LOGIN SMITH SESAME", Login("a001", "SMITH", "SESAME")),  # RFC 3501 §6.2.3
    (b't LOGIN "fr\\"ed" "p\\\\w d"', Login("t", 'fr"ed', "p\\w d")),
    (b"t LOGIN {4}\r\nfred {3}\r\np w", Login("t", "fred", "p w")),
    (b"t LOGIN {4+}\r\nfred {3+}\r\np w", Login("t", "fred", "p w")),
    (b't LOGIN j\xc3\xb6rg "s\xc3\xa9same"', Login("t", "jörg", "sésame")),
    (b"t LOGIN fred", Err("Missing argument")),
    (b"t LOGIN fred pw x", Err("Unexpected extra arguments")),
    (b't LOGIN "fred pw', Err("Invalid quoted string")),
    (b't LOGIN "a\\b" pw', Err("Invalid quoted string")),
    (b"t LOGIN \xff pw", Err("not valid UTF-8")),
    (b"t LOGIN (fred) pw", Err("Expected user name")),
    (b"t LOGIN ~{4}\r\nfred pw", Err("literal8 is not allowed")),
    (b"t AUTHENTICATE PLAIN", Authenticate("t", "PLAIN")),
    (b"t authenticate plain AGZyZWQAcHc=", Authenticate("t", "PLAIN", b"\0fred\0pw")),
    (b"t AUTHENTICATE EXTERNAL =", Authenticate("t", "EXTERNAL", b"")),  # RFC 4959 §3
    (b"t AUTHENTICATE PLAIN AGZyZWQAcHc", Err("Invalid base64")),
    (b"t AUTHENTICATE PLAIN *", Err("Invalid SASL initial response")),
    (b"t AUTHENTICATE", Err("Missing argument")),
    (b"t ENABLE CONDSTORE utf8=accept", Enable("t", ("CONDSTORE", "UTF8=ACCEPT"))),
    (b"t ENABLE", Err("Missing capability")),
    (b"t ID NIL", Id("t", None)),
    (b"t ID ()", Id("t", ())),
    (b't ID ("name" "mbsync" "version" NIL)', Id("t", (("name", "mbsync"), ("version", None)))),
    (b't ID ("name")', Err("Expected space")),
    (b"t ID (name x)", Err("Expected string")),
    (b"t ID", Err("Missing argument")),
]

MAILBOX_ROWS = [
    (b"A142 SELECT INBOX", Select("A142", "INBOX")),  # RFC 3501 §6.3.1
    (b"t SELECT inbox", Select("t", "INBOX")),
    (b't SELECT "Inbox/Sub"', Select("t", "INBOX/Sub")),
    (b"t SELECT inboxes", Select("t", "inboxes")),
    (b"A932 EXAMINE blurdybloop", Select("A932", "blurdybloop", readonly=True)),
    (b"t SELECT INBOX (CONDSTORE)", Select("t", "INBOX", condstore=True)),  # RFC 7162 §3.1.8
    (b"t SELECT INBOX (QRESYNC (1 2))",  # RFC 7162 §3.2.5
     Select("t", "INBOX", condstore=True, qresync=Qresync(1, 2))),
    (b"t EXAMINE INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541))",
     Select("t", "INBOX", True, True, Qresync(67890007, 90060115194045000,
                                              seq((41, 211), (214, 541))))),
    (b"t SELECT INBOX (QRESYNC (1 2 1:9 (1,3 4,8)))",
     Select("t", "INBOX", condstore=True,
            qresync=Qresync(1, 2, seq((1, 9)), (seq(1, 3), seq(4, 8))))),
    (b"t SELECT INBOX (QRESYNC (1 2 (1 4)))",
     Select("t", "INBOX", condstore=True, qresync=Qresync(1, 2, None, (seq(1), seq(4))))),
    (b"t SELECT INBOX (QRESYNC (0 2))", Err("Zero is not allowed")),
    (b"t SELECT INBOX (QRESYNC (1 0))", Err("Zero is not allowed")),
    (b"t SELECT INBOX (QRESYNC (1 2 ))", Err("Invalid sequence set")),
    (b"t SELECT INBOX (QRESYNC (1 2 1:9 ))", Err("Expected (")),
    (b"t SELECT INBOX (QRESYNC (1 2 (1)))", Err("Expected space")),
    (b"t SELECT INBOX (QRESYNC 1 2)", Err("Expected (")),
    (b"t SELECT INBOX (FOO)", Err("Unsupported SELECT parameter")),
    (b"t SELECT INBOX ()", Err("Empty SELECT parameter list")),
    (b"t SELECT ~peter/mail/&U,BTFw-/&ZeVnLIqe-", Select("t", "~peter/mail/台北/日本語")),
    (b't SELECT "Entw\xc3\xbcrfe"', Select("t", "Entwürfe")),  # RFC 6855 raw UTF-8
    (b"t SELECT {5}\r\nSent]", Select("t", "Sent]")),
    (b"t SELECT a]b", Select("t", "a]b")),  # resp-specials are ASTRING-CHARs
    (b"t SELECT &U,BTFw", Err("Invalid modified UTF-7")),
    (b"t SELECT &AGE-", Err("Invalid modified UTF-7")),
    (b't SELECT "\xff\xfe"', Err("not valid UTF-8")),
    (b"t SELECT {3}\r\na\tb", Err("Invalid modified UTF-7")),
    (b"t SELECT &AAk-", Err("Control character")),
    (b"t SELECT a%b", Err("Unexpected extra arguments")),
    (b"t SELECT", Err("Missing argument")),
    (b"A003 CREATE owatagusiam/", MailboxCommand("A003", "CREATE", "owatagusiam/")),
    (b"t DELETE blurdybloop", MailboxCommand("t", "DELETE", "blurdybloop")),
    (b"t subscribe #news.comp.mail.mime", MailboxCommand("t", "SUBSCRIBE", "#news.comp.mail.mime")),
    (b'A002 UNSUBSCRIBE ""', MailboxCommand("A002", "UNSUBSCRIBE", "")),
    (b"A683 RENAME blurdybloop sarasoop", Rename("A683", "blurdybloop", "sarasoop")),
    (b"t RENAME a", Err("Missing argument")),
    (b'A101 LIST "" ""', ListCmd("A101", "", "")),  # RFC 3501 §6.3.8
    (b"A102 LIST #news.comp.mail.misc *", ListCmd("A102", "#news.comp.mail.misc", "*")),
    (b"A202 LIST ~/Mail/ %", ListCmd("A202", "~/Mail/", "%")),
    (b't LIST "" inbox', ListCmd("t", "", "INBOX")),
    (b't LIST "" "&U,BTFw-/%"', ListCmd("t", "", "台北/%")),
    (b't LIST "" %]*', ListCmd("t", "", "%]*")),
    # RFC 5258 / 5819 / 6154 extended LIST (parse_mailbox.py)
    (b't LIST () "" (*)', ListCmd("t", "", "*", patterns=("*",), extended=True)),
    (b't LIST "" * RETURN ()', ListCmd("t", "", "*", extended=True)),
    (b't LIST "" * RETURN (CHILDREN)', ListCmd("t", "", "*", return_opts=("CHILDREN",),
                                                extended=True)),
    (b't LIST (SUBSCRIBED) "" *', ListCmd("t", "", "*", select_opts=("SUBSCRIBED",),
                                          extended=True)),
    (b't LIST "" (a b)', ListCmd("t", "", "a", patterns=("a", "b"), extended=True)),
    (b't LIST "" * RETURN (STATUS (MESSAGES))', ListCmd(
        "t", "", "*", return_opts=("STATUS",), status_items=("MESSAGES",), extended=True)),
    (b't LIST "" * RETURN (SPECIAL-USE)', ListCmd("t", "", "*", return_opts=("SPECIAL-USE",),
                                                   extended=True)),
    (b't LIST (RECURSIVEMATCH) "" *', Err("RECURSIVEMATCH needs another selection option")),
    (b't LIST (FOO) "" *', Err("Unknown LIST selection option")),
    (b't LIST "" * RETURN (FOO)', Err("Unknown LIST return option")),
    (b't LIST "" * FOO', Err("Expected RETURN")),
    (b't LIST ""', Err("Missing argument")),
    (b'A002 LSUB "#news." "comp.mail.*"', ListCmd("A002", "#news.", "comp.mail.*", lsub=True)),
    (b'A002 LSUB () "" *', Err("Expected mailbox name")),
    (b"A042 STATUS blurdybloop (UIDNEXT MESSAGES)",  # RFC 3501 §6.3.10
     Status("A042", "blurdybloop", ("UIDNEXT", "MESSAGES"))),
    (b"t STATUS INBOX (unseen highestmodseq size)",
     Status("t", "INBOX", ("UNSEEN", "HIGHESTMODSEQ", "SIZE"))),
    (b"t STATUS INBOX (FOO)", Err("Unknown STATUS item FOO")),
    (b"t STATUS INBOX ()", Err("Empty STATUS item list")),
    (b"t STATUS INBOX (MESSAGES", Err("Missing ) after STATUS item list")),
    (b"t STATUS INBOX MESSAGES", Err("Expected ( before STATUS item")),
]

APPEND_ROWS = [
    (b"A003 APPEND saved-messages (\\Seen) {5}\r\nHello",  # RFC 3501 §6.3.11
     Append("A003", "saved-messages", ("\\Seen",), None, b"Hello")),
    (b't APPEND INBOX (\\seen \\DRAFT $Forwarded) "17-Jul-1996 02:44:25 -0700" {2+}\r\nhi',
     Append("t", "INBOX", ("\\Seen", "\\Draft", "$Forwarded"),
            dt.datetime(1996, 7, 17, 2, 44, 25, tzinfo=PST), b"hi")),
    (b't APPEND INBOX " 7-jul-1996 02:44:25 +0000" {0}\r\n',
     Append("t", "INBOX", (), dt.datetime(1996, 7, 7, 2, 44, 25, tzinfo=dt.UTC), b"")),
    (b"t APPEND INBOX () {1}\r\nx", Append("t", "INBOX", (), None, b"x")),
    (b"t APPEND INBOX ~{3}\r\na\x00b", Append("t", "INBOX", (), None, b"a\x00b")),  # RFC 3516
    (b"t APPEND INBOX (\\Recent) {1}\r\nx", Err("\\Recent cannot be set")),
    (b"t APPEND INBOX (\\*) {1}\r\nx", Err("\\* cannot be set")),
    (b't APPEND INBOX "31-Feb-1996 02:44:25 -0700" {1}\r\nx', Err("Invalid date-time")),
    (b't APPEND INBOX "17-Jux-1996 02:44:25 -0700" {1}\r\nx', Err("Invalid date-time")),
    (b't APPEND INBOX "17-Jul-1996 02:44:25 -0770" {1}\r\nx', Err("Invalid date-time")),
    (b't APPEND INBOX "17-Jul-1996 02:44:25 +2500" {1}\r\nx', Err("Invalid date-time")),
    (b't APPEND INBOX "17-Jul-1996 2:44:25 -0700" {1}\r\nx', Err("Invalid date-time")),
    (b't APPEND INBOX "hello"', Err("must be a literal")),
    (b"t APPEND INBOX", Err("Missing argument")),
    (b"t APPEND INBOX {1}\r\nx {1}\r\ny",  # RFC 3502 MULTIAPPEND
     Append("t", "INBOX", (), None, b"x", more=(AppendMessage(message=b"y"),))),
]

SEARCH_ROWS = [
    (b'A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"',  # RFC 3501 §6.4.4
     Search("A282", AND(K("FLAGGED"), K("SINCE", dt.date(1994, 2, 1)),
                        K("NOT", K("FROM", b"Smith"))))),
    (b'A283 SEARCH TEXT "string not in mailbox"',
     Search("A283", AND(K("TEXT", b"string not in mailbox")))),
    (b"A284 SEARCH CHARSET UTF-8 TEXT {6}\r\nXXXXXX",
     Search("A284", AND(K("TEXT", b"XXXXXX")), "UTF-8")),
    (b"t SEARCH charset utf-8 SUBJECT caf\xc3\xa9",
     srch(K("SUBJECT", b"caf\xc3\xa9"), charset="UTF-8")),
    (b"t SEARCH ALL", srch(K("ALL"))),
    (b"t search unseen undeleted", srch(K("UNSEEN"), K("UNDELETED"))),
    (b"t SEARCH ANSWERED DELETED DRAFT NEW OLD RECENT SEEN UNANSWERED UNDRAFT UNFLAGGED",
     srch(*(K(k) for k in ("ANSWERED", "DELETED", "DRAFT", "NEW", "OLD", "RECENT", "SEEN",
                           "UNANSWERED", "UNDRAFT", "UNFLAGGED")))),
    (b"t SEARCH BCC a BODY b CC c TO d", srch(K("BCC", b"a"), K("BODY", b"b"), K("CC", b"c"),
                                            K("TO", b"d"))),
    (b't SEARCH BEFORE "3-Mar-2021" ON 03-mar-2021 SENTBEFORE 1-Jan-2000',
     srch(K("BEFORE", dt.date(2021, 3, 3)), K("ON", dt.date(2021, 3, 3)),
          K("SENTBEFORE", dt.date(2000, 1, 1)))),
    (b"t SEARCH SENTON 1-Jan-2000 SENTSINCE 1-Jan-2000",
     srch(K("SENTON", dt.date(2000, 1, 1)), K("SENTSINCE", dt.date(2000, 1, 1)))),
    (b"t SEARCH KEYWORD $Junk UNKEYWORD foo", srch(K("KEYWORD", "$Junk"), K("UNKEYWORD", "foo"))),
    (b"t SEARCH HEADER Message-ID <x@y>", srch(K("HEADER", "MESSAGE-ID", b"<x@y>"))),
    (b't SEARCH HEADER "X-Spam" ""', srch(K("HEADER", "X-SPAM", b""))),
    (b"t SEARCH LARGER 100 SMALLER 5000000000", srch(K("LARGER", 100), K("SMALLER", 5000000000))),
    (b"t SEARCH 1:3,5 UID 7:* $", srch(K("SEQSET", seq((1, 3), 5)), K("UID", seq((7, STAR))),
                                      K("SEQSET", SequenceSet(saved=True)))),
    (b"t SEARCH UID $", srch(K("UID", SequenceSet(saved=True)))),
    (b"t SEARCH OR SEEN (FLAGGED DRAFT) NOT NOT ALL",
     srch(K("OR", K("SEEN"), AND(K("FLAGGED"), K("DRAFT"))), K("NOT", K("NOT", K("ALL"))))),
    (b"t SEARCH OR OR 1 2 3", srch(K("OR", K("OR", K("SEQSET", seq(1)), K("SEQSET", seq(2))),
                                     K("SEQSET", seq(3))))),
    (b"t SEARCH MODSEQ 620162338", srch(K("MODSEQ", 620162338))),  # RFC 7162 §3.1.5
    (b't SEARCH MODSEQ "/flags/\\\\draft" all 620162338', srch(K("MODSEQ", 620162338))),
    (b"t SEARCH OLDER 3600 YOUNGER 60", srch(K("OLDER", 3600), K("YOUNGER", 60))),  # RFC 5032
    (b"t SEARCH RETURN (MIN MAX COUNT) ALL", srch(K("ALL"), returns=("MIN", "MAX", "COUNT"))),
    (b"t SEARCH RETURN () CHARSET US-ASCII ALL",
     srch(K("ALL"), returns=(), charset="US-ASCII")),  # RFC 4731 §3.1
    (b"t SEARCH RETURN (save) 1:*", srch(K("SEQSET", seq((1, STAR))), returns=("SAVE",))),
    (b"t SEARCH", Err("Missing argument")),
    (b"t SEARCH FROB", Err("Unknown search key FROB")),
    (b"t SEARCH FROM", Err("Missing argument")),
    (b"t SEARCH SINCE 31-Feb-2020", Err("Invalid date")),
    (b"t SEARCH SINCE 1-Foo-2020", Err("Invalid month")),
    (b"t SEARCH SINCE 2020-01-01", Err("Invalid date")),
    (b't SEARCH SINCE "1-Jan-2020', Err("Invalid date")),
    (b"t SEARCH (SEEN", Err("Missing ) after search key list")),
    (b"t SEARCH SEEN)", Err("Unexpected extra arguments")),
    (b"t SEARCH ()", Err("Empty search key list")),
    (b"t SEARCH OR SEEN", Err("Missing argument")),
    (b"t SEARCH LARGER x", Err("Expected number")),
    (b"t SEARCH LARGER 99999999999999999999", Err("Number too large")),
    (b"t SEARCH OLDER 0", Err("Zero is not allowed")),
    (b"t SEARCH 0:4", Err("Sequence number 0")),
    (b"t SEARCH HEADER a:b x", Err("Invalid header field name")),
    (b"t SEARCH MODSEQ \"/flags/\\\\draft\" bogus 1", Err("Invalid MODSEQ entry type")),
    (b"t SEARCH RETURN (FROB) ALL", Err("Unknown SEARCH RETURN option")),
    (b"t SEARCH CHARSET \xc3\xa9 ALL", Err("Non-ASCII charset")),
    (b"t SEARCH " + b"NOT " * 500 + b"ALL", Err("too deeply nested")),
    (b"t SEARCH " + b"(" * 500 + b"ALL" + b")" * 500, Err("too deeply nested")),
]

FETCH_ROWS = [
    (b"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])",  # RFC 3501 §6.4.5
     Fetch("A654", seq((2, 4)),
           (FLAGS, att("BODY", Section((), "HEADER.FIELDS", ("DATE", "FROM")))))),
    (b"t FETCH 1 ALL", Fetch("t", seq(1), (FLAGS, IDATE, SIZE, ENV))),
    (b"t FETCH 1 fast", Fetch("t", seq(1), (FLAGS, IDATE, SIZE))),
    (b"t FETCH 1 FULL", Fetch("t", seq(1), (FLAGS, IDATE, SIZE, ENV, att("BODY")))),
    (b"t FETCH * BODY", Fetch("t", seq(STAR), (att("BODY"),))),
    (b"t FETCH 1,3:* (uid rfc822 RFC822.HEADER RFC822.TEXT BODYSTRUCTURE ENVELOPE)",
     Fetch("t", seq(1, (3, STAR)), tuple(att(n) for n in (
         "UID", "RFC822", "RFC822.HEADER", "RFC822.TEXT", "BODYSTRUCTURE", "ENVELOPE")))),
    (b"t FETCH 1 (MODSEQ EMAILID THREADID SAVEDATE PREVIEW)",
     Fetch("t", seq(1), tuple(att(n) for n in (
         "MODSEQ", "EMAILID", "THREADID", "SAVEDATE", "PREVIEW")))),
    (b"t FETCH 1 BODY[]", Fetch("t", seq(1), (att("BODY", Section()),))),
    (b"t FETCH 1 body.peek[text]<0.2048>",
     Fetch("t", seq(1), (att("BODY", Section((), "TEXT"), True, (0, 2048)),))),
    (b"t FETCH 1 BODY[1.2.HEADER]", Fetch("t", seq(1), (att("BODY", Section((1, 2), "HEADER")),))),
    (b"t FETCH 1 BODY[3.MIME]", Fetch("t", seq(1), (att("BODY", Section((3,), "MIME")),))),
    (b"t FETCH 1 BODY[4.2.2]<10.1>",
     Fetch("t", seq(1), (att("BODY", Section((4, 2, 2)), False, (10, 1)),))),
    (b'T FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (x-a "Received" {7}\r\nX-Spam])]',
     Fetch("T", seq(1), (att("BODY", Section((), "HEADER.FIELDS.NOT",
                                             ("X-A", "RECEIVED", "X-SPAM]")), True),))),
    (b"t FETCH 1 (BINARY[1] BINARY.PEEK[]<0.10> BINARY.SIZE[2.1])",  # RFC 3516
     Fetch("t", seq(1), (att("BINARY", Section((1,))), att("BINARY", Section(), True, (0, 10)),
                          att("BINARY.SIZE", Section((2, 1)))))),
    (b"t FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)",  # RFC 7162 §3.1.4.1
     Fetch("t", seq((1, STAR)), (FLAGS,), changedsince=12345)),
    (b"t FETCH $ FLAGS", Fetch("t", SequenceSet(saved=True), (FLAGS,))),
    (b"t UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)",
     Fetch("t", seq((1, STAR)), (att("UID"), FLAGS, SIZE, IDATE), uid=True)),
    (b"t FETCH 4294967295 FLAGS", Fetch("t", seq(4294967295), (FLAGS,))),
    (b"t FETCH 4294967296 FLAGS", Err("Sequence number too large")),
    (b"t FETCH 0 FLAGS", Err("Sequence number 0")),
    (b"t FETCH 1: FLAGS", Err("Expected space")),
    (b"t FETCH ,1 FLAGS", Err("Invalid sequence set")),
    (b"t FETCH 1 FROB", Err("Unknown fetch attribute FROB")),
    (b"t FETCH 1 (FLAGS ALL)", Err("Unknown fetch attribute ALL")),
    (b"t FETCH 1 ()", Err("Empty fetch attribute list")),
    (b"t FETCH 1 (FLAGS", Err("Missing ) after fetch attribute list")),
    (b"t FETCH 1 FLAGS)", Err("Unexpected extra arguments")),
    (b"t FETCH 1 BODY[MIME]", Err("MIME requires a section part")),
    (b"t FETCH 1 BODY[0]", Err("Invalid section part number")),
    (b"t FETCH 1 BODY[1.0.2]", Err("Invalid section part number")),
    (b"t FETCH 1 BODY[HEADER.FIELDS ()]", Err("Empty header field list")),
    (b"t FETCH 1 BODY[HEADER.FIELDS (a:b)]", Err("Invalid header field name")),
    (b"t FETCH 1 BODY[HEADERS]", Err("Expected ] after section")),
    (b"t FETCH 1 BODY[TEXT", Err("Expected ] after section")),
    (b"t FETCH 1 BODY[]<0.0>", Err("Invalid partial range")),
    (b"t FETCH 1 BODY[]<5>", Err("Invalid partial range")),
    (b"t FETCH 1 BODY.PEEK", Err("Unknown fetch attribute BODY.PEEK")),
    (b"t FETCH 1 FLAGS[]", Err("Unknown fetch attribute FLAGS[")),
    (b"t FETCH 1 BINARY[TEXT]", Err("Expected ] after binary section part")),
    (b"t FETCH 1 FLAGS (VANISHED)", Err("Unsupported modifier")),
    (b"t UID FETCH 1:* FLAGS (CHANGEDSINCE 5 VANISHED)",  # RFC 7162 §3.2.6
     Fetch("t", seq((1, STAR)), (FLAGS,), uid=True, changedsince=5, vanished=True)),
    (b"t UID FETCH 1:* FLAGS (VANISHED CHANGEDSINCE 5)",
     Fetch("t", seq((1, STAR)), (FLAGS,), uid=True, changedsince=5, vanished=True)),
    (b"t FETCH 1:* FLAGS (CHANGEDSINCE 5 VANISHED)", Err("only allowed in UID FETCH")),
    (b"t UID FETCH 1 FLAGS (VANISHED VANISHED)", Err("Unsupported modifier")),
    (b"t UID FETCH 1 FLAGS (CHANGEDSINCE 5 CHANGEDSINCE 6)", Err("Unsupported modifier")),
    (b"t UID FETCH 1 FLAGS (CHANGEDSINCE 5 )", Err("Unsupported modifier")),
    (b"t FETCH 1 FLAGS (CHANGEDSINCE 0)", Err("Zero is not allowed")),
    (b"t FETCH 1", Err("Missing argument")),
]

STORE_ROWS = [
    (b"A003 STORE 2:4 +FLAGS (\\Deleted)",  # RFC 3501 §6.4.6
     Store("A003", seq((2, 4)), "+", False, ("\\Deleted",))),
    (b"t STORE 1 -flags.silent (\\SEEN foo)", Store("t", seq(1), "-", True, ("\\Seen", "foo"))),
    (b"t STORE 1 FLAGS ()", Store("t", seq(1), "", False, ())),
    (b"t STORE 1 FLAGS.SILENT \\Answered \\Flagged",
     Store("t", seq(1), "", True, ("\\Answered", "\\Flagged"))),
    (b"t STORE 1 +FLAGS \\Ext", Err("\\Ext is not a system flag")),  # RFC 3501 §9
    (b"t STORE 1:* (UNCHANGEDSINCE 0) +FLAGS.SILENT ($MDNSent)",  # RFC 7162 §3.1.3
     Store("t", seq((1, STAR)), "+", True, ("$MDNSent",), unchangedsince=0)),
    (b"t UID STORE 7 +FLAGS (\\Seen)", Store("t", seq(7), "+", False, ("\\Seen",), uid=True)),
    (b"t STORE 1 +FLAGS (\\Recent)", Err("\\Recent cannot be set")),
    (b"t STORE 1 +FLAGS \\*", Err("\\* cannot be set")),
    (b"t STORE 1 *FLAGS (\\Seen)", Err("Expected FLAGS")),
    (b"t STORE 1 +FLAGSX (\\Seen)", Err("Expected space")),
    (b"t STORE 1 +FLAGS", Err("Missing argument")),
    (b"t STORE 1 +FLAGS (\\Seen", Err("Missing ) after flag list")),
    (b"t STORE 1 +FLAGS (a]b)", Err("Expected space")),
    (b"t STORE 1 (UNCHANGEDSINCE x) FLAGS ()", Err("Expected number")),
]

COPY_ROWS = [
    (b"A003 COPY 2:4 MEETING", Copy("A003", seq((2, 4)), "MEETING")),  # RFC 3501 §6.4.7
    (b"t MOVE 1 Trash", Copy("t", seq(1), "Trash", move=True)),  # RFC 6851
    (b"t UID COPY 1:3 inbox", Copy("t", seq((1, 3)), "INBOX", uid=True)),
    (b"t uid move $ Archive", Copy("t", SequenceSet(saved=True), "Archive", uid=True, move=True)),
    (b"t UID EXPUNGE 3000:3002", UidExpunge("t", seq((3000, 3002)))),  # RFC 4315 §2.1
    (b"t UID SEARCH SEEN", srch(K("SEEN"), uid=True)),
    (b"t COPY 1", Err("Missing argument")),
    (b"t UID EXPUNGE", Err("Missing argument")),
    (b"t UID EXPUNGE 1 x", Err("Unexpected extra arguments")),
]

ROWS = SIMPLE_ROWS + SESSION_ROWS + MAILBOX_ROWS + APPEND_ROWS + SEARCH_ROWS + FETCH_ROWS
ROWS += STORE_ROWS + COPY_ROWS


IDS = [r[0][:60].decode("latin-1") for r in ROWS]


@pytest.mark.parametrize(("wire", "expected"), ROWS, ids=IDS)
def test_table(wire: bytes, expected: Command | Err) -> None:
    """Each line parses to the expected command, or fails with the expected reason."""
    if isinstance(expected, Err):
        with pytest.raises(ParseError) as info:
            parse(wire)
        assert expected.text in info.value.message
        assert info.value.tag == (None if wire.startswith(b"+") else wire.split(b" ")[0].decode())
    else:
        assert parse(wire) == expected


def test_memoised_fetch_lists_keep_per_request_fields() -> None:
    """Repeating an attribute list reuses its parse but never the tag, set or UID flag."""
    first = parse(b"a FETCH 1 (FLAGS UID) (CHANGEDSINCE 7)")
    second = parse(b"b UID FETCH 2:* (FLAGS UID) (CHANGEDSINCE 7)")
    assert first == Fetch("a", seq(1), (FLAGS, att("UID")), changedsince=7)
    assert second == Fetch("b", seq((2, STAR)), (FLAGS, att("UID")), uid=True, changedsince=7)
    with pytest.raises(ParseError, match="Unexpected extra"):
        parse(b"c FETCH 1 (FLAGS UID) (CHANGEDSINCE 7) x")


def test_error_message_is_printable_ascii() -> None:
    """Echoed error text never carries CR, LF or 8-bit bytes."""
    with pytest.raises(ParseError) as info:
        parse(b"t NOOP \xff\x01\x7f" + b"z" * 100)
    assert info.value.message.isascii() and info.value.message.isprintable()
    assert len(info.value.message) < 80


@pytest.mark.parametrize(
    ("req", "reason"),
    [
        (Request("t", b"t LOGIN {3}\r\n {3}\r\n", (b"abc",)), "Literal data missing"),
        (Request("t", b"t LOGIN {3}\r\n {3}\r\n", (b"abc", b"ab")), "Literal size mismatch"),
        (Request("t", b"t NOOP", (b"x",)), "Unexpected literal"),
        (Request("t", b"t LOGIN {3} x", ()), "Invalid literal"),  # marker without CRLF
        (Request(None, b"", ()), "invalid tag"),
    ],
)
def test_inconsistent_requests(req: Request, reason: str) -> None:
    """Requests not built by the Receiver are still rejected cleanly."""
    with pytest.raises(ParseError, match=reason):
        parse_request(req)


VALID_LINES = [w for w, e in ROWS if not isinstance(e, Err)]


def _parse_or_parse_error(req: Request) -> None:
    """Parse; a ParseError must carry a non-empty message; anything else propagates."""
    try:
        parse_request(req)
    except ParseError as err:
        assert isinstance(err.message, str) and err.message


@settings(max_examples=300)
@given(st.binary(max_size=80), st.lists(st.binary(max_size=8), max_size=3))
def test_random_bytes_only_parse_error(line: bytes, literals: list[bytes]) -> None:
    """Arbitrary line bytes and literals never raise anything but ParseError."""
    _parse_or_parse_error(Request(None, b"t " + line, tuple(literals)))


@settings(max_examples=500)
@given(st.sampled_from(VALID_LINES), st.data())
def test_mutated_lines_only_parse_error(line: bytes, data: st.DataObject) -> None:
    """Valid lines with random edits never raise anything but ParseError."""
    buf = bytearray(line)
    alphabet = st.sampled_from(list(b' ()[]<>{}"\\*%$:,.0123456789~+-\r\nAZaz\x00\xff'))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(buf)))
        op = data.draw(st.sampled_from(["insert", "delete", "replace", "truncate"]))
        if op == "truncate":
            del buf[pos:]
        elif op == "delete":
            del buf[pos : pos + 1]
        elif op == "insert":
            buf.insert(pos, data.draw(alphabet))
        elif pos < len(buf):
            buf[pos] = data.draw(alphabet)
    for event in Receiver().feed(bytes(buf) + b"\r\n"):
        if isinstance(event, Request):
            _parse_or_parse_error(event)
