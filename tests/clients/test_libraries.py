"""Real client libraries against an in-process node: imaplib, imaplib2, imapclient."""

from __future__ import annotations

import imaplib
import threading

import imaplib2
import pytest
from imapclient import IMAPClient

MSG = (b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\n"
       b"Subject: library test kumquat\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
       b"Message-ID: <lib@example.org>\r\n\r\n" + b"line of body text\r\n" * 50)


def test_imaplib_full_flow(imap_server):
    """imaplib: LOGIN, LIST, APPEND, SELECT, partial FETCH, SEARCH, STORE, COPY, EXPUNGE."""
    m = imaplib.IMAP4(imap_server.host, imap_server.port)
    assert m.login("alice", "secret")[0] == "OK"
    assert m.create("Saved")[0] == "OK"  # ("Archive" exists: RFC 6154 defaults)
    typ, boxes = m.list()
    assert typ == "OK" and any(b'"Saved"' in b for b in boxes)
    for _ in range(3):
        assert m.append("INBOX", None, None, MSG)[0] == "OK"
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"3"]
    typ, data = m.fetch("1", "(BODY.PEEK[]<0.30>)")
    assert data[0][1] == MSG[:30]
    typ, data = m.search(None, "SUBJECT", "kumquat")
    assert data == [b"1 2 3"]
    typ, data = m.uid("SEARCH", None, "ALL")
    assert data == [b"1 2 3"]
    m.store("2", "+FLAGS", "(\\Deleted)")
    assert m.copy("1", "Saved")[0] == "OK"
    typ, data = m.expunge()
    assert data == [b"2"]
    assert m.status("Saved", "(MESSAGES)")[1] == [b'"Saved" (MESSAGES 1)']
    m.logout()


def test_imapclient_flow(imap_server):
    """imapclient: folders, append, fetch with parsed ENVELOPE/BODYSTRUCTURE, flags, move."""
    with IMAPClient(imap_server.host, port=imap_server.port, ssl=False) as c:
        c.login("alice", "secret")
        c.create_folder("Work")
        c.append("INBOX", MSG, flags=["\\Flagged"])
        c.append("INBOX", MSG)
        info = c.select_folder("INBOX")
        assert info[b"EXISTS"] == 2 and info[b"UIDNEXT"] == 3
        data = c.fetch([1, 2], ["ENVELOPE", "BODYSTRUCTURE", "FLAGS", "RFC822.SIZE"])
        assert data[1][b"ENVELOPE"].subject == b"library test kumquat"
        assert data[1][b"RFC822.SIZE"] == len(MSG)
        assert b"\\Flagged" in data[1][b"FLAGS"]
        assert c.search(["FLAGGED"]) == [1]
        c.add_flags([2], ["$Later"])
        assert b"$Later" in c.get_flags([2])[2]
        c.move([1], "Work")
        assert c.search("ALL") == [2]
        assert c.folder_status("Work", ["MESSAGES"])[b"MESSAGES"] == 1
        assert c.has_capability("IDLE") and c.has_capability("UIDPLUS")


def test_imapclient_two_sessions(imap_server):
    """Two imapclient sessions on one mailbox see each other's changes."""
    a = IMAPClient(imap_server.host, port=imap_server.port, ssl=False)
    b = IMAPClient(imap_server.host, port=imap_server.port, ssl=False)
    a.login("alice", "secret")
    b.login("alice", "secret")
    a.append("INBOX", MSG)
    a.select_folder("INBOX")
    b.select_folder("INBOX")
    b.append("INBOX", MSG)
    b.set_flags([1], ["\\Deleted"])
    b.expunge()
    responses = a.noop()[1]
    assert responses[:2] == [(1, b"EXPUNGE"), (1, b"EXISTS")]
    assert a.search("ALL") == [2]  # imapclient searches by UID
    a.logout()
    b.logout()


def test_imapclient_idle(imap_server):
    """imapclient IDLE receives EXISTS pushed by another session's APPEND."""
    a = IMAPClient(imap_server.host, port=imap_server.port, ssl=False)
    a.login("alice", "secret")
    a.select_folder("INBOX")
    a.idle()
    other = IMAPClient(imap_server.host, port=imap_server.port, ssl=False)
    other.login("alice", "secret")
    other.append("INBOX", MSG)
    responses = a.idle_check(timeout=5)
    a.idle_done()
    assert (1, b"EXISTS") in responses
    a.logout()
    other.logout()


def test_imaplib2_fetch_search_idle(imap_server):
    """imaplib2: login, append, select, fetch, search and IDLE with a callback."""
    m = imaplib2.IMAP4(imap_server.host, imap_server.port)
    try:
        m.login("alice", "secret")
        m.append("INBOX", None, None, MSG)
        typ, data = m.select("INBOX")
        assert typ == "OK" and data == [b"1"]
        typ, data = m.fetch("1", "(RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK"
        assert b"library test kumquat" in data[0][1]
        assert m.search(None, "TEXT", "body")[1] == [b"1"]
        got = threading.Event()
        result: list = []

        def callback(args):
            result.append(args)
            got.set()

        m.idle(timeout=10, callback=callback)
        other = imaplib.IMAP4(imap_server.host, imap_server.port)
        other.login("alice", "secret")
        other.append("INBOX", None, None, MSG)
        other.logout()
        assert got.wait(10)
        assert result and result[0][0][0] == "OK"
        assert m.response("EXISTS")[1][-1] == b"2"
    finally:
        m.logout()


@pytest.mark.parametrize("password", ["wrong", ""])
def test_imaplib_login_failure(imap_server, password):
    """imaplib sees a failed login as an error it can report, and may retry."""
    m = imaplib.IMAP4(imap_server.host, imap_server.port)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED|Invalid"):
        m.login("alice", password)
    assert m.login("alice", "secret")[0] == "OK"
    m.logout()
