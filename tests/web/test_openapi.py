"""The OpenAPI 3.1 document of the HTTP API: valid (openapi-spec-validator), served at
/api/openapi.json, one-to-one with the routes, and every documented operation answers
on a live node with a documented status and a body that fits its schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openapi_spec_validator import validate

from tests.web import webnode
from tests.web.webnode import WebNode
from twistedmail.web.api import ROUTES
from twistedmail.web.openapi import SERVER, document

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def documented() -> set[tuple[str, str]]:
    return {(method.upper(), path.strip("/")) for path, item in document()["paths"].items()
            for method in item if method in METHODS}


@pytest.fixture
def web() -> Iterator[WebNode]:
    node = webnode.start()
    yield node
    node.stop()


def test_the_document_is_valid_openapi_3_1() -> None:
    """openapi-spec-validator accepts the document, and it says 3.1."""
    doc = document()
    validate(doc)
    assert doc["openapi"].startswith("3.1")


def test_every_route_is_documented_and_every_operation_routed() -> None:
    """The documented (method, path) pairs are exactly api.ROUTES."""
    routes = {(r.method, r.path) for r in ROUTES}
    assert routes == documented()


def test_the_document_is_served_without_a_token(web: WebNode) -> None:
    """GET /api/openapi.json (no token) is the document as JSON."""
    answer = web.get("/api/openapi.json", token=False)
    assert answer.status == 200
    assert answer.json() == document()


def test_every_documented_operation_answers_as_documented(web: WebNode) -> None:
    """One call of each operation on a live node: a documented success status, the
    documented schema (checked by WebNode.request), and nothing left unexercised."""
    v1 = SERVER
    calls = [
        ("GET", "/accounts", None),
        ("POST", "/accounts", {"name": "dora", "password": "pw"}),
        ("POST", "/messages", {"to": "dora", "subject": "hi", "text": "x"}),
        ("GET", "/accounts/dora/mailboxes", None),
        ("GET", "/accounts/dora/mailboxes/INBOX/messages", None),
        ("GET", "/accounts/dora/mailboxes/INBOX/messages/1", None),
        ("DELETE", "/accounts/dora/mailboxes/INBOX/messages", None),
        ("POST", "/accounts/dora/reset", None),
        ("DELETE", "/accounts/dora", None),
        ("GET", "/cluster/status", None),
    ]
    for method, path, body in calls:
        answer = web.request(method, v1 + path, json_body=body)
        assert 200 <= answer.status < 300, (method, path, answer)
    exercised = {(m, t.strip("/")) for m, t, status in web.seen if status < 300}
    assert exercised == documented()
