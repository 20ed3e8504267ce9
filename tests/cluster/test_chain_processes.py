"""The relay chain on real ``twistd clustermail`` processes (twistedmail/cluster/chain.py):
``clustermail status`` names the head; writes on n1 stay acknowledged when its head n2
stalls (SIGSTOP) or dies (kill -9), and n1 then sends to n3; nothing is lost or doubled."""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.admin.cluster_admin import cli_ok

from .failover import by_message_id, message, mid, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
USER = "alice"


def _sends_to(c, node: str) -> list[str]:
    """Where ``node`` sends its changes at once, from ``clustermail status --json``."""
    return list(json.loads(cli_ok(c, node, "status", "--json"))["relay"]["sends_to"])


def _append_ok(c, node: str, tag: str, i: int) -> float:
    """APPEND one message on ``node``; it must be acknowledged; the seconds it took."""
    start = time.monotonic()
    reply = c.append_reply(node, USER, "INBOX", message(tag, i))
    assert reply[0] == "OK", reply
    return time.monotonic() - start


def test_writes_survive_a_stalled_then_a_dead_head(make_cluster) -> None:
    """Default timings: n1 -> n2 is the chain; with n2 frozen, then killed, every APPEND on
    n1 is still OK (n3 acknowledges), status shows n1 sending to n3, then to n2 again once
    n2 is back; every acknowledged message is on every node exactly once."""
    c = make_cluster()
    assert _sends_to(c, "n1") == ["n2"]
    assert "changes sent at once to: n2 (fanout chain)" in cli_ok(c, "n1", "status")
    acked = [mid("before", i) for i in range(3)]
    for i in range(3):
        _append_ok(c, "n1", "before", i)

    c.kill("n2", signal.SIGSTOP)
    stalled = [_append_ok(c, "n1", "stalled", i) for i in range(3)]
    acked += [mid("stalled", i) for i in range(3)]
    print(f"APPEND seconds with the head frozen: {[round(t, 2) for t in stalled]}")
    wait_for("n1 sends to n3", lambda: _sends_to(c, "n1") == ["n3"], timeout=30)
    c.kill("n2", signal.SIGCONT)
    c.kill("n2")  # kill -9 of the head
    for i in range(3):
        _append_ok(c, "n1", "dead", i)
    acked += [mid("dead", i) for i in range(3)]
    assert _sends_to(c, "n1") == ["n3"]

    c.restart("n2")
    wait_for("n1 sends to n2 again", lambda: _sends_to(c, "n1") == ["n2"], timeout=30)
    _append_ok(c, "n1", "after", 0)
    acked.append(mid("after", 0))
    c.wait_converged(timeout=60)
    for node in c.names:
        _uv, msgs = by_message_id(c, node, USER, "INBOX")
        assert {m: len(msgs.get(m, [])) for m in acked} == dict.fromkeys(acked, 1), node
        assert set(msgs) == set(acked), node
    c.invariants.check()
