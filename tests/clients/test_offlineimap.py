"""offlineimap3 (Debian ``offlineimap3``) against a real node: full sync into Maildir, then
two-way flag changes, a new message each way and a local deletion expunged on the server."""

from __future__ import annotations

from pathlib import Path

import pytest

from .fixtures import (
    ACCOUNT,
    PASSWORD,
    USER,
    assert_maildir_matches,
    change_both_sides,
    check_both_sides,
    connect,
    maildir_messages,
    require,
    run,
)

pytestmark = pytest.mark.clients


def offlineimaprc(tmp: Path, port: int) -> Path:
    """The recipe from shared/clients, with UTF-8 folder names on disk."""
    rc = tmp / "offlineimaprc"
    rc.write_text(f"""[general]
accounts = test
metadata = {tmp}/meta
ui = basic

[Account test]
localrepository = local
remoterepository = remote
utf8foldernames = yes

[Repository local]
type = Maildir
localfolders = {tmp}/mail

[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {port}
remoteuser = {USER}
remotepass = {PASSWORD}
ssl = no
starttls = no
maxconnections = 2
timeout = 20
""")
    return rc


def sync(rc: Path) -> str:
    result = run([require("offlineimap"), "-c", str(rc), "-o", "-u", "basic"])
    output = result.stdout + result.stderr
    assert "ERROR" not in output and "Traceback" not in output, output[-4000:]
    return output


def local_dir(mail: Path, folder: str) -> Path:
    """offlineimap's Maildir uses "." as the hierarchy separator."""
    return mail / folder.replace("/", ".")


def test_offlineimap_full_sync_then_two_way_changes(real_node, tmp_path):
    """Every message of every folder (the non-ASCII one under its UTF-8 name) lands byte for
    byte; flags, new mail and deletions on either side agree after the next sync."""
    rc = offlineimaprc(tmp_path, real_node.port)
    mail = tmp_path / "mail"
    sync(rc)
    for folder in ACCOUNT:
        assert_maildir_matches(local_dir(mail, folder), folder)

    imap = connect(real_node.host, real_node.port)
    changes = change_both_sides(imap, mail / "INBOX", local_dir(mail, "Café/Ünïcode"))
    sync(rc)
    check_both_sides(imap, changes, mail / "INBOX", mail / "Work")
    imap.logout()

    before = set(maildir_messages(mail / "INBOX"))
    sync(rc)  # a third run changes nothing
    assert set(maildir_messages(mail / "INBOX")) == before
