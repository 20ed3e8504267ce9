"""QUOTA (RFC 9208): GETQUOTA GETQUOTAROOT SETQUOTA, STORAGE and MESSAGE, OVERQUOTA."""

from __future__ import annotations

from tests.protocol.conftest import SIMPLE, append


def _append_no(c, mailbox: str, message: bytes = SIMPLE) -> bytes:
    """APPEND with a non-synchronizing literal; returns the tagged line."""
    c.send(f"q1 APPEND {mailbox} {{{len(message)}+}}".encode())
    c.send(message)
    while True:
        line = c.read_line()
        if line.startswith(b"q1 "):
            return line


def test_capabilities(imap_script):
    """QUOTA, QUOTA=RES-STORAGE and QUOTA=RES-MESSAGE are advertised (RFC 9208 §3)."""
    caps = imap_script(login=True).ok("CAPABILITY").untagged[0].split()
    for cap in (b"QUOTA", b"QUOTA=RES-STORAGE", b"QUOTA=RES-MESSAGE"):
        assert cap in caps


def test_getquotaroot_unlimited(imap_script):
    """Without limits the root is named like the account and QUOTA lists nothing."""
    c = imap_script(login=True)
    r = c.ok("GETQUOTAROOT INBOX")
    assert r.untagged == [b'* QUOTAROOT "INBOX" "alice"', b'* QUOTA "alice" ()']


def test_default_limits_and_usage(make_imap_server, imap_script):
    """NodeSettings defaults apply; usage counts KiB (rounded up) and messages (§5)."""
    server = make_imap_server(quota_storage=100, quota_messages=10)
    c = imap_script(login=True, server=server)
    append(c, SIMPLE)
    c.ok("CREATE Other")
    append(c, SIMPLE, "Other")
    r = c.ok('GETQUOTA "alice"')
    assert r.untagged == [b'* QUOTA "alice" (STORAGE 1 100 MESSAGE 2 10)']
    r = c.ok("GETQUOTAROOT Other")
    assert r.untagged[0] == b'* QUOTAROOT "Other" "alice"'


def test_message_limit_append(make_imap_server, imap_script):
    """APPEND past the MESSAGE limit is NO [OVERQUOTA] and stores nothing (§4.3)."""
    server = make_imap_server(quota_messages=2)
    c = imap_script(login=True, server=server)
    append(c, SIMPLE)
    append(c, SIMPLE)
    assert b"[OVERQUOTA]" in _append_no(c, "INBOX")
    assert b"MESSAGES 2" in c.ok("STATUS INBOX (MESSAGES)").untagged[0]


def test_storage_limit_append(make_imap_server, imap_script):
    """APPEND past the STORAGE limit (KiB) is NO [OVERQUOTA]."""
    server = make_imap_server(quota_storage=1)
    c = imap_script(login=True, server=server)
    assert b"[OVERQUOTA]" in _append_no(c, "INBOX", SIMPLE * 5)
    append(c, SIMPLE)


def test_copy_over_quota(make_imap_server, imap_script):
    """COPY past the limit is NO [OVERQUOTA]; MOVE within the account is allowed."""
    server = make_imap_server(quota_messages=2)
    c = imap_script(login=True, server=server)
    c.ok("CREATE Box")
    append(c, SIMPLE)
    append(c, SIMPLE)
    c.ok("SELECT INBOX")
    assert b"[OVERQUOTA]" in c.no("COPY 1 Box").tagged
    c.ok("MOVE 1 Box")
    assert b"MESSAGES 1" in c.ok("STATUS Box (MESSAGES)").untagged[0]


def test_copy_into_shared_counts_owner(make_imap_server, imap_script):
    """COPY/MOVE into another user's folder counts against the owner's root."""
    server = make_imap_server(admins=["root"], users={"alice": "secret", "bob": "secret",
                                                      "root": "secret"})
    bob = imap_script(login=True, user="bob", server=server)
    bob.ok("CREATE Drop")
    bob.ok("SETACL Drop alice lri")
    admin = imap_script(login=True, user="root", server=server)
    admin.ok('SETQUOTA "bob" (MESSAGE 1)')
    alice = imap_script(login=True, server=server)
    append(alice, SIMPLE)
    append(alice, SIMPLE)
    alice.ok("SELECT INBOX")
    alice.ok('COPY 1 "Other Users/bob/Drop"')
    assert b"[OVERQUOTA]" in alice.no('COPY 2 "Other Users/bob/Drop"').tagged
    r = bob.ok("GETQUOTAROOT Drop")
    assert r.untagged[1] == b'* QUOTA "bob" (MESSAGE 1 1)'


def test_setquota_admin(make_imap_server, imap_script):
    """SETQUOTA by an admin replaces the root's limits and answers QUOTA (§4.1.3)."""
    server = make_imap_server(admins=["bob"], quota_storage=500)
    bob = imap_script(login=True, user="bob", server=server)
    r = bob.ok('SETQUOTA "alice" (STORAGE 512)')
    assert r.untagged == [b'* QUOTA "alice" (STORAGE 0 512)']
    r = bob.ok('SETQUOTA "alice" (storage 10 MESSAGE 3)')
    assert r.untagged == [b'* QUOTA "alice" (STORAGE 0 10 MESSAGE 0 3)']
    r = bob.ok('SETQUOTA "alice" ()')
    assert r.untagged == [b'* QUOTA "alice" ()']
    assert bob.ok('GETQUOTA "alice"').untagged == [b'* QUOTA "alice" ()']


def test_setquota_refused(make_imap_server, imap_script):
    """SETQUOTA: non-admins NO [NOPERM]; unknown roots NONEXISTENT; unknown resources NO."""
    server = make_imap_server(admins=["bob"])
    alice = imap_script(login=True, server=server)
    assert b"[NOPERM]" in alice.no('SETQUOTA "alice" (STORAGE 1)').tagged
    bob = imap_script(login=True, user="bob", server=server)
    assert b"[NONEXISTENT]" in bob.no('SETQUOTA "nobody" (STORAGE 1)').tagged
    assert b"[CANNOT]" in bob.no('SETQUOTA "alice" (MAILBOX 1)').tagged


def test_getquota_other_root_refused(imap_script):
    """GETQUOTA of someone else's root is NO [NOPERM], existing or not (no leak)."""
    c = imap_script(login=True)
    assert b"[NOPERM]" in c.no('GETQUOTA "bob"').tagged
    assert b"[NOPERM]" in c.no('GETQUOTA "nobody"').tagged


def test_quota_syntax_errors(imap_script):
    """Malformed quota commands are BAD."""
    c = imap_script(login=True)
    c.bad("GETQUOTA")
    c.bad("GETQUOTAROOT")
    c.bad('SETQUOTA "alice"')
    c.bad('SETQUOTA "alice" (STORAGE)')
    c.bad('SETQUOTA "alice" (STORAGE x)')
    c.bad('SETQUOTA "alice" STORAGE 1')


def test_getquotaroot_nonexistent(imap_script):
    """GETQUOTAROOT of a missing mailbox is NO [NONEXISTENT]."""
    c = imap_script(login=True)
    assert b"[NONEXISTENT]" in c.no("GETQUOTAROOT Nope").tagged
