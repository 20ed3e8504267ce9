"""Scripted conversations: SEARCH, STORE, COPY, MOVE."""

from __future__ import annotations

import re

from tests.protocol.conftest import SIMPLE, append


def test_search_basic_keys(loaded):
    """Flag, header and size keys return the right sequence numbers."""
    loaded.ok("SELECT INBOX")
    assert loaded.ok("SEARCH ALL").untagged == [b"* SEARCH 1 2 3"]
    assert loaded.ok("SEARCH SEEN").untagged == [b"* SEARCH 3"]
    assert loaded.ok("SEARCH UNSEEN").untagged == [b"* SEARCH 1 2"]
    assert loaded.ok("SEARCH FLAGGED").untagged == [b"* SEARCH 2"]
    assert loaded.ok("SEARCH KEYWORD $Work").untagged == [b"* SEARCH 3"]
    assert loaded.ok("SEARCH SUBJECT kumquat").untagged == [b"* SEARCH 1 3"]
    assert loaded.ok('SEARCH FROM "bob@example"').untagged == [b"* SEARCH 2"]
    assert loaded.ok("SEARCH LARGER 400").untagged == [b"* SEARCH 2"]


def test_search_text_covers_header_and_body(loaded):
    """TEXT matches header and body; BODY only the body (RFC 3501 §6.4.4)."""
    loaded.ok("SELECT INBOX")
    assert loaded.ok("SEARCH TEXT xylophonist").untagged == [b"* SEARCH 1 3"]
    assert loaded.ok("SEARCH TEXT kumquat").untagged == [b"* SEARCH 1 3"]
    assert loaded.ok("SEARCH BODY kumquat").untagged == [b"* SEARCH"]


def test_search_rfc3501_example(loaded):
    """`SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"` (RFC 3501 §6.4.4 example)."""
    loaded.ok("SELECT INBOX")
    assert loaded.ok('SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"').untagged == [
        b"* SEARCH 2"]


def test_search_or_not_parens_sets(loaded):
    """OR, NOT, parentheses, sequence sets and UID sets combine."""
    loaded.ok("SELECT INBOX")
    assert loaded.ok("SEARCH OR SEEN FLAGGED").untagged == [b"* SEARCH 2 3"]
    assert loaded.ok("SEARCH NOT (SEEN)").untagged == [b"* SEARCH 1 2"]
    assert loaded.ok("SEARCH 2:*").untagged == [b"* SEARCH 2 3"]
    assert loaded.ok("SEARCH UID 1,3").untagged == [b"* SEARCH 1 3"]
    assert loaded.ok("UID SEARCH (OR 1 3) UNSEEN").untagged == [b"* SEARCH 1"]


def test_search_charset_and_literal(loaded):
    """CHARSET UTF-8 with a literal search string; an unknown charset is NO [BADCHARSET]."""
    loaded.ok("SELECT INBOX")
    loaded.send(b"s1 SEARCH CHARSET UTF-8 SUBJECT {7}")
    assert loaded.read_line().startswith(b"+")
    loaded.send(b"kumquat")
    assert loaded.read_line() == b"* SEARCH 1 3"
    assert loaded.read_line().startswith(b"s1 OK")
    r = loaded.no("SEARCH CHARSET KOI8-R SUBJECT x")
    assert b"[BADCHARSET" in r.tagged


def test_search_utf8_encoded_word(imap_script):
    """SUBJECT finds text inside an RFC 2047 encoded-word when searched in UTF-8."""
    c = imap_script(login=True)
    append(c, b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\nbody\r\n")
    c.ok("SELECT INBOX")
    word = "grüße".encode()
    c.send(b"s1 SEARCH CHARSET UTF-8 SUBJECT {%d}" % len(word))
    assert c.read_line().startswith(b"+")
    c.send(word)
    assert c.read_line() == b"* SEARCH 1"


def test_search_bad_syntax(loaded):
    """Malformed SEARCH keys are BAD."""
    loaded.ok("SELECT INBOX")
    loaded.bad("SEARCH BOGUSKEY")
    loaded.bad("SEARCH SINCE notadate")
    loaded.bad("SEARCH OR SEEN")
    loaded.bad("SEARCH (SEEN")


def test_store_flags_modes(loaded):
    """+FLAGS, -FLAGS, FLAGS and .SILENT (RFC 3501 §6.4.6 example)."""
    loaded.ok("SELECT INBOX")
    r = loaded.ok("STORE 1 +FLAGS (\\Deleted)")
    assert r.untagged == [b"* 1 FETCH (FLAGS (\\Deleted \\Recent))"]
    r = loaded.ok("STORE 1 -FLAGS (\\Deleted)")
    assert r.untagged == [b"* 1 FETCH (FLAGS (\\Recent))"]
    r = loaded.ok("STORE 1 FLAGS (\\Answered $Custom)")
    assert r.untagged == [b"* 1 FETCH (FLAGS ($Custom \\Answered \\Recent))"]
    assert loaded.ok("STORE 1 +FLAGS.SILENT (\\Seen)").untagged == []
    r = loaded.ok("UID STORE 1 FLAGS.SILENT ()")
    assert r.untagged == []
    assert loaded.ok("FETCH 1 FLAGS").untagged == [b"* 1 FETCH (FLAGS (\\Recent))"]


def test_store_keywords_and_permanentflags(loaded):
    """New keywords are accepted (PERMANENTFLAGS has \\*) and show up in FLAGS."""
    loaded.ok("SELECT INBOX")
    loaded.ok("STORE 2 +FLAGS ($Important)")
    r = loaded.ok("SELECT INBOX")
    assert any(b"$Important" in line and line.startswith(b"* FLAGS") for line in r.untagged)


def test_store_uid_and_errors(loaded):
    """UID STORE reports UID; \\Recent cannot be stored; bad syntax is BAD."""
    loaded.ok("SELECT INBOX")
    r = loaded.ok("UID STORE 2 +FLAGS (\\Seen)")
    assert r.untagged == [b"* 2 FETCH (UID 2 FLAGS (\\Flagged \\Seen \\Recent))"]
    loaded.bad("STORE 1 +FLAGS (\\Recent)")
    loaded.bad("STORE 1 FROB (\\Seen)")
    loaded.bad("STORE 1 +FLAGS (\\*)")


def test_copy_and_copyuid(loaded):
    """COPY keeps flags and answers COPYUID (RFC 4315 §3)."""
    loaded.ok("CREATE Saved")
    loaded.ok("SELECT INBOX")
    r = loaded.ok("COPY 2:3 Saved")
    assert re.search(rb"\[COPYUID \d+ 2:3 1:2\]", r.tagged)
    r = loaded.ok("STATUS Saved (MESSAGES)")
    assert b"MESSAGES 2" in r.untagged[0]
    loaded.ok("EXAMINE Saved")
    r = loaded.ok("FETCH 1:2 FLAGS")
    assert b"\\Flagged" in r.untagged[0] and b"$Work" in r.untagged[1]


def test_copy_to_missing_mailbox(loaded):
    """COPY to a missing mailbox: NO [TRYCREATE]."""
    loaded.ok("SELECT INBOX")
    assert b"[TRYCREATE]" in loaded.no("COPY 1 Nowhere").tagged


def test_move(loaded):
    """MOVE: untagged COPYUID, EXPUNGEs, then OK (RFC 6851 §4.3)."""
    loaded.ok("CREATE Moved")
    loaded.ok("SELECT INBOX")
    r = loaded.ok("MOVE 1:2 Moved")
    assert re.match(rb"\* OK \[COPYUID \d+ 1:2 1:2\]", r.untagged[0])
    assert r.untagged[1:] == [b"* 2 EXPUNGE", b"* 1 EXPUNGE"]
    assert b"MESSAGES 2" in loaded.ok("STATUS Moved (MESSAGES)").untagged[0]
    r = loaded.ok("UID MOVE 3 Moved")
    assert r.untagged[1:] == [b"* 1 EXPUNGE"]


def test_copy_uid_keeps_message_bytes(imap_script):
    """A copied message is byte-identical to the original."""
    c = imap_script(login=True)
    append(c, SIMPLE)
    c.ok("CREATE B")
    c.ok("SELECT INBOX")
    c.ok("UID COPY 1 B")
    c.ok("SELECT B")
    r = c.ok("FETCH 1 BODY.PEEK[]")
    assert r.untagged[0].endswith(SIMPLE + b")")
