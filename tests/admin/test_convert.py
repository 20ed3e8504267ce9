"""convert -e- / convert -e / set-root on a node, seen by IMAP clients over real sockets."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from twistedmail.admin import commands as c
from twistedmail.store import Append, SetAcl
from twistedmail.testing.inprocess import RunningServer
from twistedmail.testing.script import ImapScript

from .conftest import Admin

Make = Callable[..., tuple[RunningServer, Admin]]
DISABLED = b"IMAP is disabled for mail file alice on n1 (convert -e-)"


def deliver(server: RunningServer, n: int, user: str = "alice") -> None:
    """``n`` messages arrive in ``user``'s INBOX (delivery through the store)."""
    def run() -> None:
        store = server.node.store
        for i in range(n):
            store.apply(Append.new(store, user, "INBOX", b"Subject: m%d\r\n\r\nbody\r\n" % i))
    server.call(run)


def uidvalidity(result: Any) -> int:
    match = re.search(rb"\[UIDVALIDITY (\d+)\]", b"\n".join(result.untagged))
    assert match is not None, result.untagged
    return int(match.group(1))


def uids(s: ImapScript) -> list[int]:
    result = s.ok("UID SEARCH ALL")
    line = result.matching(rb"^\* SEARCH")[0]
    return [int(x) for x in line.split()[2:]]


def test_disable_sends_bye_to_owner_sessions(admin_node: Make) -> None:
    """convert -e-: a session with alice's INBOX selected and one merely logged in as
    alice get BYE [UNAVAILABLE] and are closed; bob's session is untouched."""
    server, admin = admin_node()
    selected = ImapScript(server.host, server.port)
    selected.login()
    selected.ok("SELECT INBOX")
    idle_auth = ImapScript(server.host, server.port)
    idle_auth.login()
    bob = ImapScript(server.host, server.port)
    bob.login("bob")
    bob.ok("SELECT INBOX")
    result = admin(c.Convert, mailfile="mail\\alice.nsf", enable=False)
    assert result["sessions_closed"] == 2 and result["enabled"] is False
    for s in (selected, idle_auth):
        assert s.read_line() == b"* BYE [UNAVAILABLE] " + DISABLED
        with pytest.raises(AssertionError, match="closed the connection"):
            s.read_line()
    bob.ok("NOOP")
    for s in (selected, idle_auth, bob):
        s.close()


def test_disabled_refuses_login_and_select(admin_node: Make) -> None:
    """While disabled: LOGIN / AUTHENTICATE PLAIN as alice and bob's SELECT of alice's
    shared INBOX answer NO [UNAVAILABLE] with the reason; after convert -e they work."""
    server, admin = admin_node()
    server.call(server.node.store.apply, SetAcl("alice", "INBOX", "bob", "lr"))
    admin(c.Convert, mailfile="alice", enable=False)
    with ImapScript(server.host, server.port) as s:
        r = s.no('LOGIN "alice" "secret"')
        assert r.tagged.endswith(b"NO [UNAVAILABLE] " + DISABLED)
        r = s.no("AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==")  # \0alice\0secret
        assert b"[UNAVAILABLE]" in r.tagged
    with ImapScript(server.host, server.port) as bob:
        bob.login("bob")
        r = bob.no('EXAMINE "Other Users/alice/INBOX"')
        assert r.tagged.endswith(b"NO [UNAVAILABLE] " + DISABLED), r.tagged
        admin(c.Convert, mailfile="alice", enable=True)
        bob.ok('EXAMINE "Other Users/alice/INBOX"')
    with ImapScript(server.host, server.port) as s:
        s.login()


def test_mail_kept_while_disabled_and_regenerated(admin_node: Make) -> None:
    """Mail arriving while disabled is kept; convert -e gives INBOX a larger UIDVALIDITY
    with the same root and UIDs 1..n, and every folder a new UIDVALIDITY."""
    server, admin = admin_node(uidvalidity_root=3)
    deliver(server, 3)
    with ImapScript(server.host, server.port) as s:
        s.login()
        before = uidvalidity(s.ok("SELECT INBOX"))
        s.ok("UID STORE 2 +FLAGS (\\Deleted)")
        s.ok("EXPUNGE")
        assert uids(s) == [1, 3]
    old = {f["name"]: f["uidvalidity"] for f in admin(c.Status)["accounts"]["alice"]["folders"]}
    admin(c.Convert, mailfile="alice", enable=False)
    deliver(server, 2)
    result = admin(c.Convert, mailfile="alice", enable=True)
    assert result["was_disabled"] is True
    folders = {f["name"]: f for f in result["folders"]}
    assert set(folders) == set(old)
    for name, f in folders.items():
        assert f["uidvalidity"] > old[name] and f["root"] == 3
    with ImapScript(server.host, server.port) as s:
        s.login()
        after = uidvalidity(s.ok("SELECT INBOX"))
        assert after > before and after >> 24 == 3 == before >> 24
        assert after == folders["INBOX"]["uidvalidity"]
        assert uids(s) == [1, 2, 3, 4]
        r = s.ok("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        subjects = re.findall(rb"Subject: (m\d)", b"\n".join(r.untagged))
        assert subjects == [b"m0", b"m2", b"m0", b"m1"]
    server.call(server.node.store.check_invariants)


def test_set_root_then_convert(admin_node: Make) -> None:
    """set-root 7 leaves folders on their root (pending) until convert -e, which gives
    every folder of the mail file a UIDVALIDITY whose root byte is 7."""
    server, admin = admin_node(uidvalidity_root=1)
    deliver(server, 2)
    assert admin(c.SetRoot, root=7)["previous"] == 1
    status = admin(c.Status)
    assert status["root"] == 7 and status["configured_root"] == 1
    assert "alice" in status["pending"]
    assert all(f["root"] == 1 for f in status["accounts"]["alice"]["folders"])
    server.call(server.node.store.check_invariants)  # older roots are accepted
    admin(c.Convert, mailfile="alice", enable=False)
    admin(c.Convert, mailfile="alice", enable=True)
    status = admin(c.Status)
    assert all(f["root"] == 7 for f in status["accounts"]["alice"]["folders"])
    assert "alice" not in status["pending"] and "bob" in status["pending"]
    with ImapScript(server.host, server.port) as s:
        s.login()
        assert uidvalidity(s.ok("SELECT INBOX")) >> 24 == 7
        assert uids(s) == [1, 2]
        s.ok("CREATE Fresh")
        assert uidvalidity(s.ok("SELECT Fresh")) >> 24 == 7  # new folders: current root
    assert admin.raw(c.Version)["root"] == 7
    server.call(server.node.store.check_invariants)


def test_convert_enable_without_disable(admin_node: Make) -> None:
    """convert -e of an enabled mail file regenerates anyway; sessions with one of its
    folders selected get BYE [UNAVAILABLE] (their UIDs died), others stay."""
    server, admin = admin_node()
    deliver(server, 1)
    selected = ImapScript(server.host, server.port)
    selected.login()
    before = uidvalidity(selected.ok("SELECT INBOX"))
    other = ImapScript(server.host, server.port)
    other.login()
    result = admin(c.Convert, mailfile="alice.nsf", enable=True)
    assert result["was_disabled"] is False and result["sessions_closed"] == 1
    line = selected.read_line()
    assert line.startswith(b"* BYE [UNAVAILABLE] mail file alice on n1 was regenerated")
    assert uidvalidity(other.ok("SELECT INBOX")) > before
    selected.close()
    other.close()


def test_disable_during_idle(admin_node: Make) -> None:
    """A session idling in alice's INBOX gets the BYE too."""
    server, admin = admin_node()
    s = ImapScript(server.host, server.port)
    s.login()
    s.ok("SELECT INBOX")
    s.send(s.next_tag() + " IDLE")
    assert s.expect_continuation()
    admin(c.Convert, mailfile="alice", enable=False)
    assert s.read_line() == b"* BYE [UNAVAILABLE] " + DISABLED
    with pytest.raises(AssertionError, match="closed the connection"):
        s.read_line()
    s.close()


@pytest.mark.parametrize("name", ["alice", "alice.nsf", "mail\\alice.nsf", "mail/alice.nsf"])
def test_mail_file_name_forms(admin_node: Make, name: str) -> None:
    """Every Domino spelling of the mail file designates the account."""
    _, admin = admin_node()
    assert admin(c.Convert, mailfile=name, enable=False)["mailfile"] == "alice"
