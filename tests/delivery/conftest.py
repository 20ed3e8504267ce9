"""Fixtures: an in-process node with its LMTP and SMTP listeners on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.delivery.helpers import listen


@dataclass
class MailNode:
    """An in-process node: IMAP ``imap`` port, ``lmtp`` and ``smtp`` ports, the server."""

    server: Any
    lmtp: int
    smtp: int

    @property
    def imap(self) -> tuple[str, int]:
        """(host, port) of IMAP."""
        return self.server.host, self.server.port


@pytest.fixture
def make_mail_node(make_imap_server: Callable[..., Any]) -> Iterator[Callable[..., MailNode]]:
    """Factory: ``make_mail_node(max_literal=4096, smtp_auth=True)`` -> MailNode."""
    from twistedmail.delivery.lmtp import LMTPFactory
    from twistedmail.delivery.smtp import DeliveryFactory

    ports: list[Any] = []

    def make(**fields: Any) -> MailNode:
        server = make_imap_server(**fields)
        lmtp, lport = listen(server, LMTPFactory(server.node))
        smtp, sport = listen(server, server.call(DeliveryFactory, server.node))
        ports.extend([(server, lport), (server, sport)])
        return MailNode(server, lmtp, smtp)

    yield make
    for server, port in ports:
        server.call(port.stopListening)


@pytest.fixture
def mail_node(make_mail_node: Callable[..., MailNode]) -> MailNode:
    """A node with users alice/secret and bob/secret, LMTP and SMTP listening."""
    return make_mail_node()
