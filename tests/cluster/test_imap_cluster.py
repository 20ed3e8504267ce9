"""IMAP in a cluster (contract §4): greeting, login placement, durable APPEND/COPY/MOVE.

A small fake stands in for the ClusterNode (``node.cluster``): it can be not
ready, refuse writes, or hold ``durable()`` Deferreds that the test fires from
the reactor thread.  The conversations run over real sockets.
"""

from __future__ import annotations

import re
import time
import tomllib
from collections.abc import Callable
from typing import Any

import pytest
from twisted.internet.defer import Deferred

from twistedmail.cluster import spec as cluster_spec
from twistedmail.testing.inprocess import RunningServer
from twistedmail.testing.script import ImapScript, Result

try:
    from twistedmail.cluster.service import ClusterUnavailable
except ImportError:  # the ClusterNode is not in this tree yet: same shape

    class ClusterUnavailable(Exception):  # type: ignore[no-redef]
        """Stand-in for twistedmail.cluster.service.ClusterUnavailable."""


CONFIG = """
[cluster]
secret = "s"
ack_timeout = 0.05

[[node]]
name = "n1"
uidvalidity_root = 1
cluster = "tcp:7001"

[[node]]
name = "n2"
uidvalidity_root = 2
cluster = "tcp:7002"

[[node]]
name = "n3"
uidvalidity_root = 3
cluster = "tcp:7003"

[accounts]
carol = ["n2", "n3"]
"""
USERS = {"alice": "secret", "bob": "secret", "carol": "secret"}
MSG = b"From: a@example.org\r\nSubject: durable\r\n\r\nbody\r\n"


class FakeCluster:
    """What the IMAP layer uses of a ClusterNode: ready, reason, check_writable, durable."""

    def __init__(self) -> None:
        self.ready = True
        self.reason = ""
        self.refusal: str | None = None
        self.checked: list[str] = []
        self.pending: list[Deferred[None]] = []
        self.durable_for: list[str | None] = []

    def check_writable(self, user: str) -> None:
        self.checked.append(user)
        if self.refusal is not None:
            raise ClusterUnavailable(self.refusal)

    def durable(self, user: str | None = None) -> Deferred[None]:
        self.durable_for.append(user)
        d: Deferred[None] = Deferred()
        self.pending.append(d)
        return d

    def release(self, ok: bool, text: str = "only 1 of 2 replicas acknowledged") -> int:
        """Fire every held durable() (reactor thread); how many there were."""
        held, self.pending = self.pending, []
        for d in held:
            if ok:
                d.callback(None)
            else:
                d.errback(ClusterUnavailable(text))
        return len(held)


@pytest.fixture
def node(make_imap_server: Callable[..., RunningServer]) -> tuple[RunningServer, FakeCluster]:
    """An in-process node n1 of a 3-node cluster spec, with a FakeCluster as node.cluster."""
    spec = cluster_spec.load(tomllib.loads(CONFIG), "n1")
    server = make_imap_server(users=dict(USERS), node_name="n1", cluster=spec)
    fake = FakeCluster()
    server.call(setattr, server.node, "cluster", fake)
    server.call(server.node.create_accounts)  # what ClusterNode does once ready
    return server, fake


def connect(server: RunningServer, user: str | None = "alice") -> ImapScript:
    """A scripted client, logged in as ``user`` unless None."""
    c = ImapScript(server.host, server.port)
    if user is not None:
        c.login(user, USERS[user])
    return c


def wait_held(server: RunningServer, fake: FakeCluster, n: int = 1) -> None:
    """Wait (bounded) until ``n`` durable() calls are held."""
    deadline = time.monotonic() + 10
    while server.call(lambda: len(fake.pending)) < n:
        assert time.monotonic() < deadline, "the command never waited on durable()"
        time.sleep(0.01)


def settle(server: RunningServer, fake: FakeCluster, c: ImapScript, tag: str, ok: bool
           ) -> Result:
    """Once the command tagged ``tag`` waits on durable(), fire it (``ok``) or fail it;
    the command's answer."""
    wait_held(server, fake)
    server.call(fake.release, ok)
    return c.read_until_tagged(tag)


def count(c: ImapScript, mailbox: str) -> int:
    """MESSAGES of ``mailbox`` (STATUS)."""
    line = c.ok(f"STATUS {mailbox} (MESSAGES)").untagged[0]
    m = re.search(rb"MESSAGES (\d+)", line)
    assert m is not None, line
    return int(m.group(1))


def append_raw(c: ImapScript, tag: str, mailbox: str = "INBOX", n: int = 1) -> None:
    """Send APPEND (MULTIAPPEND for n > 1) with LITERAL+, without reading the answer."""
    parts = b"".join(b" {%d+}\r\n" % len(MSG) + MSG for _ in range(n))
    c.send_raw(f"{tag} APPEND {mailbox}".encode() + parts + b"\r\n")


# --- greeting and login ---------------------------------------------------------------


def test_greeting_bye_unavailable_while_not_ready(node):
    """A node not ready greets `* BYE [UNAVAILABLE] reason` and closes (RFC 5530)."""
    server, fake = node
    server.call(setattr, fake, "ready", False)
    server.call(setattr, fake, "reason", "catching up with n2")
    c = connect(server, None)
    assert c.greeting == b"* BYE [UNAVAILABLE] catching up with n2"
    with pytest.raises(AssertionError, match="closed the connection"):
        c.read_line()
    server.call(setattr, fake, "ready", True)
    assert connect(server, None).greeting.startswith(b"* OK [CAPABILITY ")


def test_login_to_node_without_the_mail_file(node):
    """LOGIN of a user held on other nodes: NO [UNAVAILABLE] naming the holders."""
    server, _ = node
    c = connect(server, None)
    r = c.no('LOGIN carol "secret"')
    assert r.tagged.endswith(
        b"NO [UNAVAILABLE] mail file of carol is not on node n1 (held on n2, n3)")
    r = c.no("AUTHENTICATE PLAIN AGNhcm9sAHNlY3JldA==")  # \0carol\0secret
    assert b"NO [UNAVAILABLE] mail file of carol is not on node n1" in r.tagged
    assert b"[AUTHENTICATIONFAILED]" in c.no('LOGIN carol "wrong"').tagged  # no hint
    c.login("alice", "secret")


# --- APPEND -----------------------------------------------------------------------------


def test_append_waits_for_durable_then_ok(node):
    """APPEND stores, waits on durable(), and only then answers OK [APPENDUID]."""
    server, fake = node
    c = connect(server)
    append_raw(c, "w1")
    wait_held(server, fake)
    other = connect(server)
    assert count(other, "INBOX") == 1  # stored, not yet acknowledged
    assert server.call(fake.release, True) == 1
    assert re.match(rb"w1 OK \[APPENDUID \d+ 1\]", c.read_until_tagged("w1").tagged)
    assert fake.checked == fake.durable_for == ["alice"]
    assert count(c, "INBOX") == 1


def test_append_not_durable_is_undone(node):
    """durable() fails: the messages are expunged again, NO [UNAVAILABLE] (all or nothing)."""
    server, fake = node
    c = connect(server)
    append_raw(c, "w1", n=2)
    r = settle(server, fake, c, "w1", ok=False)
    assert r.tagged == (b"w1 NO [UNAVAILABLE] only 1 of 2 replicas acknowledged; "
                        b"APPEND undone")
    assert count(c, "INBOX") == 0
    c.ok("SELECT INBOX")
    assert c.ok("UID SEARCH ALL").untagged == [b"* SEARCH"]


def test_append_refused_before_storing(node):
    """check_writable refuses: NO [UNAVAILABLE] with its text; nothing stored, no wait."""
    server, fake = node
    server.call(setattr, fake, "refusal", "1 of 3 replicas of alice live, 2 needed")
    c = connect(server)
    r = c.no(f"APPEND INBOX {{{len(MSG)}+}}", MSG)
    assert r.tagged.endswith(b"NO [UNAVAILABLE] 1 of 3 replicas of alice live, 2 needed")
    assert server.call(lambda: len(fake.pending)) == 0
    assert count(c, "INBOX") == 0


def test_append_while_not_ready(node):
    """A session opened before the node stopped being ready cannot write either."""
    server, fake = node
    c = connect(server)
    server.call(setattr, fake, "ready", False)
    server.call(setattr, fake, "reason", "partitioned from the majority")
    r = c.no(f"APPEND INBOX {{{len(MSG)}+}}", MSG)
    assert r.tagged.endswith(b"NO [UNAVAILABLE] node is not ready: partitioned from the majority")


def test_durable_that_never_fires_is_bounded(node):
    """A durable() that never fires ends in NO [UNAVAILABLE] after the guard (2*ack_timeout+1)."""
    server, fake = node
    c = connect(server)
    r = c.no(f"APPEND INBOX {{{len(MSG)}+}}", MSG)
    assert b"NO [UNAVAILABLE] no acknowledgement from the replicas within" in r.tagged
    assert count(c, "INBOX") == 0


def test_waiting_writes_share_one_guard_timer(node):
    """Three APPENDs waiting on durable() arm one guard timer between them, not one each."""
    server, fake = node
    from twistedmail.imap.handlers.durable import _Guard

    clients = [connect(server) for _ in range(3)]
    for k, c in enumerate(clients):
        append_raw(c, f"w{k}")
    wait_held(server, fake, 3)

    def guards() -> int:
        from twisted.internet import reactor
        return sum(1 for dc in reactor.getDelayedCalls()  # type: ignore[attr-defined]
                   if isinstance(getattr(dc.func, "__self__", None), _Guard))

    assert server.call(guards) == 1
    assert server.call(fake.release, True) == 3
    for k, c in enumerate(clients):
        assert c.read_until_tagged(f"w{k}").status == "OK"


def test_guard_lets_go_of_acknowledged_writes(node):
    """The guard keeps only writes still waiting: acknowledged ones are dropped when the
    next write is watched, not held (with all they reference) until their deadline."""
    server, fake = node
    from twistedmail.imap.handlers.durable import _GUARDS

    clients = [connect(server) for _ in range(3)]
    for k, c in enumerate(clients):
        append_raw(c, f"w{k}")
    wait_held(server, fake, 3)
    assert server.call(fake.release, True) == 3
    for k, c in enumerate(clients):
        assert c.read_until_tagged(f"w{k}").status == "OK"
    append_raw(clients[0], "w9")
    wait_held(server, fake, 1)
    held = server.call(lambda: [d for _, d in _GUARDS.of(server.node).waiting])
    assert held == server.call(lambda: list(fake.pending))
    assert server.call(fake.release, True) == 1
    assert clients[0].read_until_tagged("w9").status == "OK"


def test_shared_folder_checks_the_owner(node):
    """Writes into another user's folder check the owner's mail file (bob), not alice's."""
    server, fake = node
    b = connect(server, "bob")
    b.ok("SETACL INBOX alice lri")
    c = connect(server)
    append_raw(c, "w1", mailbox='"Other Users/bob/INBOX"')
    assert settle(server, fake, c, "w1", ok=True).status == "OK"
    assert fake.checked == fake.durable_for == ["bob"]


# --- COPY / MOVE -------------------------------------------------------------------------


def selected_with_two(server: RunningServer, fake: FakeCluster) -> ImapScript:
    """alice with INBOX selected holding two (acknowledged) messages."""
    c = connect(server)
    append_raw(c, "p1", n=2)
    assert settle(server, fake, c, "p1", ok=True).status == "OK"
    c.ok("SELECT INBOX")
    return c


def test_copy_durable_ok(node):
    """COPY waits for durable() and answers OK [COPYUID]."""
    server, fake = node
    c = selected_with_two(server, fake)
    c.send("w2 COPY 1:2 Archive")
    r = settle(server, fake, c, "w2", ok=True)
    assert re.match(rb"w2 OK \[COPYUID \d+ 1:2 1:2\]", r.tagged)
    assert (count(c, "Archive"), count(c, "INBOX")) == (2, 2)


def test_move_durable_ok(node):
    """MOVE: untagged OK [COPYUID], then the EXPUNGEs, then OK — once durable (RFC 6851)."""
    server, fake = node
    c = selected_with_two(server, fake)
    c.send("w2 MOVE 1 Archive")
    wait_held(server, fake)
    assert count(connect(server), "INBOX") == 2  # the source stays until the copy is durable
    r = settle(server, fake, c, "w2", ok=True)  # (held already: settle's wait returns at once)
    assert r.status == "OK"
    assert re.match(rb"\* OK \[COPYUID \d+ 1 1\] Moved", r.untagged[0])
    assert r.untagged[1:] == [b"* 1 EXPUNGE"]
    assert (count(c, "Archive"), count(c, "INBOX")) == (1, 1)


@pytest.mark.parametrize(("command", "verb"), [("COPY 1:2 Archive", b"COPY"),
                                             ("UID MOVE 1:2 Archive", b"MOVE")])
def test_copy_or_move_not_durable_is_undone(node, command, verb):
    """COPY / MOVE not durable: copies removed, source untouched, NO [UNAVAILABLE] ... undone."""
    server, fake = node
    c = selected_with_two(server, fake)
    c.send(f"w2 {command}")
    r = settle(server, fake, c, "w2", ok=False)
    assert r.tagged == b"w2 NO [UNAVAILABLE] only 1 of 2 replicas acknowledged; %s undone" % verb
    assert not [line for line in r.untagged if b"EXPUNGE" in line]
    assert (count(c, "Archive"), count(c, "INBOX")) == (0, 2)
    assert c.ok("UID SEARCH ALL").untagged == [b"* SEARCH 1 2"]


def test_move_refused_before_storing(node):
    """check_writable refuses a MOVE: nothing copied, nothing expunged."""
    server, fake = node
    c = selected_with_two(server, fake)
    server.call(setattr, fake, "refusal", "too few replicas")
    r = c.no("MOVE 1:2 Archive")
    assert r.tagged.endswith(b"NO [UNAVAILABLE] too few replicas")
    assert (count(c, "Archive"), count(c, "INBOX")) == (0, 2)


def test_single_node_mode_never_waits(make_imap_server: Callable[..., Any]):
    """node.cluster None (even with a ClusterSpec of one): APPEND answers at once, as before."""
    spec = cluster_spec.load(tomllib.loads('[cluster]\n[node]\nname = "solo"\n'), "solo")
    server = make_imap_server(node_name="solo", cluster=spec)
    server.call(server.node.create_accounts)  # what ClusterNode does once ready
    c = connect(server)
    assert c.ok(f"APPEND INBOX {{{len(MSG)}+}}", MSG).status == "OK"
    c.ok("SELECT INBOX")
    assert c.ok("MOVE 1 Archive").untagged[-1] == b"* 1 EXPUNGE"
