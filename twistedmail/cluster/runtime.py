"""Process plumbing of a cluster node: incarnation ids, dialling peers, exit status.

Invariants:
  * A Dialer has at most one connection attempt or link at a time; after a
    failure or a drop it redials RETRY_MIN..RETRY_MAX seconds later (doubling,
    back to RETRY_MIN after a link that was healthy), until stopped.
  * ``exit_process`` makes twistd exit with status 1 after its normal cleanup.
  * Link TLS (``LinkTLSFactory``, ``LinkTLSClient``) hands each AMP box to the
    TCP transport as it is written, never holding it for a later reactor turn.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import sys
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, protocol
from twisted.internet.interfaces import IProtocolFactory, IStreamClientEndpoint
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from .link import OutLink

RETRY_MIN, RETRY_MAX = 0.2, 2.0  # seconds between dial attempts (doubling)


class LinkTLSFactory(TLSMemoryBIOFactory):
    """TLS for cluster links that writes each AMP box out at once.  Twisted's default
    TLS transport holds small writes until the next reactor turn; on a node busy with
    IMAP clients that turn comes only after every command already read is handled,
    so each replication batch, and every write waiting for its acknowledgement,
    would wait for a whole turn of IMAP work.  AMP writes one box per write, so
    aggregating buys nothing here."""

    protocol = TLSMemoryBIOProtocol


@implementer(IStreamClientEndpoint)
class LinkTLSClient:
    """``endpoints.wrapClientTLS`` with LinkTLSFactory."""

    def __init__(self, creator: Any, endpoint: Any) -> None:
        self._creator, self._endpoint = creator, endpoint

    def connect(self, factory: IProtocolFactory) -> defer.Deferred[Any]:
        """Connect ``factory``'s protocol over TLS; fires with that protocol."""
        wrapped = LinkTLSFactory(self._creator, True, factory)
        d: defer.Deferred[Any] = self._endpoint.connect(wrapped)
        return d.addCallback(lambda tls: tls.wrappedProtocol)


def new_incarnation(name: str) -> str:
    """A fresh incarnation id for a process start, e.g. "n1~0192ab3f5c7d"."""
    return f"{name}~{secrets.token_hex(6)}"


def exit_process(reactor: Any, reason: str) -> None:
    """Stop the reactor; the process then exits with status 1 (twistd has no exit
    status of its own, so an atexit hook sets it after twistd's own cleanup)."""
    sys.stderr.write(f"clustermail: error: {reason}\n")

    def exit_1() -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(1)

    atexit.register(exit_1)
    if reactor.running:
        reactor.stop()


class Dialer:
    """Dials one peer; redials after failures and drops, RETRY_MIN..RETRY_MAX apart."""

    def __init__(self, reactor: Any, endpoint: Any, make: Callable[[], OutLink]) -> None:
        self.reactor, self.endpoint, self.make = reactor, endpoint, make
        self.delay = RETRY_MIN
        self.link: OutLink | None = None
        self._call: Any = None
        self._connecting: defer.Deferred[Any] | None = None
        self._stopped = True

    def start(self) -> None:
        self._stopped = False
        self._dial()

    def _dial(self) -> None:
        self._call = None
        if self._stopped:
            return
        factory = protocol.Factory.forProtocol(self.make)
        factory.noisy = False  # one dial every RETRY_MAX to a down peer: no log lines
        self._connecting = self.endpoint.connect(factory)
        self._connecting.addCallbacks(self._connected, self._failed)

    def _connected(self, link: Any) -> None:
        self._connecting = None
        inner = getattr(link, "wrappedProtocol", link)  # under TLS
        self.link = inner
        inner.on_lost = self._lost

    def _failed(self, reason: Failure) -> None:
        self._connecting = None
        self._retry()

    def _lost(self, healthy: bool) -> None:
        self.link = None
        if healthy:
            self.delay = RETRY_MIN
        self._retry()

    def _retry(self) -> None:
        if self._stopped or self._call is not None:
            return
        self._call = self.reactor.callLater(self.delay, self._dial)
        self.delay = min(RETRY_MAX, self.delay * 2)

    def poke(self) -> None:
        """The peer just dialled us, so it is up: redial now instead of waiting."""
        if self._call is not None and self._call.active():
            self._call.cancel()
            self._call = None
            self.delay = RETRY_MIN
            self._dial()

    def stop(self) -> None:
        self._stopped = True
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        if self._connecting is not None:
            self._connecting.cancel()
        if self.link is not None:
            self.link.abort()
