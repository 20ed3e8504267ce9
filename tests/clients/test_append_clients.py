"""Client libraries against MULTIAPPEND (RFC 3502) and UTF8=ACCEPT (RFC 6855)."""

from __future__ import annotations

import datetime as dt
import imaplib
import re

from imapclient import IMAPClient

MSG1 = b"From: a@example.org\r\nSubject: first\r\n\r\nbody one\r\n"
MSG2 = b"From: b@example.org\r\nSubject: second\r\n\r\nbody two\r\n"


def test_imapclient_multiappend(imap_server):
    """imapclient.multiappend() stores every message with its flags and date in one APPEND."""
    when = dt.datetime(2020, 5, 17, 8, 30, tzinfo=dt.UTC)
    with IMAPClient(imap_server.host, port=imap_server.port, ssl=False) as c:
        c.login("alice", "secret")
        assert b"MULTIAPPEND" in c.capabilities()
        c.create_folder("été")
        resp = c.multiappend("été", [MSG1, {"msg": MSG2, "flags": ["\\Seen"], "date": when}])
        typ, data = resp
        assert typ == "OK" and re.match(rb"\[APPENDUID \d+ 1:2\]", data[0]), resp
        c.select_folder("été")
        data = c.fetch([1, 2], ["FLAGS", "INTERNALDATE", "BODY.PEEK[]"])
        assert data[1][b"BODY[]"] == MSG1 and data[2][b"BODY[]"] == MSG2
        assert b"\\Seen" in data[2][b"FLAGS"]
        assert data[2][b"INTERNALDATE"].replace(tzinfo=None) == dt.datetime(2020, 5, 17, 8, 30)


def test_imapclient_utf8_folder_names(imap_server):
    """After ENABLE UTF8=ACCEPT, imapclient (folder_encode off) sees UTF-8 folder names."""
    with IMAPClient(imap_server.host, port=imap_server.port, ssl=False) as c:
        c.login("alice", "secret")
        c.create_folder("Grüße/été")
        assert ("Grüße/été" in [name for _, _, name in c.list_folders()])
        assert c.enable("UTF8=ACCEPT") == [b"UTF8=ACCEPT"]
        c.folder_encode = False
        names = [name for _, _, name in c.list_folders()]
        assert "Grüße/été".encode() in names and "Grüße".encode() in names


def test_imaplib_utf8_accept_names(imap_server):
    """imaplib in UTF-8 mode (ENABLE UTF8=ACCEPT) creates, lists and selects UTF-8 names."""
    m = imaplib.IMAP4(imap_server.host, imap_server.port)
    m.login("alice", "secret")
    typ, data = m.enable("UTF8=ACCEPT")
    assert typ == "OK" and m.untagged_responses.get("ENABLED") == [b"UTF8=ACCEPT"]
    assert m.create('"Zürich & Co"')[0] == "OK"
    typ, boxes = m.list('""', '"Z*"')
    assert boxes == ['(\\HasNoChildren) "/" "Zürich & Co"'.encode()]
    assert m.select('"Zürich & Co"')[0] == "OK"
    m.logout()
