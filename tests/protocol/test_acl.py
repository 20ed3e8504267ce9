"""ACL (RFC 4314): SETACL DELETEACL GETACL LISTRIGHTS MYRIGHTS and the rights they grant."""

from __future__ import annotations

import pytest

from tests.protocol.conftest import SIMPLE, append


@pytest.fixture
def pair(imap_script):
    """(alice, bob) sessions; bob owns Work (one message) and has granted nothing."""
    bob = imap_script(login=True, user="bob")
    bob.ok("CREATE Work")
    append(bob, SIMPLE, "Work")
    alice = imap_script(login=True)
    return alice, bob


def test_capabilities_advertised(imap_script):
    """CAPABILITY lists ACL and RIGHTS=texk (RFC 4314 §2, §2.1.1)."""
    caps = imap_script(login=True).ok("CAPABILITY").untagged[0].split()
    assert b"ACL" in caps and b"RIGHTS=texk" in caps


def test_rfc_example_setacl_getacl(pair):
    """RFC 4314 §3.1/§3.3: SETACL then GETACL shows owner and the granted identifier."""
    _, bob = pair
    bob.ok("SETACL Work fred rwipslxetad")
    r = bob.ok("GETACL Work")
    assert r.untagged == [b'* ACL "Work" bob lrswipkxteacd fred lrswipxteacd']


def test_setacl_plus_minus(pair):
    """"+" adds to and "-" removes from the current rights; plain rights replace."""
    _, bob = pair
    bob.ok("SETACL Work alice lr")
    bob.ok("SETACL Work alice +w")
    assert bob.ok("GETACL Work").untagged[0].endswith(b"alice lrw")
    bob.ok("SETACL Work alice -r")
    assert bob.ok("GETACL Work").untagged[0].endswith(b"alice lw")
    bob.ok("SETACL Work alice s")
    assert bob.ok("GETACL Work").untagged[0].endswith(b"alice s")
    bob.ok('SETACL Work alice ""')
    assert bob.ok("GETACL Work").untagged == [b'* ACL "Work" bob lrswipkxteacd']


def test_obsolete_c_and_d(pair):
    """RFC 4314 §2.1.1: "c" means "kx", "d" means "et"; responses carry c/d too."""
    _, bob = pair
    bob.ok("SETACL Work alice lrcd")
    assert bob.ok("GETACL Work").untagged[0].endswith(b"alice lrkxtecd")


def test_deleteacl(pair):
    """DELETEACL removes the identifier's entry (RFC 4314 §3.2); deleting none is OK."""
    alice, bob = pair
    bob.ok("SETACL Work alice lr")
    bob.ok("DELETEACL Work alice")
    assert bob.ok("GETACL Work").untagged == [b'* ACL "Work" bob lrswipkxteacd']
    bob.ok("DELETEACL Work nobody")
    assert b"[NONEXISTENT]" in alice.no('SELECT "Other Users/bob/Work"').tagged


def test_listrights(pair):
    """RFC 4314 §3.4: the owner holds everything; others may get each right alone."""
    _, bob = pair
    r = bob.ok("LISTRIGHTS Work alice")
    assert r.untagged == [b'* LISTRIGHTS "Work" alice "" l r s w i p k x t e a c d']
    r = bob.ok("LISTRIGHTS Work bob")
    assert r.untagged == [b'* LISTRIGHTS "Work" bob lrswipkxteacd']


def test_myrights(pair):
    """RFC 4314 §3.5: MYRIGHTS answers the caller's rights; owners hold all."""
    alice, bob = pair
    assert bob.ok("MYRIGHTS Work").untagged == [b'* MYRIGHTS "Work" lrswipkxteacd']
    bob.ok("SETACL Work alice lrs")
    r = alice.ok('MYRIGHTS "Other Users/bob/Work"')
    assert r.untagged == [b'* MYRIGHTS "Other Users/bob/Work" lrs']


def test_myrights_without_any_right(pair):
    """MYRIGHTS on a mailbox the user holds no right on is NO [NONEXISTENT]."""
    alice, _ = pair
    assert b"[NONEXISTENT]" in alice.no('MYRIGHTS "Other Users/bob/Work"').tagged
    assert b"[NONEXISTENT]" in alice.no('MYRIGHTS "Other Users/bob/Nope"').tagged


def test_acl_commands_need_a(pair):
    """GETACL SETACL DELETEACL LISTRIGHTS need "a": NOPERM with "l", else NONEXISTENT."""
    alice, bob = pair
    name = '"Other Users/bob/Work"'
    assert b"[NONEXISTENT]" in alice.no(f"GETACL {name}").tagged
    bob.ok("SETACL Work alice lr")
    assert b"[NOPERM]" in alice.no(f"GETACL {name}").tagged
    assert b"[NOPERM]" in alice.no(f"SETACL {name} alice +a").tagged
    assert b"[NOPERM]" in alice.no(f"DELETEACL {name} alice").tagged
    assert b"[NOPERM]" in alice.no(f"LISTRIGHTS {name} alice").tagged
    bob.ok("SETACL Work alice +a")
    alice.ok(f"SETACL {name} carol lr")
    assert alice.ok(f"GETACL {name}").untagged == [
        b'* ACL "Other Users/bob/Work" bob lrswipkxteacd alice lra carol lr']


def test_owner_rights_fixed(pair):
    """The owner's rights are implicit: SETACL/DELETEACL on the owner is NO [CANNOT]."""
    _, bob = pair
    assert b"[CANNOT]" in bob.no("SETACL Work bob lr").tagged
    assert b"[CANNOT]" in bob.no("SETACL Work -bob r").tagged
    assert b"[CANNOT]" in bob.no("DELETEACL Work bob").tagged


def test_bad_rights_and_syntax(pair):
    """Unknown rights letters are BAD (RFC 4314 §3.1); missing arguments are BAD."""
    _, bob = pair
    bob.bad("SETACL Work alice lrz")
    bob.bad("SETACL Work alice")
    bob.bad("GETACL")
    bob.bad("LISTRIGHTS Work")
    bob.bad("MYRIGHTS Work extra")
    bob.bad('SETACL Work "" lr')
    bob.bad('SETACL Work "-" lr')


def test_acl_commands_need_authentication(imap_script):
    """ACL commands before LOGIN are BAD."""
    c = imap_script()
    c.bad("GETACL INBOX")
    c.bad("MYRIGHTS INBOX")


def test_anyone_and_negative_rights(imap_script):
    """"anyone" grants to all users; "-user" takes rights away (RFC 4314 §2)."""
    bob = imap_script(login=True, user="bob")
    bob.ok("CREATE Team")
    bob.ok("SETACL Team anyone lrs")
    alice = imap_script(login=True)
    assert alice.ok('MYRIGHTS "Other Users/bob/Team"').untagged[0].endswith(b" lrs")
    bob.ok("SETACL Team -alice s")
    assert alice.ok('MYRIGHTS "Other Users/bob/Team"').untagged[0].endswith(b" lr")
    bob.ok("SETACL Team -alice l")
    assert b'"Other Users/bob/Team"' not in b"".join(alice.ok('LIST "" "*"').untagged)


def test_rights_follow_rename(pair):
    """RENAME keeps the mailbox's ACL (same mailbox, new name)."""
    alice, bob = pair
    bob.ok("SETACL Work alice lr")
    bob.ok("RENAME Work Job")
    alice.ok('EXAMINE "Other Users/bob/Job"')
    assert b"[NONEXISTENT]" in alice.no('EXAMINE "Other Users/bob/Work"').tagged


def test_create_inherits_parent_acl(pair):
    """A new mailbox inherits its parent's ACL (decided; RFC 4314 leaves it open)."""
    alice, bob = pair
    bob.ok("SETACL Work alice lr")
    bob.ok("CREATE Work/Sub")
    alice.ok('EXAMINE "Other Users/bob/Work/Sub"')


def test_create_in_shared_folder_needs_k(pair):
    """CREATE under someone else's folder needs "k" on it; the creator gets all rights."""
    alice, bob = pair
    bob.ok("SETACL Work alice lr")
    assert b"[NOPERM]" in alice.no('CREATE "Other Users/bob/Work/Mine"').tagged
    assert b"[NOPERM]" in alice.no('CREATE "Other Users/bob/Top"').tagged
    assert b"[NOPERM]" in alice.no('CREATE "Other Users/nobody/Top"').tagged
    bob.ok("SETACL Work alice +k")
    alice.ok('CREATE "Other Users/bob/Work/Mine"')
    r = alice.ok('MYRIGHTS "Other Users/bob/Work/Mine"')
    assert r.untagged[0].endswith(b" lrswipkxteacd")
    assert b"Work/Mine" in b"".join(bob.ok('LIST "" "*"').untagged)
