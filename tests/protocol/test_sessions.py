"""Two sessions on one mailbox: EXISTS/EXPUNGE/FETCH only where RFC 3501 §7.4.1 allows."""

from __future__ import annotations

from tests.protocol.conftest import SIMPLE, append


def test_new_mail_seen_on_noop(loaded, imap_script):
    """Another session's APPEND shows up as EXISTS/RECENT on NOOP."""
    loaded.ok("SELECT INBOX")
    other = imap_script(login=True)
    append(other, SIMPLE)
    r = loaded.ok("NOOP")
    assert r.untagged == [b"* 4 EXISTS", b"* 4 RECENT"]  # 3 claimed at SELECT + 1 new


def test_flag_change_seen_as_fetch(loaded, imap_script):
    """Another session's STORE shows up as an unsolicited FETCH (FLAGS ...)."""
    loaded.ok("SELECT INBOX")
    other = imap_script(login=True)
    other.ok("SELECT INBOX")
    other.ok("STORE 2 +FLAGS.SILENT (\\Answered)")
    r = loaded.ok("NOOP")
    assert r.untagged == [b"* 2 FETCH (FLAGS (\\Answered \\Flagged \\Recent))"]


def test_no_expunge_during_fetch_store_search(loaded, imap_script):
    """A pending EXPUNGE is held back during FETCH/STORE/SEARCH and sent on NOOP."""
    loaded.ok("SELECT INBOX")
    other = imap_script(login=True)
    other.ok("SELECT INBOX")
    other.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    other.ok("EXPUNGE")
    for cmd in ("FETCH 1:* UID", "STORE 3 +FLAGS.SILENT ($x)", "SEARCH ALL"):
        r = loaded.ok(cmd) if not cmd.startswith("FETCH") else loaded.cmd(cmd)
        assert not any(line.endswith(b"EXPUNGE") for line in r.untagged), (cmd, r.untagged)
    # Sequence numbers did not shift: message 3 is still UID 3.
    r = loaded.ok("SEARCH UID 3")
    assert r.untagged[-1] == b"* SEARCH 3"
    r = loaded.ok("NOOP")
    assert b"* 1 EXPUNGE" in r.untagged
    r = loaded.ok("FETCH 1:* UID")
    assert r.untagged == [b"* 1 FETCH (UID 2)", b"* 2 FETCH (UID 3)"]


def test_fetch_of_expunged_message_says_so(loaded, imap_script):
    """FETCH of a message another session expunged answers NO [EXPUNGEISSUED] for it."""
    loaded.ok("SELECT INBOX")
    other = imap_script(login=True)
    other.ok("SELECT INBOX")
    other.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    other.ok("EXPUNGE")
    r = loaded.no("FETCH 1:3 UID")
    assert b"[EXPUNGEISSUED]" in r.tagged
    assert r.untagged == [b"* 2 FETCH (UID 2)", b"* 3 FETCH (UID 3)"]


def test_uid_commands_may_carry_expunge(loaded, imap_script):
    """UID FETCH may announce pending expunges (RFC 3501 §7.4.1 applies to seq commands)."""
    loaded.ok("SELECT INBOX")
    other = imap_script(login=True)
    other.ok("SELECT INBOX")
    other.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    other.ok("EXPUNGE")
    r = loaded.ok("UID FETCH 1:* UID")
    assert b"* 2 EXPUNGE" in r.untagged


def test_delete_of_selected_mailbox_elsewhere_gives_bye(imap_script):
    """A session whose mailbox another session deleted gets BYE."""
    a = imap_script(login=True)
    a.ok("CREATE Doomed")
    a.ok("SELECT Doomed")
    b = imap_script(login=True)
    b.ok("DELETE Doomed")
    r = a.cmd("NOOP")
    assert any(line.startswith(b"* BYE") for line in r.untagged)


def test_idle_pushes_exists(loaded, imap_script):
    """IDLE pushes EXISTS when another session appends (RFC 2177), DONE ends it."""
    loaded.ok("SELECT INBOX")
    loaded.send(b"i1 IDLE")
    assert loaded.read_line().startswith(b"+")
    other = imap_script(login=True)
    append(other, SIMPLE)
    assert loaded.read_line(timeout=5) == b"* 4 EXISTS"
    assert loaded.read_line(timeout=5) == b"* 4 RECENT"
    loaded.send(b"DONE")
    assert loaded.read_line().startswith(b"i1 OK")


def test_idle_bad_terminator(loaded):
    """Anything but DONE ends IDLE with BAD."""
    loaded.ok("SELECT INBOX")
    loaded.send(b"i1 IDLE")
    assert loaded.read_line().startswith(b"+")
    loaded.send(b"STOP")
    assert loaded.read_line().startswith(b"i1 BAD")
    loaded.ok("NOOP")


def test_idle_and_done_in_one_packet(loaded):
    """`IDLE` and `DONE` pipelined in one write still end the IDLE cleanly."""
    loaded.ok("SELECT INBOX")
    loaded.send_raw(b"i1 IDLE\r\nDONE\r\ni2 NOOP\r\n")
    assert loaded.read_line().startswith(b"+")
    assert loaded.read_line().startswith(b"i1 OK")
    assert loaded.read_line().startswith(b"i2 OK")
