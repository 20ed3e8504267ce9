"""imaplib2 and imapclient against a real `twistd clustermail` process: COMPRESS, IDLE,
MOVE, UIDPLUS, CONDSTORE, QRESYNC, SORT, THREAD (issue "Modern IMAP", item 4)."""

from __future__ import annotations

import re
import threading

import imaplib2
import pytest
from imapclient import IMAPClient

pytestmark = pytest.mark.e2e


def message(i: int, subject: str, refs: str = "") -> bytes:
    """A small message; ``refs`` becomes In-Reply-To/References when given."""
    extra = f"In-Reply-To: {refs}\r\nReferences: {refs}\r\n" if refs else ""
    return (f"From: user{i}@example.org\r\nTo: alice@example.org\r\nSubject: {subject}\r\n"
            f"Date: Mon, {i + 1} Feb 2026 10:00:00 +0000\r\nMessage-ID: <m{i}@example.org>\r\n"
            f"{extra}\r\nbody {i} " + "x" * (200 * i) + "\r\n").encode()


@pytest.fixture
def node(clustermail_node):
    """A real node with alice's INBOX holding a small thread and an unrelated message."""
    node = clustermail_node(users=["alice:secret"])
    with IMAPClient(node.host, port=node.port, ssl=False) as c:
        c.login("alice", "secret")
        c.append("INBOX", message(0, "zebra plans"))
        c.append("INBOX", message(1, "Re: zebra plans", "<m0@example.org>"))
        c.append("INBOX", message(2, "apple"))
    return node


def test_imaplib2_compress_idle_sort_thread_move(node):
    """imaplib2 with COMPRESS=DEFLATE: SELECT, SORT, THREAD, UID MOVE, IDLE push, all compressed."""
    m = imaplib2.IMAP4(node.host, node.port)
    try:
        m.login("alice", "secret")
        assert "COMPRESS=DEFLATE" in m.capabilities
        m.enable_compression()
        assert m.compressor is not None
        assert m.select("INBOX")[1] == [b"3"]
        assert m.sort("(SUBJECT)", "UTF-8", "ALL")[1] == [b"3 1 2"]
        typ, data = m.thread("REFERENCES", "UTF-8", "ALL")
        assert typ == "OK" and data == [b"(1 2)(3)"]
        m.create("Done")
        typ, data = m.uid("MOVE", "3", "Done")
        assert typ == "OK"
        assert m.status("Done", "(MESSAGES)")[1] == [b'"Done" (MESSAGES 1)']
        got = threading.Event()
        m.idle(timeout=10, callback=lambda args: got.set())
        other = imaplib2.IMAP4(node.host, node.port)
        other.login("alice", "secret")
        other.append("INBOX", None, None, message(5, "pushed"))
        other.logout()
        assert got.wait(10)
        assert m.response("EXISTS")[1][-1] == b"3"
    finally:
        m.logout()


def test_imaplib2_uidplus_and_condstore(node):
    """imaplib2 sees APPENDUID (UIDPLUS) and CONDSTORE's MODSEQ / UNCHANGEDSINCE."""
    m = imaplib2.IMAP4(node.host, node.port)
    try:
        m.login("alice", "secret")
        typ, data = m.append("INBOX", None, None, message(7, "uidplus"))
        assert typ == "OK"
        code = m.response("APPENDUID")[1][-1]
        assert code.split()[-1] == b"4"
        m.select("INBOX")
        typ, data = m.fetch("1", "(MODSEQ)")
        assert typ == "OK" and b"MODSEQ (" in data[0]
        modseq = int(data[0].split(b"MODSEQ (")[1].split(b")")[0])
        typ, data = m.uid("STORE", "1", f"(UNCHANGEDSINCE {modseq})", "+FLAGS", r"(\Flagged)")
        assert typ == "OK"
        typ, data = m.uid("STORE", "1", f"(UNCHANGEDSINCE {modseq})", "+FLAGS", r"(\Seen)")
        assert typ == "OK" and m.response("MODIFIED")[1][-1] == b"1"
    finally:
        m.logout()


def test_imapclient_qresync_move_uidplus_idle(node):
    """imapclient: UIDPLUS append UID, MOVE, QRESYNC resync after a change, IDLE push."""
    with IMAPClient(node.host, port=node.port, ssl=False) as c:
        c.login("alice", "secret")
        assert c.enable("QRESYNC") == [b"QRESYNC"]
        info = c.select_folder("INBOX")
        uidvalidity, highest = info[b"UIDVALIDITY"], info[b"HIGHESTMODSEQ"]
        reply = c.append("INBOX", message(9, "later"))
        assert re.match(rb"\[APPENDUID \d+ 4\]", reply), reply
        c.create_folder("Moved")
        c.move([2], "Moved")
        c.unselect_folder()
        typ, data = c._imap._simple_command(
            "SELECT", "INBOX", f"(QRESYNC ({uidvalidity} {highest}))")
        assert typ == "OK"
        vanished = c._imap.untagged_responses.get("VANISHED", [])
        assert any(b"2" in v for v in vanished), vanished
        c.select_folder("INBOX")
        c.idle()
        with IMAPClient(node.host, port=node.port, ssl=False) as other:
            other.login("alice", "secret")
            other.append("INBOX", message(10, "ping"))
        responses = c.idle_check(timeout=10)
        c.idle_done()
        assert any(r[1] == b"EXISTS" for r in responses)
