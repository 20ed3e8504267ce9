"""Scripted conversations: REPLACE and UID REPLACE (RFC 8508)."""

from __future__ import annotations

import re

from tests.protocol.conftest import MULTIPART, SIMPLE, append

NEW = SIMPLE.replace(b"Hello kumquat", b"Hello again")


def _replace(c, tag: str, command: bytes, message: bytes = NEW) -> list[bytes]:
    """Send ``tag <command> {n+}`` + message; every line up to the tagged one."""
    c.send(b"%s %s {%d+}\r\n%s" % (tag.encode(), command, len(message), message))
    lines = []
    while not (line := c.read_line()).startswith(tag.encode() + b" "):
        lines.append(line)
    return [*lines, line]


def _drafts(c) -> int:
    """Create Notes holding SIMPLE and MULTIPART, select it; its UIDVALIDITY."""
    c.ok("CREATE Notes")
    append(c, SIMPLE, "Notes", "\\Seen \\Draft")
    append(c, MULTIPART, "Notes")
    r = c.ok("SELECT Notes")
    return int(r.matching(rb"UIDVALIDITY")[0].split(b"UIDVALIDITY ")[1].split(b"]")[0])


def test_replace_advertised(imap_script):
    """CAPABILITY lists REPLACE (RFC 8508 §3)."""
    c = imap_script(login=True)
    assert b" REPLACE" in c.ok("CAPABILITY").untagged[0]


def test_replace_rfc_example(imap_script):
    """RFC 8508 §3.4 example: APPENDUID untagged, the old message EXPUNGEd, new one EXISTS."""
    c = imap_script(login=True)
    v = _drafts(c)
    lines = _replace(c, "A005", b"REPLACE 1 Notes (\\Seen \\Draft)")
    assert lines[0] == b"* OK [APPENDUID %d 3] Replacement Message ID" % v
    assert b"* 1 EXPUNGE" in lines and b"* 2 EXISTS" in lines
    assert lines.index(b"* 1 EXPUNGE") > 0
    assert lines[-1].startswith(b"A005 OK")
    r = c.ok("UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert len(r.untagged) == 2
    assert b"UID 3" in r.untagged[1] and b"Hello again" in r.untagged[1]
    assert b"\\Draft" in r.untagged[1]


def test_uid_replace_into_other_mailbox(imap_script):
    """UID REPLACE may append to another mailbox (RFC 8508 §3.1); APPENDUID names it."""
    c = imap_script(login=True)
    _drafts(c)
    c.ok("CREATE Outbox")
    sent_v = int(re.search(rb"UIDVALIDITY (\d+)",
                           c.ok("STATUS Outbox (UIDVALIDITY)").untagged[0]).group(1))
    lines = _replace(c, "r1", b"UID REPLACE 2 Outbox")
    assert lines[0] == b"* OK [APPENDUID %d 1] Replacement Message ID" % sent_v
    assert b"* 2 EXPUNGE" in lines and lines[-1].startswith(b"r1 OK")
    assert b"MESSAGES 1" in c.ok("STATUS Outbox (MESSAGES)").untagged[0]
    assert len(c.ok("FETCH 1:* UID").untagged) == 1


def test_replace_star_means_last(imap_script):
    """REPLACE * replaces the last message (seq-number allows "*")."""
    c = imap_script(login=True)
    _drafts(c)
    lines = _replace(c, "r1", b"REPLACE * Notes")
    assert b"* 2 EXPUNGE" in lines and lines[-1].startswith(b"r1 OK")


def test_replace_seen_by_other_session(imap_script):
    """Another session on the mailbox sees the expunge and the new message together."""
    c = imap_script(login=True)
    _drafts(c)
    other = imap_script(login=True)
    other.ok("SELECT Notes")
    _replace(c, "r1", b"REPLACE 1 Notes")
    r = other.ok("NOOP")
    assert b"* 1 EXPUNGE" in r.untagged and b"* 2 EXISTS" in r.untagged


def test_replace_bad_sequence_number(imap_script):
    """A sequence number beyond EXISTS is BAD; nothing is appended."""
    c = imap_script(login=True)
    _drafts(c)
    assert _replace(c, "r1", b"REPLACE 3 Notes")[-1].startswith(b"r1 BAD")
    assert b"MESSAGES 2" in c.ok("STATUS Notes (MESSAGES)").untagged[0]


def test_uid_replace_unknown_uid(imap_script):
    """UID REPLACE of a UID not in the mailbox is NO; nothing is appended."""
    c = imap_script(login=True)
    _drafts(c)
    assert _replace(c, "r1", b"UID REPLACE 9 Notes")[-1].startswith(b"r1 NO")
    assert b"UIDNEXT 3" in c.ok("STATUS Notes (UIDNEXT)").untagged[0]


def test_replace_missing_target_keeps_old(imap_script):
    """A missing target mailbox is NO [TRYCREATE] and the old message stays (RFC 8508 §3.2)."""
    c = imap_script(login=True)
    _drafts(c)
    assert _replace(c, "r1", b"REPLACE 1 Nowhere")[-1].startswith(b"r1 NO [TRYCREATE]")
    assert len(c.ok("FETCH 1:* UID").untagged) == 2


def test_replace_read_only(imap_script):
    """REPLACE in an EXAMINEd mailbox is NO [READ-ONLY]."""
    c = imap_script(login=True)
    _drafts(c)
    c.ok("EXAMINE Notes")
    assert _replace(c, "r1", b"REPLACE 1 Notes")[-1].startswith(b"r1 NO [READ-ONLY]")
    assert b"MESSAGES 2" in c.ok("STATUS Notes (MESSAGES)").untagged[0]


def test_replace_needs_selected_state(imap_script):
    """REPLACE outside the selected state is BAD."""
    c = imap_script(login=True)
    assert _replace(c, "r1", b"REPLACE 1 INBOX")[-1].startswith(b"r1 BAD")


def test_replace_malformed(imap_script):
    """Syntax errors are BAD: zero, missing message, quoted message."""
    c = imap_script(login=True)
    _drafts(c)
    assert _replace(c, "r1", b"REPLACE 0 Notes")[-1].startswith(b"r1 BAD")
    assert c.bad("REPLACE 1 Notes").status == "BAD"
    assert c.bad('REPLACE 1 Notes "text"').status == "BAD"
    assert c.bad("UID REPLACE x Notes {1+}\r\nx").status == "BAD"


def test_replace_with_catenate_of_old(imap_script):
    """REPLACE can CATENATE parts of the message it replaces (a draft being edited)."""
    c = imap_script(login=True)
    _drafts(c)
    c.send(b'r1 REPLACE 1 Notes CATENATE (URL "/Notes/;UID=1/;SECTION=HEADER" '
           b"TEXT {8+}\r\nnew body)")
    while not (line := c.read_line()).startswith(b"r1 "):
        pass
    assert line.startswith(b"r1 OK"), line
    body = c.ok("UID FETCH 3 BODY.PEEK[]").untagged[0]
    assert body.endswith(SIMPLE.split(b"\r\n\r\n")[0] + b"\r\n\r\nnew body)")


def test_replace_empty_message_keeps_old(imap_script):
    """An empty replacement is refused and the old message stays."""
    c = imap_script(login=True)
    _drafts(c)
    c.send(b"r1 REPLACE 1 Notes {0+}\r\n")
    assert c.read_line().startswith(b"r1 NO")
    assert len(c.ok("FETCH 1:* UID").untagged) == 2
