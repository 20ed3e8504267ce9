"""imapclient's sort() and thread() (RFC 5256) against an in-process node."""

from __future__ import annotations

from imapclient import IMAPClient


def _msg(n: int, subject: str, refs: str = "") -> bytes:
    head = (f"From: user{5 - n}@example.org\r\nSubject: {subject}\r\n"
            f"Date: Mon, 1 Jan 2024 10:0{n}:00 +0000\r\nMessage-ID: <t{n}@example.org>\r\n")
    if refs:
        head += f"References: {refs}\r\n"
    return head.encode() + b"\r\n" + b"body\r\n" * n


def _fill(c: IMAPClient) -> None:
    c.append("INBOX", _msg(1, "Plans"))
    c.append("INBOX", _msg(2, "Re: Plans", "<t1@example.org>"))
    c.append("INBOX", _msg(3, "Weather"))
    c.append("INBOX", _msg(4, "Re: Plans", "<t1@example.org> <t2@example.org>"))
    c.select_folder("INBOX")


def test_imapclient_sort(imap_server):
    """imapclient.sort(): SORT / UID SORT with criteria lists and REVERSE."""
    with IMAPClient(imap_server.host, port=imap_server.port, ssl=False) as c:
        c.login("alice", "secret")
        _fill(c)
        assert c.has_capability("SORT")
        assert c.sort(["SUBJECT"]) == [1, 2, 4, 3]
        assert c.sort(["REVERSE DATE"]) == [4, 3, 2, 1]
        assert c.sort(["FROM"]) == [4, 3, 2, 1]  # user1 .. user4
        assert c.sort(["SIZE"], ["NOT", "SUBJECT", "weather"]) == [1, 2, 4]
        c.use_uid = False
        assert c.sort("ARRIVAL", "UNSEEN", charset="US-ASCII") == [1, 2, 3, 4]


def test_imapclient_thread(imap_server):
    """imapclient.thread(): REFERENCES and ORDEREDSUBJECT parse into nested tuples."""
    with IMAPClient(imap_server.host, port=imap_server.port, ssl=False) as c:
        c.login("alice", "secret")
        _fill(c)
        assert c.has_capability("THREAD=REFERENCES")
        assert c.thread() == ((1, 2, 4), (3,))
        assert c.thread("ORDEREDSUBJECT") == ((1, (2,), (4,)), (3,))
        assert c.thread("REFERENCES", ["SUBJECT", "plans"]) == ((1, 2, 4),)
