"""RFC 3501 §8: the sample IMAP4rev1 connection, replayed with lower-case commands."""

from __future__ import annotations

from tests.protocol.conftest import MULTIPART, SIMPLE, append


def test_rfc3501_section8_sample_connection(imap_script):
    """login / select / fetch full / fetch body[header] / store +flags / logout."""
    setup = imap_script(login=True)
    for i in range(12):
        append(setup, MULTIPART if i == 11 else SIMPLE, flags="\\Seen" if i == 11 else "")
    setup.ok("SELECT INBOX")  # claims \\Recent, so the transcript matches the RFC's
    setup.logout()

    c = imap_script(login=False)
    assert c.greeting.startswith(b"* OK")
    c.ok("login alice secret")
    r = c.ok("select inbox")
    assert b"* 12 EXISTS" in r.untagged and b"[READ-WRITE]" in r.tagged
    r = c.ok("fetch 12 full")
    line = r.untagged[0]
    assert line.startswith(b"* 12 FETCH (FLAGS (\\Seen) INTERNALDATE ")
    assert b" RFC822.SIZE %d ENVELOPE (" % len(MULTIPART) in line
    assert b' BODY (("text" "plain"' in line
    r = c.ok("fetch 12 body[header]")
    header = MULTIPART.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    # \Seen was already set, so no FLAGS item is added (RFC 3501 §6.4.5).
    assert r.untagged == [b"* 12 FETCH (BODY[HEADER] {%d}\r\n%s)" % (len(header), header)]
    r = c.ok("store 12 +flags \\deleted")
    assert r.untagged == [b"* 12 FETCH (FLAGS (\\Deleted \\Seen))"]
    r = c.ok("logout")
    assert r.untagged[0].startswith(b"* BYE")
