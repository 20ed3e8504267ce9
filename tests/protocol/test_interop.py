"""Scripted conversations: the exact command forms real client programs send (mbsync 1.4,
offlineimap3 8.0, fetchmail 6.4, curl 7.88,
Thunderbird 153; see tests/clients/), and what they revealed."""

from __future__ import annotations

import base64

from .conftest import SIMPLE, append

ETE = "Reçus".encode()


def test_create_raw_8bit_name_refused_without_utf8(imap_script):
    """CREATE/RENAME with a raw UTF-8 name is BAD unless UTF-8 names are enabled: LIST would
    answer the name in modified UTF-7 and mbsync 1.4 would make a second local folder."""
    c = imap_script(login=True)
    r = c.bad(b'CREATE "' + ETE + b'"')
    assert b"modified UTF-7" in r.text
    c.ok("CREATE Work")
    c.bad(b'RENAME Work "' + ETE + b'"')
    assert c.ok('LIST "" "*"').matching(rb'"Work"')
    assert not c.ok('LIST "" "*"').matching(rb"Re")
    c.ok('CREATE "Re&AOc-us"')  # the modified UTF-7 spelling is fine
    c.ok(b'SELECT "' + ETE + b'"')  # reading commands stay lenient


def test_create_raw_8bit_name_after_enable(imap_script):
    """After ENABLE UTF8=ACCEPT the same CREATE is OK (RFC 6855 §3)."""
    c = imap_script(login=True)
    c.ok("ENABLE UTF8=ACCEPT")
    c.ok(b'CREATE "' + ETE + b'"')
    assert c.ok('LIST "" "*"').matching(b'"' + ETE + b'"')


def test_mbsync_pipelined_uid_fetch(imap_script):
    """mbsync sends ~20 `UID FETCH n (INTERNALDATE BODY.PEEK[])` in one write; every one is
    answered in order, and none sets \\Seen."""
    c = imap_script(login=True)
    for _ in range(20):
        append(c, SIMPLE)
    c.ok('SELECT "INBOX"')
    c.send_raw(b"".join(b"p%d UID FETCH %d (INTERNALDATE BODY.PEEK[])\r\n" % (i, i)
                        for i in range(1, 21)))
    for i in range(1, 21):
        r = c.read_until_tagged(f"p{i}")
        assert r.status == "OK"
        assert r.untagged[0].startswith(b"* %d FETCH (UID %d INTERNALDATE " % (i, i))
        assert SIMPLE in r.untagged[0]
    assert not c.ok("SEARCH SEEN").untagged[0].split()[2:]


def test_mbsync_append_literal_plus_and_silent_store(imap_script):
    """mbsync: APPEND with a date and LITERAL+, then `UID STORE n +FLAGS.SILENT (\\Seen)`
    (no FETCH back), CHECK."""
    c = imap_script(login=True)
    c.send(b'm1 APPEND "INBOX" "21-Nov-2026 22:27:20 +0000" {%d+}' % len(SIMPLE))
    c.send(SIMPLE)
    assert c.read_until_tagged("m1").text.startswith(b"[APPENDUID ")
    c.ok('SELECT "INBOX"')
    assert c.ok(r"UID STORE 1 +FLAGS.SILENT (\Seen)").untagged == []
    c.ok("CHECK")
    assert c.ok("UID FETCH 1 (INTERNALDATE)").matching(rb'"21-Nov-2026 22:27:20 \+0000"')


def test_offlineimap_sequence_fetch_and_sync_literal_append(imap_script):
    """offlineimap: `FETCH 1:* (FLAGS UID INTERNALDATE)` (a sequence range) and APPEND with
    `()` flags through a synchronizing literal."""
    c = imap_script(login=True)
    c.ok("CREATE Work")
    r = c.ok(f'APPEND Work () "05-Mar-2026 10:00:00 +0000" {{{len(SIMPLE)}}}', SIMPLE)
    assert r.text.startswith(b"[APPENDUID ")
    c.ok("EXAMINE Work")
    r = c.ok("FETCH 1:* (FLAGS UID INTERNALDATE)")
    assert r.untagged == [  # RFC 3501 date-day-fixed: " 5", as sent by Dovecot too
        b'* 1 FETCH (FLAGS () UID 1 INTERNALDATE " 5-Mar-2026 10:00:00 +0000")']


def test_fetchmail_command_forms(imap_script):
    """fetchmail: SEARCH UNSEEN UNDELETED, RFC822.SIZE, RFC822.HEADER, BODY.PEEK[TEXT], then
    STORE n +FLAGS (\\Seen) marks it read."""
    c = imap_script(login=True)
    append(c, SIMPLE, flags="\\Seen")
    append(c, SIMPLE)
    c.ok("SELECT INBOX")
    assert c.ok("SEARCH UNSEEN UNDELETED").untagged == [b"* SEARCH 2"]
    size = c.ok("FETCH 1:2 RFC822.SIZE").untagged
    assert size[1] == b"* 2 FETCH (RFC822.SIZE %d)" % len(SIMPLE)
    header, _, text = SIMPLE.partition(b"\r\n\r\n")
    r = c.ok("FETCH 2 RFC822.HEADER")
    assert header + b"\r\n\r\n" in r.untagged[0]
    r = c.ok("FETCH 2 BODY.PEEK[TEXT]")
    assert r.untagged[0].endswith(text + b")")
    c.ok(r"STORE 2 +FLAGS (\Seen)")
    assert c.ok("SEARCH UNSEEN UNDELETED").untagged == [b"* SEARCH"]


def test_curl_uid_fetch_body_sets_seen(imap_script):
    """curl: `UID FETCH n BODY[]` (not PEEK) returns the bytes and sets \\Seen; `UID SEARCH
    ALL` lists every UID."""
    c = imap_script(login=True)
    append(c, SIMPLE)
    append(c, SIMPLE)
    c.ok("SELECT INBOX")
    assert c.ok("UID SEARCH ALL").untagged == [b"* SEARCH 1 2"]
    r = c.ok("UID FETCH 2 BODY[]")
    assert SIMPLE in b"\n".join(r.untagged)
    assert r.matching(rb"FLAGS \(\\Seen[ )]")
    assert c.ok("UID SEARCH SEEN").untagged == [b"* SEARCH 2"]


TB_HEADERS = ("From To Cc Bcc Subject Date Message-ID Priority X-Priority References "
              "Newsgroups In-Reply-To Content-Type Reply-To Received")


def test_thunderbird_command_forms(imap_script):
    """Thunderbird 153: lower-case commands, two-step `authenticate PLAIN`, `list (subscribed)
    "" "*" return (special-use)`, the header-field FETCH, `UID fetch <uidnext>:* (FLAGS)` (the
    last message: RFC 3501 §6.4.8 `*`) and `uid store n +Flags (\\Seen)`."""
    c = imap_script()
    c.send(b"1 authenticate PLAIN")
    c.expect_continuation()
    c.send(base64.b64encode(b"\0alice\0secret"))
    assert c.read_until_tagged("1").status == "OK"
    c.ok('create "Work"')
    c.ok('subscribe "Work"')
    r = c.ok('list (subscribed) "" "*" return (special-use)')
    assert [ln for ln in r.untagged if b"\\Subscribed" in ln] == r.untagged
    assert r.matching(rb'"/" "Work"$')
    append(c, SIMPLE)
    append(c, SIMPLE)
    c.ok('select "INBOX"')
    r = c.ok(f"UID fetch 1:2 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS ({TB_HEADERS})])")
    assert len(r.untagged) == 2
    assert r.matching(b"RFC822.SIZE %d" % len(SIMPLE))
    assert r.matching(rb"Message-ID: <msg1@example.org>")
    assert c.ok("UID fetch 3:* (FLAGS)").matching(rb"^\* 2 FETCH \(UID 2 FLAGS ")
    c.ok(r"uid store 1 +Flags (\Seen)")
    assert c.ok("UID fetch 1 (FLAGS)").matching(rb"\\Seen")
    assert not c.ok("UID fetch 2 (FLAGS)").matching(rb"\\Seen")
