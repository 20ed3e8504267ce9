"""Shared helpers for scripted-conversation tests."""

from __future__ import annotations

import pytest

SIMPLE = (
    b"From: Alice Example <alice@example.org>\r\n"
    b"To: Bob <bob@example.org>, carol@example.net\r\n"
    b"Subject: Hello kumquat\r\n"
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
    b"Message-ID: <msg1@example.org>\r\n"
    b"\r\n"
    b"Hello Bob,\r\nthis body mentions xylophonist once.\r\n"
)

MULTIPART = (
    b"From: Bob <bob@example.org>\r\n"
    b"To: Alice <alice@example.org>\r\n"
    b"Subject: Report attached\r\n"
    b"Date: Tue, 8 Feb 1994 10:00:00 +0000\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n'
    b"\r\n"
    b"preamble\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"\r\n"
    b"See the attachment.\r\n"
    b"--XX\r\n"
    b"Content-Type: application/octet-stream; name=data.bin\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"Content-Disposition: attachment; filename=data.bin\r\n"
    b"\r\n"
    b"AAECAwQF\r\n"
    b"--XX--\r\n"
)


def append(c, message: bytes, mailbox: str = "INBOX", flags: str = "") -> bytes:
    """APPEND ``message`` through a synchronizing literal; returns the tagged line."""
    flag_part = f" ({flags})" if flags else ""
    c.send(f"ap APPEND {mailbox}{flag_part} {{{len(message)}}}".encode())
    cont = c.read_line()
    assert cont.startswith(b"+"), cont
    c.send(message)
    while True:
        line = c.read_line()
        if line.startswith(b"ap "):
            assert line.startswith(b"ap OK"), line
            return line


@pytest.fixture
def loaded(imap_script):
    """A logged-in session whose INBOX holds SIMPLE, MULTIPART and SIMPLE again (\\Seen)."""
    c = imap_script(login=True)
    append(c, SIMPLE)
    append(c, MULTIPART, flags="\\Flagged")
    append(c, SIMPLE.replace(b"msg1", b"msg3"), flags="\\Seen $Work")
    return c
