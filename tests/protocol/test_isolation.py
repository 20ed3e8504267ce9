"""Isolation (RFC 4314 §4, §6): no command reaches another user's folders without rights,
and with rights exactly as far as they go."""

from __future__ import annotations

import pytest

from tests.protocol.conftest import SIMPLE, append

BOB_WORK = '"Other Users/bob/Work"'
BOB_MISSING = '"Other Users/bob/Missing"'


@pytest.fixture
def pair(imap_script):
    """(alice, bob); bob owns Work with one message; alice has a message in INBOX."""
    bob = imap_script(login=True, user="bob")
    bob.ok("CREATE Work")
    append(bob, SIMPLE, "Work")
    alice = imap_script(login=True)
    append(alice, SIMPLE)
    return alice, bob


def _same_as_missing(c, command: str) -> None:
    """The command answers for bob's Work exactly as for a mailbox that does not exist."""
    real = c.no(command.replace("{}", BOB_WORK)).text
    missing = c.no(command.replace("{}", BOB_MISSING)).text
    assert real.replace(b"Work", b"X") == missing.replace(b"Missing", b"X")


@pytest.mark.parametrize("command", [
    "SELECT {}", "EXAMINE {}", "STATUS {} (MESSAGES)", "DELETE {}", "RENAME {} Mine",
    "SUBSCRIBE {}", "GETACL {}", "MYRIGHTS {}", "LISTRIGHTS {} alice", "SETACL {} alice lr",
    "DELETEACL {} alice", "GETQUOTAROOT {}",
])
def test_no_rights_looks_nonexistent(pair, command):
    """Without any right every mailbox command answers as for a missing mailbox."""
    alice, _ = pair
    _same_as_missing(alice, command)
    assert b"[NONEXISTENT]" in alice.no(command.replace("{}", BOB_WORK)).tagged


def test_no_rights_append_copy_move(pair):
    """APPEND / COPY / MOVE into bob's folder answer TRYCREATE, as for a missing one."""
    alice, bob = pair
    alice.send(f"t1 APPEND {BOB_WORK} {{{len(SIMPLE)}+}}".encode())
    alice.send(SIMPLE)
    line = alice.read_line()
    assert line.startswith(b"t1 NO [TRYCREATE]")
    alice.ok("SELECT INBOX")
    _same_as_missing(alice, "COPY 1 {}")
    _same_as_missing(alice, "MOVE 1 {}")
    assert b"[TRYCREATE]" in alice.no(f"COPY 1 {BOB_WORK}").tagged
    assert b"MESSAGES 1" in bob.ok("STATUS Work (MESSAGES)").untagged[0]


def test_no_rights_list_and_lsub(pair):
    """LIST and LSUB never show bob's folders; "Other Users" does not even appear."""
    alice, _ = pair
    for cmd in ('LIST "" "*"', 'LIST "" "%"', 'LIST "Other Users/" "*"', 'LSUB "" "*"'):
        assert not any(b"Other Users" in line for line in alice.ok(cmd).untagged)


def test_no_rights_create_inside(pair):
    """CREATE under bob's folder is NOPERM whether or not the parent exists."""
    alice, _ = pair
    assert b"[NOPERM]" in alice.no('CREATE "Other Users/bob/Work/x"').tagged
    assert b"[NOPERM]" in alice.no('CREATE "Other Users/bob/Missing/x"').tagged


def test_lookup_right_only(pair):
    """With "l" alone: LIST shows it, SELECT/STATUS/APPEND are NOPERM (existence known)."""
    alice, bob = pair
    bob.ok("SETACL Work alice l")
    assert any(b"Other Users/bob/Work" in line for line in alice.ok('LIST "" "*"').untagged)
    assert b"[NOPERM]" in alice.no(f"SELECT {BOB_WORK}").tagged
    assert b"[NOPERM]" in alice.no(f"STATUS {BOB_WORK} (MESSAGES)").tagged
    assert b"[NOPERM]" in alice.no(f"DELETE {BOB_WORK}").tagged
    alice.ok("SELECT INBOX")
    assert b"[NOPERM]" in alice.no(f"COPY 1 {BOB_WORK}").tagged


def test_read_rights(pair):
    """With "lr": SELECT opens READ-ONLY, FETCH works but never sets \\Seen, no STORE."""
    alice, bob = pair
    bob.ok("SETACL Work alice lr")
    assert b"[READ-ONLY]" in alice.ok(f"SELECT {BOB_WORK}").tagged
    r = alice.ok("FETCH 1 (BODY[] FLAGS)")
    assert b"kumquat" in b"".join(r.untagged) and b"\\Seen" not in b"".join(r.untagged)
    alice.no("STORE 1 +FLAGS (\\Flagged)")
    alice.no("EXPUNGE")
    assert b"UNSEEN 1" in bob.ok("STATUS Work (UNSEEN)").untagged[0]


def test_seen_right_only(pair):
    """With "lrs": FETCH BODY[] sets \\Seen; STORE \\Seen works, \\Flagged is NOPERM."""
    alice, bob = pair
    bob.ok("SETACL Work alice lrs")
    assert b"[READ-WRITE]" in alice.ok(f"SELECT {BOB_WORK}").tagged
    assert b"\\Seen" in b"".join(alice.ok("FETCH 1 (BODY[])").untagged)
    alice.ok("STORE 1 -FLAGS (\\Seen)")
    assert b"[NOPERM]" in alice.no("STORE 1 +FLAGS (\\Flagged)").tagged
    assert b"[NOPERM]" in alice.no("STORE 1 +FLAGS (\\Deleted)").tagged
    assert b"[NOPERM]" in alice.no("STORE 1 FLAGS (\\Seen)").tagged
    assert b"[NOPERM]" in alice.no("EXPUNGE").tagged
    assert b"[NOPERM]" in alice.no("MOVE 1 INBOX").tagged


def test_write_delete_expunge_rights(pair):
    """"w" allows keywords, "t" \\Deleted, "e" EXPUNGE; MOVE out needs "t" and "e"."""
    alice, bob = pair
    bob.ok("SETACL Work alice lrwt")
    alice.ok(f"SELECT {BOB_WORK}")
    alice.ok("STORE 1 +FLAGS ($Todo \\Flagged)")
    alice.ok("STORE 1 +FLAGS (\\Deleted)")
    assert b"[NOPERM]" in alice.no("EXPUNGE").tagged
    alice.ok("CLOSE")  # no "e": CLOSE silently expunges nothing
    assert b"MESSAGES 1" in bob.ok("STATUS Work (MESSAGES)").untagged[0]
    bob.ok("SETACL Work alice +e")
    alice.ok(f"SELECT {BOB_WORK}")
    alice.ok("STORE 1 -FLAGS (\\Deleted)")
    alice.ok("MOVE 1 INBOX")
    assert b"MESSAGES 0" in bob.ok("STATUS Work (MESSAGES)").untagged[0]
    assert b"MESSAGES 2" in alice.ok("STATUS INBOX (MESSAGES)").untagged[0]


def test_insert_right(pair):
    """"i" allows APPEND and COPY into bob's folder; flags without s/w/t are dropped."""
    alice, bob = pair
    bob.ok("SETACL Work alice li")
    append(alice, SIMPLE, BOB_WORK, flags="\\Seen \\Flagged")
    alice.ok("SELECT INBOX")
    r = alice.ok(f"COPY 1 {BOB_WORK}")
    assert b"[COPYUID " in r.tagged
    bob.ok("SELECT Work")
    flags = bob.ok("FETCH 2 FLAGS").untagged[0]
    assert b"\\Seen" not in flags and b"\\Flagged" not in flags
    assert bob.ok("SEARCH ALL").untagged == [b"* SEARCH 1 2 3"]
    assert b"[NOPERM]" in alice.no(f"STATUS {BOB_WORK} (MESSAGES)").tagged


def test_delete_and_rename_rights(pair):
    """DELETE needs "x"; RENAME needs "x" on the old name and "k" on the new parent."""
    alice, bob = pair
    bob.ok("CREATE Dest")
    bob.ok("SETACL Work alice lr")
    bob.ok("SETACL Dest alice l")
    assert b"[NOPERM]" in alice.no(f'RENAME {BOB_WORK} "Other Users/bob/Dest/W"').tagged
    bob.ok("SETACL Work alice +x")
    assert b"[NOPERM]" in alice.no(f'RENAME {BOB_WORK} "Other Users/bob/Dest/W"').tagged
    assert b"[CANNOT]" in alice.no(f"RENAME {BOB_WORK} Mine").tagged
    bob.ok("SETACL Dest alice +k")
    alice.ok(f'RENAME {BOB_WORK} "Other Users/bob/Dest/W"')
    alice.ok('DELETE "Other Users/bob/Dest/W"')
    assert b"Dest/W" not in b"".join(bob.ok('LIST "" "*"').untagged)


def test_subscribe_shared(pair):
    """With rights, SUBSCRIBE takes the shared name and LSUB returns it."""
    alice, bob = pair
    bob.ok("SETACL Work alice lr")
    alice.ok(f"SUBSCRIBE {BOB_WORK}")
    assert alice.ok('LSUB "" "Other Users/*"').untagged == [
        b'* LSUB () "/" "Other Users/bob/Work"']


def test_other_session_sees_shared_changes(pair):
    """bob's session, selected on Work, sees alice's APPEND as EXISTS."""
    alice, bob = pair
    bob.ok("SETACL Work alice lri")
    bob.ok("SELECT Work")
    append(alice, SIMPLE, BOB_WORK)
    assert b"* 2 EXISTS" in bob.ok("NOOP").untagged


def test_revoked_rights_apply_at_once(pair):
    """Rights are checked on every command: a revoked "w" refuses the next STORE."""
    alice, bob = pair
    bob.ok("SETACL Work alice lrsw")
    alice.ok(f"SELECT {BOB_WORK}")
    alice.ok("STORE 1 +FLAGS ($A)")
    bob.ok("SETACL Work alice -w")
    assert b"[NOPERM]" in alice.no("STORE 1 +FLAGS ($B)").tagged


def test_public_folder_rights(make_imap_server, imap_script):
    """Public folders: admins own them (create, SETACL); others get what the ACL says."""
    server = make_imap_server(admins=["bob"], public_folders=["News"])
    bob = imap_script(login=True, user="bob", server=server)
    alice = imap_script(login=True, server=server)
    assert b"[NOPERM]" in alice.no('CREATE "Public/Mine"').tagged
    assert b"[NOPERM]" in alice.no('SETACL "Public/News" alice lrswi').tagged
    bob.ok('CREATE "Public/Board"')
    assert not any(b"Board" in line for line in alice.ok('LIST "" "Public/*"').untagged)
    bob.ok('SETACL "Public/Board" alice lrsi')
    append(alice, SIMPLE, '"Public/Board"')
    assert b"MESSAGES 1" in bob.ok('STATUS "Public/Board" (MESSAGES)').untagged[0]
    r = bob.ok('GETACL "Public/Board"')
    assert r.untagged == [b'* ACL "Public/Board" alice lrsi']


def test_list_status_needs_read(pair):
    """LIST-STATUS omits STATUS for a folder seen with "l" only, and sends it with "r"."""
    alice, bob = pair
    bob.ok("SETACL Work alice l")
    cmd = 'LIST "" "Other Users/bob/*" RETURN (STATUS (MESSAGES))'
    assert not any(line.startswith(b"* STATUS") for line in alice.ok(cmd).untagged)
    bob.ok("SETACL Work alice +r")
    assert b'* STATUS "Other Users/bob/Work" (MESSAGES 1)' in alice.ok(cmd).untagged
