"""Thunderbird (Debian ``thunderbird``, headless + Marionette) fails over between cluster
nodes (issue 3 item 9).  Thunderbird talks to a TCP proxy the test controls, so its
account config stays the same: full offline sync from n1, kill -9 n1, point the proxy at
n2, and check from Thunderbird's own database that every folder was resynced under n2's
UIDVALIDITY with every message once (shared clients README §1: it drops the folder DB
and refetches when it sees a new UIDVALIDITY on SELECT).
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.clients.fixtures import ACCOUNT
from tests.clients.test_thunderbird import (
    MARKED,
    OFFLINE,
    READ,
    REPLIED,
    TB_PASSWORD,
    TB_USER,
    Thunderbird,
    mbox_ids,
    running,
)
from twistedmail.testing.cluster import Cluster
from twistedmail.testing.tcpproxy import TcpProxy

from .failover import FAST, load

pytestmark = [pytest.mark.e2e, pytest.mark.clients, pytest.mark.slow]
SIZES = {"INBOX": 12, "Archive": 8, "Work": 6}
SYNC_TIMEOUT = 60.0  # launch to every body stored (measured: a few seconds)
RESYNC_TIMEOUT = 30.0  # proxy moved to n2 to every folder rebuilt

# what a user clicking each folder does: SELECT it again and update it
JS_UPDATE_ALL = r"""
const {MailServices} = ChromeUtils.importESModule("resource:///modules/MailServices.sys.mjs");
const server = MailServices.accounts.getIncomingServer("server1");
let n = 0;
for (const f of server.rootFolder.descendants) { f.updateFolder(null); n++; }
return n;
"""


def dataset() -> dict[str, list[tuple[bytes, tuple[str, ...]]]]:
    """The first messages of three fixtures.ACCOUNT folders, with their flags."""
    return {f: [(m.raw, m.flags) for m in ACCOUNT[f][:n]] for f, n in SIZES.items()}


def expected_ids(folder: str) -> set[str]:
    return {m.message_id for m in ACCOUNT[folder][: SIZES[folder]]}


def db_state(tb: Thunderbird, uidvalidity: dict[str, int] | None) -> dict[str, Any] | None:
    """Thunderbird's folders once each of ours holds every expected header exactly once,
    body stored, in its mbox file too (and, if given, under that UIDVALIDITY); else None."""
    state = tb.folders()  # with each folder's UIDVALIDITY
    for name in SIZES:
        info = state.get(name)
        if not info or not info["file"]:
            return None
        ids = Counter(f"<{m}>" for m, _uid, _flags in info["msgs"])
        if set(ids) != expected_ids(name) or max(ids.values()) > 1:
            return None
        if not all(flags & OFFLINE for _m, _uid, flags in info["msgs"]):
            return None
        if not expected_ids(name) <= set(mbox_ids(Path(info["file"]))):
            return None
        if uidvalidity is not None and info["uidvalidity"] != uidvalidity[name]:
            return None
    return state


def check_flags(state: dict[str, Any]) -> None:
    """Each header carries the server's \\Seen, \\Answered and \\Flagged."""
    bits = {"\\Seen": READ, "\\Answered": REPLIED, "\\Flagged": MARKED}
    for name in SIZES:
        want = {m.message_id: sum(b for f, b in bits.items() if f in m.flags)
                for m in ACCOUNT[name][: SIZES[name]]}
        for m, _uid, flags in state[name]["msgs"]:
            assert flags & (READ | REPLIED | MARKED) == want[f"<{m}>"], (name, m, hex(flags))


def uidvalidities(c: Cluster, node: str) -> dict[str, int]:
    return {f: c.folder_state(node, TB_USER, f)[0] for f in SIZES}


@pytest.fixture
def tb_cluster(make_cluster) -> Iterator[tuple[Cluster, TcpProxy]]:
    """A 3-node cluster with the dataset on n1 (subscribed) and a proxy in front of n1."""
    c = make_cluster(users={TB_USER: TB_PASSWORD}, cluster_options=FAST)
    load(c, "n1", TB_USER, dataset(), subscribe=True)
    with TcpProxy(c.imap("n1"), name="thunderbird->imap") as proxy:
        yield c, proxy


@pytest.fixture
def tb(tb_cluster, tmp_path) -> Iterator[Thunderbird]:
    """Thunderbird on a fresh profile whose account points at the proxy."""
    _c, proxy = tb_cluster
    with running(tmp_path, proxy.address[1]) as client:
        yield client


def test_thunderbird_resyncs_after_failover(tb_cluster, tb):
    """After a full offline sync from n1 and kill -9 of n1, Thunderbird (same account,
    the proxy now leading to n2) rebuilds every folder under n2's UIDVALIDITY: each
    message once in its database, body stored, flags kept."""
    c, proxy = tb_cluster
    before = tb.wait("the offline sync from n1", lambda: db_state(tb, uidvalidities(c, "n1")),
                     SYNC_TIMEOUT)
    check_flags(before)
    c.wait_converged(timeout=30)
    c.kill("n1")
    proxy.retarget(c.imap("n2"))
    on_n2 = uidvalidities(c, "n2")
    assert all(uv >> 24 == 2 for uv in on_n2.values()), on_n2
    assert tb.mn is not None
    assert tb.mn.js(JS_UPDATE_ALL) >= len(SIZES)
    after = tb.wait("every folder resynced from n2", lambda: db_state(tb, on_n2), RESYNC_TIMEOUT)
    check_flags(after)
    for name in SIZES:
        assert before[name]["uidvalidity"] >> 24 == 1 and after[name]["uidvalidity"] >> 24 == 2
    c.invariants.check()


# --- the proxy's retarget, which the test above relies on ----------------------------------


class _Hello(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.sendall(self.server.hello)  # type: ignore[attr-defined]


@pytest.fixture
def two_servers() -> Iterator[list[tuple[str, int]]]:
    """Two TCP servers on 127.0.0.1 that greet b"A" and b"B" and close."""
    servers = []
    for hello in (b"A", b"B"):
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Hello)
        server.daemon_threads = True
        server.hello = hello  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
    yield [s.server_address[:2] for s in servers]
    for server in servers:
        server.shutdown()
        server.server_close()


def _greeting(address: tuple[str, int]) -> bytes:
    with socket.create_connection(address, timeout=10) as sock:
        return sock.recv(10)


def test_proxy_retarget_sends_new_connections_elsewhere(two_servers):
    """TcpProxy.retarget: connections made after it reach the new target."""
    with TcpProxy(two_servers[0], name="retarget") as proxy:
        assert _greeting(proxy.address) == b"A"
        proxy.retarget(two_servers[1])
        assert _greeting(proxy.address) == b"B"
        assert proxy.target == two_servers[1]
