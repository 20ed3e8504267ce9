"""IMAP4rev2 (RFC 9051) next to IMAP4rev1: what changes after ENABLE IMAP4rev2."""

from __future__ import annotations

import pytest

from tests.protocol.conftest import MULTIPART, SIMPLE, append


@pytest.fixture
def rev2(loaded):
    """The ``loaded`` session (3 messages in INBOX) after ENABLE IMAP4rev2."""
    r = loaded.ok("ENABLE IMAP4rev2")
    assert r.untagged == [b"* ENABLED IMAP4rev2"]
    return loaded


def test_capability_lists_both_revisions(imap_script):
    """CAPABILITY names IMAP4rev1 and IMAP4rev2 (RFC 9051 §6.1.1), also in the greeting."""
    c = imap_script()
    assert b" IMAP4rev1 IMAP4rev2 " in c.greeting
    caps = c.ok("CAPABILITY").untagged[0].split()
    assert b"IMAP4rev1" in caps and b"IMAP4rev2" in caps


def test_enable_twice_reports_nothing_new(rev2):
    """RFC 5161 §3.1: ENABLED lists only what this command newly enabled."""
    assert rev2.ok("ENABLE IMAP4rev2").untagged == [b"* ENABLED"]


def test_select_has_list_and_no_recent_or_unseen(rev2):
    """RFC 9051 §6.3.2: FLAGS, EXISTS, LIST; no RECENT, no [UNSEEN n]."""
    r = rev2.ok("SELECT INBOX")
    assert b"* 3 EXISTS" in r.untagged
    assert b'* LIST (\\HasNoChildren) "/" "INBOX"' in r.untagged
    assert not r.matching(rb"RECENT") and not r.matching(rb"\[UNSEEN ")
    assert r.matching(rb"^\* OK \[UIDVALIDITY \d+\]") and r.matching(rb"^\* OK \[UIDNEXT 4\]")


def test_rev1_select_unchanged(loaded):
    """Without ENABLE the same SELECT still sends RECENT and [UNSEEN]."""
    r = loaded.ok("SELECT INBOX")
    assert b"* 3 RECENT" in r.untagged and r.matching(rb"\[UNSEEN 1\]")
    assert not r.matching(rb"^\* LIST")


def test_no_recent_flag_and_claims_left_for_rev1(rev2, imap_script):
    """\\Recent does not exist for rev2 (RFC 9051 §2.3.2); a rev1 session still gets it."""
    rev2.ok("SELECT INBOX")
    r = rev2.ok("FETCH 1:* FLAGS")
    assert not r.matching(rb"\\Recent")
    other = imap_script(login=True)
    r = other.ok("SELECT INBOX")
    assert b"* 3 RECENT" in r.untagged


def test_new_mail_exists_without_recent(rev2, imap_script):
    """Another session's APPEND shows as EXISTS only."""
    rev2.ok("SELECT INBOX")
    other = imap_script(login=True)
    append(other, SIMPLE)
    assert rev2.ok("NOOP").untagged == [b"* 4 EXISTS"]


def test_search_answers_esearch(rev2):
    """RFC 9051 §6.4.4: SEARCH without RETURN answers ESEARCH ... ALL."""
    rev2.ok("SELECT INBOX")
    r = rev2.ok("SEARCH SUBJECT kumquat")
    assert r.untagged == [b'* ESEARCH (TAG "' + r.tag.encode() + b'") ALL 1,3']
    r = rev2.ok("UID SEARCH ALL")
    assert r.untagged == [b'* ESEARCH (TAG "' + r.tag.encode() + b'") UID ALL 1:3']
    r = rev2.ok("SEARCH SUBJECT nothing-like-this")
    assert r.untagged == [b'* ESEARCH (TAG "' + r.tag.encode() + b'")']
    r = rev2.ok("SEARCH RETURN (COUNT) ALL")
    assert r.untagged == [b'* ESEARCH (TAG "' + r.tag.encode() + b'") COUNT 3']


def test_rev1_search_unchanged(loaded):
    """A rev1 session still gets ``* SEARCH``."""
    loaded.ok("SELECT INBOX")
    assert loaded.ok("SEARCH ALL").untagged == [b"* SEARCH 1 2 3"]


def test_status_deleted_and_size(rev2):
    """RFC 9051 §6.3.11: DELETED counts \\Deleted messages; SIZE is the total size."""
    rev2.ok("SELECT INBOX")
    rev2.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    rev2.ok("UNSELECT")
    size = 2 * len(SIMPLE) + len(MULTIPART)
    r = rev2.ok("STATUS INBOX (MESSAGES DELETED SIZE)")
    assert r.untagged == [b'* STATUS "INBOX" (MESSAGES 3 DELETED 1 SIZE %d)' % size]


def test_status_recent_refused_in_rev2(rev2, imap_script):
    """RFC 9051 has no RECENT status item; rev1 sessions keep it."""
    rev2.bad("STATUS INBOX (RECENT)")
    other = imap_script(login=True)
    assert other.ok("STATUS INBOX (RECENT)").untagged == [b'* STATUS "INBOX" (RECENT 3)']


def test_select_while_selected_sends_closed(rev2):
    """RFC 9051 §7.1: ``* OK [CLOSED]`` marks the end of the previous mailbox."""
    rev2.ok("CREATE Other")
    rev2.ok("SELECT INBOX")
    r = rev2.ok("EXAMINE Other")
    assert r.untagged[0].startswith(b"* OK [CLOSED]")


def test_utf8_mailbox_names(rev2):
    """RFC 9051 §5.1: names are UTF-8 on the wire; "&" is just a character."""
    name = "Ünïcode & more"
    rev2.ok(f'CREATE "{name}"'.encode())
    r = rev2.ok('LIST "" "*"')
    assert r.matching(f'"{name}"'.encode()), r.untagged
    r = rev2.ok(f'STATUS "{name}" (MESSAGES)'.encode())
    assert r.untagged == [f'* STATUS "{name}" (MESSAGES 0)'.encode()]


def test_rev1_names_stay_modified_utf7(loaded):
    """Without rev2 the same name goes out in modified UTF-7 (RFC 3501 §5.1.3)."""
    loaded.ok('CREATE "&ANw-ber"')
    assert loaded.ok('LIST "" "&ANw-ber"').matching(rb'"&ANw-ber"')


def test_fetch_binary_in_rev2(rev2):
    """FETCH BINARY is part of IMAP4rev2 (RFC 9051 §6.4.5): decoded content."""
    rev2.ok("SELECT INBOX")
    r = rev2.ok("FETCH 2 BINARY.PEEK[2]")
    assert r.untagged == [b"* 2 FETCH (BINARY[2] ~{6}\r\n\x00\x01\x02\x03\x04\x05)"]


def test_enable_rev2_needs_authentication(imap_script):
    """ENABLE is valid only after login."""
    imap_script().bad("ENABLE IMAP4rev2")
