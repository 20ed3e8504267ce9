"""Real client libraries against IMAP4rev2 mode and NOTIFY: imaplib and imapclient."""

from __future__ import annotations

import imaplib
import time

from imapclient import IMAPClient

MSG = (b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\n"
       b"Subject: rev2 client test\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
       b"Message-ID: <rev2@example.org>\r\n\r\nbody\r\n")


def test_imaplib_rev2_session(imap_server):
    """imaplib: ENABLE IMAP4rev2, SELECT without RECENT, UID SEARCH answered by ESEARCH."""
    m = imaplib.IMAP4(imap_server.host, imap_server.port)
    assert "IMAP4REV2" in m.capabilities
    m.login("alice", "secret")
    assert m.enable("IMAP4rev2")[0] == "OK"
    assert m.response("ENABLED") == ("ENABLED", [b"IMAP4rev2"])
    for _ in range(2):
        assert m.append("INBOX", None, None, MSG)[0] == "OK"
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"2"]
    assert "RECENT" not in m.untagged_responses
    typ, data = m.uid("SEARCH", "ALL")
    assert typ == "OK"
    assert m.response("ESEARCH")[1][0].endswith(b"UID ALL 1:2")
    typ, data = m.fetch("1", "(FLAGS)")
    assert data == [b"1 (FLAGS ())"]
    m.logout()


def test_imapclient_rev2_status_and_fetch(imap_server):
    """imapclient: enable(), select_folder without RECENT, STATUS DELETED and SIZE."""
    with IMAPClient(imap_server.host, port=imap_server.port, ssl=False) as c:
        c.login("alice", "secret")
        assert c.enable("IMAP4rev2") == [b"IMAP4rev2"]
        c.append("INBOX", MSG, flags=["\\Deleted"])
        info = c.select_folder("INBOX")
        assert info[b"EXISTS"] == 1 and b"RECENT" not in info
        assert c.get_flags([1]) == {1: (b"\\Deleted",)}
        c.unselect_folder()
        status = c.folder_status("INBOX", ["MESSAGES", "DELETED", "SIZE"])
        assert status == {b"MESSAGES": 1, b"DELETED": 1, b"SIZE": len(MSG)}


def test_imaplib_notify_status_between_commands(imap_server):
    """imaplib: NOTIFY SET, another client appends, the unsolicited STATUS is parsed."""
    imaplib.Commands.setdefault("NOTIFY", ("AUTH", "SELECTED"))
    watcher = imaplib.IMAP4(imap_server.host, imap_server.port)
    watcher.login("alice", "secret")
    assert "NOTIFY" in watcher.capabilities
    watcher.create("Lists")
    typ, _ = watcher._simple_command("NOTIFY", "SET", "(mailboxes Lists (MessageNew "
                                                      "MessageExpunge))")
    assert typ == "OK"
    other = imaplib.IMAP4(imap_server.host, imap_server.port)
    other.login("alice", "secret")
    assert other.append("Lists", None, None, MSG)[0] == "OK"
    time.sleep(0.2)  # the push is sent at once; give it time to arrive
    watcher.noop()
    typ, data = watcher.response("STATUS")
    assert data[0].startswith(b'"Lists" (MESSAGES 1 UIDNEXT 2 ')
    other.logout()
    watcher.logout()
