"""The node memory ceiling (twistedmail/limits.py) on the HTTP API's send: 503 with
Retry-After and code NOMEMORY, nothing delivered (issue 7 item 2)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.web import webnode
from tests.web.webnode import WebNode

V1 = "/api/v1"


@pytest.fixture
def web() -> Iterator[WebNode]:
    node = webnode.start()
    yield node
    node.stop()


def test_send_past_the_ceiling_is_503_and_delivers_nothing(web: WebNode) -> None:
    """Past memory_limit POST /messages answers 503 + Retry-After (code NOMEMORY) and
    stores nothing; with room again the same send is delivered (201)."""
    web.call(setattr, web.node.settings, "memory_limit", 1)
    body = {"to": ["alice"], "subject": "mem", "text": "hello"}
    refused = web.request("POST", f"{V1}/messages", json_body=body)
    assert refused.status == 503 and refused.json()["code"] == "NOMEMORY"
    assert "retry-after" in refused.headers
    listing = f"{V1}/accounts/alice/mailboxes/INBOX/messages"
    assert web.get(listing).json()["total"] == 0
    web.call(setattr, web.node.settings, "memory_limit", 0)
    assert web.request("POST", f"{V1}/messages", json_body=body).status == 201
    assert web.get(listing).json()["total"] == 1
