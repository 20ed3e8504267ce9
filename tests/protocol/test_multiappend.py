"""Scripted conversations: MULTIAPPEND (RFC 3502)."""

from __future__ import annotations

import re

from tests.protocol.conftest import MULTIPART, SIMPLE


def test_multiappend_advertised(imap_script):
    """CAPABILITY lists MULTIAPPEND (RFC 3502 §3)."""
    c = imap_script(login=True)
    assert b" MULTIAPPEND" in c.ok("CAPABILITY").untagged[0]


def test_multiappend_rfc_example(imap_script):
    """RFC 3502 §6.3.11 example: two messages, flags and date on each; APPENDUID is a set."""
    c = imap_script(login=True)
    c.ok("CREATE saved-messages")
    c.send(b'A003 APPEND saved-messages (\\Seen) "7-Feb-1994 21:52:25 -0800" {%d}'
           % len(SIMPLE))
    assert c.read_line().startswith(b"+")
    c.send(SIMPLE + b' (\\Seen $Work) "8-Feb-1994 10:00:00 +0000" {%d}' % len(MULTIPART))
    assert c.read_line().startswith(b"+")
    c.send(MULTIPART)
    line = c.read_line()
    m = re.match(rb"A003 OK \[APPENDUID (\d+) 1:2\]", line)
    assert m, line
    c.ok("SELECT saved-messages")
    r = c.ok("FETCH 1:2 (FLAGS INTERNALDATE RFC822.SIZE)")
    assert r.untagged[0].startswith(
        b'* 1 FETCH (FLAGS (\\Seen \\Recent) INTERNALDATE " 7-Feb-1994 21:52:25 -0800" '
        b"RFC822.SIZE %d)" % len(SIMPLE))
    assert b"$Work" in r.untagged[1] and b" 8-Feb-1994 10:00:00 +0000" in r.untagged[1]
    assert b"RFC822.SIZE %d" % len(MULTIPART) in r.untagged[1]


def test_multiappend_literal_plus(imap_script):
    """Three messages in one command with LITERAL+ (RFC 7888) get consecutive UIDs."""
    c = imap_script(login=True)
    c.send(b"m1 APPEND INBOX {5+}\r\nhello {5+}\r\nthere (\\Flagged) {3+}\r\nyou")
    line = c.read_line()
    assert re.match(rb"m1 OK \[APPENDUID \d+ 1:3\]", line), line
    r = c.ok("STATUS INBOX (MESSAGES)")
    assert b"MESSAGES 3" in r.untagged[0]


def test_multiappend_all_or_nothing_empty(imap_script):
    """If one message fails (here: empty), none is appended (RFC 3502 §6.3.11)."""
    c = imap_script(login=True)
    c.send(b"m1 APPEND INBOX {5+}\r\nhello {0+}\r\n")
    assert c.read_line().startswith(b"m1 NO")
    assert b"MESSAGES 0" in c.ok("STATUS INBOX (MESSAGES)").untagged[0]
    assert b"UIDNEXT 1" in c.ok("STATUS INBOX (UIDNEXT)").untagged[0]


def test_multiappend_all_or_nothing_bad_url(imap_script):
    """A CATENATE failure in the second message appends nothing (RFC 3502, RFC 4469)."""
    c = imap_script(login=True)
    c.send(b'm1 APPEND INBOX {5+}\r\nhello CATENATE (URL "/INBOX/;UID=99")')
    assert c.read_line().startswith(b"m1 NO [BADURL /INBOX/;UID=99]")
    assert b"MESSAGES 0" in c.ok("STATUS INBOX (MESSAGES)").untagged[0]


def test_multiappend_rollback_on_store_refusal(imap_server, imap_script):
    """When the store refuses a later message, earlier ones are expunged again."""
    from twistedmail.imap.handlers import append as append_mod
    from twistedmail.imap.session import Session

    c = imap_script(login=True)
    watcher = imap_script(login=True)
    watcher.ok("SELECT INBOX")
    original = Session.apply
    calls = []

    def flaky(self, op, own_flags=False):
        if type(op).__name__ == "Append":
            calls.append(op)
            if len(calls) == 2:
                raise append_mod.No("refused", "OVERQUOTA")
        return original(self, op, own_flags)

    imap_server.call(setattr, Session, "apply", flaky)
    try:
        c.send(b"m1 APPEND INBOX {5+}\r\nhello {5+}\r\nthere")
        assert c.read_line().startswith(b"m1 NO [OVERQUOTA]")
    finally:
        imap_server.call(setattr, Session, "apply", original)
    assert b"MESSAGES 0" in c.ok("STATUS INBOX (MESSAGES)").untagged[0]
    assert watcher.ok("NOOP").untagged == []  # the other session saw nothing


def test_multiappend_to_missing_mailbox(imap_script):
    """MULTIAPPEND to a missing mailbox: NO [TRYCREATE], nothing stored."""
    c = imap_script(login=True)
    c.send(b"m1 APPEND Nowhere {5+}\r\nhello {5+}\r\nthere")
    assert c.read_line().startswith(b"m1 NO [TRYCREATE]")


def test_multiappend_malformed_second_message(imap_script):
    """A second message that is not a literal is BAD and nothing is appended."""
    c = imap_script(login=True)
    c.send(b'm1 APPEND INBOX {5+}\r\nhello "there"')
    assert c.read_line().startswith(b"m1 BAD")
    c.send(b"m2 APPEND INBOX {5+}\r\nhello (\\Seen)")
    assert c.read_line().startswith(b"m2 BAD")
    assert b"MESSAGES 0" in c.ok("STATUS INBOX (MESSAGES)").untagged[0]


def test_multiappend_selected_gets_exists(imap_script):
    """MULTIAPPEND into the selected mailbox announces the new count once."""
    c = imap_script(login=True)
    c.ok("SELECT INBOX")
    c.send(b"m1 APPEND INBOX {5+}\r\nhello {5+}\r\nthere")
    lines = []
    while not (line := c.read_line()).startswith(b"m1 "):
        lines.append(line)
    assert b"* 2 EXISTS" in lines and line.startswith(b"m1 OK [APPENDUID")
