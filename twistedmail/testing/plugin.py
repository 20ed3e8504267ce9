"""pytest plugin (entry point ``pytest11: twistedmail``): fixtures for twistedmail tests.

- ``imap_server``: a fresh in-process node (users alice/secret, bob/secret) with
  ``.host .port .node`` and ``.call(fn, ...)`` to touch the node in the reactor thread.
- ``make_imap_server(**settings)``: the same with NodeSettings fields of your choice.
- ``imap_script(login=False, user="alice", password="secret")``: an ImapScript
  connected to ``imap_server``.
- ``clustermail_node(users=[...], extra_args=[...])``: a real ``twistd -n clustermail``
  process; every process is stopped at teardown, also when the test fails.
- ``make_cluster(n=3, users={...}, start=True, ...)``: a real cluster of ``twistd``
  nodes behind harness-controlled link proxies (twistedmail.testing.cluster.Cluster);
  ``cluster``: one of 3 nodes, started and ready.  Stopped at teardown.

Twisted's ``trial.unittest.TestCase`` (the asynchronous one) spins the global reactor
itself, which the in-process server runs in a thread: such tests are moved to the
front of the session, before the reactor thread starts.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from twistedmail.testing.cluster import Cluster
from twistedmail.testing.inprocess import DEFAULT_USERS, RunningServer, in_process_server
from twistedmail.testing.process import ClusterMailProcess
from twistedmail.testing.script import ImapScript


def _is_trial_async(item: pytest.Item) -> bool:
    trial = sys.modules.get("twisted.trial.unittest")
    cls = getattr(item, "cls", None)
    return trial is not None and cls is not None and issubclass(cls, trial.TestCase)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run trial's asynchronous TestCases first, before the reactor thread exists."""
    items.sort(key=lambda item: not _is_trial_async(item))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Refuse a trial async TestCase once the reactor runs in its thread."""
    if _is_trial_async(item) and in_process_server().running:
        pytest.fail(
            "twisted.trial.unittest.TestCase needs the global reactor, which the in-process "
            "IMAP server is running in a thread; use SynchronousTestCase or plain pytest",
            pytrace=False,
        )


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the reactor thread, if one was started."""
    in_process_server().shutdown()


@pytest.fixture
def make_imap_server() -> Iterator[Callable[..., RunningServer]]:
    """Factory: ``make_imap_server(users={...}, max_line=2048, ...)`` starts a fresh node."""
    from twistedmail.config import NodeSettings

    servers: list[RunningServer] = []

    def start(**fields: Any) -> RunningServer:
        fields.setdefault("users", dict(DEFAULT_USERS))
        server = in_process_server().start(NodeSettings(**fields))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def imap_server(make_imap_server: Callable[..., RunningServer]) -> RunningServer:
    """A fresh in-process node with users alice/secret and bob/secret."""
    return make_imap_server()


@pytest.fixture
def imap_script(imap_server: RunningServer) -> Iterator[Callable[..., ImapScript]]:
    """Factory: ``c = imap_script(login=True)`` connects (and logs in) to ``imap_server``."""
    scripts: list[ImapScript] = []

    def connect(
        login: bool = False,
        user: str = "alice",
        password: str = "secret",
        server: RunningServer | None = None,
    ) -> ImapScript:
        target = server or imap_server
        script = ImapScript(target.host, target.port)
        scripts.append(script)
        if login:
            script.login(user, password)
        return script

    yield connect
    for script in scripts:
        script.close()


@pytest.fixture
def clustermail_node(tmp_path: Path) -> Iterator[Callable[..., ClusterMailProcess]]:
    """Factory: ``node = clustermail_node(users=["alice:secret"], extra_args=[...])``."""
    nodes: list[ClusterMailProcess] = []

    def start(
        users: list[str] | tuple[str, ...] = (),
        extra_args: list[str] | tuple[str, ...] = (),
        **kwargs: Any,
    ) -> ClusterMailProcess:
        workdir = tmp_path / f"node{len(nodes) + 1}"
        node = ClusterMailProcess(workdir, users=users, extra_args=extra_args, **kwargs)
        nodes.append(node)
        return node.start()

    yield start
    for node in nodes:
        node.stop()


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """Factory: ``c = make_cluster(n=3, users={"alice": "secret"})`` starts a real cluster
    (``start=False``: only writes configs and opens the proxies); stopped at teardown."""
    clusters: list[Cluster] = []

    def make(n: int = 3, start: bool = True, **kwargs: Any) -> Cluster:
        kwargs.setdefault("workdir", tmp_path / f"cluster{len(clusters) + 1}")
        cluster = Cluster(n, **kwargs)
        clusters.append(cluster)
        return cluster.start() if start else cluster

    yield make
    for cluster in clusters:
        cluster.stop()


@pytest.fixture
def cluster(make_cluster: Callable[..., Cluster]) -> Cluster:
    """A started 3-node cluster (n1..n3, roots 1..3), user alice/secret, every node ready."""
    return make_cluster()
