"""LIST-STATUS (RFC 5819): LIST ... RETURN (STATUS (...))."""

from __future__ import annotations

from tests.protocol.conftest import SIMPLE, append


def test_capability_advertised(imap_script):
    """LIST-STATUS is advertised (RFC 5819 §1)."""
    assert b"LIST-STATUS" in imap_script(login=True).ok("CAPABILITY").untagged[0].split()


def test_rfc_example(imap_script):
    """RFC 5819 §5: STATUS follows each selectable mailbox's LIST line; none for \\Noselect."""
    c = imap_script(login=True)
    c.ok("CREATE Fruit/Banana")
    c.ok("CREATE Fruit/Peach")
    c.ok("DELETE Fruit")
    append(c, SIMPLE, "Fruit/Banana")
    append(c, SIMPLE, "Fruit/Banana", flags="\\Seen")
    r = c.ok('LIST "" "Fruit*" RETURN (STATUS (MESSAGES UNSEEN))')
    assert r.untagged == [
        b'* LIST (\\NonExistent \\HasChildren) "/" "Fruit"',
        b'* LIST (\\HasNoChildren) "/" "Fruit/Banana"',
        b'* STATUS "Fruit/Banana" (MESSAGES 2 UNSEEN 1)',
        b'* LIST (\\HasNoChildren) "/" "Fruit/Peach"',
        b'* STATUS "Fruit/Peach" (MESSAGES 0 UNSEEN 0)',
    ]


def test_with_other_options(imap_script):
    """STATUS combines with SUBSCRIBED selection and other RETURN options."""
    c = imap_script(login=True)
    c.ok("SUBSCRIBE INBOX")
    append(c, SIMPLE)
    r = c.ok('LIST (SUBSCRIBED) "" "*" RETURN (CHILDREN STATUS (MESSAGES UIDNEXT SIZE))')
    assert r.untagged == [
        b'* LIST (\\Subscribed \\HasNoChildren) "/" "INBOX"',
        b'* STATUS "INBOX" (MESSAGES 1 UIDNEXT 2 SIZE %d)' % len(SIMPLE),
    ]


def test_nonexistent_subscribed_gets_no_status(imap_script):
    """A subscribed name that does not exist is listed without STATUS."""
    c = imap_script(login=True)
    c.ok("CREATE Old")
    c.ok("SUBSCRIBE Old")
    c.ok("DELETE Old")
    r = c.ok('LIST (SUBSCRIBED) "" "Old" RETURN (STATUS (MESSAGES))')
    assert r.untagged == [b'* LIST (\\NonExistent \\Subscribed \\HasNoChildren) "/" "Old"']


def test_errors(imap_script):
    """Unknown or missing STATUS items are BAD (RFC 5819 §6 grammar)."""
    c = imap_script(login=True)
    c.bad('LIST "" "*" RETURN (STATUS (BOGUS))')
    c.bad('LIST "" "*" RETURN (STATUS ())')
    c.bad('LIST "" "*" RETURN (STATUS)')
    c.bad('LIST "" "*" RETURN (STATUS (MESSAGES) STATUS (UNSEEN))')
