"""Prometheus metrics of a node after real IMAP traffic (issue 6 part 4;
twistedmail/observe/metrics.py, hooks in imap/protocol.py via observe/hooks.py)."""

from __future__ import annotations

import re
import socket
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import REGISTRY

from twistedmail.observe import metrics
from twistedmail.testing.script import ImapScript

from .scrape import Samples, parse, scrape, value

MESSAGES = (b"Subject: one\r\n\r\nfirst body\r\n", b"Subject: two\r\n\r\nthe second body\r\n")


def wait_open_connections(server: Any, n: float, timeout: float = 10.0) -> Samples:
    """Scrape until the open-connection gauge reads ``n`` (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(server)
        if value(samples, "twistedmail_imap_connections_open") == n:
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"connections_open never reached {n}: {samples}")
        time.sleep(0.02)


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    """How much one sample moved."""
    return value(after, name, **labels) - value(before, name, **labels)


def test_counters_move_by_the_traffic(make_imap_server: Callable[..., Any]) -> None:
    """Connections, commands by name and status, latency counts and the store gauges
    move by exactly what one scripted session and one dropped connection did."""
    server = make_imap_server()
    before = scrape(server)
    with ImapScript(server.host, server.port) as s:
        s.no('LOGIN "alice" "wrong"')
        s.login()
        s.ok("SELECT INBOX")
        for body in MESSAGES:
            s.ok(f"APPEND INBOX {{{len(body)}+}}\r\n".encode() + body)
        s.ok("FETCH 1:2 (FLAGS)")
        s.bad("FROBNICATE")
        s.no("SELECT Nowhere")
        during = scrape(server)
        s.logout()
    dropped = socket.create_connection((server.host, server.port), timeout=5)
    dropped.recv(1000)
    dropped.close()
    after = wait_open_connections(server, 0)
    assert value(during, "twistedmail_imap_connections_open") == 1
    assert delta(after, before, "twistedmail_imap_connections_total") == 2
    commands = "twistedmail_imap_commands_total"
    expected = {("LOGIN", "NO"): 1, ("LOGIN", "OK"): 1, ("SELECT", "OK"): 1,
                ("SELECT", "NO"): 1, ("APPEND", "OK"): 2, ("FETCH", "OK"): 1,
                ("OTHER", "BAD"): 1, ("LOGOUT", "OK"): 1}
    for (command, status), n in expected.items():
        assert delta(after, before, commands, command=command, status=status) == n, command
    assert delta(after, before, "twistedmail_imap_command_duration_seconds_count",
                 command="APPEND") == 2
    assert value(after, "twistedmail_imap_command_duration_seconds_sum", command="APPEND") > 0
    assert delta(after, before, "twistedmail_messages") == 2
    assert delta(after, before, "twistedmail_message_bytes") == sum(map(len, MESSAGES))
    assert delta(after, before, "twistedmail_blob_bytes") == sum(map(len, MESSAGES))


def test_copy_counts_messages_twice_but_bodies_once(make_imap_server: Callable[..., Any]
                                                     ) -> None:
    """COPY adds a message record (twistedmail_messages) but shares the body
    (twistedmail_blobs): the two store gauges tell copies from new mail."""
    server = make_imap_server()
    body = MESSAGES[0]
    with ImapScript(server.host, server.port) as s:
        s.login()
        s.ok(f"APPEND INBOX {{{len(body)}+}}\r\n".encode() + body)
        before = scrape(server)
        s.ok("SELECT INBOX")
        s.ok("CREATE Copies")
        s.ok("COPY 1 Copies")
    after = scrape(server)
    assert delta(after, before, "twistedmail_messages") == 1
    assert delta(after, before, "twistedmail_message_bytes") == len(body)
    assert delta(after, before, "twistedmail_blobs") == 0
    assert delta(after, before, "twistedmail_mailboxes") == 1


def test_unknown_command_names_do_not_become_labels(make_imap_server: Callable[..., Any]
                                                    ) -> None:
    """Client-chosen command names all count as OTHER, so a client cannot grow the
    label set (bounded cardinality)."""
    server = make_imap_server()
    with ImapScript(server.host, server.port) as s:
        for i in range(5):
            s.bad(f"XNOSUCH{i}")
    data, _ = server.call(metrics.render, server.node)
    assert b"XNOSUCH" not in data
    samples = scrape(server)
    assert value(samples, "twistedmail_imap_commands_total", command="OTHER", status="BAD") == 5


def test_every_node_has_its_own_registry(make_imap_server: Callable[..., Any]) -> None:
    """Two nodes in one process: traffic on one leaves the other's counters alone,
    and neither uses prometheus_client's global default registry."""
    a, b = make_imap_server(), make_imap_server()
    assert metrics.registry_of(a.node) is not metrics.registry_of(b.node)
    assert metrics.registry_of(a.node) is not REGISTRY
    assert REGISTRY.get_sample_value("twistedmail_imap_connections_total") is None
    with ImapScript(a.host, a.port) as s:
        s.login()
    wait_open_connections(a, 0)
    assert value(scrape(a), "twistedmail_imap_commands_total", command="LOGIN",
                 status="OK") == 1
    untouched = scrape(b)
    assert value(untouched, "twistedmail_imap_connections_total") == 0
    assert value(untouched, "twistedmail_imap_commands_total", command="LOGIN",
                 status="OK") == 0


def _http_port(node: Any, timeout: float = 15.0) -> int:
    """The port of the node's --http listener, from its log line (bounded wait)."""
    deadline = time.monotonic() + timeout
    while True:
        found = re.search(r"HTTP listening on 127\.0\.0\.1:(\d+)", node.log_text())
        if found:
            return int(found.group(1))
        if time.monotonic() > deadline:
            raise AssertionError(f"no HTTP listening line in {node.log_text()[-2000:]}")
        time.sleep(0.05)


@pytest.mark.e2e
def test_metrics_endpoint_of_a_real_node(clustermail_node: Callable[..., Any]) -> None:
    """``twistd clustermail --http``: GET /metrics answers the Prometheus text format
    (no token needed) with the counters of the IMAP traffic the node served."""
    node = clustermail_node(users=["alice:secret"],
                            extra_args=["--http", "tcp:0:interface=127.0.0.1"])
    url = f"http://127.0.0.1:{_http_port(node)}/metrics"
    with ImapScript(node.host, node.port) as s:
        s.login()
        s.ok("SELECT INBOX")
        s.logout()
    with urllib.request.urlopen(url, timeout=10) as answer:
        content_type = answer.headers["Content-Type"]
        samples = parse(answer.read().decode())
    assert content_type.startswith("text/plain; version=")
    assert value(samples, "twistedmail_imap_commands_total", command="LOGIN", status="OK") == 1
    assert value(samples, "twistedmail_imap_commands_total", command="SELECT",
                 status="OK") == 1
    assert value(samples, "twistedmail_imap_connections_total") >= 1
    assert value(samples, "twistedmail_accounts") >= 1
