"""Scripted conversations: CATENATE (RFC 4469) with IMAP URLs (RFC 5092)."""

from __future__ import annotations

import re

from tests.protocol.conftest import MULTIPART, SIMPLE, append


def _uidvalidity(c, mailbox: str = "INBOX") -> int:
    line = c.ok(f"STATUS {mailbox} (UIDVALIDITY)").untagged[0]
    return int(re.search(rb"UIDVALIDITY (\d+)", line).group(1))


def _fetch_body(c, mailbox: str, seq: int = 1) -> bytes:
    c.ok(f"EXAMINE {mailbox}")
    line = c.ok(f"FETCH {seq} BODY.PEEK[]").untagged[0]
    return line.split(b"}\r\n", 1)[1][:-1]


def _cat(c, tag: str, mailbox: str, parts: bytes) -> bytes:
    """Send a CATENATE APPEND; return its tagged line (untagged updates skipped)."""
    c.send(b"%s APPEND %s CATENATE (%s)" % (tag.encode(), mailbox.encode(), parts))
    while (line := c.read_line()).startswith(b"* "):
        pass
    return line


def test_catenate_advertised(imap_script):
    """CAPABILITY lists CATENATE (RFC 4469 §2)."""
    c = imap_script(login=True)
    assert b" CATENATE" in c.ok("CAPABILITY").untagged[0]


def test_catenate_rfc_example(imap_script):
    """RFC 4469 §5 example: header, TEXT boundaries, MIME + body of part 1, a whole message."""
    c = imap_script(login=True)
    c.cmd("CREATE Drafts")  # may exist already (a special-use default)
    append(c, MULTIPART, "Drafts")
    append(c, SIMPLE, "Drafts")
    v = _uidvalidity(c, "Drafts")
    base = b"/Drafts;UIDVALIDITY=%d/;UID=" % v
    sep = b"\r\n--------------030308070208000400050907\r\n"
    end = b"\r\n--------------030308070208000400050907--\r\n"
    c.send(b'A003 APPEND Drafts (\\Seen \\Draft $MDNSent) CATENATE (URL "%s1/;section=HEADER" '
           b"TEXT {%d}" % (base, len(sep)))
    assert c.read_line().startswith(b"+")
    c.send(sep + b' URL "%s1/;section=1.MIME" URL "%s1/;section=1" TEXT {%d}'
           % (base, base, len(sep)))
    assert c.read_line().startswith(b"+")
    c.send(sep + b' URL "%s2" TEXT {%d}' % (base, len(end)))
    assert c.read_line().startswith(b"+")
    c.send(end + b")")
    line = c.read_line()
    assert re.match(rb"A003 OK \[APPENDUID %d 3\]" % v, line), line
    header = MULTIPART.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    part1_mime = b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    expected = header + sep + part1_mime + b"See the attachment." + sep + SIMPLE + end
    assert _fetch_body(c, "Drafts", 3) == expected
    flags = c.ok("FETCH 3 FLAGS").untagged[0]
    assert b"\\Draft" in flags and b"$MDNSent" in flags


def test_catenate_text_only(imap_script):
    """TEXT parts alone build a message; the flags apply to it."""
    c = imap_script(login=True)
    line = _cat(c, "t1", "INBOX", b"TEXT {11+}\r\nSubject: x\r TEXT {7+}\r\n\n\r\nbody")
    assert line.startswith(b"t1 OK [APPENDUID"), line
    assert _fetch_body(c, "INBOX") == b"Subject: x\r\n\r\nbody"


def test_catenate_relative_url_to_selected(imap_script):
    """A ";UID=n" URL is relative to the selected mailbox (RFC 5092 §7)."""
    c = imap_script(login=True)
    append(c, MULTIPART)
    c.ok("SELECT INBOX")
    line = _cat(c, "t1", "INBOX", b'URL ";UID=1/;SECTION=HEADER" TEXT {4+}\r\nbody')
    assert line.startswith(b"t1 OK"), line
    header = MULTIPART.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    assert _fetch_body(c, "INBOX", 2) == header + b"body"


def test_catenate_relative_url_without_selection(imap_script):
    """A relative URL with no selected mailbox is NO [BADURL]."""
    c = imap_script(login=True)
    append(c, SIMPLE)
    assert _cat(c, "t1", "INBOX", b'URL ";UID=1"').startswith(b"t1 NO [BADURL ;UID=1]")


def test_catenate_absolute_imap_url(imap_script):
    """An imap:// URL for the session's own user works; the user part is checked."""
    c = imap_script(login=True)
    append(c, SIMPLE)
    line = _cat(c, "t1", "INBOX", b'URL "imap://alice@localhost/INBOX/;UID=1/;PARTIAL=0.4"')
    assert line.startswith(b"t1 OK"), line
    assert _fetch_body(c, "INBOX", 2) == SIMPLE[:4]
    bob = _cat(c, "t2", "INBOX", b'URL "imap://bob@localhost/INBOX/;UID=1"')
    assert bob.startswith(b"t2 NO [BADURL imap://bob@localhost/INBOX/;UID=1]")


def test_catenate_partial_and_section_text(imap_script):
    """;SECTION=TEXT and ;PARTIAL=offset.length pick the bytes FETCH would."""
    c = imap_script(login=True)
    append(c, SIMPLE)
    line = _cat(c, "t1", "INBOX",
                b'TEXT {10+}\r\nSubject: y URL "/INBOX/;UID=1/;SECTION=TEXT/;PARTIAL=6.3"')
    assert line.startswith(b"t1 OK"), line
    assert _fetch_body(c, "INBOX", 2) == b"Subject: yBob"


def test_catenate_percent_encoded_utf8_mailbox(imap_script):
    """Mailbox names in URLs are percent-encoded UTF-8 (RFC 5092 §3.2)."""
    c = imap_script(login=True)
    c.ok("CREATE &AOk-t&AOk-")  # "été" in modified UTF-7
    append(c, SIMPLE, "&AOk-t&AOk-")
    line = _cat(c, "t1", "INBOX", b'URL "/%C3%A9t%C3%A9/;UID=1"')
    assert line.startswith(b"t1 OK"), line
    assert _fetch_body(c, "INBOX") == SIMPLE


def test_catenate_bad_urls(imap_script):
    """Unresolvable URLs are NO [BADURL url] and nothing is appended (RFC 4469 §6)."""
    c = imap_script(login=True)
    append(c, MULTIPART)
    v = _uidvalidity(c)
    bad = [
        b"/INBOX/;UID=7",  # no such message
        b"/INBOX;UIDVALIDITY=%d/;UID=1" % (v + 1),  # stale UIDVALIDITY
        b"/Nowhere/;UID=1",  # no such mailbox
        b"/INBOX/;UID=1/;SECTION=9",  # no such part
        b"/INBOX/;UID=1/;SECTION=BOGUS",  # not a section
        b"/INBOX/;UID=1;URLAUTH=anonymous:internal:abc",  # URLAUTH unsupported
        b"/INBOX",  # no UID
        b"http://example.org/x",  # not IMAP
    ]
    for i, url in enumerate(bad):
        line = _cat(c, f"b{i}", "INBOX", b'URL "%s"' % url)
        assert line.startswith(b"b%d NO [BADURL " % i), (url, line)
    assert b"MESSAGES 1" in c.ok("STATUS INBOX (MESSAGES)").untagged[0]


def test_catenate_toobig(make_imap_server, imap_script):
    """A catenated result over the APPENDLIMIT is NO [TOOBIG] (RFC 4469 §6)."""
    server = make_imap_server(max_literal=300)
    c = imap_script(login=True, server=server)
    append(c, SIMPLE)
    line = _cat(c, "t1", "INBOX", b'URL "/INBOX/;UID=1" URL "/INBOX/;UID=1"')
    assert line.startswith(b"t1 NO [TOOBIG]"), line
    assert b"MESSAGES 1" in c.ok("STATUS INBOX (MESSAGES)").untagged[0]


def test_catenate_malformed_is_bad(imap_script):
    """Syntax errors in CATENATE are BAD: empty list, unknown part, quoted TEXT."""
    c = imap_script(login=True)
    assert _cat(c, "t1", "INBOX", b"").startswith(b"t1 BAD")
    assert _cat(c, "t2", "INBOX", b'FOO "x"').startswith(b"t2 BAD")
    assert _cat(c, "t3", "INBOX", b'TEXT "inline"').startswith(b"t3 BAD")
    c.send(b't4 APPEND INBOX CATENATE URL "/INBOX/;UID=1"')
    assert c.read_line().startswith(b"t4 BAD")


def test_catenate_empty_result_refused(imap_script):
    """A CATENATE that yields no octets is refused with NO."""
    c = imap_script(login=True)
    assert _cat(c, "t1", "INBOX", b"TEXT {0+}\r\n").startswith(b"t1 NO")


def test_catenate_with_multiappend(imap_script):
    """CATENATE and plain literals mix in one MULTIAPPEND (RFC 4469 §5)."""
    c = imap_script(login=True)
    append(c, SIMPLE)
    c.send(b'm1 APPEND INBOX CATENATE (URL "/INBOX/;UID=1") (\\Seen) {5+}\r\nhello '
           b"CATENATE (TEXT {3+}\r\nabc)")
    line = c.read_line()
    assert re.match(rb"m1 OK \[APPENDUID \d+ 2:4\]", line), line
    assert _fetch_body(c, "INBOX", 2) == SIMPLE
    assert _fetch_body(c, "INBOX", 3) == b"hello"
    assert _fetch_body(c, "INBOX", 4) == b"abc"
