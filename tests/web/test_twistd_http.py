"""``twistd clustermail --http EP --http-token T``: the real process serves the API, the
status page and /metrics, and logs the status page's address (issue 6 "Done when")."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest

from tests.web.webnode import WebNode
from twistedmail.testing import ClusterMailProcess

pytestmark = pytest.mark.e2e
LOGGED = re.compile(r"HTTP listening on 127\.0\.0\.1:(\d+) .*status page (http://\S+/status)")


def logged_url(node: ClusterMailProcess, timeout: float = 15.0) -> tuple[int, str]:
    """(port, status page URL) from the node's log, waiting at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = LOGGED.search(node.log_text())
        if m:
            return int(m.group(1)), m.group(2)
        time.sleep(0.05)
    raise AssertionError(f"no 'HTTP listening' line in the log:\n{node.log_text()[-2000:]}")


def test_twistd_serves_the_api_and_logs_the_status_page(
        clustermail_node: Callable[..., ClusterMailProcess]) -> None:
    """Accounts over the API of a spawned node; / -> /status; the URL is in the log."""
    node = clustermail_node(users=["alice:secret"], extra_args=[
        "--http", "tcp:0:interface=127.0.0.1", "--http-token", "s3cret"])
    port, url = logged_url(node)
    assert url == f"http://127.0.0.1:{port}/status"
    web = WebNode(None, None, f"http://127.0.0.1:{port}", "s3cret")
    accounts = web.get("/api/v1/accounts")
    assert accounts.status == 200
    assert [a["name"] for a in accounts.json()["accounts"]] == ["alice"]
    sent = web.request("POST", "/api/v1/messages", json_body={"to": "alice", "subject": "t"})
    assert sent.status == 201
    assert web.get("/api/v1/accounts", token="wrong").status == 401
    page = web.get("/", token=False)
    assert page.status == 200 and b"<svg" in page.body.lower()
    assert web.get("/metrics", token=False).status == 200
