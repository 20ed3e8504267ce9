"""SPECIAL-USE and CREATE-SPECIAL-USE (RFC 6154)."""

from __future__ import annotations

DEFAULTS = [
    b'* LIST (\\HasNoChildren \\Archive) "/" "Archive"',
    b'* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
    b'* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
    b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
    b'* LIST (\\HasNoChildren \\Trash) "/" "Trash"',
]


def test_capabilities_advertised(imap_script):
    """SPECIAL-USE and CREATE-SPECIAL-USE are advertised (RFC 6154 §2, §3)."""
    caps = imap_script(login=True).ok("CAPABILITY").untagged[0].split()
    assert b"SPECIAL-USE" in caps and b"CREATE-SPECIAL-USE" in caps


def test_new_account_has_special_mailboxes(imap_script):
    """Every account starts with INBOX plus Drafts, Sent, Trash, Junk, Archive, each
    carrying its attribute in a plain LIST (RFC 6154 §2)."""
    c = imap_script(login=True)
    assert c.ok('LIST "" "*"').untagged == [b'* LIST (\\HasNoChildren) "/" "INBOX"', *DEFAULTS]


def test_select_special_use(imap_script):
    """LIST (SPECIAL-USE) lists only mailboxes with special uses (RFC 6154 §5.1)."""
    c = imap_script(login=True)
    c.ok("CREATE Plain")
    assert c.ok('LIST (SPECIAL-USE) "" "*"').untagged == DEFAULTS


def test_return_special_use(imap_script):
    """RFC 6154 §5.1 example form: LIST "" "%" RETURN (SPECIAL-USE)."""
    c = imap_script(login=True)
    r = c.ok('LIST "" "%" RETURN (SPECIAL-USE)')
    assert b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"' in r.untagged
    assert b'* LIST (\\HasNoChildren) "/" "INBOX"' in r.untagged


def test_create_with_use(imap_script):
    """RFC 6154 §5.3: CREATE MySpecial (USE (\\Drafts \\Sent)) gives both attributes."""
    c = imap_script(login=True)
    c.ok("CREATE MySpecial (USE (\\Drafts \\Sent))")
    r = c.ok('LIST "" "MySpecial" RETURN (SPECIAL-USE)')
    assert r.untagged == [b'* LIST (\\HasNoChildren \\Drafts \\Sent) "/" "MySpecial"']


def test_create_use_case_insensitive_and_empty(imap_script):
    """Attributes match case-insensitively; USE () creates a plain mailbox."""
    c = imap_script(login=True)
    c.ok("CREATE Bin (USE (\\trash))")
    c.ok("CREATE Nothing (USE ())")
    r = c.ok('LIST "" ("Bin" "Nothing")')
    assert r.untagged == [b'* LIST (\\HasNoChildren \\Trash) "/" "Bin"',
                          b'* LIST (\\HasNoChildren) "/" "Nothing"']


def test_create_unsupported_use_is_useattr(imap_script):
    """\\All, \\Flagged and unknown attributes: NO [USEATTR], nothing created (RFC 6154 §3)."""
    c = imap_script(login=True)
    for attr in ("\\All", "\\Flagged", "\\Important", "\\Bogus"):
        assert b"[USEATTR]" in c.no(f"CREATE Virtual (USE ({attr}))").tagged
    assert c.ok('LIST "" "Virtual"').untagged == []


def test_create_param_syntax_errors(imap_script):
    """Unknown create-params and non-attribute values are BAD (RFC 4466 §2.2)."""
    c = imap_script(login=True)
    c.bad("CREATE x (FOO (\\Drafts))")
    c.bad("CREATE x (USE (Drafts))")
    c.bad("CREATE x (USE \\Drafts)")
    c.bad("CREATE x ()")


def test_rename_keeps_attribute(imap_script):
    """RENAME moves the special use with the mailbox."""
    c = imap_script(login=True)
    c.ok("RENAME Trash Bin/Old")
    r = c.ok('LIST (SPECIAL-USE) "" "*"')
    assert b'* LIST (\\HasNoChildren \\Trash) "/" "Bin/Old"' in r.untagged
    assert not any(b'"Trash"' in line for line in r.untagged)


def test_delete_drops_attribute(imap_script):
    """A re-created name does not inherit the deleted mailbox's special use."""
    c = imap_script(login=True)
    c.ok("DELETE Junk")
    c.ok("CREATE Junk")
    assert c.ok('LIST "" "Junk"').untagged == [b'* LIST (\\HasNoChildren) "/" "Junk"']


def test_specialuse_metadata_entry(imap_script):
    """/private/specialuse shows and sets the attributes (RFC 6154 §4)."""
    c = imap_script(login=True)
    r = c.ok("GETMETADATA Sent /private/specialuse")
    assert r.untagged == [b'* METADATA "Sent" (/private/specialuse "\\\\Sent")']
    c.ok('SETMETADATA Junk (/private/specialuse "\\\\Trash \\\\Junk")')
    got = c.ok('LIST "" "Junk"').untagged
    assert got == [b'* LIST (\\HasNoChildren \\Junk \\Trash) "/" "Junk"']
    assert b"[USEATTR]" in c.no('SETMETADATA Junk (/private/specialuse "\\\\All")').tagged
    c.ok("SETMETADATA Junk (/private/specialuse NIL)")
    assert c.ok('LIST "" "Junk"').untagged == [b'* LIST (\\HasNoChildren) "/" "Junk"']


def test_lsub_unchanged(imap_script):
    """LSUB stays RFC 3501 plain: no special-use attributes."""
    c = imap_script(login=True)
    c.ok("SUBSCRIBE Sent")
    assert c.ok('LSUB "" "*"').untagged == [b'* LSUB () "/" "Sent"']


def test_other_users_mailboxes_carry_no_special_use(imap_script):
    """bob's shared Sent is listed for alice without \\Sent, and SPECIAL-USE selection
    skips it, so her client never files mail there."""
    bob = imap_script(login=True, user="bob")
    bob.ok("SETACL Sent alice lr")
    alice = imap_script(login=True)
    got = alice.ok('LIST "" "Other Users/bob/*"').untagged
    assert got == [b'* LIST (\\HasNoChildren) "/" "Other Users/bob/Sent"']
    assert not any(b"Other Users" in line
                   for line in alice.ok('LIST (SPECIAL-USE) "" "*"').untagged)
