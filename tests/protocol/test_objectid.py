"""Scripted conversations: OBJECTID message ids (RFC 8474 §5, §6) -- FETCH EMAILID / THREADID
and SEARCH EMAILID / THREADID."""

from __future__ import annotations

import re

from tests.protocol.conftest import MULTIPART, SIMPLE, append

ROOT = SIMPLE  # Message-ID: <msg1@example.org>
REPLY = (
    b"From: Bob <bob@example.org>\r\n"
    b"Subject: Re: Hello kumquat\r\n"
    b"Message-ID: <reply1@example.org>\r\n"
    b"In-Reply-To: <msg1@example.org>\r\n"
    b"References: <msg1@example.org>\r\n"
    b"\r\n"
    b"Hi Alice\r\n"
)
REPLY2 = (
    b"From: Alice <alice@example.org>\r\n"
    b"Subject: Re: Re: Hello kumquat\r\n"
    b"Message-ID: <reply2@example.org>\r\n"
    b"In-Reply-To: <reply1@example.org>\r\n"
    b"References: <msg1@example.org>\r\n <reply1@example.org>\r\n"
    b"\r\n"
    b"Hi again\r\n"
)
NO_IDS = b"Subject: no ids at all\r\n\r\nbody\r\n"
OBJECTID = rb"[A-Za-z0-9_-]{1,255}"


def _ids(c, spec: str, item: str) -> list[str]:
    """The EMAILID or THREADID values FETCH returns for ``spec``, in order."""
    out = []
    for line in c.ok(f"FETCH {spec} {item}").untagged:
        m = re.search(item.encode() + rb" \((" + OBJECTID + rb")\)", line)
        assert m, line
        out.append(m.group(1).decode())
    return out


def _loaded(c, *messages):
    for msg in messages:
        append(c, msg)
    c.ok("SELECT INBOX")
    return c


def test_fetch_emailid_format(imap_script):
    """FETCH EMAILID answers EMAILID (objectid) (RFC 8474 §5.1, §7 objectid)."""
    c = _loaded(imap_script(login=True), ROOT, MULTIPART)
    lines = c.ok("FETCH 1:2 (EMAILID)").untagged
    for n, line in enumerate(lines, 1):
        assert re.fullmatch(rb"\* %d FETCH \(EMAILID \(M[0-9a-f]{24}\)\)" % n, line)
    a, b = _ids(c, "1:2", "EMAILID")
    assert a != b


def test_emailid_kept_by_copy_and_move(imap_script):
    """The same message copied or moved to another mailbox keeps its EMAILID (§5.1 MUST)."""
    c = _loaded(imap_script(login=True), ROOT, MULTIPART)
    first, second = _ids(c, "1:2", "EMAILID")
    c.ok("CREATE Other")
    c.ok("COPY 1 Other")
    c.ok("MOVE 2 Other")
    c.ok("SELECT Other")
    assert _ids(c, "1:2", "EMAILID") == [first, second]
    assert _ids(c, "1:2", "THREADID") != []


def test_emailid_stable_across_sessions_and_users(imap_script):
    """EMAILID is derived from the content: another session, or another user holding
    the same message, sees the same id (so every cluster node agrees)."""
    c = _loaded(imap_script(login=True), ROOT)
    (eid,) = _ids(c, "1", "EMAILID")
    other = _loaded(imap_script(login=True, user="bob"), ROOT)
    assert _ids(other, "1", "EMAILID") == [eid]
    again = imap_script(login=True)
    again.ok("EXAMINE INBOX")
    assert _ids(again, "1", "EMAILID") == [eid]


def test_threadid_groups_replies(imap_script):
    """A message and its replies share THREADID; an unrelated message does not (§5.2)."""
    c = _loaded(imap_script(login=True), ROOT, REPLY, REPLY2, MULTIPART, NO_IDS)
    tids = _ids(c, "1:5", "THREADID")
    assert all(re.fullmatch(r"T[0-9a-f]{16}", t) for t in tids)
    assert tids[0] == tids[1] == tids[2]
    assert len({tids[0], tids[3], tids[4]}) == 3


def test_threadid_kept_by_copy(imap_script):
    """A copy keeps its THREADID (same content, §5.2)."""
    c = _loaded(imap_script(login=True), REPLY)
    (tid,) = _ids(c, "1", "THREADID")
    c.ok("CREATE Other")
    c.ok("COPY 1 Other")
    c.ok("SELECT Other")
    assert _ids(c, "1", "THREADID") == [tid]


def test_search_emailid_and_threadid(imap_script):
    """SEARCH EMAILID / THREADID find exactly the messages with that id (§6)."""
    c = _loaded(imap_script(login=True), ROOT, REPLY, MULTIPART, ROOT)
    eids = _ids(c, "1:4", "EMAILID")
    tids = _ids(c, "1:4", "THREADID")
    assert c.ok(f"SEARCH EMAILID {eids[0]}").untagged == [b"* SEARCH 1 4"]
    assert c.ok(f"SEARCH EMAILID {eids[2]}").untagged == [b"* SEARCH 3"]
    assert c.ok(f"UID SEARCH THREADID {tids[0]}").untagged == [b"* SEARCH 1 2 4"]
    assert c.ok(f"SEARCH NOT THREADID {tids[0]}").untagged == [b"* SEARCH 3"]
    assert c.ok(f"SEARCH THREADID {tids[0]} EMAILID {eids[1]}").untagged == [b"* SEARCH 2"]
    assert c.ok("SEARCH EMAILID Mnosuchid").untagged == [b"* SEARCH"]
    assert c.ok(f"SEARCH EMAILID {eids[0].upper()}").untagged == [b"* SEARCH"]  # exact


def test_search_objectid_malformed_is_bad(imap_script):
    """An objectid is 1*255 of ALPHA / DIGIT / "_" / "-": anything else is BAD (§7)."""
    c = _loaded(imap_script(login=True), ROOT)
    for bad in ("SEARCH EMAILID", "SEARCH EMAILID M12.3", "SEARCH THREADID T!x",
                f"SEARCH EMAILID {'M' * 256}", 'SEARCH EMAILID "M123"', "SEARCH THREADID ()"):
        c.bad(bad)
    assert c.ok(f"SEARCH EMAILID {'M' * 255}").untagged == [b"* SEARCH"]
    assert c.ok("SEARCH THREADID a_b-c").untagged == [b"* SEARCH"]


def test_fetch_objectids_with_other_items(imap_script):
    """EMAILID and THREADID combine with other items and with UID FETCH."""
    c = _loaded(imap_script(login=True), ROOT)
    line = c.ok("UID FETCH 1 (FLAGS EMAILID THREADID)").untagged[0]
    assert re.fullmatch(rb"\* 1 FETCH \(UID 1 FLAGS \(\\Recent\) EMAILID \(M[0-9a-f]{24}\) "
                        rb"THREADID \(T[0-9a-f]{16}\)\)", line)


def test_capability_advertises_objectid(imap_script):
    """OBJECTID is in CAPABILITY once both halves (MAILBOXID, EMAILID/THREADID) exist."""
    c = imap_script(login=True)
    assert b" OBJECTID" in c.ok("CAPABILITY").untagged[0]
