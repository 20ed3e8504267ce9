"""RFC 8474 message ids: content-derived EMAILID and THREADID."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from twistedmail.imap.objectid import emailid, thread_root, threadid
from twistedmail.store import Append, Blob, CreateAccount, MailStore

OBJECTID = re.compile(r"[A-Za-z0-9_-]{1,255}")


def test_emailid_same_on_every_node():
    """Two nodes storing the same bytes derive the same EMAILID and THREADID."""
    ids = []
    for node in ("n1", "n2"):
        store = MailStore(node, 1)
        store.apply(CreateAccount("a"))
        store.apply(Append.new(store, "a", "INBOX", b"Message-ID: <x@y>\r\n\r\nhi"))
        (rec,) = store.mailbox("a", "INBOX").records()
        ids.append((emailid(rec.blob), threadid(rec.blob)))
    assert ids[0] == ids[1]


def test_thread_root_order():
    """References' first id, then In-Reply-To, then the own Message-ID (first field wins)."""
    assert thread_root(b"Message-ID: <a@b>\r\nReferences: <r1@x>\r\n <r2@x>\r\n\r\n") == b"r1@x"
    assert thread_root(b"In-Reply-To: <p@x> (c)\r\nmessage-id:<own@x>\r\n\r\n") == b"p@x"
    assert thread_root(b"message-id: <own@x>\r\nMessage-ID: <two@x>\r\n\r\n") == b"own@x"
    assert thread_root(b"References: junk\r\nMessage-ID: <m@x>\r\n\r\n") == b"m@x"
    assert thread_root(b"Subject: s\r\n\r\nReferences: <body@x>\r\n") is None
    assert thread_root(b"X-References: <no@x>\r\n\r\n") is None


def test_threadid_without_ids_is_per_message():
    """No Message-ID / References / In-Reply-To: a thread of its own."""
    a, b = Blob(b"Subject: a\r\n\r\n1"), Blob(b"Subject: a\r\n\r\n2")
    assert threadid(a) != threadid(b)
    assert threadid(a) == threadid(Blob(b"Subject: a\r\n\r\n1"))


def test_ids_leave_no_cache_entries():
    """EMAILID and THREADID cost no memory per message (nothing cached on the blob)."""
    blob = Blob(b"Message-ID: <x@y>\r\n\r\nhi")
    emailid(blob)
    threadid(blob)
    assert blob.cache == {}


@given(st.binary(max_size=400))
def test_ids_are_valid_objectids(raw):
    """Any message gives ids of 1-255 ALPHA / DIGIT / "_" / "-" (RFC 8474 §7)."""
    blob = Blob(raw)
    assert OBJECTID.fullmatch(emailid(blob)) and OBJECTID.fullmatch(threadid(blob))
