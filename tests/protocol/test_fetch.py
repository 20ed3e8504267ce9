"""Scripted conversations: FETCH and UID FETCH."""

from __future__ import annotations

from tests.protocol.conftest import MULTIPART, SIMPLE


def test_fetch_fast_macro(loaded):
    """FAST = FLAGS INTERNALDATE RFC822.SIZE (RFC 3501 §6.4.5)."""
    loaded.ok("SELECT INBOX")
    r = loaded.ok("FETCH 1 FAST")
    line = r.untagged[0]
    assert line.startswith(b"* 1 FETCH (FLAGS (\\Recent) INTERNALDATE \"")
    assert line.endswith(b" RFC822.SIZE %d)" % len(SIMPLE))


def test_fetch_envelope_exact(loaded):
    """ENVELOPE renders exactly as RFC 3501's grammar gives it."""
    loaded.ok("SELECT INBOX")
    line = loaded.ok("FETCH 1 ENVELOPE").untagged[0]
    assert line == (
        b'* 1 FETCH (ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800" "Hello kumquat" '
        b'(("Alice Example" NIL "alice" "example.org")) '
        b'(("Alice Example" NIL "alice" "example.org")) '
        b'(("Alice Example" NIL "alice" "example.org")) '
        b'(("Bob" NIL "bob" "example.org")(NIL NIL "carol" "example.net")) '
        b'NIL NIL NIL "<msg1@example.org>"))'
    )


def test_fetch_bodystructure_multipart(loaded):
    """BODYSTRUCTURE of multipart/mixed with extension data."""
    loaded.ok("SELECT INBOX")
    line = loaded.ok("FETCH 2 BODYSTRUCTURE").untagged[0]
    assert line.startswith(b'* 2 FETCH (BODYSTRUCTURE (("text" "plain" ("charset" "us-ascii")')
    assert b'"application" "octet-stream" ("name" "data.bin") NIL NIL "base64" 8' in line
    assert b'("attachment" ("filename" "data.bin"))' in line
    assert b'"mixed" ("boundary" "XX")' in line


def test_fetch_body_without_extensions(loaded):
    """BODY (no section) is BODYSTRUCTURE without extension data."""
    loaded.ok("SELECT INBOX")
    line = loaded.ok("FETCH 1 BODY").untagged[0]
    assert line.startswith(b'* 1 FETCH (BODY ("text" "plain" ("charset" "us-ascii") NIL NIL')
    assert line.endswith(b"))")


def test_fetch_body_sections(loaded):
    """BODY[1], BODY[2.MIME], BODY[HEADER], BODY[TEXT] return the right bytes."""
    loaded.ok("SELECT INBOX")
    r = loaded.ok("FETCH 2 (BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[TEXT])")
    line = r.untagged[0]
    # RFC 2046 §5.1.1: the CRLF before a boundary belongs to the boundary.
    assert b"BODY[1] {19}\r\nSee the attachment. " in line
    assert b"BODY[2.MIME] {" in line and b"Content-Disposition: attachment" in line
    body = MULTIPART.split(b"\r\n\r\n", 1)[1]
    assert b"BODY[TEXT] {%d}\r\n%s" % (len(body), body) in line


def test_fetch_header_fields(loaded):
    """HEADER.FIELDS returns only the named fields and the blank line."""
    loaded.ok("SELECT INBOX")
    r = loaded.ok("FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]")
    expect = b"From: Alice Example <alice@example.org>\r\nSubject: Hello kumquat\r\n\r\n"
    assert r.untagged[0] == (b"* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT FROM)] {%d}\r\n%s)"
                             % (len(expect), expect))


def test_fetch_header_fields_not(loaded):
    """HEADER.FIELDS.NOT drops the named fields."""
    loaded.ok("SELECT INBOX")
    line = loaded.ok("FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT FROM DATE TO)]").untagged[0]
    assert b"Message-ID: <msg1@example.org>\r\n\r\n)" in line
    assert b"Subject:" not in line


def test_fetch_partial(loaded):
    """BODY[]<0.20> returns 20 bytes and is labelled <0> (Thunderbird chunks like this)."""
    loaded.ok("SELECT INBOX")
    r = loaded.ok("FETCH 1 BODY.PEEK[]<0.20>")
    assert r.untagged[0] == b"* 1 FETCH (BODY[]<0> {20}\r\n%s)" % SIMPLE[:20]
    r = loaded.ok("FETCH 1 BODY.PEEK[]<10.5>")
    assert r.untagged[0] == b"* 1 FETCH (BODY[]<10> {5}\r\n%s)" % SIMPLE[10:15]
    r = loaded.ok("FETCH 1 BODY.PEEK[]<100000.5>")
    assert r.untagged[0] == b"* 1 FETCH (BODY[]<100000> {0}\r\n)"


def test_fetch_body_sets_seen_peek_does_not(loaded):
    """BODY[] sets \\Seen and reports FLAGS; BODY.PEEK[] does not (RFC 3501 §6.4.5)."""
    loaded.ok("SELECT INBOX")
    r = loaded.ok("FETCH 1 BODY.PEEK[]")
    assert b"FLAGS" not in r.untagged[0]
    r = loaded.ok("FETCH 1 BODY[]")
    assert b"FLAGS (\\Seen \\Recent)" in r.untagged[0]
    assert b"\\Seen" in loaded.ok("FETCH 1 FLAGS").untagged[0]


def test_fetch_rfc822_items(loaded):
    """RFC822, RFC822.HEADER, RFC822.TEXT, RFC822.SIZE."""
    loaded.ok("SELECT INBOX")
    header, text = SIMPLE.split(b"\r\n\r\n", 1)
    r = loaded.ok("FETCH 1 (RFC822.HEADER RFC822.SIZE)")
    assert r.untagged[0] == (b"* 1 FETCH (RFC822.HEADER {%d}\r\n%s\r\n\r\n RFC822.SIZE %d)"
                             % (len(header) + 4, header, len(SIMPLE)))
    r = loaded.ok("FETCH 1 RFC822.TEXT")
    assert b"RFC822.TEXT {%d}\r\n%s" % (len(text), text) in r.untagged[0]
    r = loaded.ok("FETCH 1 RFC822")
    assert b"RFC822 {%d}\r\n%s" % (len(SIMPLE), SIMPLE) in r.untagged[0]


def test_fetch_all_full_macros(loaded):
    """ALL adds ENVELOPE; FULL adds ENVELOPE and BODY."""
    loaded.ok("SELECT INBOX")
    assert b" ENVELOPE (" in loaded.ok("FETCH 1 ALL").untagged[0]
    line = loaded.ok("FETCH 1 FULL").untagged[0]
    assert b" ENVELOPE (" in line and b" BODY (" in line


def test_uid_fetch_includes_uid(loaded):
    """UID FETCH always returns UID (RFC 3501 §6.4.8); ranges name existing UIDs."""
    loaded.ok("SELECT INBOX")
    r = loaded.ok("UID FETCH 2:* FLAGS")
    assert r.untagged == [b"* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))",
                          b"* 3 FETCH (UID 3 FLAGS ($Work \\Seen \\Recent))"]
    assert loaded.ok("UID FETCH 100:200 FLAGS").untagged == []


def test_uid_fetch_star_on_high_range(loaded):
    """`UID FETCH 10:*` with no UID ≥ 10 returns the highest message (RFC 3501 §6.4.8)."""
    loaded.ok("SELECT INBOX")
    r = loaded.ok("UID FETCH 10:* UID")
    assert r.untagged == [b"* 3 FETCH (UID 3)"]


def test_fetch_nested_message_rfc822(imap_script):
    """Nested part numbers inside an attached message/rfc822."""
    from tests.protocol.conftest import append

    inner = b"Subject: inner\r\nFrom: x@y.z\r\n\r\ninner body\r\n"
    msg = (b"Subject: outer\r\nMIME-Version: 1.0\r\n"
           b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
           b"--b1\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
           b"--b1\r\nContent-Type: message/rfc822\r\n\r\n" + inner +
           b"--b1--\r\n")
    c = imap_script(login=True)
    append(c, msg)
    c.ok("SELECT INBOX")
    line = c.ok("FETCH 1 (BODY.PEEK[2.HEADER] BODY.PEEK[2.1] BODY.PEEK[2.TEXT])").untagged[0]
    assert b"BODY[2.HEADER] {31}\r\nSubject: inner\r\nFrom: x@y.z\r\n\r\n" in line
    assert b"BODY[2.1] {10}\r\ninner body " in line
    bs = c.ok("FETCH 1 BODYSTRUCTURE").untagged[0]
    assert b'"message" "rfc822"' in bs and b'"inner"' in bs


def test_fetch_nonexistent_part_is_nil(loaded):
    """A part number the message does not have returns NIL."""
    loaded.ok("SELECT INBOX")
    assert loaded.ok("FETCH 1 BODY.PEEK[7]").untagged[0] == b"* 1 FETCH (BODY[7] NIL)"


def test_fetch_errors(loaded):
    """Bad FETCH syntax is BAD; a sequence number past EXISTS is answered without crash."""
    loaded.ok("SELECT INBOX")
    loaded.bad("FETCH 1 (FLAGS")
    loaded.bad("FETCH 1 BOGUS")
    loaded.bad("FETCH")
    r = loaded.cmd("FETCH 99 FLAGS")
    assert r.status in ("OK", "NO", "BAD")


def test_malformed_message_fetches(imap_script):
    """Malformed mail (8-bit headers, bad params, no MIME-Version) still renders."""
    from tests.protocol.conftest import append

    msg = (b"From: \xe9t\xe9 <a@b>\r\nSubject: =?bogus?Q?x?= \xff\r\n"
           b"Content-Type: multipart/mixed; boundary=\r\n\r\nno parts here\r\n")
    c = imap_script(login=True)
    append(c, msg)
    c.ok("SELECT INBOX")
    r = c.ok("FETCH 1 (ENVELOPE BODYSTRUCTURE BODY.PEEK[1] BODY.PEEK[HEADER])")
    assert r.untagged[0].startswith(b"* 1 FETCH (ENVELOPE (")
