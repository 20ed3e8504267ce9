"""A fast in-process IMAP server for protocol tests.

The global Twisted reactor runs in a daemon thread, started once per test
session (a reactor cannot be restarted).  Each ``start`` builds a fresh Node and
listens on 127.0.0.1 on a port the kernel picks.  Tests talk to it over real
sockets from the main thread; anything that touches the node (its store) must
run in the reactor thread: ``server.call(fn, *args)``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from twistedmail.config import NodeSettings

T = TypeVar("T")

DEFAULT_USERS = {"alice": "secret", "bob": "secret"}


@dataclass
class RunningServer:
    """One listening node: ``host``, ``port``, ``node``."""

    host: str
    port: int
    node: Any
    owner: InProcessServer
    listening_port: Any
    connections: list[Any] = field(default_factory=list)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` in the reactor thread and return its result (Deferreds are waited on)."""
        return self.owner.call(fn, *args, **kwargs)

    def stop(self) -> None:
        """Stop listening and drop every open connection."""
        self.owner.call(self._stop)

    def _stop(self) -> Any:
        for proto in self.connections:
            if proto.transport is not None:
                proto.transport.abortConnection()
        return self.listening_port.stopListening()


class InProcessServer:
    """Runs the reactor in a background thread and starts nodes inside it."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        """Whether the reactor thread has been started and is alive."""
        return self._thread is not None and self._thread.is_alive()

    def _ensure_reactor(self) -> Any:
        from twisted.internet import reactor

        with self._lock:
            if self._thread is None:
                if reactor.running:
                    raise RuntimeError("the global reactor is already running elsewhere")
                self._thread = threading.Thread(
                    target=reactor.run,
                    kwargs={"installSignalHandlers": False},
                    name="twistedmail-reactor",
                    daemon=True,
                )
                self._thread.start()
        return reactor

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` in the reactor thread; return its (Deferred's) result."""
        from twisted.internet.threads import blockingCallFromThread

        reactor = self._ensure_reactor()
        return blockingCallFromThread(reactor, fn, *args, **kwargs)

    def start(self, settings: NodeSettings | None = None) -> RunningServer:
        """A fresh node listening on 127.0.0.1:<free port>."""
        settings = settings if settings is not None else NodeSettings(users=dict(DEFAULT_USERS))
        return self.call(self._listen, settings)

    def _listen(self, settings: NodeSettings) -> Any:
        from twisted.internet import endpoints, reactor

        from twistedmail.imap.protocol import IMAPFactory
        from twistedmail.node import Node

        node = Node(settings, reactor=reactor)
        factory = IMAPFactory(node)
        connections: list[Any] = []
        build = factory.buildProtocol

        def tracked(addr: Any) -> Any:
            proto = build(addr)
            connections.append(proto)
            return proto

        factory.buildProtocol = tracked  # type: ignore[method-assign]
        endpoint = endpoints.serverFromString(reactor, "tcp:0:interface=127.0.0.1")

        def listening(port: Any) -> RunningServer:
            address = port.getHost()
            return RunningServer(address.host, address.port, node, self, port, connections)

        return endpoint.listen(factory).addCallback(listening)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop the reactor thread (end of the test session)."""
        if self._thread is None:
            return
        reactor: Any = self._ensure_reactor()
        reactor.callFromThread(reactor.stop)
        self._thread.join(timeout)


_SERVER: InProcessServer | None = None


def in_process_server() -> InProcessServer:
    """The session's single InProcessServer."""
    global _SERVER
    if _SERVER is None:
        _SERVER = InProcessServer()
    return _SERVER
