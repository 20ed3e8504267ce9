"""An in-process node with its web service on 127.0.0.1, and a plain urllib client
that checks every API answer against the OpenAPI document.

The node and the web service run in the harness's reactor thread
(twistedmail.testing.inprocess); tests talk to them over real sockets."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS31Validator

from twistedmail.config import NodeSettings
from twistedmail.testing.inprocess import RunningServer, in_process_server
from twistedmail.web.openapi import SERVER, document

TOKEN = "t0ken-for-tests"
TIMEOUT = 20.0


@dataclass
class Answer:
    """One HTTP answer: status, headers (lower-case names), body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        assert self.headers.get("content-type", "").startswith("application/json"), self
        return json.loads(self.body)


@dataclass
class WebNode:
    """A running node, its web service and base URL (``imap``: its IMAP listener, if
    this harness started one)."""

    node: Any
    web: Any
    base: str
    token: str | None = TOKEN
    imap: RunningServer | None = None
    seen: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def host_port(self) -> tuple[str, int]:
        assert self.imap is not None
        return self.imap.host, self.imap.port

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn`` in the reactor thread."""
        return in_process_server().call(fn, *args)

    def get(self, path: str, **kw: Any) -> Answer:
        return self.request("GET", path, **kw)

    def request(self, method: str, path: str, body: bytes | None = None,
                json_body: Any = None, headers: dict[str, str] | None = None,
                token: str | None | bool = True) -> Answer:
        """``method`` on ``path``; API answers are checked against the OpenAPI doc."""
        hdrs = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if token is True:
            token = self.token
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:  # noqa: S310
                answer = Answer(resp.status, _lower(resp.headers), resp.read())
        except urllib.error.HTTPError as err:
            answer = Answer(err.code, _lower(err.headers), err.read())
        if path.startswith(SERVER):
            self.seen.append(check_documented(method, path, answer))
        return answer

    def stop(self) -> None:
        self.call(self.web.stopService)
        if self.imap is not None:
            self.imap.stop()


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def start(token: str | None = TOKEN, **fields: Any) -> WebNode:
    """A fresh node (users alice, bob / secret) with IMAP and HTTP on free ports."""
    fields.setdefault("users", {"alice": "secret", "bob": "secret"})
    settings = NodeSettings(http_endpoints=["tcp:0:interface=127.0.0.1"], http_token=token,
                            **fields)
    server = in_process_server()
    imap = server.start(settings)
    web, port = server.call(_start_web, imap.node)
    return WebNode(imap.node, web, f"http://127.0.0.1:{port}", token, imap)


def start_web(node: Any) -> WebNode:
    """A web service for an already running ``node`` (its settings' token)."""
    web, port = in_process_server().call(_start_web, node)
    return WebNode(node, web, f"http://127.0.0.1:{port}", node.settings.http_token)


def _start_web(node: Any) -> Any:
    from twisted.internet import reactor

    from twistedmail.web.service import web_service

    web = web_service(node, SimpleNamespace(http_endpoints=["tcp:0:interface=127.0.0.1"]),
                      reactor)
    web.startService()
    return web.when_listening().addCallback(lambda ports: (web, ports[0].getHost().port))


# --- checking answers against the OpenAPI document ------------------------------------

DOC = document()


def operation_of(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """(documented path template, operation) for a concrete API request path."""
    parts = path.split("?", 1)[0][len(SERVER):].strip("/").split("/")
    for template, item in DOC["paths"].items():
        pattern = template.strip("/").split("/")
        if len(pattern) == len(parts) and all(
                p.startswith("{") or p == v for p, v in zip(pattern, parts, strict=True)):
            op = item.get(method.lower()) or item.get("get" if method == "HEAD" else "")
            if op is not None:
                return template, op
            return template, {}
    return "", {}


def check_documented(method: str, path: str, answer: Answer) -> tuple[str, str, int]:
    """Assert the answer's status is documented for the operation and its JSON body
    fits the documented schema; (method, path template, status)."""
    template, op = operation_of(method, path)
    if not op:  # no such route / method: must be the documented JSON 404 / 405
        assert answer.status in (401, 403, 404, 405), (method, path, answer)
        _validate(answer.json(), "Error")
        return method, template or path, answer.status
    response = op["responses"].get(str(answer.status))
    assert response is not None, f"{method} {template}: status {answer.status} not documented"
    content = response["content"]
    kind = answer.headers.get("content-type", "").split(";")[0]
    assert kind in content, f"{method} {template}: {kind} not documented"
    if kind == "application/json":
        ref = content[kind]["schema"]["$ref"].rsplit("/", 1)[1]
        _validate(json.loads(answer.body), ref)
    for header in response.get("headers", {}):
        assert header.lower() in answer.headers, f"{method} {template}: no {header}"
    return method, template, answer.status


def _validate(value: Any, schema: str) -> None:
    root = {"$ref": f"#/components/schemas/{schema}", "components": DOC["components"]}
    try:
        OAS31Validator(root).validate(value)
    except ValidationError as err:
        raise AssertionError(f"answer does not fit schema {schema}: {err.message}: "
                             f"{value!r}") from None
