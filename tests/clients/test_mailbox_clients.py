"""imapclient against LIST-EXTENDED / SPECIAL-USE / STATUS=SIZE / MAILBOXID / METADATA."""

from __future__ import annotations

import imaplib

from imapclient import IMAPClient
from imapclient.imapclient import ARCHIVE, DRAFTS, SENT, TRASH


def client(imap_server) -> IMAPClient:
    c = IMAPClient(imap_server.host, port=imap_server.port, ssl=False)
    c.login("alice", "secret")
    return c


def test_list_folders_shows_special_use(imap_server):
    """list_folders() parses the special-use attributes of the default mailboxes."""
    with client(imap_server) as c:
        flags = {name: set(f) for f, _, name in c.list_folders()}
        assert flags["Sent"] == {b"\\HasNoChildren", SENT}
        assert TRASH in flags["Trash"] and DRAFTS in flags["Drafts"]
        assert flags["INBOX"] == {b"\\HasNoChildren"}


def test_find_special_folder_by_attribute(imap_server):
    """find_special_folder() finds a renamed special mailbox by its attribute alone."""
    with client(imap_server) as c:
        c.rename_folder("Trash", "Corbeille")
        assert c.find_special_folder(TRASH) == "Corbeille"
        assert c.find_special_folder(SENT) == "Sent"


def test_create_special_use_then_find(imap_server):
    """A raw CREATE ... (USE (\\Archive)) is found by find_special_folder()."""
    with client(imap_server) as c:
        c.delete_folder("Archive")
        typ, _ = c._imap._simple_command("CREATE", "Keep", "(USE (\\Archive))")
        assert typ == "OK"
        assert c.find_special_folder(ARCHIVE) == "Keep"


def test_folder_status_size(imap_server):
    """folder_status() reads SIZE (RFC 8438), MESSAGES and MAILBOXID (RFC 8474)."""
    msg = b"Subject: hi\r\n\r\nbody\r\n"
    with client(imap_server) as c:
        c.append("Sent", msg)
        st = c.folder_status("Sent", ["MESSAGES", "SIZE", "MAILBOXID"])
        assert st[b"MESSAGES"] == 1 and st[b"SIZE"] == len(msg)
        (mailbox_id,) = st[b"MAILBOXID"]  # RFC 8474 §4.2: a parenthesised objectid
        assert isinstance(mailbox_id, bytes) and len(mailbox_id) == 32


def test_imaplib_extended_list_and_metadata(imap_server, monkeypatch):
    """imaplib: LIST with RETURN (STATUS ...) and GETMETADATA/SETMETADATA round trip."""
    for name in ("GETMETADATA", "SETMETADATA"):
        monkeypatch.setitem(imaplib.Commands, name, ("AUTH", "SELECTED"))
    m = imaplib.IMAP4(imap_server.host, imap_server.port)
    m.login("alice", "secret")
    typ, data = m._simple_command("LIST", '""', '"INBOX"', "RETURN", "(STATUS (MESSAGES))")
    assert typ == "OK"
    assert m.untagged_responses.get("STATUS") == [b'"INBOX" (MESSAGES 0)']
    typ, _ = m._simple_command("SETMETADATA", "INBOX", '(/private/comment "note")')
    assert typ == "OK"
    typ, _ = m._simple_command("GETMETADATA", "INBOX", "/private/comment")
    assert typ == "OK"
    assert m.untagged_responses.get("METADATA") == [b'"INBOX" (/private/comment "note")']
    m.logout()
