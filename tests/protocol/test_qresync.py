"""QRESYNC (RFC 7162 §3.2): SELECT (QRESYNC ...), VANISHED, [CLOSED], tombstones."""

from __future__ import annotations

import re

import pytest

from tests.protocol.conftest import SIMPLE, append
from twistedmail.store import mailbox as store_mailbox


def uidvalidity(lines: list[bytes]) -> int:
    """The ``[UIDVALIDITY n]`` value among untagged SELECT lines."""
    for line in lines:
        m = re.search(rb"\[UIDVALIDITY (\d+)\]", line)
        if m:
            return int(m.group(1))
    raise AssertionError(lines)


@pytest.fixture
def history(imap_script):
    """INBOX with UIDs 1-6 appended (modseqs 1-6), then UID 2 flagged (7), UIDs 3 and 5
    deleted (8) and expunged (9), UID 6 seen (10).  Returns (session, uidvalidity)."""
    c = imap_script(login=True)
    for _ in range(6):
        append(c, SIMPLE)
    uv = uidvalidity(c.ok("SELECT INBOX").untagged)
    c.ok("UID STORE 2 +FLAGS.SILENT (\\Flagged)")  # 7
    c.ok("UID STORE 3,5 +FLAGS.SILENT (\\Deleted)")  # 8
    c.ok("EXPUNGE")  # 9
    c.ok("UID STORE 6 +FLAGS.SILENT (\\Seen)")  # 10
    c.ok("UNSELECT")
    return c, uv


def test_qresync_needs_enable(history):
    """RFC 7162 §3.2.3: QRESYNC parameters without ENABLE QRESYNC are BAD."""
    c, uv = history
    c.bad(f"SELECT INBOX (QRESYNC ({uv} 1))")
    c.ok("SELECT INBOX")
    c.bad("UID FETCH 1:* FLAGS (CHANGEDSINCE 1 VANISHED)")


def test_select_qresync_sends_vanished_then_changes(history):
    """RFC 7162 §3.2.5.1 example: after the usual SELECT data, VANISHED (EARLIER) for
    what was expunged and FETCH (UID FLAGS MODSEQ) for what changed, then OK."""
    c, uv = history
    c.ok("ENABLE QRESYNC")
    r = c.ok(f"SELECT INBOX (QRESYNC ({uv} 6))")
    assert any(b"[HIGHESTMODSEQ 10]" in line for line in r.untagged)
    tail = r.untagged[-3:]
    assert tail == [
        b"* VANISHED (EARLIER) 3,5",
        b"* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ (7))",
        b"* 4 FETCH (UID 6 FLAGS (\\Seen) MODSEQ (10))",
    ]
    assert b"[READ-WRITE]" in r.tagged


def test_select_qresync_up_to_date_sends_nothing_extra(history):
    """A client that knows HIGHESTMODSEQ gets neither VANISHED nor FETCH."""
    c, uv = history
    c.ok("ENABLE QRESYNC")
    r = c.ok(f"EXAMINE INBOX (QRESYNC ({uv} 10))")
    assert not r.matching(rb"VANISHED|FETCH")


def test_select_qresync_known_uids_limit_vanished(history):
    """known-uids restricts VANISHED (EARLIER) to UIDs the client names (§3.2.5.1)."""
    c, uv = history
    c.ok("ENABLE QRESYNC")
    r = c.ok(f"SELECT INBOX (QRESYNC ({uv} 1 4:6))")
    assert r.matching(rb"VANISHED") == [b"* VANISHED (EARLIER) 5"]
    assert len(r.matching(rb"FETCH")) == 4  # every message changed since modseq 1


def test_select_qresync_wrong_uidvalidity_is_plain_select(history):
    """RFC 7162 §3.2.5.1: a UIDVALIDITY mismatch means a normal SELECT, no resync data."""
    c, uv = history
    c.ok("ENABLE QRESYNC")
    r = c.ok(f"SELECT INBOX (QRESYNC ({uv + 1} 1))")
    assert not r.matching(rb"VANISHED|FETCH")
    assert r.matching(rb"\[HIGHESTMODSEQ 10\]")


def test_select_qresync_syntax_errors(history):
    """Malformed QRESYNC parameters are BAD (RFC 7162 §7 ABNF)."""
    c, uv = history
    c.ok("ENABLE QRESYNC")
    for bad in (f"({uv})", f"({uv} 0)", "(0 1)", f"{uv} 1", f"({uv} 1 x)", f"({uv} 1 1:3 (1))"):
        c.bad(f"SELECT INBOX (QRESYNC {bad})")


def test_uid_fetch_changedsince_vanished(history):
    """RFC 7162 §3.2.6 example: UID FETCH ... (CHANGEDSINCE n VANISHED) sends VANISHED
    (EARLIER) for the UID set first, then the changed messages."""
    c, uv = history
    c.ok("ENABLE QRESYNC")
    c.ok("SELECT INBOX")
    r = c.ok("UID FETCH 1:4 (FLAGS) (CHANGEDSINCE 6 VANISHED)")
    assert r.untagged == [b"* VANISHED (EARLIER) 3",
                          b"* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ (7))"]
    r = c.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 9 VANISHED)")
    assert r.untagged == [b"* 4 FETCH (UID 6 FLAGS (\\Seen) MODSEQ (10))"]


def test_vanished_modifier_only_in_uid_fetch(history):
    """RFC 7162 §3.2.6: VANISHED in a plain FETCH, or without CHANGEDSINCE, is BAD."""
    c, _ = history
    c.ok("ENABLE QRESYNC")
    c.ok("SELECT INBOX")
    c.bad("FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    c.bad("UID FETCH 1:* (FLAGS) (VANISHED)")


def test_expunge_sends_vanished_and_highestmodseq(loaded):
    """RFC 7162 §3.2.7 example: with QRESYNC, EXPUNGE answers VANISHED and
    OK [HIGHESTMODSEQ n]."""
    loaded.ok("ENABLE QRESYNC")
    loaded.ok("SELECT INBOX")
    loaded.ok("STORE 1,3 +FLAGS.SILENT (\\Deleted)")
    r = loaded.ok("EXPUNGE")
    assert r.untagged == [b"* VANISHED 1,3"]
    assert b"[HIGHESTMODSEQ 5]" in r.tagged


def test_uid_expunge_and_move_send_vanished(loaded):
    """RFC 7162 §3.2.9 UID EXPUNGE and RFC 6851 §4.4 MOVE announce VANISHED."""
    loaded.ok("ENABLE QRESYNC")
    loaded.ok("CREATE Dest")
    loaded.ok("SELECT INBOX")
    loaded.ok("STORE 1:3 +FLAGS.SILENT (\\Deleted)")
    r = loaded.ok("UID EXPUNGE 2")
    assert r.untagged == [b"* VANISHED 2"] and b"[HIGHESTMODSEQ" in r.tagged
    r = loaded.ok("UID MOVE 3 Dest")
    assert r.matching(rb"VANISHED") == [b"* VANISHED 3"]
    assert not r.matching(rb"EXPUNGE")


def test_close_sends_no_vanished(loaded):
    """RFC 7162 §3.2.8: CLOSE expunges silently, QRESYNC or not."""
    loaded.ok("ENABLE QRESYNC")
    loaded.ok("SELECT INBOX")
    loaded.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert loaded.ok("CLOSE").untagged == []
    assert loaded.ok("STATUS INBOX (MESSAGES)").untagged == [b'* STATUS "INBOX" (MESSAGES 2)']


def test_other_sessions_expunge_arrives_as_vanished(loaded, imap_script):
    """Unsolicited expunges are VANISHED once QRESYNC is on, and never during FETCH."""
    loaded.ok("ENABLE QRESYNC")
    loaded.ok("SELECT INBOX")
    other = imap_script(login=True)
    other.ok("SELECT INBOX")
    other.ok("STORE 2:3 +FLAGS.SILENT (\\Deleted)")
    other.ok("EXPUNGE")
    assert not loaded.ok("FETCH 1 UID").matching(rb"VANISHED|EXPUNGE")
    assert loaded.ok("NOOP").untagged == [b"* VANISHED 2:3"]


def test_closed_code_when_select_replaces_mailbox(loaded):
    """RFC 7162 §3.2.11: OK [CLOSED] comes first when SELECT closes a selected mailbox,
    also when the new SELECT fails; never on a first SELECT."""
    assert not loaded.ok("SELECT INBOX").matching(rb"\[CLOSED\]")
    r = loaded.ok("EXAMINE INBOX")
    assert r.untagged[0].startswith(b"* OK [CLOSED]")
    r = loaded.no("SELECT Nowhere")
    assert r.untagged[0].startswith(b"* OK [CLOSED]")
    loaded.bad("FETCH 1 FLAGS")  # nothing selected any more
    assert not loaded.ok("SELECT INBOX").matching(rb"\[CLOSED\]")


def test_tombstone_limit_falls_back_to_absent_uids(history, monkeypatch):
    """With tombstones compacted away, VANISHED (EARLIER) names every absent UID, and
    seq-match-data (§3.2.5.2) trims what the client provably still has right."""
    c, uv = history
    monkeypatch.setattr(store_mailbox, "_TOMBSTONE_LIMIT", 1)
    c.ok("SELECT INBOX")
    c.ok("UID STORE 4 +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")  # UIDs 1 2 6 remain; tombstones: only the newest half kept
    c.ok("ENABLE QRESYNC")
    r = c.ok(f"SELECT INBOX (QRESYNC ({uv} 2))")
    assert r.matching(rb"VANISHED") == [b"* VANISHED (EARLIER) 3:5"]
    # Known pairs 1-3 -> 1,2,3: seq 3 is UID 6 now, so only UIDs above 2 may be gone.
    r = c.ok(f"SELECT INBOX (QRESYNC ({uv} 2 1:6 (1:3 1:3)))")
    assert r.matching(rb"VANISHED") == [b"* VANISHED (EARLIER) 3:5"]
    # Known pairs 1-3 -> 1,2,6 all still hold: the client already lacks 3-5.
    r = c.ok(f"SELECT INBOX (QRESYNC ({uv} 2 1:6 (1:3 1,2,6)))")
    assert not r.matching(rb"VANISHED")


def test_exact_tombstones_survive_new_mail(history):
    """A tombstone outlives later appends: the resync still reports it exactly."""
    c, uv = history
    append(c, SIMPLE)  # UID 7, modseq 11
    c.ok("ENABLE QRESYNC")
    r = c.ok(f"SELECT INBOX (QRESYNC ({uv} 8))")
    assert r.matching(rb"VANISHED") == [b"* VANISHED (EARLIER) 3,5"]
    assert r.matching(rb"FETCH") == [b"* 4 FETCH (UID 6 FLAGS (\\Seen) MODSEQ (10))",
                                     b"* 5 FETCH (UID 7 FLAGS (\\Recent) MODSEQ (11))"]
