"""LIST-EXTENDED (RFC 5258) and CHILDREN (RFC 3348): selection and return options,
multiple patterns, \\Subscribed, \\NonExistent, CHILDINFO."""

from __future__ import annotations


def lines(result):
    """The untagged LIST lines of a result, as bytes."""
    return [line for line in result.untagged if line.startswith(b"* LIST")]


def test_capability_advertised(imap_script):
    """LIST-EXTENDED is advertised (RFC 5258 §1)."""
    caps = imap_script(login=True).ok("CAPABILITY").untagged[0].split()
    assert b"LIST-EXTENDED" in caps and b"CHILDREN" in caps


def test_multiple_patterns(imap_script):
    """LIST "" ("INBOX" "Sent*") lists the union of the patterns' matches once each."""
    c = imap_script(login=True)
    c.ok("CREATE Sent/2026")
    got = lines(c.ok('LIST "" ("INBOX" "Sent*" "inbox")'))
    assert got == [
        b'* LIST (\\HasNoChildren) "/" "INBOX"',
        b'* LIST (\\HasChildren \\Sent) "/" "Sent"',
        b'* LIST (\\HasNoChildren) "/" "Sent/2026"',
    ]


def test_empty_options_same_as_plain(imap_script):
    """LIST () "" "%" RETURN () answers like LIST "" "%" (RFC 5258 §3)."""
    c = imap_script(login=True)
    c.ok("CREATE Fruit/Apple")
    assert lines(c.ok('LIST () "" "%" RETURN ()')) == lines(c.ok('LIST "" "%"'))


def test_return_children(imap_script):
    """RETURN (CHILDREN) gives \\HasChildren / \\HasNoChildren (RFC 5258 §4, RFC 3348)."""
    c = imap_script(login=True)
    c.ok("CREATE Fruit/Apple")
    got = lines(c.ok('LIST "" "Fruit*" RETURN (CHILDREN)'))
    assert got == [b'* LIST (\\HasChildren) "/" "Fruit"',
                   b'* LIST (\\HasNoChildren) "/" "Fruit/Apple"']


def test_select_subscribed(imap_script):
    """LIST (SUBSCRIBED) lists only subscribed names, with \\Subscribed; a subscribed
    name that no longer exists is \\NonExistent (RFC 5258 §3.1, example 5.3)."""
    c = imap_script(login=True)
    c.ok("CREATE Fruit")
    c.ok("CREATE Tofu")
    c.ok("SUBSCRIBE Fruit")
    c.ok("SUBSCRIBE Tofu")
    c.ok("DELETE Tofu")
    got = lines(c.ok('LIST (SUBSCRIBED) "" "*"'))
    assert got == [b'* LIST (\\Subscribed \\HasNoChildren) "/" "Fruit"',
                   b'* LIST (\\NonExistent \\Subscribed \\HasNoChildren) "/" "Tofu"']


def test_return_subscribed(imap_script):
    """RETURN (SUBSCRIBED) marks subscribed names among all matches (RFC 5258 §3.2)."""
    c = imap_script(login=True)
    c.ok("CREATE Fruit")
    c.ok("CREATE Veg")
    c.ok("SUBSCRIBE Veg")
    got = lines(c.ok('LIST "" "*" RETURN (SUBSCRIBED)'))
    assert b'* LIST (\\HasNoChildren) "/" "Fruit"' in got
    assert b'* LIST (\\Subscribed \\HasNoChildren) "/" "Veg"' in got


def test_recursivematch_childinfo(imap_script):
    """(SUBSCRIBED RECURSIVEMATCH) with "%" returns a parent whose inferior is
    subscribed with ("CHILDINFO" ("SUBSCRIBED")) (RFC 5258 §3.5, example 5.9)."""
    c = imap_script(login=True)
    for name in ("Foo/Bar", "Foo/Baz", "Moo", "Baz/Bar"):
        c.ok(f"CREATE {name}")
    c.ok("SUBSCRIBE Foo/Bar")
    c.ok("SUBSCRIBE Moo")
    c.ok("SUBSCRIBE Baz")
    c.ok("SUBSCRIBE Baz/Bar")
    got = lines(c.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)'))
    assert got == [
        b'* LIST (\\Subscribed \\HasChildren) "/" "Baz" ("CHILDINFO" ("SUBSCRIBED"))',
        b'* LIST (\\HasChildren) "/" "Foo" ("CHILDINFO" ("SUBSCRIBED"))',
        b'* LIST (\\Subscribed \\HasNoChildren) "/" "Moo"',
    ]


def test_recursivematch_nonexistent_parent(imap_script):
    """A parent that does not exist is returned \\NonExistent with CHILDINFO."""
    c = imap_script(login=True)
    c.ok("CREATE Gone/Kid")
    c.ok("SUBSCRIBE Gone/Kid")
    c.ok("DELETE Gone")
    got = lines(c.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"'))
    assert got == [b'* LIST (\\NonExistent \\HasChildren) "/" "Gone" ("CHILDINFO" ("SUBSCRIBED"))']


def test_recursivematch_star_needs_no_childinfo(imap_script):
    """With "*" every subscribed descendant matches itself: no CHILDINFO (RFC 5258 §3.5)."""
    c = imap_script(login=True)
    c.ok("CREATE Foo/Bar")
    c.ok("SUBSCRIBE Foo/Bar")
    got = lines(c.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "*"'))
    assert got == [b'* LIST (\\Subscribed \\HasNoChildren) "/" "Foo/Bar"']


def test_nonexistent_parent_in_extended_list(imap_script):
    """A deleted parent with inferiors: \\Noselect in a plain LIST, \\NonExistent in an
    extended one (RFC 5258 §3: \\NonExistent implies \\Noselect)."""
    c = imap_script(login=True)
    c.ok("CREATE p/q")
    c.ok("DELETE p")
    assert lines(c.ok('LIST "" "p"')) == [b'* LIST (\\Noselect \\HasChildren) "/" "p"']
    assert lines(c.ok('LIST () "" "p"')) == [b'* LIST (\\NonExistent \\HasChildren) "/" "p"']


def test_remote_selects_nothing_more(imap_script):
    """REMOTE is accepted; this server has no remote mailboxes (RFC 5258 §3.1)."""
    c = imap_script(login=True)
    assert lines(c.ok('LIST (REMOTE) "" "INBOX"')) == [b'* LIST (\\HasNoChildren) "/" "INBOX"']


def test_reference_applies_to_every_pattern(imap_script):
    """The reference name is joined to each pattern (RFC 3501 §6.3.8, RFC 5258 §3)."""
    c = imap_script(login=True)
    c.ok("CREATE top/a")
    c.ok("CREATE top/b")
    got = lines(c.ok('LIST "top/" ("a" "b")'))
    assert [g.rsplit(b" ", 1)[1] for g in got] == [b'"top/a"', b'"top/b"']


def test_syntax_errors_are_bad(imap_script):
    """Unknown options, lone RECURSIVEMATCH and malformed RETURN are BAD (RFC 5258 §3)."""
    c = imap_script(login=True)
    c.bad('LIST (RECURSIVEMATCH) "" "*"')
    c.bad('LIST (RECURSIVEMATCH REMOTE) "" "*"')
    c.bad('LIST (BOGUS) "" "*"')
    c.bad('LIST "" "*" RETURN (BOGUS)')
    c.bad('LIST "" "*" RETURN CHILDREN')
    c.bad('LIST "" "*" FOO (CHILDREN)')
    c.bad('LIST "" ()')
    c.bad('LSUB (SUBSCRIBED) "" "*"')
