"""The delivery listeners of ``twistd clustermail``: ``--lmtp`` and ``--smtp`` endpoints.

Invariants:
  * Off by default: only the configured endpoints listen (settings.lmtp_endpoints,
    settings.smtp_endpoints); each logs "LMTP listening on HOST:PORT" / "SMTP ..." once bound.
  * An ``ssl:`` endpoint without its own key is implicit TLS with the node's certificate
    (twistedmail/tls.py ``server_endpoint``, RFC 8314 §3.3), like IMAP.
  * Listening failures stop the node with one line, like the IMAP listeners.
"""

from __future__ import annotations

from typing import Any

from twisted.application import service
from twisted.internet.interfaces import IListeningPort

from twistedmail.service import IMAPListener, log


class DeliveryListener(IMAPListener):
    """One LMTP or SMTP endpoint; logs the bound address under its protocol's name."""

    def __init__(self, kind: str, description: str, factory: Any, reactor: Any) -> None:
        super().__init__(description, factory, reactor)
        self.kind = kind

    def _bound(self, port: IListeningPort) -> IListeningPort:
        self.port = port
        address: Any = port.getHost()
        host = getattr(address, "host", None)
        where = f"{host}:{address.port}" if host is not None else str(address)
        log.info("{kind} listening on {where} ({endpoint})", kind=self.kind, where=where,
                 endpoint=self.description)
        return port


def delivery_service(node: Any, settings: Any, reactor: Any) -> service.MultiService:
    """A MultiService with one listener per LMTP and SMTP endpoint of ``settings``."""
    from twistedmail.delivery.lmtp import LMTPFactory
    from twistedmail.delivery.smtp import DeliveryFactory

    top = service.MultiService()
    if settings.lmtp_endpoints:
        lmtp = LMTPFactory(node)
        for description in settings.lmtp_endpoints:
            DeliveryListener("LMTP", description, lmtp, reactor).setServiceParent(top)
    if settings.smtp_endpoints:
        smtp = DeliveryFactory(node)
        for description in settings.smtp_endpoints:
            DeliveryListener("SMTP", description, smtp, reactor).setServiceParent(top)
    return top
