"""Scripted conversations: APPEND."""

from __future__ import annotations

import re

from tests.protocol.conftest import SIMPLE, append


def test_append_returns_appenduid(imap_script):
    """APPEND's OK carries [APPENDUID uidvalidity uid] (RFC 4315 §3)."""
    c = imap_script(login=True)
    line = append(c, SIMPLE)
    assert re.match(rb"ap OK \[APPENDUID \d+ 1\]", line)
    assert re.match(rb"ap OK \[APPENDUID \d+ 2\]", append(c, SIMPLE))


def test_append_flags_and_date(imap_script):
    """APPEND with flags and a date-time stores both (RFC 3501 §6.3.11 example)."""
    c = imap_script(login=True)
    msg = SIMPLE
    c.send(b'ap APPEND INBOX (\\Seen $Label) "17-Jul-1996 02:44:25 -0700" {%d}' % len(msg))
    assert c.read_line().startswith(b"+")
    c.send(msg)
    assert c.read_line().startswith(b"ap OK")
    c.ok("SELECT INBOX")
    r = c.ok("FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE)")
    assert r.untagged == [b'* 1 FETCH (FLAGS ($Label \\Seen \\Recent) INTERNALDATE '
                          b'"17-Jul-1996 02:44:25 -0700" RFC822.SIZE %d)' % len(msg)]


def test_append_without_flag_list(imap_script):
    """The flag list is optional (stock Twisted gets this wrong)."""
    c = imap_script(login=True)
    append(c, SIMPLE)
    assert b"MESSAGES 1" in c.ok("STATUS INBOX (MESSAGES)").untagged[0]


def test_append_to_missing_mailbox_trycreate(imap_script):
    """APPEND to a missing mailbox: NO [TRYCREATE] (RFC 3501 §6.3.11)."""
    c = imap_script(login=True)
    c.send(b"ap APPEND Nowhere {5}")
    line = c.read_line()
    if line.startswith(b"+"):
        c.send(b"hello")
        line = c.read_line()
    assert line.startswith(b"ap NO [TRYCREATE]")


def test_append_literal_plus(imap_script):
    """LITERAL+ `{n+}` needs no continuation (RFC 7888)."""
    c = imap_script(login=True)
    c.send(b"lp APPEND INBOX {%d+}\r\n%s" % (len(SIMPLE), SIMPLE))
    assert c.read_line().startswith(b"lp OK [APPENDUID")


def test_append_bad_date_is_bad(imap_script):
    """A malformed date-time is BAD."""
    c = imap_script(login=True)
    c.send(b'ap APPEND INBOX "31-Foo-1996 02:44:25 -0700" {5+}\r\nhello')
    assert c.read_line().startswith(b"ap BAD")


def test_append_empty_message_refused(imap_script):
    """A zero-byte message is refused with NO."""
    c = imap_script(login=True)
    c.send(b"ap APPEND INBOX {0+}\r\n")
    assert c.read_line().startswith(b"ap NO")


def test_append_to_selected_sends_exists(imap_script):
    """APPEND into the selected mailbox is followed by `* n EXISTS`."""
    c = imap_script(login=True)
    c.ok("SELECT INBOX")
    c.send(b"ap APPEND INBOX {%d+}\r\n%s" % (len(SIMPLE), SIMPLE))
    lines = [c.read_line(), c.read_line(), c.read_line()]
    assert b"* 1 EXISTS" in lines
    assert lines[-1].startswith(b"ap OK")


def test_append_8bit_and_binaryish_data_roundtrip(imap_script):
    """8-bit bytes survive APPEND and FETCH byte for byte."""
    c = imap_script(login=True)
    msg = b"Subject: caf\xe9 \xff\r\n\r\nbody \x80\x81 bytes\r\n"
    append(c, msg)
    c.ok("SELECT INBOX")
    r = c.ok("FETCH 1 BODY.PEEK[]")
    assert r.untagged[0].endswith(b"{%d}\r\n%s)" % (len(msg), msg))
