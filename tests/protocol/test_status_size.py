"""STATUS=SIZE (RFC 8438)."""

from __future__ import annotations

from tests.protocol.conftest import MULTIPART, SIMPLE, append


def test_capability_advertised(imap_script):
    """STATUS=SIZE is advertised (RFC 8438 §2)."""
    assert b"STATUS=SIZE" in imap_script(login=True).ok("CAPABILITY").untagged[0].split()


def test_size_is_sum_of_message_sizes(imap_script):
    """SIZE is the total of RFC822.SIZE over the mailbox (RFC 8438 §3)."""
    c = imap_script(login=True)
    assert c.ok("STATUS INBOX (SIZE)").untagged == [b'* STATUS "INBOX" (SIZE 0)']
    append(c, SIMPLE)
    append(c, MULTIPART)
    r = c.ok("STATUS INBOX (MESSAGES SIZE)")
    assert r.untagged == [b'* STATUS "INBOX" (MESSAGES 2 SIZE %d)' % (len(SIMPLE) + len(MULTIPART))]


def test_size_drops_after_expunge(imap_script):
    """Expunged messages no longer count."""
    c = imap_script(login=True)
    append(c, SIMPLE)
    append(c, MULTIPART, flags="\\Deleted")
    c.ok("SELECT INBOX")
    c.ok("EXPUNGE")
    assert c.ok("STATUS INBOX (SIZE)").untagged == [b'* STATUS "INBOX" (SIZE %d)' % len(SIMPLE)]


def test_size_of_missing_mailbox(imap_script):
    """STATUS SIZE of a missing mailbox is NO [NONEXISTENT]."""
    assert b"[NONEXISTENT]" in imap_script(login=True).no("STATUS Nope (SIZE)").tagged
