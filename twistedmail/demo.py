"""Sample folders and messages for ``--demo`` (user demo, password demo)."""

from __future__ import annotations

import datetime
from typing import Any

from twistedmail.store import Append, CreateMailbox

FOLDERS = ("Work", "Archive/2026", "Café")  # Archive exists (CreateAccount.standard)

_UTC = datetime.UTC


def _crlf(text: str) -> bytes:
    """RFC 5322 wants CRLF line ends; the samples below are written with LF."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


PLAIN = _crlf("""\
From: Alice Example <alice@example.org>
To: Demo User <demo@example.org>
Subject: Welcome to twistedmail
Date: Mon, 05 Jan 2026 09:00:00 +0000
Message-ID: <welcome.1@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Hello!

This is a plain text message kept in memory by twistedmail.
Try SELECT, FETCH and SEARCH on it.
""")

ALTERNATIVE = _crlf("""\
From: Bob Builder <bob@example.org>
To: demo@example.org
Subject: Meeting notes (HTML and text)
Date: Tue, 06 Jan 2026 14:30:00 +0100
Message-ID: <notes.2@example.org>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="alt-boundary"

--alt-boundary
Content-Type: text/plain; charset=utf-8

Notes: ship the IMAP server, then the cluster.
--alt-boundary
Content-Type: text/html; charset=utf-8

<html><body><p>Notes: ship the <b>IMAP server</b>, then the cluster.</p></body></html>
--alt-boundary--
""")

ATTACHMENT = _crlf("""\
From: Carol <carol@example.org>
To: demo@example.org
Subject: Report with attachment
Date: Wed, 07 Jan 2026 08:15:00 -0500
Message-ID: <report.3@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="mixed-boundary"

--mixed-boundary
Content-Type: text/plain; charset=us-ascii

The report is attached.
--mixed-boundary
Content-Type: text/csv; name="report.csv"
Content-Disposition: attachment; filename="report.csv"
Content-Transfer-Encoding: base64

bW9udGgsbWVzc2FnZXMKamFudWFyeSw0MgpmZWJydWFyeSw1Nwo=
--mixed-boundary--
""")

ENCODED_HEADER = _crlf("""\
From: =?utf-8?q?Fran=C3=A7ois_Caf=C3=A9?= <francois@example.fr>
To: demo@example.org
Subject: =?utf-8?b?Q2Fmw6kgw6AgbWlkaSA/?=
Date: Thu, 08 Jan 2026 12:00:00 +0100
Message-ID: <cafe.4@example.fr>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

On se retrouve au café à midi ? Ça marche.
""")

SEEN = _crlf("""\
From: Newsletter <news@example.com>
To: demo@example.org
Subject: Already read newsletter
Date: Fri, 09 Jan 2026 07:00:00 +0000
Message-ID: <news.5@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

You have seen this one already.
""")

FLAGGED = _crlf("""\
From: Dave <dave@example.org>
To: demo@example.org
Cc: alice@example.org
Subject: Important: quarterly review
Date: Sat, 10 Jan 2026 16:45:00 +0000
Message-ID: <review.6@example.org>
In-Reply-To: <notes.2@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Please review the figures before Monday.
""")


def _at(day: int, hour: int, minute: int) -> datetime.datetime:
    return datetime.datetime(2026, 1, day, hour, minute, 5, tzinfo=_UTC)


# (mailbox, message, flags, internal date)
MESSAGES: tuple[tuple[str, bytes, frozenset[str], datetime.datetime], ...] = (
    ("INBOX", PLAIN, frozenset(), _at(5, 9, 0)),
    ("INBOX", ALTERNATIVE, frozenset(), _at(6, 13, 30)),
    ("INBOX", ATTACHMENT, frozenset(), _at(7, 13, 15)),
    ("INBOX", ENCODED_HEADER, frozenset(), _at(8, 11, 0)),
    ("Archive/2026", SEEN, frozenset({"\\Seen"}), _at(9, 7, 0)),
    ("Work", FLAGGED, frozenset({"\\Flagged"}), _at(10, 16, 45)),
)


def populate(store: Any, user: str) -> None:
    """Create the sample folders and messages in ``user``'s (existing) account."""
    for name in FOLDERS:
        store.apply(CreateMailbox.new(user, name))
    for mailbox, data, flags, when in MESSAGES:
        store.apply(Append.new(store, user, mailbox, data, flags=flags, internaldate=when))
