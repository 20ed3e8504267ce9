"""ENABLE (RFC 5161): the registry, ENABLED replies, states and errors."""

from __future__ import annotations

from twistedmail.imap import dispatch


def test_enable_condstore_lists_it_once(imap_script):
    """ENABLE answers ENABLED with what it newly enabled; a repeat names nothing."""
    c = imap_script(login=True)
    assert c.ok("ENABLE CONDSTORE").untagged == [b"* ENABLED CONDSTORE"]
    assert c.ok("ENABLE CONDSTORE").untagged == [b"* ENABLED"]


def test_enable_is_case_insensitive_and_answers_canonically(imap_script):
    """Capability names match case-insensitively; ENABLED uses the canonical spelling."""
    c = imap_script(login=True)
    assert c.ok("ENABLE qresync").untagged == [b"* ENABLED QRESYNC"]


def test_unknown_capabilities_are_ignored(imap_script):
    """RFC 5161 §3.1: unknown or non-enableable names are ignored, the command succeeds."""
    c = imap_script(login=True)
    r = c.ok("ENABLE X-NOTHING IMAP4rev1 CONDSTORE")
    assert r.untagged == [b"* ENABLED CONDSTORE"]


def test_enable_qresync_implies_condstore(imap_script):
    """RFC 7162 §3.2.3: ENABLE QRESYNC also enables CONDSTORE (not listed again later)."""
    c = imap_script(login=True)
    assert c.ok("ENABLE QRESYNC").untagged == [b"* ENABLED QRESYNC"]
    assert c.ok("ENABLE CONDSTORE QRESYNC").untagged == [b"* ENABLED"]
    c.ok("SELECT INBOX")
    c.ok("STORE 1:* +FLAGS (\\Seen)")  # empty mailbox: nothing to store, still OK
    assert c.ok("FETCH 1:* FLAGS").untagged == []


def test_enable_needs_authentication(imap_script):
    """ENABLE is an authenticated-state command: BAD before login."""
    c = imap_script()
    c.bad("ENABLE CONDSTORE")


def test_enable_without_arguments_is_bad(imap_script):
    """RFC 5161 §4: at least one capability is required."""
    c = imap_script(login=True)
    c.bad("ENABLE")


def test_enable_allowed_in_selected_state(loaded, imap_script):
    """ENABLE works with a mailbox selected; CONDSTORE applies to that mailbox at once."""
    loaded.ok("SELECT INBOX")
    assert loaded.ok("ENABLE CONDSTORE").untagged == [b"* ENABLED CONDSTORE"]
    other = imap_script(login=True)
    other.ok("SELECT INBOX")
    other.ok("STORE 1 +FLAGS.SILENT ($x)")
    r = loaded.ok("NOOP")
    assert r.untagged == [b"* 1 FETCH (UID 1 FLAGS ($x \\Recent) MODSEQ (4))"]


def test_enable_qresync_in_selected_state_switches_to_vanished(loaded, imap_script):
    """ENABLE QRESYNC while selected: expunges from then on are announced as VANISHED."""
    loaded.ok("SELECT INBOX")
    loaded.ok("ENABLE QRESYNC")
    other = imap_script(login=True)
    other.ok("SELECT INBOX")
    other.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    other.ok("EXPUNGE")
    assert b"* VANISHED 2" in loaded.ok("NOOP").untagged


def test_registry_holds_condstore_and_qresync_and_they_are_advertised(imap_script):
    """dispatch.ENABLEABLE is the registry; what it offers here is also in CAPABILITY."""
    assert {"CONDSTORE", "QRESYNC"} <= dispatch.ENABLEABLE
    c = imap_script(login=True)
    caps = c.ok("CAPABILITY").untagged[0].split()
    assert b"CONDSTORE" in caps and b"QRESYNC" in caps
