"""The mailbox half of OBJECTID (RFC 8474 §4): MAILBOXID."""

from __future__ import annotations

import re

ID = rb"\(([A-Za-z0-9_-]{1,255})\)"  # RFC 8474 §6 objectid


def mailbox_id(c, name: str) -> bytes:
    line = c.ok(f"STATUS {name} (MAILBOXID)").untagged[0]
    m = re.fullmatch(rb'\* STATUS "?[^"]*"? \(MAILBOXID ' + ID + rb"\)", line)
    assert m, line
    return m.group(1)


def test_create_returns_mailboxid(imap_script):
    """CREATE's tagged OK carries [MAILBOXID (id)], the id STATUS reports (RFC 8474 §4.1)."""
    c = imap_script(login=True)
    r = c.ok("CREATE foo")
    m = re.match(rb"\S+ OK \[MAILBOXID " + ID + rb"\]", r.tagged)
    assert m, r.tagged
    assert mailbox_id(c, "foo") == m.group(1)


def test_select_and_examine_report_mailboxid(imap_script):
    """SELECT and EXAMINE send * OK [MAILBOXID (id)] (RFC 8474 §4.1)."""
    c = imap_script(login=True)
    want = mailbox_id(c, "INBOX")
    for verb in ("SELECT", "EXAMINE"):
        r = c.ok(f"{verb} INBOX")
        assert any(line.startswith(b"* OK [MAILBOXID (%s)]" % want) for line in r.untagged)


def test_rename_keeps_id_and_recreate_changes_it(imap_script):
    """RENAME keeps the id; DELETE + CREATE of the same name gives a new one (RFC 8474 §4)."""
    c = imap_script(login=True)
    c.ok("CREATE foo")
    before = mailbox_id(c, "foo")
    c.ok("RENAME foo bar")
    assert mailbox_id(c, "bar") == before
    c.ok("DELETE bar")
    c.ok("CREATE bar")
    assert mailbox_id(c, "bar") != before


def test_ids_distinct(imap_script):
    """Every mailbox has its own id."""
    c = imap_script(login=True)
    ids = {mailbox_id(c, name) for name in ("INBOX", "Sent", "Trash", "Drafts")}
    assert len(ids) == 4


def test_list_status_mailboxid(imap_script):
    """MAILBOXID works as a LIST-STATUS item too (RFC 8474 §4.2, RFC 5819)."""
    c = imap_script(login=True)
    want = mailbox_id(c, "INBOX")
    r = c.ok('LIST "" "INBOX" RETURN (STATUS (MAILBOXID))')
    assert r.untagged[1] == b'* STATUS "INBOX" (MAILBOXID (%s))' % want
