"""Scripted conversations: PREVIEW (RFC 8970) -- FETCH PREVIEW and PREVIEW (LAZY)."""

from __future__ import annotations

from tests.protocol.conftest import MULTIPART, SIMPLE, append

HTML_ONLY = (
    b"From: a@example.org\r\n"
    b"Subject: newsletter\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    b"<html><head><title>T</title><style>p {color: red}</style></head>"
    b"<body><p>Hello&nbsp;<b>there</b> &amp; welcome</p><script>x()</script></body></html>\r\n"
)
ALTERNATIVE = (
    b"From: a@example.org\r\n"
    b'Content-Type: multipart/alternative; boundary="A"\r\n'
    b"\r\n"
    b"--A\r\n"
    b"Content-Type: text/html\r\n"
    b"\r\n"
    b"<p>html version</p>\r\n"
    b"--A\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"plain version, caf=E9\r\n"
    b"--A--\r\n"
)
NO_TEXT = (
    b"From: a@example.org\r\n"
    b'Content-Type: multipart/mixed; boundary="M"\r\n'
    b"\r\n"
    b"--M\r\n"
    b"Content-Type: image/png\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"iVBORw0KGgo=\r\n"
    b"--M\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Disposition: attachment; filename=notes.txt\r\n"
    b"\r\n"
    b"attached notes\r\n"
    b"--M--\r\n"
)


def _select(c, *messages):
    """APPEND ``messages`` to INBOX and select it."""
    for msg in messages:
        append(c, msg)
    c.ok("SELECT INBOX")
    return c


def test_capability_advertises_preview(imap_script):
    """PREVIEW is in CAPABILITY (RFC 8970 §2)."""
    c = imap_script(login=True)
    assert b" PREVIEW" in c.ok("CAPABILITY").untagged[0]


def test_preview_plain_text_normalised(imap_script):
    """The preview is the text/plain body with whitespace runs folded (RFC 8970 §3.1)."""
    c = _select(imap_script(login=True), SIMPLE)
    line = c.ok("FETCH 1 PREVIEW").untagged[0]
    assert line == b'* 1 FETCH (PREVIEW "Hello Bob, this body mentions xylophonist once.")'


def test_preview_rfc_example_lazy(imap_script):
    """RFC 8970 §4 example: FETCH 1 (PREVIEW (LAZY)) returns the preview (we never defer)."""
    c = _select(imap_script(login=True), SIMPLE)
    r = c.ok("FETCH 1 (PREVIEW (LAZY))")
    assert r.untagged == [b'* 1 FETCH (PREVIEW "Hello Bob, this body mentions xylophonist once.")']
    assert c.ok("FETCH 1 PREVIEW (LAZY)").untagged == r.untagged
    line = c.ok("UID FETCH 1 (FLAGS PREVIEW (LAZY) RFC822.SIZE)").untagged[0]
    assert line.startswith(b'* 1 FETCH (UID 1 FLAGS (\\Recent) PREVIEW "Hello Bob')
    assert line.endswith(b" RFC822.SIZE %d)" % len(SIMPLE))


def test_preview_of_multipart_is_first_text_part(imap_script):
    """multipart/mixed: the first inline text/plain part."""
    c = _select(imap_script(login=True), MULTIPART)
    assert c.ok("FETCH 1 PREVIEW").untagged[0] == b'* 1 FETCH (PREVIEW "See the attachment.")'


def test_preview_prefers_plain_alternative_and_decodes(imap_script):
    """multipart/alternative: text/plain wins over text/html; QP and charset decoded,
    the UTF-8 result sent as a literal (8-bit)."""
    c = _select(imap_script(login=True), ALTERNATIVE)
    text = "plain version, café".encode()
    line = c.ok("FETCH 1 PREVIEW").untagged[0]
    assert line == b"* 1 FETCH (PREVIEW {%d}\r\n%s)" % (len(text), text)


def test_preview_html_only_is_stripped(imap_script):
    """Without text/plain, text/html is used with tags, scripts and styles removed."""
    c = _select(imap_script(login=True), HTML_ONLY)
    line = c.ok("FETCH 1 PREVIEW").untagged[0]  # &nbsp; is whitespace, folded too
    assert line == b'* 1 FETCH (PREVIEW "Hello there & welcome")'


def test_preview_without_text_is_empty_string(imap_script):
    """No inline text part (images, text attachments): the empty preview ""."""
    c = _select(imap_script(login=True), NO_TEXT)
    assert c.ok("FETCH 1 PREVIEW").untagged[0] == b'* 1 FETCH (PREVIEW "")'


def test_preview_at_most_256_characters(imap_script):
    """RFC 8970 §3.1: no more than 256 characters, counted as characters not octets."""
    body = ("\u00e9t\u00e9 " * 300).encode()
    msg = b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body
    c = _select(imap_script(login=True), msg)
    line = c.ok("FETCH 1 PREVIEW").untagged[0]
    head, literal = line.split(b"}\r\n", 1)
    text = literal[:-1].decode("utf-8")
    assert len(text) <= 256 and text.startswith("\u00e9t\u00e9 \u00e9t\u00e9")
    assert int(head.rsplit(b"{", 1)[1]) == len(literal) - 1


def test_preview_does_not_set_seen(imap_script):
    """PREVIEW is not a body fetch: \\Seen stays unset."""
    c = _select(imap_script(login=True), SIMPLE)
    c.ok("FETCH 1 PREVIEW")
    assert c.ok("FETCH 1 FLAGS").untagged[0] == b"* 1 FETCH (FLAGS (\\Recent))"


def test_preview_several_messages(imap_script):
    """FETCH 1:* PREVIEW answers every message (the cached value is reused)."""
    c = _select(imap_script(login=True), SIMPLE, NO_TEXT, SIMPLE)
    for _ in range(2):
        lines = c.ok("FETCH 1:* PREVIEW").untagged
        assert lines[1] == b'* 2 FETCH (PREVIEW "")'
        assert lines[0][10:] == lines[2][10:]


def test_preview_bad_modifiers(imap_script):
    """Unknown or malformed preview modifiers are BAD."""
    c = _select(imap_script(login=True), SIMPLE)
    for bad in ("FETCH 1 (PREVIEW (FOO))", "FETCH 1 (PREVIEW ())", "FETCH 1 (PREVIEW (LAZY)",
                "FETCH 1 PREVIEW (BOGUS)", "FETCH 1 PREVIEW[]"):
        c.bad(bad)
    c.ok("NOOP")
