"""The web service of a node (issue 6): one twisted.web Site on every ``--http``
endpoint, serving

    /                  302 to /status
    /status            the status page (twistedmail.web.status.StatusPage)
    /status.json       its data (twistedmail.web.status.StatusJSON: ``status_data``)
    /metrics           Prometheus text (twistedmail.observe.metrics.render)
    /api/openapi.json  the OpenAPI 3.1 document of the API (twistedmail/web/openapi.py)
    /api/v1/...        the JSON API, bearer-token protected (twistedmail/web/api.py)

Invariants:
  * Off unless ``settings.http_endpoints`` names an endpoint; each endpoint logs
    "HTTP listening on HOST:PORT (ENDPOINT)" and the status page's URL once bound; one
    that cannot listen is a critical log line, the node keeps serving IMAP.
  * A request body over ``max_body`` (``settings.max_literal`` + 1 MiB of room for
    JSON) is never kept: its bytes are dropped as they come and the API answers 413.
  * No traceback reaches a client (``displayTracebacks`` off; the API answers JSON).
"""

from __future__ import annotations

import io
import json
from typing import Any

from twisted.application import service
from twisted.internet import endpoints
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import resource, server, util

from twistedmail.web.api import ApiResource

log = Logger()
BODY_ROOM = 1 << 20  # JSON and headers around a message of max_literal bytes


class LimitedRequest(server.Request):
    """A Request that drops a body over the site's ``max_body`` (``body_too_big``)."""

    body_too_big = False
    body_limit = 0

    def gotLength(self, length: int | None) -> None:
        site = getattr(self.channel, "site", None)
        self.body_limit = int(getattr(site, "max_body", BODY_ROOM))
        if length is not None and length > self.body_limit:
            self.body_too_big = True
            self.content = io.BytesIO()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        content: Any = self.content
        if not self.body_too_big and content.tell() + len(data) > self.body_limit:
            self.body_too_big = True
            self.content = io.BytesIO()
        if not self.body_too_big:
            super().handleContentChunk(data)


class Metrics(resource.Resource):
    """``/metrics``: the node's Prometheus registry in the text format (helper M)."""

    isLeaf = True

    def __init__(self, node: Any) -> None:
        super().__init__()
        self.node = node

    def render_GET(self, request: Any) -> bytes:
        from twistedmail.observe.metrics import render

        data, content_type = render(self.node)
        request.setHeader(b"content-type", content_type.encode("ascii"))
        return bytes(data)


class OpenAPIDocument(resource.Resource):
    """``/api/openapi.json``: the API's OpenAPI 3.1 document (no token needed)."""

    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        from twistedmail.web.openapi import document

        request.setHeader(b"content-type", b"application/json")
        return json.dumps(document(), indent=1).encode("utf-8")


def root_resource(node: Any) -> resource.Resource:
    """The resource tree of the module docstring."""
    from twistedmail.web.status import StatusJSON, StatusPage

    root = resource.Resource()
    root.putChild(b"", util.Redirect(b"/status"))
    root.putChild(b"status", StatusPage(node))
    root.putChild(b"status.json", StatusJSON(node))
    root.putChild(b"metrics", Metrics(node))
    api = resource.Resource()
    api.putChild(b"openapi.json", OpenAPIDocument())
    api.putChild(b"v1", ApiResource(node))
    root.putChild(b"api", api)
    return root


def make_site(node: Any) -> server.Site:
    """A Site over ``root_resource(node)`` with the body limit and no tracebacks."""
    site = server.Site(root_resource(node), requestFactory=LimitedRequest)
    site.displayTracebacks = False
    site.max_body = int(node.settings.max_literal) + BODY_ROOM  # type: ignore[attr-defined]
    site.noisy = False
    return site


class HTTPListener(service.Service):
    """The Site on one endpoint string; logs the address bound and the status page URL."""

    def __init__(self, description: str, site: server.Site, reactor: Any) -> None:
        self.description = description
        self.site = site
        self.reactor = reactor
        self.port: IListeningPort | None = None
        self.listening: Deferred[IListeningPort] | None = None
        self.error: str | None = None

    def startService(self) -> None:
        super().startService()
        endpoint = endpoints.serverFromString(self.reactor, self.description)
        self.listening = endpoint.listen(self.site)
        self.listening.addCallbacks(self._bound, self._cannot_listen)

    def _bound(self, port: IListeningPort) -> IListeningPort:
        self.port = port
        address: Any = port.getHost()
        host = getattr(address, "host", None)
        where = f"{host}:{address.port}" if host is not None else str(address)
        shown = f"[{host}]" if host and ":" in host else host
        log.info("HTTP listening on {where} ({endpoint}); status page "
                 "http://{shown}:{port}/status", where=where, endpoint=self.description,
                 shown=shown, port=getattr(address, "port", ""))
        return port

    def _cannot_listen(self, reason: Failure) -> None:
        self.error = f"cannot listen for HTTP on {self.description}: {reason.getErrorMessage()}"
        log.critical("{error}", error=self.error)

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        port, self.port = self.port, None
        return port.stopListening() if port is not None else None


class WebService(service.MultiService):
    """One HTTPListener per endpoint, sharing one Site."""

    def __init__(self, node: Any, descriptions: list[str], reactor: Any) -> None:
        super().__init__()
        self.site = make_site(node)
        self.listeners = [HTTPListener(d, self.site, reactor) for d in descriptions]
        for listener in self.listeners:
            listener.setServiceParent(self)

    def when_listening(self) -> Deferred[list[IListeningPort]]:
        """Fires with every bound port once all endpoints listen (after startService)."""
        waits = [lst.listening for lst in self.listeners if lst.listening is not None]
        d = DeferredList(waits, consumeErrors=True)

        def ports(_: object) -> list[IListeningPort]:
            errors = [lst.error for lst in self.listeners if lst.error]
            if errors:
                raise RuntimeError("; ".join(errors))
            return [lst.port for lst in self.listeners if lst.port is not None]

        return d.addCallback(ports)


def web_service(node: Any, settings: Any, reactor: Any) -> WebService:
    """The web service on every ``settings.http_endpoints`` endpoint."""
    return WebService(node, list(settings.http_endpoints), reactor)
