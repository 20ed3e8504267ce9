"""Real-process failover with client libraries (issue 3 item 9): imaplib2 and imapclient
append to n1 of a 3-node cluster; n1 is killed -9 after, during and before the ack, and
the client fails over to n2 (a tiny wrapper: try n1, then n2, ...).  Also: a partition
with writes on both sides, and an empty restart under client load.

What is pinned: every acknowledged message is present exactly once after failover, flags
survive, the new UIDVALIDITY carries the new node's root, UIDs stay aligned, and the
harness invariants (no UID reused, UIDVALIDITYs per node unique and increasing) hold.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from .failover import (
    FAST,
    LIBS,
    FailoverClient,
    by_message_id,
    counts,
    failover_client,
    load,
    message,
    mid,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.clients, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::DeprecationWarning:imaplib2")]
USER = "alice"


def _flags_of(msgs: dict[str, list[tuple[int, frozenset[str]]]]) -> dict[str, frozenset[str]]:
    return {m: copies[0][1] for m, copies in msgs.items()}


@pytest.mark.parametrize("lib", list(LIBS))
def test_kill_after_ack_client_fails_over(make_cluster, lib):
    """kill -9 n1 right after its acks: the client fails over to n2 and finds every
    acknowledged message once, with its flags, same UIDs, under a UIDVALIDITY of root 2."""
    c = make_cluster(cluster_options=FAST)
    expected: dict[str, frozenset[str]] = {}
    with failover_client(LIBS[lib], c, USER, c.names) as fc:
        for i in range(6):  # a first batch, then a STORE, replicated before the kill
            flags = ("\\Flagged",) if i % 3 == 0 else ()
            assert fc.append("INBOX", message("early", i), flags) == "OK"
            expected[mid("early", i)] = frozenset(flags)
        _uv, first = fc.resync("INBOX")
        stored = first[mid("early", 1)][0][0]
        fc.call(lambda conn: fc.lib.add_flags(conn, stored, ["\\Answered", "$Label1"]))
        expected[mid("early", 1)] = frozenset({"\\Answered", "$Label1"})
        c.wait_converged(timeout=30)  # STORE is not acknowledged by replicas: let it spread
        for i in range(6):  # acknowledged, then n1 dies at once
            flags = ("\\Seen", "$Later") if i % 2 else ()
            assert fc.append("INBOX", message("late", i), flags) == "OK"
            expected[mid("late", i)] = frozenset(flags)
        uv1, before = fc.resync("INBOX")
        assert fc.node == "n1" and uv1 >> 24 == 1
        c.kill("n1")

        def all_there() -> tuple[int, dict] | None:
            uv, msgs = fc.resync("INBOX")  # NOOP-free: the next command finds n1 gone
            return (uv, msgs) if set(expected) <= set(msgs) else None

        uv2, after = wait_for("every acknowledged message on n2", all_there, timeout=15)
        assert fc.node == "n2", fc.events
        assert [e[:2] for e in fc.events] == [("n1", "connected"), ("n1", "lost"),
                                              ("n2", "connected")], fc.events
    assert uv2 != uv1 and uv2 >> 24 == 2, (uv1, uv2)
    assert counts(after) == Counter(dict.fromkeys(expected, 1)), counts(after)
    assert _flags_of(after) == expected
    uids_n1 = {m: copies[0][0] for m, copies in before.items()}
    uids_n2 = {m: copies[0][0] for m, copies in after.items()}
    differ = {m: (uids_n1[m], uids_n2[m]) for m in uids_n1 if uids_n1[m] != uids_n2.get(m)}
    assert not differ, f"UIDs differ between n1 and n2 (n1 UID, n2 UID): {differ}"
    c.wait_converged(timeout=30)
    c.invariants.check()


@pytest.mark.parametrize("lib", list(LIBS))
def test_kill_while_append_waits_for_ack(make_cluster, lib):
    """n1 cut off silently stores an APPEND but cannot get it acknowledged; kill -9 n1
    while the client waits: no OK (connection lost), and after failover the message is
    there at most once (the earlier acknowledged one exactly once)."""
    c = make_cluster(cluster_options=FAST)
    with failover_client(LIBS[lib], c, USER, c.names) as fc:
        assert fc.append("INBOX", message("acked", 0), ["\\Flagged"]) == "OK"
        c.wait_converged(timeout=30)
        c.isolate("n1", mode="pause")  # n1's links stall: no replica can acknowledge
        reply: list[str] = []
        writer = threading.Thread(
            target=lambda: reply.append(fc.append("INBOX", message("pending", 0))), daemon=True)
        writer.start()
        # n1 holds it (another session sees it) while the client still waits for the OK
        wait_for("n1 to store the pending APPEND",
                 lambda: mid("pending", 0) in by_message_id(c, "n1", USER, "INBOX")[1], 4)
        assert writer.is_alive() and not reply, reply
        c.kill("n1")
        writer.join(15)
        assert not writer.is_alive()
        assert reply == ["LOST"], (reply, fc.events)
        c.heal()  # whatever n1 had pushed into the stalled links may now arrive
        c.wait_converged(timeout=30)
        uv, after = fc.resync("INBOX")
        assert fc.node == "n2" and uv >> 24 == 2, (fc.node, uv, fc.events)
    assert counts(after)[mid("acked", 0)] == 1
    assert _flags_of(after)[mid("acked", 0)] == {"\\Flagged"}
    assert counts(after)[mid("pending", 0)] <= 1, after
    assert set(after) <= {mid("acked", 0), mid("pending", 0)}
    c.invariants.check()


@pytest.mark.parametrize("lib", list(LIBS))
def test_kill_before_connect_client_retries_next_node(make_cluster, lib):
    """n1 is dead before the client connects: the connection attempt fails, the client
    goes on to n2, and its write lands exactly once on every live node."""
    c = make_cluster(cluster_options=FAST)
    c.kill("n1")
    with failover_client(LIBS[lib], c, USER, c.names) as fc:
        assert fc.append("INBOX", message("before", 0), ["\\Seen"]) == "OK"
        assert [e[:2] for e in fc.events] == [("n1", "connect failed"), ("n2", "connected")]
        uv, after = fc.resync("INBOX")
    assert uv >> 24 == 2
    assert counts(after) == Counter({mid("before", 0): 1})
    assert _flags_of(after) == {mid("before", 0): {"\\Seen"}}
    views = c.wait_converged(timeout=30)
    assert set(views) == {"n2", "n3"}
    _uv3, on_n3 = by_message_id(c, "n3", USER, "INBOX")
    assert counts(on_n3) == Counter({mid("before", 0): 1})
    c.invariants.check()


def test_partition_writes_on_both_sides_heal_converge(make_cluster):
    """n1 | n2,n3 with degraded writes: imapclient writes on n1, imaplib2 on n2 (both
    acknowledged), each side blind to the other's; after heal all converge, every message
    once everywhere, and flags set on both sides of one message are both kept."""
    c = make_cluster(cluster_options={**FAST, "degraded_writes": True})
    load(c, "n1", USER, {"INBOX": [(message("seed", i), ()) for i in range(3)]})
    c.wait_converged(timeout=30)
    c.isolate("n1")
    left = FailoverClient(LIBS["imapclient"], c, USER, ["n1"])
    right = FailoverClient(LIBS["imaplib2"], c, USER, ["n2"])
    try:
        for i in range(5):
            assert left.append("INBOX", message("left", i)) == "OK", left.events
            assert right.append("INBOX", message("right", i), ["\\Seen"]) == "OK"
        for client, flag in ((left, "\\Flagged"), (right, "\\Answered")):
            _uv, msgs = client.resync("INBOX")
            uid = msgs[mid("seed", 0)][0][0]
            client.call(lambda conn, cl=client, u=uid, f=flag: cl.lib.add_flags(conn, u, [f]))
        _uv, seen_left = left.resync("INBOX")
        _uv, seen_right = right.resync("INBOX")
    finally:
        left.close()
        right.close()
    assert not {mid("right", i) for i in range(5)} & set(seen_left)  # a real partition
    assert not {mid("left", i) for i in range(5)} & set(seen_right)
    c.heal()
    c.wait_converged(timeout=30)
    expected = {mid(t, i) for t, n in (("seed", 3), ("left", 5), ("right", 5)) for i in range(n)}
    for node in c.names:
        _uv, msgs = by_message_id(c, node, USER, "INBOX")
        assert counts(msgs) == Counter(dict.fromkeys(expected, 1)), (node, counts(msgs))
        assert msgs[mid("seed", 0)][0][1] == {"\\Flagged", "\\Answered"}, node
        assert msgs[mid("right", 0)][0][1] == {"\\Seen"}, node
    c.invariants.check()


def test_restart_empty_rejoins_under_client_load(make_cluster):
    """A client keeps appending on n2 while n1 is killed -9 and restarted empty: every
    APPEND is acknowledged, all nodes converge with each message once, and n1 shows every
    folder with a larger UIDVALIDITY (root 1) than before."""
    c = make_cluster(cluster_options=FAST)
    load(c, "n1", USER, {"INBOX": [(message("seed", i), ()) for i in range(5)],
                         "Work": [(message("work", i), ("\\Seen",)) for i in range(5)]})
    c.wait_converged(timeout=30)
    folders = ("INBOX", "Work", "Archive")
    before = {f: c.folder_state("n1", USER, f)[0] for f in folders}
    replies: list[tuple[str, str]] = []
    stop = threading.Event()

    def appended(n: int) -> bool:
        assert thread.is_alive(), f"the writer stopped after {len(replies)} APPENDs"
        return len(replies) >= n

    def writer() -> None:
        client = FailoverClient(LIBS["imaplib2"], c, USER, ["n2"])
        try:
            for i in range(3000):  # bounded (about 60 s at this pace); stopped far earlier
                if stop.wait(0.02):
                    return
                replies.append((mid("load", i), client.append("INBOX", message("load", i))))
        finally:
            client.close()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        wait_for("5 APPENDs before the kill", lambda: appended(5), 30)
        c.kill("n1")
        mark = len(replies)
        wait_for("5 APPENDs while n1 is down", lambda: appended(mark + 5), 30)
        c.restart("n1")  # waits until n1 greets OK again (caught up)
        mark = len(replies)
        wait_for("5 APPENDs after n1 rejoined", lambda: appended(mark + 5), 30)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert {r for _m, r in replies} == {"OK"}, Counter(r for _m, r in replies)
    c.wait_converged(timeout=30)
    expected = Counter(dict.fromkeys([mid("seed", i) for i in range(5)]
                                     + [m for m, _r in replies], 1))
    for node in c.names:
        _uv, msgs = by_message_id(c, node, USER, "INBOX")
        assert counts(msgs) == expected, (node, counts(msgs) - expected, expected - counts(msgs))
    after = {f: c.folder_state("n1", USER, f)[0] for f in folders}
    for f in folders:
        assert after[f] > before[f] and after[f] >> 24 == 1, (f, before[f], after[f])
    c.invariants.check()
