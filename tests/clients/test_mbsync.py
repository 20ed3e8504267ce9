"""mbsync (Debian ``isync``) against a real node: full sync into Maildir, then two-way flag
changes, a new message each way and a local deletion expunged on the server."""

from __future__ import annotations

import pytest

from .fixtures import (
    ACCOUNT,
    assert_maildir_matches,
    change_both_sides,
    check_both_sides,
    connect,
    maildir_messages,
    wire_name,
)
from .mbsync import mbsyncrc, sync

pytestmark = pytest.mark.clients


def test_mbsync_full_sync_then_two_way_changes(real_node, tmp_path):
    """Every message of every folder lands byte for byte; flags, new mail and deletions
    made on either side agree after the next sync."""
    rc = mbsyncrc(tmp_path, real_node.port)
    mail = tmp_path / "mail"
    sync(rc)
    for folder in ACCOUNT:  # isync 1.4 keeps the modified UTF-7 name on disk
        assert_maildir_matches(mail / wire_name(folder), folder, added_header="X-TUID")

    imap = connect(real_node.host, real_node.port)
    changes = change_both_sides(imap, mail / "INBOX", mail / wire_name("Café/Ünïcode"))
    sync(rc)
    check_both_sides(imap, changes, mail / "INBOX", mail / "Work")
    imap.logout()

    before = set(maildir_messages(mail / "INBOX"))
    sync(rc)  # a third run changes nothing
    assert set(maildir_messages(mail / "INBOX")) == before
