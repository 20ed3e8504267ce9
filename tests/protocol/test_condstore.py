"""CONDSTORE (RFC 7162 §3.1): HIGHESTMODSEQ, MODSEQ, CHANGEDSINCE, UNCHANGEDSINCE.

The ``loaded`` INBOX holds three messages appended with mod-sequences 1, 2, 3
(HIGHESTMODSEQ 3); every STORE that changes something takes the next one.
"""

from __future__ import annotations

import re

from tests.protocol.conftest import SIMPLE, append


def highestmodseq(lines: list[bytes]) -> int:
    """The value of the ``[HIGHESTMODSEQ n]`` code among untagged lines."""
    for line in lines:
        m = re.search(rb"\[HIGHESTMODSEQ (\d+)\]", line)
        if m:
            return int(m.group(1))
    raise AssertionError(f"no HIGHESTMODSEQ in {lines!r}")


# --- SELECT / EXAMINE / STATUS ----------------------------------------------------


def test_select_reports_highestmodseq(loaded):
    """RFC 7162 §3.1.2.1: every SELECT/EXAMINE sends OK [HIGHESTMODSEQ n]."""
    assert highestmodseq(loaded.ok("SELECT INBOX").untagged) == 3
    assert highestmodseq(loaded.ok("EXAMINE INBOX").untagged) == 3


def test_select_condstore_parameter(loaded):
    """RFC 7162 §3.1.8 example: SELECT INBOX (CONDSTORE) → HIGHESTMODSEQ, READ-WRITE."""
    r = loaded.ok("SELECT INBOX (CONDSTORE)")
    assert highestmodseq(r.untagged) == 3
    assert b"[READ-WRITE]" in r.tagged
    assert b"[READ-ONLY]" in loaded.ok("EXAMINE INBOX (CONDSTORE)").tagged


def test_select_unknown_parameter_is_bad(loaded):
    """An unknown SELECT parameter is a syntax error (RFC 4466 §2.1)."""
    loaded.bad("SELECT INBOX (FOOBAR)")


def test_empty_mailbox_reports_nonzero_highestmodseq(imap_script):
    """mod-sequence-value is >= 1 (RFC 7162 §7): a fresh mailbox reports 1, and the
    first message in it is still found by CHANGEDSINCE 1."""
    c = imap_script(login=True)
    c.ok("CREATE Fresh")
    assert highestmodseq(c.ok("SELECT Fresh").untagged) == 1
    assert c.ok("STATUS Fresh (HIGHESTMODSEQ)").untagged == [b'* STATUS "Fresh" (HIGHESTMODSEQ 1)']
    append(c, SIMPLE, "Fresh")
    c.ok("NOOP")
    r = c.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1)")
    assert r.untagged == [b"* 1 FETCH (UID 1 FLAGS (\\Recent) MODSEQ (1))"]


def test_status_highestmodseq(loaded):
    """RFC 7162 §3.1.7 example: STATUS (UIDNEXT MESSAGES HIGHESTMODSEQ)."""
    r = loaded.ok("STATUS INBOX (UIDNEXT MESSAGES HIGHESTMODSEQ)")
    assert r.untagged == [b'* STATUS "INBOX" (UIDNEXT 4 MESSAGES 3 HIGHESTMODSEQ 3)']


def test_status_highestmodseq_grows_with_store_and_expunge(loaded):
    """A STORE takes one new mod-sequence, an EXPUNGE another (RFC 7162 §3.1, §3.2.7)."""
    loaded.ok("SELECT INBOX")
    loaded.ok("STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    loaded.ok("EXPUNGE")
    r = loaded.ok("STATUS INBOX (HIGHESTMODSEQ)")
    assert r.untagged == [b'* STATUS "INBOX" (HIGHESTMODSEQ 5)']


# --- FETCH --------------------------------------------------------------------------


def test_fetch_modseq_item(loaded):
    """RFC 7162 §3.1.4.2 example: FETCH 1:3 (MODSEQ)."""
    loaded.ok("SELECT INBOX")
    r = loaded.ok("FETCH 1:3 (MODSEQ)")
    assert r.untagged == [b"* 1 FETCH (MODSEQ (1))", b"* 2 FETCH (MODSEQ (2))",
                          b"* 3 FETCH (MODSEQ (3))"]


def test_fetch_changedsince(loaded):
    """RFC 7162 §3.1.4.1 example: UID FETCH 1:* (FLAGS) (CHANGEDSINCE n) returns only
    messages changed since n, each with MODSEQ."""
    loaded.ok("SELECT INBOX")
    loaded.ok("STORE 1 +FLAGS.SILENT (\\Seen)")  # modseq 4
    r = loaded.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 2)")
    assert r.untagged == [
        b"* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) MODSEQ (4))",
        b"* 3 FETCH (UID 3 FLAGS ($Work \\Seen \\Recent) MODSEQ (3))",
    ]
    assert loaded.ok("FETCH 1:* (FLAGS) (CHANGEDSINCE 4)").untagged == []


def test_fetch_changedsince_errors(loaded):
    """CHANGEDSINCE needs a non-zero mod-sequence; an unknown modifier is BAD."""
    loaded.ok("SELECT INBOX")
    loaded.bad("FETCH 1:* (FLAGS) (CHANGEDSINCE 0)")
    loaded.bad("FETCH 1:* (FLAGS) (CHANGEDSINCE x)")
    loaded.bad("FETCH 1:* (FLAGS) (FOO 1)")
    loaded.bad("FETCH 1:* (FLAGS) (CHANGEDSINCE 99999999999999999999)")


def test_plain_fetch_has_no_modseq_until_enabled(loaded):
    """FETCH FLAGS without CONDSTORE: no MODSEQ; after ENABLE a plain FETCH still has none
    (RFC 7162 §3.1: the rule covers unsolicited and \\Seen-setting FETCH responses)."""
    loaded.ok("SELECT INBOX")
    assert loaded.ok("FETCH 1 FLAGS").untagged == [b"* 1 FETCH (FLAGS (\\Recent))"]
    loaded.ok("ENABLE CONDSTORE")
    assert loaded.ok("FETCH 1 FLAGS").untagged == [b"* 1 FETCH (FLAGS (\\Recent))"]


def test_seen_setting_fetch_carries_uid_and_modseq(loaded):
    """RFC 7162 §3.1: with CONDSTORE on, a FETCH that sets \\Seen reports UID and MODSEQ."""
    loaded.ok("SELECT INBOX (CONDSTORE)")
    r = loaded.ok("FETCH 1 (RFC822.SIZE BODY[TEXT])")
    line = r.untagged[0]
    assert line.startswith(b"* 1 FETCH (RFC822.SIZE ")
    assert line.endswith(b" FLAGS (\\Seen \\Recent) UID 1 MODSEQ (4))")


def test_fetch_modseq_enables_condstore(loaded, imap_script):
    """FETCH MODSEQ is a CONDSTORE-enabling command: other sessions' flag changes then
    arrive with UID and MODSEQ (RFC 7162 §3.1)."""
    loaded.ok("SELECT INBOX")
    loaded.ok("FETCH 1 (MODSEQ)")
    other = imap_script(login=True)
    other.ok("SELECT INBOX")
    other.ok("STORE 2 -FLAGS.SILENT (\\Flagged)")
    assert loaded.ok("NOOP").untagged == [b"* 2 FETCH (UID 2 FLAGS (\\Recent) MODSEQ (4))"]


def test_condstore_persists_across_select(loaded):
    """Once enabled, CONDSTORE lasts for the connection (RFC 7162 §3.1)."""
    loaded.ok("SELECT INBOX (CONDSTORE)")
    loaded.ok("SELECT INBOX")
    r = loaded.ok("STORE 3 +FLAGS ($x)")
    assert r.untagged == [b"* 3 FETCH (UID 3 FLAGS ($Work $x \\Seen) MODSEQ (4))"]


# --- STORE UNCHANGEDSINCE ---------------------------------------------------------


def test_uid_store_unchangedsince_silent_reports_modseq(loaded):
    """RFC 7162 §3.1.3 example 1: a successful silent conditional STORE still sends
    FETCH (UID MODSEQ) for every changed message."""
    loaded.ok("SELECT INBOX")
    r = loaded.ok("UID STORE 3,1,2 (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\\Deleted)")
    assert r.untagged == [b"* 1 FETCH (UID 1 MODSEQ (4))", b"* 2 FETCH (UID 2 MODSEQ (4))",
                          b"* 3 FETCH (UID 3 MODSEQ (4))"]
    assert b"[MODIFIED" not in r.tagged


def test_store_unchangedsince_modified(loaded):
    """RFC 7162 §3.1.3 example: messages changed after UNCHANGEDSINCE are left alone and
    named (by sequence number) in OK [MODIFIED set]."""
    loaded.ok("SELECT INBOX")
    loaded.ok("STORE 1,3 +FLAGS.SILENT ($Junk)")  # modseq 4 for 1 and 3
    r = loaded.ok("STORE 3,2,1 (UNCHANGEDSINCE 3) +FLAGS.SILENT (\\Deleted)")
    assert r.untagged == [b"* 2 FETCH (UID 2 MODSEQ (5))"]
    assert b"[MODIFIED 1,3]" in r.tagged
    assert loaded.ok("FETCH 1:3 FLAGS").untagged[0] == b"* 1 FETCH (FLAGS ($Junk \\Recent))"


def test_uid_store_modified_uses_uids(loaded):
    """UID STORE names failed messages by UID in MODIFIED (RFC 7162 §3.1.3)."""
    loaded.ok("SELECT INBOX")
    loaded.ok("UID EXPUNGE 1")  # nothing \\Deleted: no-op
    loaded.ok("STORE 2 +FLAGS.SILENT ($Junk)")
    r = loaded.ok("UID STORE 1:3 (UNCHANGEDSINCE 3) FLAGS ($Ok)")
    assert b"[MODIFIED 2]" in r.tagged
    assert r.untagged == [b"* 1 FETCH (UID 1 FLAGS ($Ok \\Recent) MODSEQ (5))",
                          b"* 3 FETCH (UID 3 FLAGS ($Ok \\Recent) MODSEQ (5))"]


def test_unchangedsince_zero_always_fails(loaded):
    """UNCHANGEDSINCE 0 fails for every existing message (RFC 7162 §3.1.3)."""
    loaded.ok("SELECT INBOX")
    r = loaded.ok("STORE 1:3 (UNCHANGEDSINCE 0) +FLAGS.SILENT ($MDNSent)")
    assert r.untagged == [] and b"[MODIFIED 1:3]" in r.tagged


def test_store_unchangedsince_errors(loaded):
    """A malformed UNCHANGEDSINCE is BAD; on a read-only mailbox NO [READ-ONLY]."""
    loaded.ok("SELECT INBOX")
    loaded.bad("STORE 1 (UNCHANGEDSINCE x) +FLAGS ($a)")
    loaded.bad("STORE 1 (UNCHANGEDSINCE) +FLAGS ($a)")
    loaded.bad("STORE 1 (CHANGEDSINCE 5) +FLAGS ($a)")
    loaded.ok("EXAMINE INBOX")
    r = loaded.no("STORE 1 (UNCHANGEDSINCE 5) +FLAGS ($a)")
    assert b"[READ-ONLY]" in r.tagged


# --- SEARCH MODSEQ ----------------------------------------------------------------


def test_search_modseq_appends_highest(loaded):
    """RFC 7162 §3.1.5 example: SEARCH MODSEQ "/flags/\\\\draft" all n ends with (MODSEQ m)."""
    loaded.ok("SELECT INBOX")
    r = loaded.ok('SEARCH MODSEQ "/flags/\\\\draft" all 2')
    assert r.untagged == [b"* SEARCH 2 3 (MODSEQ 3)"]
    assert loaded.ok("UID SEARCH MODSEQ 1").untagged == [b"* SEARCH 1 2 3 (MODSEQ 3)"]


def test_search_modseq_without_matches_has_no_modseq(loaded):
    """RFC 7162 §3.1.5: no (MODSEQ n) when nothing matched."""
    loaded.ok("SELECT INBOX")
    assert loaded.ok("SEARCH OR NOT MODSEQ 1 LARGER 50000").untagged == [b"* SEARCH"]


def test_search_without_modseq_is_unchanged(loaded):
    """A SEARCH without MODSEQ keeps the plain RFC 3501 response."""
    loaded.ok("SELECT INBOX")
    assert loaded.ok("SEARCH ALL").untagged == [b"* SEARCH 1 2 3"]


# --- EXPUNGE ------------------------------------------------------------------------


def test_expunge_reports_highestmodseq_when_enabled(loaded):
    """RFC 7162 §3.2.7 example: EXPUNGE's tagged OK carries the new HIGHESTMODSEQ."""
    loaded.ok("SELECT INBOX (CONDSTORE)")
    loaded.ok("STORE 1,3 +FLAGS.SILENT (\\Deleted)")
    r = loaded.ok("EXPUNGE")
    assert r.untagged[:2] == [b"* 3 EXPUNGE", b"* 1 EXPUNGE"]
    assert b"[HIGHESTMODSEQ 5]" in r.tagged
    assert b"[HIGHESTMODSEQ" not in loaded.ok("EXPUNGE").tagged  # nothing expunged


def test_expunge_without_condstore_has_no_code(loaded):
    """Without CONDSTORE the EXPUNGE reply is plain RFC 3501."""
    loaded.ok("SELECT INBOX")
    loaded.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert b"HIGHESTMODSEQ" not in loaded.ok("EXPUNGE").tagged
