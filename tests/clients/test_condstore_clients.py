"""imapclient against CONDSTORE / QRESYNC (RFC 7162) on an in-process node."""

from __future__ import annotations

from imapclient import IMAPClient

MSG = (b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\n"
       b"Subject: condstore kumquat\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
       b"Message-ID: <cs@example.org>\r\n\r\nbody\r\n")


def connect(imap_server) -> IMAPClient:
    """A logged-in imapclient with four messages in INBOX (modseqs 1-4)."""
    c = IMAPClient(imap_server.host, port=imap_server.port, ssl=False)
    c.login("alice", "secret")
    for _ in range(4):
        c.append("INBOX", MSG)
    return c


def test_imapclient_condstore_flow(imap_server):
    """imapclient: capabilities, enable, HIGHESTMODSEQ in select_folder and
    folder_status, FETCH MODSEQ, CHANGEDSINCE, and a conditional STORE."""
    with connect(imap_server) as c:
        assert c.has_capability("CONDSTORE") and c.has_capability("QRESYNC")
        assert c.enable("CONDSTORE") == [b"CONDSTORE"]
        info = c.select_folder("INBOX")
        assert info[b"HIGHESTMODSEQ"] == 4
        assert c.folder_status("INBOX", ["HIGHESTMODSEQ"])[b"HIGHESTMODSEQ"] == 4
        c.add_flags([2, 3], [b"$Seen-by-cs"])  # modseq 5
        data = c.fetch([1, 2, 3, 4], ["FLAGS"], modifiers=["CHANGEDSINCE 4"])
        assert sorted(data) == [2, 3]
        assert data[2][b"MODSEQ"] == (5,)
        assert c.fetch([1], ["MODSEQ"])[1][b"MODSEQ"] == (1,)
        typ, text = c._imap._simple_command("UID", "STORE", "1:3", "(UNCHANGEDSINCE 4)",
                                             "+FLAGS.SILENT", r"(\Flagged)")
        assert typ == "OK"
        assert c._imap.untagged_responses.get("MODIFIED") == [b"2:3"]
        c.unselect_folder()


def test_imapclient_qresync_resync(imap_server):
    """A QRESYNC client caches (UIDVALIDITY, HIGHESTMODSEQ), changes happen elsewhere,
    and one SELECT (QRESYNC ...) brings it up to date: VANISHED (EARLIER) + FETCH."""
    with connect(imap_server) as c:
        info = c.select_folder("INBOX")
        uidvalidity, modseq = info[b"UIDVALIDITY"], info[b"HIGHESTMODSEQ"]
        c.close_folder()
        with IMAPClient(imap_server.host, port=imap_server.port, ssl=False) as other:
            other.login("alice", "secret")
            other.select_folder("INBOX")
            other.add_flags([1], [r"\Deleted"])
            other.expunge()
            other.add_flags([2], [r"\Answered"])  # imapclient addresses UIDs
        assert c.enable("QRESYNC") == [b"QRESYNC"]
        typ, _ = c._imap._simple_command("SELECT", "INBOX",
                                         f"(QRESYNC ({uidvalidity} {modseq} 1:4))")
        assert typ == "OK"
        untagged = c._imap.untagged_responses
        assert untagged.get("VANISHED") == [b"(EARLIER) 1"]
        fetched = untagged.get("FETCH")
        assert fetched == [b"1 (UID 2 FLAGS (\\Answered) MODSEQ (7))"]
        assert c.select_folder("INBOX")[b"EXISTS"] == 3  # [CLOSED] does not confuse it
