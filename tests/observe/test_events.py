"""Session and admin log events (issue 6 part 6; twistedmail/observe/events.py):
in process through twisted.logger, and as JSON lines from a real twistd."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import formatEvent, globalLogPublisher

from twistedmail.testing.script import ImapScript

SESSION_KEYS = {"event", "session", "peer"}
PASSWORD = "Sup3r-S3cret-pw"


@pytest.fixture
def events() -> Iterator[list[dict[str, Any]]]:
    """Events of the twistedmail.events namespace logged during the test."""
    seen: list[dict[str, Any]] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_namespace") == "twistedmail.events":
            seen.append(dict(event, text=formatEvent(event)))

    globalLogPublisher.addObserver(observe)
    yield seen
    globalLogPublisher.removeObserver(observe)


def wait_kinds(seen: list[dict[str, Any]], kinds: list[str], timeout: float = 10.0
               ) -> list[dict[str, Any]]:
    """Wait (bounded) until the kinds logged so far are ``kinds``, in order."""
    deadline = time.monotonic() + timeout
    while [e["event"] for e in seen] != kinds:
        if time.monotonic() > deadline:
            raise AssertionError(f"events {[e['event'] for e in seen]} != {kinds}")
        time.sleep(0.02)
    return list(seen)


def test_session_events_in_order(make_imap_server: Callable[..., Any],
                                 events: list[dict[str, Any]]) -> None:
    """connect, failed login, login, logout: one event each with the user, the peer,
    the mechanism; the logout carries the command count; text lines read well."""
    server = make_imap_server(users={"alice": PASSWORD})
    with ImapScript(server.host, server.port) as s:
        s.no('LOGIN "alice" "wrong-one"')
        s.login("alice", PASSWORD)
        s.ok("NOOP")
        s.logout()
    got = wait_kinds(events, ["imap.connect", "imap.login_failed", "imap.login",
                              "imap.logout"])
    connect, failed, ok, logout = got
    assert all(e.keys() >= SESSION_KEYS for e in got)
    assert len({e["session"] for e in got}) == 1
    assert connect["peer"].startswith("127.0.0.1:") and connect["tls"] is False
    assert (failed["user"], failed["mechanism"], failed["status"]) == ("alice", "LOGIN", "NO")
    assert (ok["user"], ok["mechanism"]) == ("alice", "LOGIN")
    assert logout["user"] == "alice" and logout["commands"] == 4
    assert logout["duration"] >= 0
    assert ok["text"] == f"imap: alice logged in from {ok['peer']} (LOGIN, connection " \
                         f"#{ok['session']})"
    assert logout["text"].startswith(f"imap: alice logged out from {ok['peer']} after ")
    assert "wrong-one" not in repr(got) and PASSWORD not in repr(got)


def test_plain_failure_names_user_not_password(make_imap_server: Callable[..., Any],
                                               events: list[dict[str, Any]]) -> None:
    """AUTHENTICATE PLAIN with a wrong password: the failed-login event names the user
    from the SASL response but holds neither the password nor the response; a client
    that drops the connection gets a disconnect event."""
    server = make_imap_server(users={"alice": PASSWORD})
    response = base64.b64encode(b"\0alice\0not-" + PASSWORD.encode()).decode()
    sock = socket.create_connection((server.host, server.port), timeout=5)
    with ImapScript(server.host, server.port) as s:
        s.no(f"AUTHENTICATE PLAIN {response}")
    sock.close()
    got = wait_kinds(events, ["imap.connect", "imap.connect", "imap.login_failed",
                              "imap.disconnect", "imap.disconnect"])
    failed = got[2]
    assert (failed["user"], failed["mechanism"]) == ("alice", "PLAIN")
    assert all(e["user"] is None for e in got[3:])
    assert PASSWORD not in repr(got) and response not in repr(got)


def test_scram_failure_names_user(make_imap_server: Callable[..., Any],
                                  events: list[dict[str, Any]]) -> None:
    """AUTHENTICATE SCRAM-SHA-256 with a wrong password: the failed-login event names
    the user of the client-first message (not null), and holds no proof or password."""
    from tests.protocol.test_scram import scram_exchange

    server = make_imap_server(users={"alice": PASSWORD})
    with ImapScript(server.host, server.port) as s:
        tagged, _ = scram_exchange(s, "alice", "not-" + PASSWORD)
        assert tagged.startswith(b"s1 NO [AUTHENTICATIONFAILED]"), tagged
    got = wait_kinds(events, ["imap.connect", "imap.login_failed", "imap.disconnect"])
    assert (got[1]["user"], got[1]["mechanism"]) == ("alice", "SCRAM-SHA-256")
    assert PASSWORD not in repr(got)


@pytest.mark.e2e
def test_json_lines_from_twistd(clustermail_node: Callable[..., Any]) -> None:
    """A real ``twistd clustermail --log-format json``: each line is one JSON object;
    login, failed login, logout and admin events carry their fields at top level,
    and no password (IMAP or admin) appears anywhere in the log."""
    node = clustermail_node(users=[f"alice:{PASSWORD}"], extra_args=["--log-format", "json"])
    with ImapScript(node.host, node.port) as s:
        s.no('LOGIN "alice" "Wr0ng-pass"')
        s.login("alice", PASSWORD)
        s.logout()
    admin = f"unix:{node.workdir / 'clustermail-node1.admin'}"
    cli = [str(Path(sys.executable).with_name("clustermail")), "--admin", admin]
    added = subprocess.run([*cli, "users", "add", "bob", "B0b-pa55word"],
                           capture_output=True, text=True, timeout=30)
    assert added.returncode == 0, added.stderr
    refused = subprocess.run([*cli, "users", "del", "nobody"], capture_output=True,
                             text=True, timeout=30)
    assert refused.returncode != 0
    records = _wait_records(node, lambda r: [x for x in r if x.get("event") in (
        "imap.logout", "admin.command")], 3)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_kind.setdefault(r.get("event", ""), []).append(r)
    assert by_kind["imap.login_failed"][0]["user"] == "alice"
    login = by_kind["imap.login"][0]
    assert (login["user"], login["mechanism"], login["level"]) == ("alice", "LOGIN", "info")
    assert login["namespace"] == "twistedmail.events" and login["text"].startswith("imap: ")
    assert by_kind["imap.logout"][0]["commands"] == 3
    admin_events = {r["command"]: r for r in by_kind["admin.command"]}
    assert admin_events["users add bob"]["result"] == "ok"
    assert admin_events["users add bob"]["role"] == "cluster-admin"
    assert admin_events["users add bob"]["caller"] == "unix socket"
    assert admin_events["users del nobody"]["result"] == "error"
    assert admin_events["users del nobody"]["level"] == "warn"
    text = "\n".join(_server_lines(node))
    for secret in (PASSWORD, "Wr0ng-pass", "B0b-pa55word"):
        assert secret not in text


def _server_lines(node: Any) -> list[str]:
    """The log lines the node wrote (not the harness's ``=== start`` markers, which
    quote the command line)."""
    return [line for line in node.log_text().splitlines()
            if line.strip() and not line.startswith("=== ")]


def _wait_records(node: Any, pick: Callable[[list[dict[str, Any]]], list[Any]], n: int,
                  timeout: float = 15.0) -> list[dict[str, Any]]:
    """Every JSON line of the node's log once ``pick`` finds ``n`` (bounded wait); each
    non-empty line must be one JSON object."""
    deadline = time.monotonic() + timeout
    while True:
        records = [json.loads(line) for line in _server_lines(node)]
        assert all(isinstance(r, dict) for r in records)
        if len(pick(records)) >= n:
            return records
        if time.monotonic() > deadline:
            raise AssertionError(f"only {pick(records)} after {timeout} s")
        time.sleep(0.05)
