"""In-process cluster nodes for the link / service tests.

Several ``Node`` + ``ClusterNode`` pairs run in the shared reactor thread of the
test harness (twistedmail.testing.inprocess), linked over real 127.0.0.1 TCP
ports with TLS.  Everything that touches a node runs in the reactor thread
(``call``); waits poll a condition there with a bounded deadline.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from twisted.logger import formatEvent, globalLogPublisher

from twistedmail.cluster.spec import ClusterSpec, NodeSpec
from twistedmail.config import NodeSettings
from twistedmail.testing.inprocess import in_process_server

T = TypeVar("T")
USERS = {"alice": "secret", "bob": "secret"}
FAST = {"heartbeat": 0.05, "suspect_after": 0.3, "down_after": 0.6, "ack_timeout": 5.0}


def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn`` in the reactor thread (Deferreds are waited on)."""
    return in_process_server().call(fn, *args, **kwargs)


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 right now."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_for(cond: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll ``cond`` in the reactor thread until truthy (bounded); its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = call(cond)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class LogCapture:
    """Collects formatted log lines (all namespaces) while installed."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, event: dict[str, Any]) -> None:
        self.lines.append(formatEvent(event))

    def __enter__(self) -> LogCapture:
        globalLogPublisher.addObserver(self)
        return self

    def __exit__(self, *exc: object) -> None:
        globalLogPublisher.removeObserver(self)

    def has(self, text: str) -> bool:
        """Whether any line contains ``text``."""
        return any(text in line for line in list(self.lines))


class Member:
    """One running node: ``node``, ``cluster`` (ClusterNode) and what it refused."""

    def __init__(self, node: Any, cluster: Any) -> None:
        self.node, self.cluster = node, cluster
        self.refusals: list[str] = []


class InProcessCluster:
    """``n`` nodes n1..nN (roots 1..N) on free ports; none started until ``start``."""

    def __init__(self, n: int = 3, users: dict[str, str] | None = None,
                 secret: bytes = b"cluster secret", **options: Any) -> None:
        self.users = dict(USERS if users is None else users)
        ports = free_ports(n)
        self.nodes = tuple(
            NodeSpec(f"n{i + 1}", i + 1, "default", ("tcp:0:interface=127.0.0.1",),
                     f"tcp:{port}:interface=127.0.0.1", "127.0.0.1", port)
            for i, port in enumerate(ports))
        self.options: dict[str, Any] = {**FAST, **options}
        self.secret = secret
        self.members: dict[str, Member] = {}

    def spec(self, name: str, nodes: Iterable[NodeSpec] | None = None,
             **overrides: Any) -> ClusterSpec:
        """The ClusterSpec node ``name`` runs with (``nodes`` replaces the member list)."""
        members = tuple(self.nodes if nodes is None else nodes)
        me = next(n for n in members if n.name == name)
        options = {"secret": self.secret, **self.options, **overrides}
        return ClusterSpec(me=me, nodes=members, **options)

    def start(self, name: str, spec: ClusterSpec | None = None, **kwargs: Any) -> Member:
        """Start node ``name`` (a fresh, empty Node) with ``spec`` (default: ``spec(name)``)."""
        spec = spec if spec is not None else self.spec(name)
        member: Member = call(self._start, spec, kwargs)
        self.members[name] = member
        return member

    def _start(self, spec: ClusterSpec, kwargs: dict[str, Any]) -> Member:
        from twisted.internet import reactor

        from twistedmail.cluster.service import ClusterNode
        from twistedmail.node import Node

        settings = NodeSettings(node_name=spec.me.name, uidvalidity_root=spec.me.root,
                                users=dict(self.users), cluster=spec)
        node = Node(settings, reactor=reactor)
        refusals: list[str] = []
        cluster = ClusterNode(node, spec, reactor, on_refused=refusals.append, **kwargs)
        member = Member(node, cluster)
        member.refusals = refusals
        cluster.startService()
        return member

    def start_all(self, **kwargs: Any) -> InProcessCluster:
        """Start every node and wait until each is ready."""
        for spec in self.nodes:
            self.start(spec.name, **kwargs)
        for spec in self.nodes:
            self.wait_ready(spec.name)
        return self

    def stop(self, name: str) -> None:
        """Stop node ``name``'s cluster service (links dropped, port closed)."""
        member = self.members.pop(name, None)
        if member is not None and member.cluster.running:
            call(member.cluster.stopService)

    def stop_all(self) -> None:
        """Stop every node still running."""
        for name in list(self.members):
            self.stop(name)

    def __getitem__(self, name: str) -> Member:
        return self.members[name]

    def wait_ready(self, name: str, timeout: float = 20.0) -> None:
        """Wait until node ``name`` is ready."""
        cluster = self.members[name].cluster
        wait_for(lambda: cluster.ready, f"{name} ready ({cluster.reason})", timeout)

    def summary(self, name: str) -> Any:
        """Node ``name``'s replica summary."""
        return call(self.members[name].cluster.replica.summary)

    def wait_converged(self, names: Iterable[str] | None = None, timeout: float = 20.0) -> Any:
        """Wait until the named (default: all running) nodes have equal summaries."""
        names = list(self.members if names is None else names)

        def same() -> Any:
            sums = [self.members[n].cluster.replica.summary() for n in names]
            return sums[0] if all(s == sums[0] for s in sums) else None

        return wait_for(same, f"{names} converged", timeout)


def append(member: Member, user: str, data: bytes, mailbox: str = "INBOX") -> Any:
    """APPEND ``data`` on ``member``'s store (reactor thread); the changes."""
    from twistedmail.store import Append

    def run() -> Any:
        store = member.node.store
        return store.apply(Append.new(store, user, mailbox, data))

    return call(run)


def messages(member: Member, user: str, mailbox: str = "INBOX") -> list[bytes]:
    """The bodies in ``member``'s ``user``/``mailbox``, in UID order."""
    def run() -> list[bytes]:
        box = member.node.store.mailbox(user, mailbox)
        return [rec.blob.data for rec in box.records()]

    return call(run)


def uidvalidity(member: Member, user: str, mailbox: str = "INBOX") -> int:
    """``member``'s UIDVALIDITY of ``user``/``mailbox``."""
    return call(lambda: member.node.store.mailbox(user, mailbox).uidvalidity)


def replace_node(nodes: Iterable[NodeSpec], name: str, **changes: Any) -> tuple[NodeSpec, ...]:
    """``nodes`` with node ``name`` changed (e.g. another port or root)."""
    return tuple(dataclasses.replace(n, **changes) if n.name == name else n for n in nodes)
