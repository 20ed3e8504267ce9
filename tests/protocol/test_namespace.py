"""NAMESPACE (RFC 2342): personal "", other users "Other Users/", shared "Public/"."""

from __future__ import annotations

from tests.protocol.conftest import SIMPLE, append


def test_namespace_response(imap_script):
    """NAMESPACE lists the three namespaces, each with delimiter "/" (RFC 2342 §5)."""
    c = imap_script(login=True)
    r = c.ok("NAMESPACE")
    assert r.untagged == [b'* NAMESPACE (("" "/")) (("Other Users/" "/")) (("Public/" "/"))']


def test_namespace_needs_authentication(imap_script):
    """NAMESPACE before LOGIN is BAD (RFC 2342 §5: authenticated state only)."""
    c = imap_script()
    c.bad("NAMESPACE")


def test_namespace_takes_no_arguments(imap_script):
    """NAMESPACE with an argument is BAD."""
    c = imap_script(login=True)
    c.bad("NAMESPACE x")


def test_other_users_name_reaches_shared_folder(imap_script):
    """"Other Users/bob/Work" names bob's Work once bob grants rights (RFC 2342 §4)."""
    bob = imap_script(login=True, user="bob")
    bob.ok("CREATE Work")
    append(bob, SIMPLE, "Work")
    bob.ok('SETACL Work alice lr')
    alice = imap_script(login=True)
    r = alice.ok('STATUS "Other Users/bob/Work" (MESSAGES)')
    assert r.untagged == [b'* STATUS "Other Users/bob/Work" (MESSAGES 1)']
    listed = alice.ok('LIST "" "Other Users/*"').untagged
    assert listed == [
        b'* LIST (\\Noselect \\HasChildren) "/" "Other Users/bob"',
        b'* LIST (\\HasNoChildren) "/" "Other Users/bob/Work"',
    ]


def test_list_percent_at_namespace_roots(imap_script):
    """LIST "%" shows the namespace roots holding visible folders as \\Noselect."""
    bob = imap_script(login=True, user="bob")
    bob.ok("CREATE Work")
    bob.ok("SETACL Work alice l")
    alice = imap_script(login=True)
    top = alice.ok('LIST "" "%"').untagged
    assert b'* LIST (\\Noselect \\HasChildren) "/" "Other Users"' in top
    assert not any(b'"Public"' in line for line in top)


def test_public_folder_from_config(make_imap_server, imap_script):
    """Configured public folders appear as "Public/<name>" with the configured rights."""
    server = make_imap_server(public_folders=["News", "Board"], public_rights="lrs")
    c = imap_script(login=True, server=server)
    assert c.ok('LIST "" "Public/*"').untagged == [
        b'* LIST (\\HasNoChildren) "/" "Public/Board"',
        b'* LIST (\\HasNoChildren) "/" "Public/News"',
    ]
    assert c.ok('MYRIGHTS "Public/News"').untagged == [b'* MYRIGHTS "Public/News" lrs']
    assert b"[READ-WRITE]" in c.ok('SELECT "Public/News"').tagged


def test_public_folder_default_rights_read_only(make_imap_server, imap_script):
    """By default "anyone" gets "lr" on public folders: SELECT opens them READ-ONLY."""
    server = make_imap_server(public_folders=["News"])
    c = imap_script(login=True, server=server)
    assert c.ok('MYRIGHTS "Public/News"').untagged == [b'* MYRIGHTS "Public/News" lr']
    assert b"[READ-ONLY]" in c.ok('SELECT "Public/News"').tagged


def test_namespace_roots_are_not_mailboxes(imap_script):
    """"Public", "Other Users" and "Other Users/bob" cannot be selected or created."""
    c = imap_script(login=True)
    for name in ('"Public"', '"Other Users"', '"Other Users/bob"', '"Public/INBOX"'):
        assert b"[NONEXISTENT]" in c.no(f"SELECT {name}").tagged
    assert b"[CANNOT]" in c.no('CREATE "Public"').tagged
    assert b"[CANNOT]" in c.no('CREATE "Other Users"').tagged
    assert b"[CANNOT]" in c.no('CREATE "Public/INBOX"').tagged


def test_own_name_through_other_users(imap_script):
    """"Other Users/alice/INBOX" is alice's own INBOX, shown back as "INBOX"."""
    c = imap_script(login=True)
    r = c.ok('STATUS "Other Users/alice/INBOX" (MESSAGES)')
    assert r.untagged == [b'* STATUS "INBOX" (MESSAGES 0)']
