"""Scripted conversations: BINARY (RFC 3516) -- FETCH BINARY[], BINARY.PEEK, BINARY.SIZE
and APPEND with literal8."""

from __future__ import annotations

import base64

from tests.protocol.conftest import MULTIPART, SIMPLE, append

PAYLOAD = bytes(range(256)) * 3  # every octet value, NUL included
MIXED = (
    b"From: a@example.org\r\n"
    b"Subject: encodings\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="B"\r\n'
    b"\r\n"
    b"--B\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"caf=C3=A9 au lait=\r\n, s'il vous pla=C3=AEt   \r\n"
    b"--B\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    + base64.encodebytes(PAYLOAD).replace(b"\n", b"\r\n")
    + b"--B\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Transfer-Encoding: x-uuencode\r\n"
    b"\r\n"
    b"begin 644 x\r\n`\r\nend\r\n"
    b"--B\r\n"
    b'Content-Type: multipart/alternative; boundary="C"\r\n'
    b"\r\n"
    b"--C\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"na\xc3\xafve\r\n"
    b"--C--\r\n"
    b"--B\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"Subject: inner\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"aW5uZXI=\r\n"
    b"--B--\r\n"
)
SINGLE_B64 = (
    b"From: a@example.org\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"Content-Transfer-Encoding: BASE64\r\n"
    b"\r\n"
    b"SGVsbG8sIHdvcmxkIQ==\r\n"
)


def _mixed(c):
    """Select a mailbox holding MIXED as message 1."""
    append(c, MIXED)
    c.ok("SELECT INBOX")
    return c


def test_capability_advertises_binary(imap_script):
    """BINARY is in CAPABILITY (RFC 3516 §2)."""
    c = imap_script(login=True)
    assert b" BINARY" in c.ok("CAPABILITY").untagged[0]


def test_binary_base64_uses_literal8_for_nul(imap_script):
    """A base64 part comes back decoded, as literal8 since it holds NUL (RFC 3516 §4.2)."""
    c = _mixed(imap_script(login=True))
    line = c.ok("FETCH 1 BINARY.PEEK[2]").untagged[0]
    assert line == b"* 1 FETCH (BINARY[2] ~{%d}\r\n%s)" % (len(PAYLOAD), PAYLOAD)


def test_binary_quoted_printable_decoded(imap_script):
    """Quoted-printable: =XX and soft breaks decoded, transport padding dropped."""
    c = _mixed(imap_script(login=True))
    line = c.ok("FETCH 1 BINARY.PEEK[1]").untagged[0]
    text = "café au lait, s'il vous plaît".encode()
    assert line == b"* 1 FETCH (BINARY[1] {%d}\r\n%s)" % (len(text), text)


def test_binary_8bit_part_as_is_in_normal_literal(imap_script):
    """8bit content is returned unchanged; no NUL, so an ordinary literal."""
    c = _mixed(imap_script(login=True))
    line = c.ok("FETCH 1 BINARY.PEEK[4.1]").untagged[0]
    assert line == b"* 1 FETCH (BINARY[4.1] {6}\r\nna\xc3\xafve)"


def test_binary_size_is_decoded_size(imap_script):
    """BINARY.SIZE gives the decoded octet count (RFC 3516 §4.2)."""
    c = _mixed(imap_script(login=True))
    line = c.ok("FETCH 1 (BINARY.SIZE[2] BINARY.SIZE[4.1])").untagged[0]
    assert line == b"* 1 FETCH (BINARY.SIZE[2] %d BINARY.SIZE[4.1] 6)" % len(PAYLOAD)


def test_binary_partial_counts_decoded_octets(imap_script):
    """<origin.count> applies to the decoded data; the origin is echoed."""
    c = _mixed(imap_script(login=True))
    line = c.ok("FETCH 1 BINARY.PEEK[2]<1.4>").untagged[0]
    assert line == b"* 1 FETCH (BINARY[2]<1> {4}\r\n\x01\x02\x03\x04)"
    line = c.ok("FETCH 1 BINARY.PEEK[2]<0.2>").untagged[0]
    assert line == b"* 1 FETCH (BINARY[2]<0> ~{2}\r\n\x00\x01)"
    line = c.ok("FETCH 1 BINARY.PEEK[2]<99999.5>").untagged[0]
    assert line == b"* 1 FETCH (BINARY[2]<99999> {0}\r\n)"


def test_binary_unknown_cte_is_no_unknown_cte(imap_script):
    """An encoding the server cannot decode: NO [UNKNOWN-CTE] (RFC 3516 §4.3)."""
    c = _mixed(imap_script(login=True))
    assert c.no("FETCH 1 BINARY.PEEK[3]").tagged.startswith(b"a3 NO [UNKNOWN-CTE]")
    assert b"[UNKNOWN-CTE]" in c.no("FETCH 1 BINARY.SIZE[3]").tagged
    c.ok("NOOP")  # the session is still usable


def test_binary_multipart_or_message_part_refused(imap_script):
    """BINARY applies to leaf parts only: a multipart or message/rfc822 part is NO."""
    c = _mixed(imap_script(login=True))
    c.no("FETCH 1 BINARY.PEEK[4]")
    c.no("FETCH 1 BINARY.SIZE[4]")
    c.no("FETCH 1 BINARY.PEEK[5]")


def test_binary_into_encapsulated_message(imap_script):
    """Part numbers continue into a message/rfc822 part, as for BODY[]."""
    c = _mixed(imap_script(login=True))
    assert c.ok("FETCH 1 BINARY.PEEK[5.1]").untagged[0] == b'* 1 FETCH (BINARY[5.1] {5}\r\ninner)'


def test_binary_missing_part_is_nil(imap_script):
    """A part that does not exist: NIL, and size 0, like BODY[] (no failure)."""
    c = _mixed(imap_script(login=True))
    line = c.ok("FETCH 1 (BINARY.PEEK[9] BINARY.SIZE[9])").untagged[0]
    assert line == b"* 1 FETCH (BINARY[9] NIL BINARY.SIZE[9] 0)"


def test_binary_whole_single_part_message_decoded(imap_script):
    """BINARY[] of a single-part message: body decoded, its CTE field dropped."""
    c = imap_script(login=True)
    append(c, SINGLE_B64)
    c.ok("SELECT INBOX")
    line = c.ok("FETCH 1 BINARY.PEEK[]").untagged[0]
    expect = (b"From: a@example.org\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
              b"Hello, world!")
    assert line == b"* 1 FETCH (BINARY[] {%d}\r\n%s)" % (len(expect), expect)
    assert c.ok("FETCH 1 BINARY.PEEK[1]").untagged[0].endswith(b"{13}\r\nHello, world!)")
    assert c.ok("FETCH 1 BINARY.SIZE[]").untagged[0] == (
        b"* 1 FETCH (BINARY.SIZE[] %d)" % len(expect))


def test_binary_whole_multipart_message_as_stored(imap_script):
    """BINARY[] of a multipart message is the message itself (nothing to decode)."""
    c = imap_script(login=True)
    append(c, MULTIPART)
    c.ok("SELECT INBOX")
    line = c.ok("FETCH 1 BINARY.PEEK[]").untagged[0]
    assert line == b"* 1 FETCH (BINARY[] {%d}\r\n%s)" % (len(MULTIPART), MULTIPART)


def test_binary_sets_seen_but_peek_and_size_do_not(imap_script):
    """BINARY[] sets \\Seen like BODY[]; BINARY.PEEK and BINARY.SIZE do not (RFC 3516 §4.2)."""
    c = _mixed(imap_script(login=True))
    c.ok("FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])")
    assert b"\\Seen" not in c.ok("FETCH 1 FLAGS").untagged[0]
    line = c.ok("FETCH 1 BINARY[1]").untagged[0]
    assert b"\\Seen" in line  # the FLAGS update comes with the response


def test_binary_readonly_does_not_set_seen(imap_script):
    """Under EXAMINE, BINARY[] leaves \\Seen alone."""
    c = imap_script(login=True)
    append(c, MIXED)
    c.ok("EXAMINE INBOX")
    c.ok("FETCH 1 BINARY[1]")
    assert b"\\Seen" not in c.ok("FETCH 1 FLAGS").untagged[0]


def test_binary_malformed_is_bad(imap_script):
    """BINARY takes part numbers only: section text, bad partials and missing [] are BAD."""
    c = _mixed(imap_script(login=True))
    for bad in ("BINARY[1.TEXT]", "BINARY[HEADER]", "BINARY.PEEK[1]<5>", "BINARY[0]",
                "BINARY.SIZE[1]<0.5>", "BINARY.SIZE", "BINARY[1", "BINARY.PEEK[1]<0.0>"):
        c.bad(f"FETCH 1 {bad}")
    c.ok("NOOP")


def test_binary_uid_fetch_and_several_messages(imap_script):
    """UID FETCH BINARY.PEEK over several messages answers each one."""
    c = imap_script(login=True)
    append(c, SINGLE_B64)
    append(c, SIMPLE)
    c.ok("SELECT INBOX")
    lines = c.ok("UID FETCH 1:* BINARY.PEEK[1]").untagged
    assert lines[0] == b"* 1 FETCH (UID 1 BINARY[1] {13}\r\nHello, world!)"
    body = SIMPLE.split(b"\r\n\r\n", 1)[1]
    assert lines[1] == b"* 2 FETCH (UID 2 BINARY[1] {%d}\r\n%s)" % (len(body), body)


def test_append_literal8_roundtrip(imap_script):
    """APPEND accepts literal8 ~{n} with NUL octets; the message is kept byte for byte
    and BINARY returns it as literal8 (RFC 3516 §4.4)."""
    c = imap_script(login=True)
    msg = b"Subject: nul\r\nContent-Transfer-Encoding: binary\r\n\r\nA\x00B\r\n"
    r = c.ok(f"APPEND INBOX ~{{{len(msg)}}}", msg)
    assert b"[APPENDUID " in r.tagged
    c.ok("SELECT INBOX")
    assert c.ok("FETCH 1 RFC822.SIZE").untagged[0] == b"* 1 FETCH (RFC822.SIZE %d)" % len(msg)
    line = c.ok("FETCH 1 BINARY.PEEK[1]").untagged[0]
    assert line == b"* 1 FETCH (BINARY[1] ~{5}\r\nA\x00B\r\n)"


def test_append_literal8_nonsync(imap_script):
    """A non-synchronizing literal8 ~{n+} works with LITERAL+ (RFC 7888, RFC 3516 §4.4)."""
    c = imap_script(login=True)
    msg = b"Subject: x\r\n\r\n\x00\x01\r\n"
    c.send(b"ap APPEND INBOX ~{%d+}\r\n%s" % (len(msg), msg))
    assert c.read_line().startswith(b"ap OK [APPENDUID")


def test_literal8_refused_outside_append(imap_script):
    """literal8 is only allowed for APPEND's message: elsewhere BAD."""
    c = imap_script(login=True)
    assert b"literal8" in c.bad("SELECT ~{5}", b"INBOX").tagged
    c.ok("NOOP")
