"""The cluster test harness itself: TCP proxy, invariant observer, config files, real nodes."""

from __future__ import annotations

import signal
import socket
import socketserver
import threading
import tomllib
from collections import Counter
from collections.abc import Iterator

import pytest

from twistedmail.testing.cluster import Cluster, NotConverged, reserve_port
from twistedmail.testing.imapview import diff_views, list_folders, parse_fetch, quote
from twistedmail.testing.invariants import Invariants, InvariantViolation
from twistedmail.testing.tcpproxy import ProxyError, TcpProxy

# --- an echo server for the proxy tests ------------------------------------------------------


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(10)
        while data := self.request.recv(65536):
            self.request.sendall(data)
        self.request.shutdown(socket.SHUT_WR)


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    """A plain threaded echo server on 127.0.0.1 (echoes, then passes the client's EOF on)."""
    server = _EchoServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_address[:2]
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def proxy(echo: tuple[str, int]) -> Iterator[TcpProxy]:
    """A proxy in front of the echo server."""
    with TcpProxy(echo, name="test") as p:
        yield p


def _dial(proxy: TcpProxy) -> socket.socket:
    return socket.create_connection(proxy.address, timeout=10)


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(min(65536, n - len(data)))
        if not chunk:
            break
        data += chunk
    return data


def _closed_by_peer(sock: socket.socket) -> bool:
    """True when the peer closed (EOF or reset); blocks up to the socket timeout."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


# --- proxy -----------------------------------------------------------------------------------


def test_proxy_forwards_both_ways(proxy):
    """Bytes sent through the proxy reach the server and its answer comes back."""
    with _dial(proxy) as sock:
        sock.sendall(b"hello proxy")
        assert _recv_exactly(sock, 11) == b"hello proxy"
    assert proxy.stats().accepted == 1


def test_proxy_keeps_order_of_a_large_stream(echo):
    """4 MiB through a proxy with a 64 KiB buffer limit arrive whole and in order."""
    payload = bytes(range(256)) * (4 * 4096)
    with TcpProxy(echo, buffer_limit=65536) as p, _dial(p) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,), daemon=True)
        sender.start()
        assert _recv_exactly(sock, len(payload)) == payload
        sender.join(10)
        stats = p.stats()
    assert stats.bytes_up == stats.bytes_down == len(payload)


def test_proxy_passes_half_close_on(proxy):
    """A client's EOF reaches the server, whose EOF comes back after the data."""
    with _dial(proxy) as sock:
        sock.sendall(b"last words")
        sock.shutdown(socket.SHUT_WR)
        assert _recv_exactly(sock, 100) == b"last words"
        assert sock.recv(1) == b""


def test_cut_drops_open_connections(proxy):
    """cut() closes a working connection; the client sees EOF or a reset."""
    with _dial(proxy) as sock:
        sock.sendall(b"ping")
        assert _recv_exactly(sock, 4) == b"ping"
        proxy.cut()
        assert _closed_by_peer(sock)
    stats = proxy.stats()
    assert stats.dropped == 1 and stats.open == 0


def test_cut_refuses_new_connections_until_restore(proxy):
    """While cut, a new connection is accepted and closed at once; after restore it works."""
    proxy.cut()
    with _dial(proxy) as sock:
        assert _closed_by_peer(sock)
    assert proxy.stats().refused == 1
    proxy.restore()
    with _dial(proxy) as sock:
        sock.sendall(b"back")
        assert _recv_exactly(sock, 4) == b"back"


def test_pause_holds_data_until_restore(proxy):
    """pause() forwards nothing (not a byte read) yet keeps the connection; restore delivers."""
    with _dial(proxy) as sock:
        sock.sendall(b"a")
        assert _recv_exactly(sock, 1) == b"a"
        proxy.pause()
        sock.sendall(b"held")
        assert proxy.stats().bytes_up == 1
        proxy.restore()
        assert _recv_exactly(sock, 4) == b"held"


def test_pause_holds_new_clients_until_restore(proxy):
    """A client that connects during pause is connected onward only at restore."""
    proxy.pause()
    with _dial(proxy) as sock:
        sock.sendall(b"early")
        assert proxy.stats().open == 1
        proxy.restore()
        assert _recv_exactly(sock, 5) == b"early"


def test_connection_limit(echo):
    """Past max_connections a new client is closed at once; the first one still works."""
    with TcpProxy(echo, max_connections=1) as p, _dial(p) as first:
        first.sendall(b"1")
        assert _recv_exactly(first, 1) == b"1"
        with _dial(p) as second:
            assert _closed_by_peer(second)
        first.sendall(b"2")
        assert _recv_exactly(first, 1) == b"2"
        assert p.stats().refused == 1


def test_unreachable_target_closes_the_client():
    """When the target refuses, the client's connection is closed and counted."""
    # bound, not listening: connecting there is refused
    with reserve_port() as held, TcpProxy(held.getsockname()[:2]) as p, _dial(p) as sock:
        assert _closed_by_peer(sock)
        assert p.stats().upstream_failed == 1


def test_close_is_clean(echo):
    """close() ends the daemon thread, frees the port and is idempotent; later calls raise."""
    p = TcpProxy(echo, name="closing")
    thread = p._thread
    assert thread.daemon and thread.name == "tcpproxy closing"
    sock = _dial(p)
    p.close()
    p.close()
    assert not thread.is_alive()
    assert _closed_by_peer(sock)
    sock.close()
    with pytest.raises(OSError):
        socket.create_connection(p.address, timeout=2).close()
    with pytest.raises(ProxyError):
        p.cut()


# --- invariants ------------------------------------------------------------------------------


def _seen(*rows: tuple[str, str, str, int, int, str]) -> Invariants:
    inv = Invariants(roots={"n1": 1, "n2": 2})
    for node, user, folder, uv, uid, emailid in rows:
        inv.message(node, user, folder, uv, uid, emailid)
    return inv


UV1, UV1B, UV2 = (1 << 24) | 5, (1 << 24) | 9, (2 << 24) | 5


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        # same UID map on two nodes, each with its own UIDVALIDITY: fine
        ([("n1", "a", "INBOX", UV1, 1, "M1"), ("n2", "a", "INBOX", UV2, 1, "M1")], None),
        # seen twice, same message: fine
        ([("n1", "a", "INBOX", UV1, 1, "M1"), ("n1", "a", "INBOX", UV1, 1, "M1")], None),
        # restart: a larger UIDVALIDITY may renumber
        ([("n1", "a", "INBOX", UV1, 1, "M1"), ("n1", "a", "INBOX", UV1B, 1, "M2")], None),
        # same value in two folders or for two users of one node: fine
        ([("n1", "a", "INBOX", UV1, 1, "M1"), ("n1", "b", "Work", UV1, 1, "M2")], None),
        ([("n1", "a", "INBOX", UV1, 1, "M1"), ("n1", "a", "INBOX", UV1, 1, "M2")], "uid reused"),
        # (n3 has no root given, so only the sharing is flagged)
        ([("n1", "a", "INBOX", UV1, 1, "M1"), ("n3", "a", "INBOX", UV1, 2, "M1")],
         "shown by several nodes: n1, n3"),
        ([("n2", "a", "INBOX", UV1, 1, "M1")], "carries root 1, not 2"),
        ([("n1", "a", "INBOX", UV1B, 1, "M1"), ("n1", "a", "INBOX", UV1, 1, "M1")],
         "UIDVALIDITY decreased"),
    ],
)
def test_invariant_table(rows, problem):
    """Each rule flags exactly its own violation and allows what it should."""
    inv = _seen(*rows)
    if problem is None:
        assert inv.problems() == []
        inv.check()
    else:
        assert len(inv.problems()) == 1 and problem in inv.problems()[0]
        with pytest.raises(InvariantViolation, match=problem):
            inv.check()


def test_invariants_report_every_violation():
    """check() lists every broken rule, one per line, with the nodes involved."""
    inv = _seen(
        ("n1", "a", "INBOX", UV1B, 1, "M1"),
        ("n1", "a", "INBOX", UV1, 1, "M1"),
        ("n2", "a", "INBOX", UV1, 1, "M2"),
    )
    with pytest.raises(InvariantViolation) as err:
        inv.check()
    text = str(err.value)
    assert text.startswith("4 invariant violation(s):")
    assert "M1 on n1, M2 on n2" in text and "decreased" in text and "n1, n2" in text


def test_folder_views_count_without_messages():
    """An empty folder's UIDVALIDITY still counts for the per-node and decrease rules."""
    inv = Invariants()
    inv.folder("n1", "a", "Empty", UV1B)
    inv.folder("n1", "a", "Empty", UV1)
    assert inv.observations == 0
    assert ["decreased" in p for p in inv.problems()] == [True]


# --- IMAP views --------------------------------------------------------------------------------


def test_parse_fetch_reads_uid_emailid_flags_without_recent():
    """UID FETCH (EMAILID FLAGS) answers parse in any item order; \\Recent is dropped."""
    lines = [
        b"1 (UID 7 EMAILID (Mabc) FLAGS (\\Seen \\Recent))",
        b"2 (FLAGS () EMAILID (Mdef) UID 9)",
        b"unrelated",
        None,
    ]
    assert parse_fetch(lines) == {7: ("Mabc", frozenset({"\\Seen"})), 9: ("Mdef", frozenset())}


class _FakeList:
    def __init__(self, data):
        self.data = data

    def list(self, ref, pattern):
        return "OK", self.data


def test_list_folders_skips_noselect_and_reads_literals():
    """LIST lines: quoted, atom and literal names; \\Noselect and \\NonExistent are skipped."""
    data = [
        b'(\\HasNoChildren) "/" INBOX',
        b'(\\Noselect \\HasChildren) "/" "Archive"',
        b'(\\HasNoChildren) "/" "Archive/2026"',
        (b'(\\HasNoChildren) "/" {9}', b'with "q"s'),
        b"",
        b'() NIL "a \\"b\\""',
    ]
    assert list_folders(_FakeList(data)) == ["INBOX", "Archive/2026", 'with "q"s', 'a "b"']
    assert quote('a "b"\\') == '"a \\"b\\"\\\\"'


def test_diff_views_is_readable():
    """Different multisets, missing folders and unreadable users are each one line."""
    same = {"INBOX": Counter({("M1", frozenset()): 1})}
    views = {
        "n1": {"alice": same, "bob": {"INBOX": Counter()}},
        "n2": {"alice": {"INBOX": Counter({("M1", frozenset({"\\Seen"})): 2})}, "bob": {}},
        "n3": {"alice": same},
    }
    problems = diff_views(views, holds=lambda node, user: user == "alice" or node != "n3")
    assert problems == [
        "alice/INBOX: n1 has 1, n2 has 2; only on n1: [M1 ()]; only on n2: [M1 (\\Seen) x2]",
        "bob/INBOX: missing on n2",
    ]
    assert diff_views({"n1": views["n1"], "n3": views["n3"]}, lambda n, u: True) == [
        "bob: not readable on n3"
    ]


# --- config files and links (no process started) ---------------------------------------------


@pytest.fixture
def unstarted(make_cluster) -> Cluster:
    """A 3-node cluster with configs written and proxies open, no process started."""
    return make_cluster(
        start=False,
        users={"alice": "secret", "bob": "pw"},
        accounts={"bob": ["n1", "n3"]},
        cluster_options={"heartbeat": 0.2, "suspect_after": 0.6, "down_after": 1.0},
        extra_config='[limits]\nmax_line = 4096\n',
    )


def test_config_files_route_peers_through_proxies(unstarted):
    """Node X's file lists every node; a peer Y's cluster_address is the X->Y proxy, X's own
    is its real cluster port; roots 1..n, one secret, options and extra config kept."""
    c = unstarted
    ports = {name: c.cluster_port(name) for name in c.names}
    assert len(set(ports.values())) == 3
    for me in c.names:
        cfg = tomllib.loads(c.config_path(me).read_text())
        assert cfg["cluster"] == {
            "secret": c.secret, "heartbeat": 0.2, "suspect_after": 0.6, "down_after": 1.0}
        assert [n["name"] for n in cfg["node"]] == ["n1", "n2", "n3"]
        assert [n["uidvalidity_root"] for n in cfg["node"]] == [1, 2, 3]
        for node in cfg["node"]:
            other = node["name"]
            assert node["cluster"] == f"tcp:{ports[other]}:interface=127.0.0.1"
            host, port = ("127.0.0.1", ports[me]) if other == me else c.link_address(me, other)
            assert node["cluster_address"] == f"{host}:{port}"
        assert cfg["users"] == {"alice": "secret", "bob": "pw"}
        assert cfg["accounts"] == {"bob": ["n1", "n3"]}
        assert cfg["limits"] == {"max_line": 4096}
    assert c.proxies["n1", "n2"].target == ("127.0.0.1", ports["n2"])
    assert c.holds("n2", "alice") and not c.holds("n2", "bob")


def test_config_files_load_as_cluster_specs(unstarted):
    """The node's own config loader (cluster/spec.py) accepts every generated file."""
    from twistedmail.cluster import spec

    for me in unstarted.names:
        cfg = tomllib.loads(unstarted.config_path(me).read_text())
        loaded = spec.load(cfg, me)
        assert loaded is not None and loaded.me.name == me
        assert loaded.me.port == unstarted.cluster_port(me)
        for peer in loaded.peers():
            assert (peer.host, peer.port) == unstarted.link_address(me, peer.name)
        assert loaded.holders("bob") == ("n1", "n3")


def test_cluster_ports_are_held_yet_listenable(unstarted):
    """A reserved cluster port refuses a plain bind but takes a SO_REUSEADDR listener
    (how twistd listens), also a second time (a restart)."""
    port = unstarted.cluster_port("n2")
    plain = socket.socket()
    with pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))
    plain.close()
    for _ in range(2):
        with socket.socket() as listener:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", port))
            listener.listen()


def test_partition_and_heal_act_on_the_links(unstarted):
    """partition(a, b) cuts a->b and b->a only; heal() restores them."""
    port = unstarted.cluster_port("n2")
    with socket.socket() as listener:  # stands in for n2's cluster listener
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen()
        unstarted.partition("n1", "n2")
        assert unstarted.proxies["n1", "n2"].mode == unstarted.proxies["n2", "n1"].mode == "cut"
        assert unstarted.proxies["n1", "n3"].mode == "forward"
        with socket.create_connection(unstarted.link_address("n1", "n2"), timeout=10) as s:
            assert _closed_by_peer(s)
        unstarted.heal()
        with socket.create_connection(unstarted.link_address("n1", "n2"), timeout=10) as s:
            s.sendall(b"hello n2")
            conn, _ = listener.accept()
            with conn:
                assert _recv_exactly(conn, 8) == b"hello n2"


def test_stop_releases_everything(tmp_path):
    """stop() closes every proxy thread and frees the ports; calling it twice is fine."""
    c = Cluster(2, workdir=tmp_path)
    threads = [p._thread for p in c.proxies.values()]
    port = c.cluster_port("n1")
    c.stop()
    c.stop()
    assert not any(t.is_alive() for t in threads)
    with socket.socket() as plain:
        plain.bind(("127.0.0.1", port))


# --- real node processes ---------------------------------------------------------------------


def _msg(n: int, tag: str = "") -> bytes:
    """A message with unique content (EMAILID is a content hash)."""
    return (
        f"From: t@example.org\r\nSubject: harness {tag} {n}\r\n\r\nbody {tag} {n}\r\n".encode()
    )


@pytest.mark.e2e
def test_nodes_start_and_restart_on_the_same_ports(make_cluster):
    """Every node greets OK on its own IMAP port; kill -9 then restart keeps both ports and
    shows each folder with a larger UIDVALIDITY than before."""
    c = make_cluster(n=2)
    assert all(c.node(n).greeting().startswith(b"* OK") for n in c.names)
    imap, before = c.imap("n2"), c.folder_state("n2", "alice", "INBOX")[0]
    assert c.kill("n2") == -signal.SIGKILL
    assert c.live() == ["n1"]
    c.restart("n2")
    assert c.imap("n2") == imap
    assert f"tcp:{c.cluster_port('n2')}" in c.config_path("n2").read_text()
    assert c.folder_state("n2", "alice", "INBOX")[0] > before
    c.invariants.check()


@pytest.mark.e2e
def test_append_and_read_back_record_invariants(make_cluster):
    """append() is True when acknowledged; messages() maps UIDs to (EMAILID, flags) and
    feeds the invariant observer."""
    c = make_cluster(n=2)
    assert c.append("n1", "alice", "INBOX", _msg(1), flags=["\\Flagged"])
    msgs = c.messages("n1", "alice", "INBOX")
    assert list(msgs.values()) == [(msgs[min(msgs)][0], frozenset({"\\Flagged"}))]
    assert msgs[min(msgs)][0].startswith("M")
    assert c.invariants.observations >= 1
    assert not c.append("n1", "alice", "No/Such/Folder", _msg(2))
    c.invariants.check()


@pytest.mark.e2e
def test_frozen_node_is_not_live(make_cluster):
    """SIGSTOP takes a node out of live(); SIGCONT brings it back."""
    c = make_cluster(n=2)
    c.kill("n1", signal.SIGSTOP)
    assert c.live() == ["n2"]
    c.kill("n1", signal.SIGCONT)
    assert c.live() == ["n1", "n2"]
    c.wait_ready("n1")


@pytest.mark.e2e
def test_isolated_writes_do_not_converge(make_cluster):
    """A degraded write on a node cut off from the others is not on them: wait_converged
    times out with a diff naming the folder and the message."""
    c = make_cluster(n=2, cluster_options={"degraded_writes": True})
    c.isolate("n1")
    assert c.append("n1", "alice", "INBOX", _msg(1, "isolated"))
    with pytest.raises(NotConverged, match=r"(?s)alice/INBOX: n1 has 1, n2 has 0.*only on n1"):
        c.wait_converged(timeout=1.0)


# --- a real 3-node cluster (needs the cluster service: twistedmail/cluster/service.py) -------

FAST = {"heartbeat": 0.1, "suspect_after": 0.3, "down_after": 0.6, "ack_timeout": 2.0}


def _inbox_ids(c: Cluster, name: str) -> Counter:
    return Counter(emailid for emailid, _flags in c.messages(name, "alice", "INBOX").values())


@pytest.mark.e2e
def test_append_on_one_node_reaches_all(cluster):
    """An APPEND acknowledged by n1 shows on n1, n2 and n3 with its flags; every link
    went through its proxy; invariants hold."""
    assert cluster.append("n1", "alice", "INBOX", _msg(1, "all"), flags=["\\Seen"])
    views = cluster.wait_converged(timeout=30)
    assert set(views) == {"n1", "n2", "n3"}
    for view in views.values():
        assert sum(view["alice"]["INBOX"].values()) == 1
        [(_emailid, flags)] = view["alice"]["INBOX"]
        assert flags == frozenset({"\\Seen"})
    assert all(proxy.stats().bytes_up > 0 for proxy in cluster.proxies.values())
    cluster.invariants.check()


@pytest.mark.e2e
def test_kill_9_and_restart_empty_rejoins(cluster):
    """kill -9 n2, write on n1 meanwhile, restart n2 empty: it catches up on the same
    ports with a larger UIDVALIDITY, and every acknowledged message is there once."""
    assert cluster.append("n1", "alice", "INBOX", _msg(1, "kill"))
    cluster.wait_converged(timeout=30)
    imap, before = cluster.imap("n2"), cluster.folder_state("n2", "alice", "INBOX")[0]
    cluster.kill("n2")
    assert cluster.append("n1", "alice", "INBOX", _msg(2, "kill"))
    cluster.restart("n2")
    assert cluster.imap("n2") == imap
    views = cluster.wait_converged(timeout=30)
    assert sum(views["n2"]["alice"]["INBOX"].values()) == 2
    assert cluster.folder_state("n2", "alice", "INBOX")[0] > before
    assert set(_inbox_ids(cluster, "n2").values()) == {1}
    cluster.invariants.check()


@pytest.mark.e2e
def test_partition_one_link_then_heal(cluster):
    """With n1/n3 cut, writes on both reach everyone through n2; after heal() a new write
    converges too."""
    cluster.partition("n1", "n3")
    assert cluster.append("n1", "alice", "INBOX", _msg(1, "split"))
    assert cluster.append("n3", "alice", "INBOX", _msg(3, "split"))
    cluster.wait_converged(timeout=30)
    cluster.heal()
    assert cluster.append("n3", "alice", "INBOX", _msg(4, "split"))
    views = cluster.wait_converged(timeout=30)
    assert sum(views["n1"]["alice"]["INBOX"].values()) == 3
    cluster.invariants.check()


@pytest.mark.e2e
def test_isolated_node_refuses_then_heals(make_cluster):
    """n3 cut off from both peers cannot get a second replica: its APPEND is not
    acknowledged and leaves nothing behind; the majority side still writes; after heal
    all three converge."""
    c = make_cluster(cluster_options=FAST)
    c.isolate("n3")
    status, text = c.append_reply("n3", "alice", "INBOX", _msg(1, "isolated"))
    assert (status, text[:13]) == ("NO", "[UNAVAILABLE]")
    assert c.append("n1", "alice", "INBOX", _msg(2, "majority"))
    c.heal()
    views = c.wait_converged(timeout=30)
    assert sum(views["n3"]["alice"]["INBOX"].values()) == 1
    c.invariants.check()


@pytest.mark.e2e
def test_silent_partition_then_heal(make_cluster):
    """A paused (silent) n1/n3 partition stalls those links without closing them; writes on
    n1 are still acknowledged through n2, and after heal() the stalled streams resume
    intact and everything converges."""
    c = make_cluster(cluster_options=FAST)
    c.partition("n1", "n3", mode="pause")
    assert c.proxies["n1", "n3"].mode == c.proxies["n3", "n1"].mode == "pause"
    assert c.append("n1", "alice", "INBOX", _msg(1, "silent"))
    assert c.append("n3", "alice", "INBOX", _msg(3, "silent"))
    c.heal()
    views = c.wait_converged(timeout=30)
    assert sum(views["n2"]["alice"]["INBOX"].values()) == 2
    c.invariants.check()
