"""PREVIEW text extraction (RFC 8970 §3.1)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from twistedmail.imap.mime import ParsedMessage
from twistedmail.imap.preview import MAX_CHARS, normalise, preview_of, preview_text, strip_html
from twistedmail.store import Blob


def preview(raw: bytes) -> str:
    """The preview of ``raw`` as text."""
    return preview_text(ParsedMessage(raw)).decode("utf-8")


def test_plain_message():
    """A single-part message without Content-Type is text/plain (RFC 2045 §5.2)."""
    assert preview(b"Subject: x\r\n\r\n  Hello\r\n\r\n\tworld  \r\n") == "Hello world"


def test_base64_utf8_part():
    """Transfer encoding and charset are both undone."""
    raw = (b"Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           b"w6l0w6kgZ3LDqGNl\r\n")
    assert preview(raw) == "\u00e9t\u00e9 gr\u00e8ce"


def test_latin1_and_unknown_charsets():
    """Known charsets decode; an unknown one falls back to UTF-8 with replacement."""
    assert preview(b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\ncaf\xe9") == "caf\u00e9"
    assert preview(b"Content-Type: text/plain; charset=x-klingon\r\n\r\ncaf\xc3\xa9") == "caf\u00e9"
    assert preview(b"Content-Type: text/plain; charset=us-ascii\r\n\r\ncaf\xc3\xa9") == "caf\u00e9"
    assert preview(b"Content-Type: text/plain\r\n\r\nbad \xff byte") == "bad \ufffd byte"


def test_first_plain_part_wins_over_earlier_html():
    """text/plain anywhere beats text/html; attachments and images are skipped."""
    raw = (b"Content-Type: multipart/mixed; boundary=z\r\n\r\n"
           b"--z\r\nContent-Type: image/gif\r\n\r\nGIF89a\r\n"
           b"--z\r\nContent-Type: text/html\r\n\r\n<b>html</b>\r\n"
           b"--z\r\nContent-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\nfile\r\n"
           b"--z\r\nContent-Type: text/plain\r\nContent-Disposition: inline\r\n\r\nreal text\r\n"
           b"--z--\r\n")
    assert preview(raw) == "real text"


def test_html_fallback():
    """text/html alone: the visible text only."""
    raw = (b"Content-Type: text/html\r\n\r\n<!DOCTYPE html><html><head><style>x{}</style>"
           b"<title>no</title></head><body>Line<br>two &lt;3 <!-- hidden -->"
           b"<script type=x>alert(1)</script>end</body></html>")
    assert preview(raw) == "Line two <3 end"


def test_message_rfc822_not_descended():
    """A forwarded message/rfc822 part is not the message's own text."""
    raw = (b"Content-Type: multipart/mixed; boundary=z\r\n\r\n"
           b"--z\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\ninner text\r\n"
           b"--z--\r\n")
    assert preview(raw) == ""


def test_no_text_is_empty():
    """Nothing previewable: the empty string."""
    assert preview(b"Content-Type: application/pdf\r\n\r\n%PDF") == ""
    assert preview(b"Subject: header only\r\n") == ""
    assert preview(b"") == ""


def test_limit_is_256_characters():
    """At most 256 characters, counted as code points (RFC 8970 §3.1)."""
    text = preview(b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + "\u4e2d".encode() * 1000)
    assert text == "\u4e2d" * MAX_CHARS


def test_leading_blank_run_does_not_hide_text():
    """A long run of blank lines before the text is skipped, not previewed as empty."""
    assert preview(b"\r\n" + b" \r\n" * 5000 + b"finally") == "finally"


def test_controls_removed():
    """Control characters never reach the client."""
    assert normalise("a\x00b\x07c\x1bd\u200be\x9f") == "abcde"
    assert normalise("a\u0085b\u2028c\x1cd") == "a b c d"  # Unicode whitespace folds


def test_strip_html_unclosed():
    """Unclosed tags, comments and scripts do not raise and hide the rest."""
    assert strip_html("a<!-- b").strip() == "a"
    assert strip_html("a <script> b").strip() == "a"
    assert strip_html("x <b").strip() == "x"


def test_preview_cached_on_blob():
    """preview_of caches the bytes on the shared blob and does not keep a MIME parse."""
    blob = Blob(b"Subject: x\r\n\r\nhello")
    assert preview_of(blob) == b"hello"
    assert blob.cache == {"PREVIEW": b"hello"}
    assert preview_of(blob) is blob.cache["PREVIEW"]


@settings(max_examples=200)
@given(st.binary(max_size=600))
def test_never_raises_and_bounded(raw):
    """Any bytes: no exception, valid UTF-8, at most 256 characters, no CR/LF."""
    text = preview_text(ParsedMessage(b"Content-Type: text/plain\r\n\r\n" + raw)).decode("utf-8")
    assert len(text) <= MAX_CHARS and "\n" not in text and "\r" not in text
    html = preview_text(ParsedMessage(b"Content-Type: text/html\r\n\r\n" + raw))
    assert len(html.decode("utf-8")) <= MAX_CHARS
