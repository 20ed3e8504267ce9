"""Scripted conversations: CREATE DELETE RENAME SUBSCRIBE UNSUBSCRIBE LIST LSUB STATUS."""

from __future__ import annotations

from tests.protocol.conftest import SIMPLE, append


def names(result):
    """Mailbox names from LIST/LSUB untagged lines."""
    return [line.rsplit(b' "/" ', 1)[1] for line in result.untagged]


def test_create_list_delete(imap_script):
    """CREATE makes a mailbox LIST shows; DELETE removes it (RFC 3501 §6.3.3-4)."""
    c = imap_script(login=True)
    c.ok("CREATE Work")
    assert b'"Work"' in names(c.ok('LIST "" "*"'))
    c.ok("DELETE Work")
    assert b'"Work"' not in names(c.ok('LIST "" "*"'))


def test_create_existing_is_no(imap_script):
    """CREATE of an existing name: NO [ALREADYEXISTS]; of INBOX too."""
    c = imap_script(login=True)
    c.ok("CREATE Dup")
    assert b"[ALREADYEXISTS]" in c.no("CREATE Dup").tagged
    c.no("CREATE inbox")


def test_create_makes_parents(imap_script):
    """CREATE a/b/c creates a and a/b too (RFC 3501 §6.3.3)."""
    c = imap_script(login=True)
    c.ok("CREATE a/b/c")
    got = names(c.ok('LIST "" "*"'))
    assert [n for n in got if n.startswith(b'"a')] == [b'"a"', b'"a/b"', b'"a/b/c"']


def test_create_trailing_delimiter(imap_script):
    """CREATE foo/ creates foo (RFC 3501 §6.3.3 trailing hierarchy delimiter)."""
    c = imap_script(login=True)
    c.ok("CREATE foo/")
    assert b'"foo"' in names(c.ok('LIST "" "foo"'))


def test_delete_nonexistent_and_inbox(imap_script):
    """DELETE of a missing mailbox is NO [NONEXISTENT]; DELETE INBOX is NO."""
    c = imap_script(login=True)
    assert b"[NONEXISTENT]" in c.no("DELETE Nope").tagged
    c.no("DELETE INBOX")


def test_rename_moves_children(imap_script):
    """RENAME a → b renames a/x to b/x too (RFC 3501 §6.3.5)."""
    c = imap_script(login=True)
    c.ok("CREATE a/x")
    c.ok("RENAME a b")
    got = names(c.ok('LIST "" "*"'))
    assert b'"b/x"' in got and b'"a/x"' not in got


def test_rename_errors(imap_script):
    """RENAME from a missing name or onto an existing one is NO."""
    c = imap_script(login=True)
    c.ok("CREATE one")
    c.ok("CREATE two")
    assert b"[NONEXISTENT]" in c.no("RENAME missing three").tagged
    assert b"[ALREADYEXISTS]" in c.no("RENAME one two").tagged


def test_rename_inbox_moves_messages(imap_script):
    """RENAME INBOX moves its messages to the new name, INBOX stays and is empty."""
    c = imap_script(login=True)
    append(c, SIMPLE)
    append(c, SIMPLE)
    c.ok("RENAME INBOX Old")
    assert b"MESSAGES 2" in c.ok("STATUS Old (MESSAGES)").untagged[0]
    assert b"MESSAGES 0" in c.ok("STATUS INBOX (MESSAGES)").untagged[0]


def test_list_percent_and_star(imap_script):
    """`%` stops at the delimiter, `*` does not (RFC 3501 §6.3.8)."""
    c = imap_script(login=True)
    c.ok("CREATE top/mid/leaf")
    assert names(c.ok('LIST "" "top/%"')) == [b'"top/mid"']
    assert names(c.ok('LIST "" "top/*"')) == [b'"top/mid"', b'"top/mid/leaf"']
    assert names(c.ok('LIST "top/" "%"')) == [b'"top/mid"']


def test_list_empty_pattern_gives_delimiter(imap_script):
    """LIST "" "" returns the hierarchy delimiter (RFC 3501 §6.3.8)."""
    c = imap_script(login=True)
    r = c.ok('LIST "" ""')
    assert r.untagged == [b'* LIST (\\Noselect) "/" ""']


def test_list_inbox_case_insensitive(imap_script):
    """LIST "" "inbox" finds INBOX (RFC 3501 §5.1)."""
    c = imap_script(login=True)
    assert names(c.ok('LIST "" "inbox"')) == [b'"INBOX"']


def test_list_children_attributes(imap_script):
    """\\HasChildren / \\HasNoChildren (RFC 3348) and \\Noselect for a missing parent."""
    c = imap_script(login=True)
    c.ok("CREATE p/q")
    c.ok("DELETE p")
    r = c.ok('LIST "" "p*"')
    assert b'* LIST (\\Noselect \\HasChildren) "/" "p"' in r.untagged
    assert b'* LIST (\\HasNoChildren) "/" "p/q"' in r.untagged


def test_non_ascii_names_in_modified_utf7(imap_script):
    """A mailbox created with mUTF-7 is listed in mUTF-7 (RFC 3501 §5.1.3)."""
    c = imap_script(login=True)
    c.ok('CREATE "Caf&AOk-"')
    assert b'"Caf&AOk-"' in names(c.ok('LIST "" "*"'))
    c.ok('SELECT "Caf&AOk-"')


def test_invalid_mutf7_is_bad(imap_script):
    """An unterminated mUTF-7 shift in a name is refused."""
    c = imap_script(login=True)
    r = c.cmd('CREATE "Caf&AOk"')
    assert r.status in ("BAD", "NO")


def test_subscribe_lsub_unsubscribe(imap_script):
    """SUBSCRIBE adds to LSUB, UNSUBSCRIBE removes (RFC 3501 §6.3.6-7, §6.3.9)."""
    c = imap_script(login=True)
    c.ok("CREATE news/tech")
    c.ok("SUBSCRIBE news/tech")
    assert names(c.ok('LSUB "" "*"')) == [b'"news/tech"']
    r = c.ok('LSUB "" "%"')
    assert r.untagged == [b'* LSUB (\\Noselect) "/" "news"']
    c.ok("UNSUBSCRIBE news/tech")
    assert c.ok('LSUB "" "*"').untagged == []
    c.no("UNSUBSCRIBE news/tech")
    c.no("SUBSCRIBE nothing-here")


def test_status_items(imap_script):
    """STATUS returns every RFC 3501 item with correct values."""
    c = imap_script(login=True)
    append(c, SIMPLE)
    append(c, SIMPLE, flags="\\Seen")
    r = c.ok("STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)")
    line = r.untagged[0]
    assert line.startswith(b'* STATUS "INBOX" (MESSAGES 2 RECENT 2 UIDNEXT 3 UIDVALIDITY ')
    assert line.endswith(b" UNSEEN 1)")


def test_status_errors(imap_script):
    """STATUS of a missing mailbox is NO [NONEXISTENT]; an unknown item is BAD."""
    c = imap_script(login=True)
    assert b"[NONEXISTENT]" in c.no("STATUS Nope (MESSAGES)").tagged
    c.bad("STATUS INBOX (BOGUS)")


def test_literal_mailbox_name(imap_script):
    """Mailbox names may be sent as literals."""
    c = imap_script(login=True)
    c.send(b"l1 CREATE {7}")
    assert c.read_line().startswith(b"+")
    c.send(b"Literal")
    assert c.read_line().startswith(b"l1 OK")
    assert b'"Literal"' in names(c.ok('LIST "" "*"'))
