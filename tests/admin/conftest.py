"""Fixtures: an in-process node with its admin channel, and an AMP client to it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.protocols import amp

from twistedmail.admin.channel import AdminChannel
from twistedmail.testing.inprocess import RunningServer

USERS = {"alice": "secret", "bob": "secret", "root": "rootpw"}


class Admin:
    """An AMP client to a node's admin channel, living in the reactor thread."""

    def __init__(self, server: RunningServer, channel: AdminChannel, proto: amp.AMP) -> None:
        self.server, self.channel, self.proto = server, channel, proto

    def raw(self, command: type[amp.Command], **kwargs: Any) -> dict[str, Any]:
        """callRemote from the test thread; AMP errors are raised here."""
        return self.server.call(self.proto.callRemote, command, **kwargs)

    def __call__(self, command: type[amp.Command], **kwargs: Any) -> Any:
        """The decoded ``result_json`` of a command."""
        return json.loads(self.raw(command, **kwargs)["result_json"])

    def close(self) -> None:
        self.server.call(lambda: self.proto.transport.loseConnection())


def _start_channel(server: RunningServer, description: str) -> AdminChannel:
    def start() -> Any:
        from twisted.internet import reactor

        channel = AdminChannel(server.node, description, reactor)
        channel.startService()
        assert channel._listening is not None
        return channel._listening.addCallback(lambda _: channel)

    return server.call(start)


def _connect(server: RunningServer, channel: AdminChannel) -> amp.AMP:
    def connect() -> Any:
        from twisted.internet import endpoints, reactor

        host = channel.port.getHost()  # type: ignore[union-attr]
        if hasattr(host, "port"):
            ep: Any = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", host.port)
        else:
            ep = endpoints.UNIXClientEndpoint(reactor, host.name)
        return endpoints.connectProtocol(ep, amp.AMP())

    return server.call(connect)


@pytest.fixture
def admin_node(make_imap_server: Callable[..., RunningServer], tmp_path: Path
               ) -> Iterator[Callable[..., tuple[RunningServer, Admin]]]:
    """Factory: ``server, admin = admin_node(tcp=False, **settings)``: a node with
    users alice, bob, root (admin "root") and an admin client on its channel."""
    made: list[Admin] = []

    def make(tcp: bool = False, **fields: Any) -> tuple[RunningServer, Admin]:
        fields.setdefault("users", dict(USERS))
        fields.setdefault("admins", ["root"])
        fields.setdefault("node_name", "n1")
        server = make_imap_server(**fields)
        where = "tcp:0:interface=127.0.0.1" if tcp else f"unix:{tmp_path}/n{len(made)}.admin"
        channel = _start_channel(server, where)
        admin = Admin(server, channel, _connect(server, channel))
        made.append(admin)
        return server, admin

    yield make
    for admin in made:
        admin.close()
        admin.server.call(admin.channel.stopService)
