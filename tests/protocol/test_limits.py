"""Limits and bad input: long lines, big literals, timeouts, no tracebacks."""

from __future__ import annotations

import json
import socket
import time

import pytest


@pytest.fixture
def small_limits(make_imap_server):
    """A server with a 1 KiB line limit, 4 KiB literal limit and 1 s pre-auth timeout."""
    return make_imap_server(max_line=1024, max_literal=4096, idle_timeout_preauth=1)


def test_long_line_refused_connection_kept(small_limits, imap_script):
    """A command line over the limit gets BAD [TOOBIG]; the next command works."""
    c = imap_script(login=True, server=small_limits)
    c.send(b"x1 NOOP " + b"a" * 5000)
    line = c.read_line()
    assert b"BAD" in line and b"[TOOBIG]" in line
    c.ok("NOOP")


def test_big_literal_refused_without_continuation(small_limits, imap_script):
    """A synchronizing literal over the limit is refused before the client sends it."""
    c = imap_script(login=True, server=small_limits)
    c.send(b"x1 APPEND INBOX {100000}")
    line = c.read_line()
    assert line.startswith(b"x1 NO [TOOBIG]")
    c.ok("NOOP")
    assert b"MESSAGES 0" in c.ok("STATUS INBOX (MESSAGES)").untagged[0]


def test_big_nonsync_literal_skipped(small_limits, imap_script):
    """A LITERAL+ over the limit is skipped unbuffered; nothing is stored."""
    c = imap_script(login=True, server=small_limits)
    c.send(b"x1 APPEND INBOX {10000+}\r\n" + b"z" * 10000)
    line = c.read_line()
    assert line.startswith(b"x1 NO [TOOBIG]") or line.startswith(b"x1 BAD")
    c.ok("NOOP")
    assert b"MESSAGES 0" in c.ok("STATUS INBOX (MESSAGES)").untagged[0]


def test_preauth_idle_timeout(small_limits):
    """An idle unauthenticated connection is logged out with BYE (RFC 3501 §5.4)."""
    sock = socket.create_connection((small_limits.host, small_limits.port), timeout=10)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"* OK")
    start = time.monotonic()
    assert f.readline().startswith(b"* BYE")
    assert f.readline() == b""
    assert time.monotonic() - start < 9


def test_binary_garbage_never_traceback(imap_script):
    """Random bytes get BAD lines, never a Python traceback."""
    c = imap_script(login=True)
    c.send(b"\x00\xff\xfe garbage \x01\x02")
    line = c.read_line()
    assert b"BAD" in line and b"Traceback" not in line
    c.ok("NOOP")


# --- hardening limits (issue 7 item 2; twistedmail/limits.py, README "### Limits") -----


def _limits(server):
    from twistedmail import limits

    return limits.of(server.node)


def _set(server, **values):
    """Change settings of a running node in its reactor thread (limits read them live)."""
    for name, value in values.items():
        server.call(setattr, server.node.settings, name, value)


def _until(check, tries=100):
    """Poll ``check`` (the server side of a closed connection) a bounded number of times."""
    for _ in range(tries):
        if check():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def limit_events():
    """Collect ``limit.refused`` events logged while the test runs."""
    from twisted.logger import globalLogPublisher

    seen = []

    def observer(event):
        if event.get("event") == "limit.refused":
            seen.append(event)

    globalLogPublisher.addObserver(observer)
    yield seen
    globalLogPublisher.removeObserver(observer)


def test_connections_per_address_bye_unavailable(make_imap_server, imap_script, limit_events):
    """Past connections_per_address the greeting is * BYE [UNAVAILABLE] and the socket
    closes; once a connection ends its place is free again."""
    server = make_imap_server(max_connections_per_address=2)
    first, second = imap_script(server=server), imap_script(server=server)
    assert first.greeting.startswith(b"* OK") and second.greeting.startswith(b"* OK")
    third = imap_script(server=server)
    assert third.greeting.startswith(b"* BYE [UNAVAILABLE]")
    assert third.sock.recv(100) == b""
    assert [e["limit"] for e in limit_events] == ["connections_per_address"]
    first.logout()
    assert _until(lambda: server.call(lambda: len(_limits(server).by_address.get(
        "127.0.0.1", ()))) == 1)
    fourth = imap_script(server=server, login=True)
    assert fourth.greeting.startswith(b"* OK")


def test_connections_per_user_no_limit_keeps_connection(make_imap_server, imap_script):
    """Past connections_per_user LOGIN answers NO [LIMIT]; the connection stays usable
    (another user logs in on it) and a freed place can be taken again."""
    server = make_imap_server(max_connections_per_user=2)
    a1 = imap_script(server=server, login=True)
    imap_script(server=server, login=True)
    extra = imap_script(server=server)
    refused = extra.no('LOGIN "alice" "secret"')
    assert refused.tagged.split()[2] == b"[LIMIT]"
    extra.ok("NOOP")
    extra.login("bob")
    a1.logout()
    assert _until(lambda: server.call(lambda: len(_limits(server).by_user.get("alice", ()))) == 1)
    imap_script(server=server, login=True).ok("NOOP")


def test_commands_in_flight_refused_then_bye(make_imap_server, imap_script, limit_events):
    """Commands queued behind a running one past commands_in_flight get NO [LIMIT] at
    once (logged once a burst); the queued ones still run; flooding on ends in * BYE [LIMIT]."""
    server = make_imap_server(max_in_flight=2, login_delay=2.0)
    c = imap_script(server=server)
    c.send(b"a1 LOGIN alice wrong\r\na2 NOOP\r\na3 NOOP\r\na4 NOOP\r\na5 NOOP")
    assert c.read_line().startswith(b"a4 NO [LIMIT]")
    assert c.read_line().startswith(b"a5 NO [LIMIT]")
    assert c.read_line().startswith(b"a1 NO [AUTHENTICATIONFAILED]")
    assert c.read_line().startswith(b"a2 OK")
    assert c.read_line().startswith(b"a3 OK")
    assert [e["limit"] for e in limit_events] == ["commands_in_flight"]
    flood = b"".join(b"f%d NOOP\r\n" % i for i in range(8))
    c.send(b"b1 LOGIN alice wrong\r\n" + flood.rstrip(b"\r\n"))
    lines = [c.read_line() for _ in range(3)]  # f0, f1 queued; f2, f3 refused; f4: BYE
    assert [line.split()[:3] for line in lines[:2]] == [[b"f2", b"NO", b"[LIMIT]"],
                                                        [b"f3", b"NO", b"[LIMIT]"]]
    assert lines[2].startswith(b"* BYE [LIMIT]")
    assert c.sock.recv(100) == b""
    assert server.call(lambda: _limits(server).refusals["commands_in_flight"]) == 5


def test_failed_logins_lock_out_without_revealing_users(make_imap_server, imap_script,
                                                         limit_events):
    """After login_lockout_after failures of (address, user) even the right password
    gets NO [UNAVAILABLE]; an unknown user is treated exactly alike; others are not
    affected; the lockout is logged and counted."""
    server = make_imap_server(login_delay=0.01, login_lockout_after=3,
                              login_lockout_seconds=600)
    c = imap_script(server=server)
    answers = {}
    for user in ("alice", "nobody"):
        for _ in range(3):
            assert c.no(f'LOGIN "{user}" "wrong"').tagged.split()[2] == b"[AUTHENTICATIONFAILED]"
        answers[user] = c.no(f'LOGIN "{user}" "secret"').text
    assert answers["alice"] == answers["nobody"]
    assert answers["alice"].startswith(b"[UNAVAILABLE] ")
    plain = c.no("AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==")  # \0alice\0secret
    assert plain.text == answers["alice"]
    c.login("bob")
    lockouts = [e for e in limit_events if e["limit"] == "login_lockout"]
    assert [e["user"] for e in lockouts] == ["alice", "nobody"]
    assert all("secret" not in repr(e) for e in limit_events)
    assert server.call(lambda: _limits(server).refusals["login_lockout"]) == 5


def test_success_clears_failed_logins(make_imap_server, imap_script):
    """A right password before the lockout forgets the earlier failures."""
    server = make_imap_server(login_delay=0, login_lockout_after=3)
    c = imap_script(server=server)
    for _ in range(2):
        c.no('LOGIN "alice" "wrong"')
    c.login()
    d = imap_script(server=server)
    for _ in range(2):
        d.no('LOGIN "alice" "wrong"')
    d.login()


def test_mailboxes_per_account_create_and_rename(imap_server, imap_script):
    """CREATE / RENAME past mailboxes_per_account get NO [LIMIT]; a RENAME that adds no
    mailbox still works; RENAME INBOX (which keeps INBOX) counts as one more."""
    c = imap_script(login=True)
    have = len(c.ok('LIST "" "*"').untagged)
    _set(imap_server, max_mailboxes=have + 2)
    c.ok("CREATE a")
    assert c.no("CREATE b/c").tagged.split()[2] == b"[LIMIT]"  # b and b/c: two more
    c.ok("CREATE b")
    assert c.no("CREATE c").tagged.split()[2] == b"[LIMIT]"
    assert c.no("RENAME a x/y").tagged.split()[2] == b"[LIMIT]"  # adds x
    c.ok("RENAME a z")
    assert c.no("RENAME INBOX old-inbox").tagged.split()[2] == b"[LIMIT]"
    c.ok("DELETE z")
    c.ok("RENAME INBOX old-inbox")
    assert len(c.ok('LIST "" "*"').untagged) == have + 2


def test_memory_ceiling_overquota_then_room_again(imap_server, imap_script, limit_events):
    """Past memory_limit APPEND and COPY answer NO [OVERQUOTA] (logged once), the node
    keeps serving, and expunging mail makes room again."""
    from twistedmail.limits import PER_MESSAGE_OVERHEAD, memory_estimate

    c = imap_script(login=True)
    now = imap_server.call(memory_estimate, imap_server.node.store)
    _set(imap_server, memory_limit=now + PER_MESSAGE_OVERHEAD + 1000)
    body = b"Subject: m\r\n\r\n" + b"x" * 100 + b"\r\n"
    append = f"APPEND INBOX {{{len(body)}}}"
    c.ok(append, body)
    for _ in range(2):
        refused = c.no(append, body)
        assert refused.tagged.split()[2] == b"[OVERQUOTA]"
    c.ok("SELECT INBOX")
    assert c.no("COPY 1 INBOX").tagged.split()[2] == b"[OVERQUOTA]"
    c.ok("FETCH 1 (FLAGS)")
    assert [e["limit"] for e in limit_events] == ["memory_limit"]
    assert imap_server.call(lambda: _limits(imap_server).refusals["memory_limit"]) == 3
    c.ok("STORE 1 +FLAGS (\\Deleted)")
    c.ok("EXPUNGE")
    c.ok(append, body)


def test_replication_apply_ignores_memory_ceiling(imap_server):
    """Ops applied to the store directly (as replication does) are never refused by the
    ceiling: a replica must not diverge from its peers."""
    from twistedmail.store import Append

    _set(imap_server, memory_limit=1)
    store = imap_server.node.store

    def apply():
        store.apply(Append.new(store, "alice", "INBOX", b"Subject: r\r\n\r\nr\r\n"))
        return len(store.mailbox("alice", "INBOX"))

    assert imap_server.call(apply) == 1
    assert not imap_server.call(_limits(imap_server).memory_room)


@pytest.mark.parametrize(("key", "value", "error"), [
    ("connections_per_user", -1, "limits.connections_per_user: must be an integer >= 0"),
    ("connections_per_address", "10", "limits.connections_per_address: must be an integer"),
    ("commands_in_flight", 0, "limits.commands_in_flight: must be an integer >= 1"),
    ("login_delay", -0.5, "limits.login_delay: must be a number of seconds >= 0"),
    ("login_lockout_after", True, "limits.login_lockout_after: must be an integer"),
    ("login_lockout_seconds", 0, "limits.login_lockout_seconds: must be a positive number"),
    ("mailboxes_per_account", 1.5, "limits.mailboxes_per_account: must be an integer"),
    ("memory_limit", "lots", "limits.memory_limit: must be bytes"),
    ("memory_limit", "5 parsecs", "limits.memory_limit: must be bytes"),
])
def test_bad_limit_values_are_one_line_errors(tmp_path, key, value, error):
    """Every [limits] key rejects a bad value with a one-line ConfigError naming it."""
    from twistedmail.config import ConfigError, settings_from

    config = tmp_path / "limits.toml"
    config.write_text(f"[limits]\n{key} = {json.dumps(value)}\n")
    with pytest.raises(ConfigError) as info:
        settings_from({"config": str(config)})
    assert str(info.value).startswith(error) and "\n" not in str(info.value)


def test_limit_keys_and_cli_options():
    """[limits] keys and CLI options reach NodeSettings; memory sizes take binary units;
    the defaults are on (a memory ceiling from the machine's RAM)."""
    from twistedmail.config import NodeSettings, settings_from

    defaults = NodeSettings()
    assert defaults.memory_limit > 0 and defaults.max_connections_per_user == 50
    settings = settings_from({"memory-limit": "2GiB", "max-connections-per-user": "7",
                              "max-connections-per-address": "9", "max-mailboxes": "11"})
    assert settings.memory_limit == 2 << 30
    assert (settings.max_connections_per_user, settings.max_connections_per_address,
            settings.max_mailboxes) == (7, 9, 11)


def _load(server, folders, items=()):
    """Run fixtures.load.load_batch for alice in the reactor thread; its error or None."""
    from twistedmail.fixtures.load import LoadError, load_batch

    def run():
        errors = []
        d = load_batch(server.node, "alice", list(items), folders)
        d.addErrback(lambda f: errors.append(f.trap(LoadError) and f.value))
        return errors[0] if errors else None

    return server.call(run)


def test_import_paths_obey_mailbox_and_memory_limits(imap_server):
    """Fixture import (admin / HTTP paths) creates no folder past mailboxes_per_account
    and stores nothing past memory_limit ("unavailable": retry later)."""
    import datetime as dt

    from twistedmail.fixtures.reader import Item

    have = imap_server.call(lambda: len(imap_server.node.store.mailboxes("alice")))
    _set(imap_server, max_mailboxes=have + 1)
    assert _load(imap_server, ["One"]) is None
    error = _load(imap_server, ["Two"])
    assert "Too many mailboxes" in str(error) and error.kind == "bad"
    _set(imap_server, memory_limit=1)
    item = Item("INBOX", b"Subject: i\r\n\r\ni\r\n", frozenset(), dt.datetime.now(dt.UTC), "x")
    error = _load(imap_server, [], [item])
    assert "memory" in str(error) and error.kind == "unavailable"
    assert imap_server.call(lambda: len(imap_server.node.store.mailbox("alice", "INBOX"))) == 0


def test_cluster_peers_are_exempt_from_the_address_limit(tmp_path):
    """In a cluster the peers' addresses (proxied sessions of many users) are not
    counted against connections_per_address; other addresses are."""
    from types import SimpleNamespace

    from twistedmail.config import settings_from
    from twistedmail.limits import NodeLimits
    from twistedmail.node import Node

    config = tmp_path / "c.toml"
    config.write_text(
        '[cluster]\nsecret = "s"\n[limits]\nconnections_per_address = 1\n'
        '[[node]]\nname = "n1"\nuidvalidity_root = 1\ncluster = "tcp:7001:interface=127.0.0.1"\n'
        '[[node]]\nname = "n2"\nuidvalidity_root = 2\ncluster = "tcp:7002:interface=10.0.0.2"\n')
    settings = settings_from({"config": str(config), "node": "n1"})
    limits = NodeLimits(Node(settings))

    class Proto:
        def __init__(self, host):
            peer = SimpleNamespace(host=host, port=1)
            self.transport = SimpleNamespace(getPeer=lambda: peer)

    assert all(limits.connect(Proto("10.0.0.2")) for _ in range(3))
    assert limits.connect(Proto("10.0.0.9"))
    assert not limits.connect(Proto("10.0.0.9"))
    assert limits.refusals["connections_per_address"] == 1
