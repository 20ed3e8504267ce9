"""Scripted conversations: SELECT EXAMINE CLOSE UNSELECT CHECK EXPUNGE UID EXPUNGE."""

from __future__ import annotations

import re

from tests.protocol.conftest import SIMPLE, append


def test_select_reports_everything(loaded):
    """SELECT: FLAGS, EXISTS, RECENT, UNSEEN, UIDVALIDITY, UIDNEXT, PERMANENTFLAGS, READ-WRITE."""
    r = loaded.ok("SELECT INBOX")
    text = b"\n".join(r.untagged)
    assert re.search(rb"^\* FLAGS \(\\Answered \\Flagged \\Deleted \\Seen \\Draft \$Work\)$",
                     text, re.M)
    assert b"* 3 EXISTS" in r.untagged
    assert b"* 3 RECENT" in r.untagged
    assert re.search(rb"^\* OK \[UNSEEN 1\]", text, re.M)
    assert re.search(rb"^\* OK \[UIDVALIDITY \d+\]", text, re.M)
    assert re.search(rb"^\* OK \[UIDNEXT 4\]", text, re.M)
    assert re.search(rb"^\* OK \[PERMANENTFLAGS \(.*\\\*\)\]", text, re.M)
    assert b"[READ-WRITE]" in r.tagged


def test_uidvalidity_encodes_root(imap_server, imap_script):
    """UIDVALIDITY = (root << 24) | counter with the node's configured root."""
    c = imap_script(login=True)
    r = c.ok("SELECT INBOX")
    value = int(re.search(rb"UIDVALIDITY (\d+)", b" ".join(r.untagged)).group(1))
    assert value >> 24 == imap_server.node.store.uidvalidity_root
    assert value & 0xFFFFFF >= 1


def test_recent_claimed_by_first_session(loaded, imap_script):
    """\\Recent goes to the first session that selects (RFC 3501 §2.3.2)."""
    assert b"* 3 RECENT" in loaded.ok("SELECT INBOX").untagged
    other = imap_script(login=True)
    assert b"* 0 RECENT" in other.ok("SELECT INBOX").untagged


def test_examine_is_read_only(loaded):
    """EXAMINE: READ-ONLY, no PERMANENTFLAGS, STORE refused, \\Recent not claimed."""
    r = loaded.ok("EXAMINE INBOX")
    assert b"[READ-ONLY]" in r.tagged
    assert b"* OK [PERMANENTFLAGS ()] Flags permitted" in r.untagged
    loaded.no("STORE 1 +FLAGS (\\Deleted)")
    loaded.no("EXPUNGE")
    loaded.ok("FETCH 1 BODY[TEXT]")
    r = loaded.ok("FETCH 1 FLAGS")
    assert b"\\Seen" not in r.untagged[0]  # EXAMINE never sets \Seen


def test_select_missing_mailbox_unselects(loaded):
    """A failed SELECT leaves no mailbox selected (RFC 3501 §6.3.1)."""
    loaded.ok("SELECT INBOX")
    assert b"[NONEXISTENT]" in loaded.no("SELECT Nope").tagged
    loaded.bad("FETCH 1 FLAGS")


def test_expunge_reports_sequence_numbers(loaded):
    """EXPUNGE sends `* n EXPUNGE` for each \\Deleted message (RFC 3501 §6.4.3 example)."""
    loaded.ok("SELECT INBOX")
    loaded.ok("STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    r = loaded.ok("EXPUNGE")
    assert r.untagged == [b"* 2 EXPUNGE", b"* 1 EXPUNGE"]
    assert b"* 1 EXISTS" in loaded.ok("SELECT INBOX").untagged


def test_uid_expunge_only_named(loaded):
    """UID EXPUNGE removes only the named \\Deleted UIDs (RFC 4315 §2.1)."""
    loaded.ok("SELECT INBOX")
    loaded.ok("STORE 1:3 +FLAGS.SILENT (\\Deleted)")
    r = loaded.ok("UID EXPUNGE 2")
    assert r.untagged == [b"* 2 EXPUNGE"]
    r = loaded.ok("FETCH 1:* UID")
    assert r.untagged == [b"* 1 FETCH (UID 1)", b"* 2 FETCH (UID 3)"]


def test_close_expunges_silently(loaded):
    """CLOSE removes \\Deleted messages without EXPUNGE responses (RFC 3501 §6.4.2)."""
    loaded.ok("SELECT INBOX")
    loaded.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert loaded.ok("CLOSE").untagged == []
    assert b"MESSAGES 2" in loaded.ok("STATUS INBOX (MESSAGES)").untagged[0]
    loaded.bad("FETCH 1 FLAGS")


def test_unselect_keeps_deleted(loaded):
    """UNSELECT leaves \\Deleted messages in place (RFC 3691)."""
    loaded.ok("SELECT INBOX")
    loaded.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    loaded.ok("UNSELECT")
    assert b"MESSAGES 3" in loaded.ok("STATUS INBOX (MESSAGES)").untagged[0]


def test_check_and_state_errors(loaded):
    """CHECK works when selected; selected-state commands are BAD when not selected."""
    for cmd in ("CHECK", "CLOSE", "EXPUNGE", "UNSELECT", "SEARCH ALL", "FETCH 1 FLAGS",
                "STORE 1 +FLAGS (\\Seen)", "COPY 1 INBOX", "UID FETCH 1 FLAGS"):
        loaded.bad(cmd)
    loaded.ok("SELECT INBOX")
    loaded.ok("CHECK")


def test_delete_create_gives_larger_uidvalidity(imap_script):
    """DELETE + CREATE of one name gives a larger UIDVALIDITY; UIDs restart at 1."""
    c = imap_script(login=True)
    c.ok("CREATE Box")
    append(c, SIMPLE, mailbox="Box")
    first = c.ok("STATUS Box (UIDVALIDITY UIDNEXT)").untagged[0]
    c.ok("DELETE Box")
    c.ok("CREATE Box")
    second = c.ok("STATUS Box (UIDVALIDITY UIDNEXT)").untagged[0]
    v1 = int(re.search(rb"UIDVALIDITY (\d+)", first).group(1))
    v2 = int(re.search(rb"UIDVALIDITY (\d+)", second).group(1))
    assert v2 > v1
    assert b"UIDNEXT 1" in second


def test_uids_never_reused_after_expunge(imap_script):
    """An expunged message's UID is never given again; UIDNEXT only grows."""
    c = imap_script(login=True)
    append(c, SIMPLE)
    append(c, SIMPLE)
    c.ok("SELECT INBOX")
    c.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")
    tag = append(c, SIMPLE)
    assert b"[APPENDUID " in tag and tag.split(b"]")[0].endswith(b" 3")
