"""The relay chain (twistedmail/cluster/chain.py): who pushes an origin's new ops at
once, worked out as a pure function, then over real TLS links between in-process nodes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from types import MappingProxyType, SimpleNamespace
from typing import Any

import pytest

from twistedmail.cluster.chain import chain_applies, head, prompt_origins

from .inproc import InProcessCluster, append, call, messages, wait_for

RING = ("n1", "n2", "n3")
INCARNATIONS = {"n1": "i1", "n2": "i2", "n3": "i3"}


def spec(**fields: Any) -> SimpleNamespace:
    """The fields of a ClusterSpec that chain_applies reads."""
    base: dict[str, Any] = {"names": RING, "fanout": "chain", "ack_replicas": None,
                            "placement": MappingProxyType({})}
    return SimpleNamespace(**{**base, **fields})


@pytest.mark.parametrize(("fields", "applies"), [
    ({}, True),
    ({"ack_replicas": 2}, True),
    ({"ack_replicas": 1}, True),
    ({"placement": {"alice": RING}}, True),
    ({"fanout": "direct"}, False),
    ({"ack_replicas": 3}, False),  # the origin must hear from two peers at once
    ({"names": ("n1", "n2")}, False),  # one peer: nothing to forward
    ({"placement": {"alice": ("n1", "n3")}}, False),  # a head may not hold the mail file
    ({"placement": {"#public:News": ("n2",)}}, False),
])
def test_chain_applies_only_where_one_peer_acknowledges_and_everyone_holds_all(
        fields: dict[str, Any], applies: bool) -> None:
    """The chain needs fanout "chain", 3+ nodes, ack_replicas <= 2 and full placement."""
    assert chain_applies(spec(**fields)) is applies


@pytest.mark.parametrize(("origin", "live", "expected"), [
    ("n1", RING, "n2"),
    ("n2", RING, "n3"),
    ("n3", RING, "n1"),  # wraps round
    ("n1", ("n1", "n3"), "n3"),  # n2 not live: the next one
    ("n2", ("n1", "n2"), "n1"),
    ("n1", ("n1",), None),  # nobody else live
    ("n1", ("n2", "n3"), "n2"),  # the origin's own liveness does not matter
])
def test_head_is_the_first_live_node_after_the_origin(
        origin: str, live: tuple[str, ...], expected: str | None) -> None:
    """head(): the next live node in config order, wrapping; None when alone."""
    assert head(RING, origin, live) == expected


@pytest.mark.parametrize(("me", "peer", "live", "expected"), [
    ("n1", "n2", RING, {"i1", "i3"}),  # own ops to the head; n3's, whose head n1 is
    ("n1", "n3", RING, set()),  # n3 gets n1's ops from n2 and sends its own to n1
    ("n2", "n3", RING, {"i2", "i1"}),
    ("n2", "n1", RING, set()),
    ("n3", "n1", RING, {"i3", "i2"}),
    ("n1", "n3", ("n1", "n3"), {"i1"}),  # n2 down: n3 is the head now
    ("n1", "n2", ("n1", "n2"), {"i1", "i3"}),  # n3 down: its ops still relayed by its head
])
def test_prompt_origins_table(me: str, peer: str, live: tuple[str, ...],
                              expected: set[str]) -> None:
    """Which origins a node pushes to a peer at once, for a few views of a 3-node ring."""
    assert prompt_origins(RING, me, peer, live, INCARNATIONS) == expected


def test_an_origin_whose_incarnation_is_unknown_is_never_prompt() -> None:
    """No incarnation known (no Hello yet): that origin's ops wait for anti-entropy."""
    assert prompt_origins(RING, "n2", "n3", RING, {"n1": None, "n2": "i2"}) == {"i2"}


def _views(n: int) -> Iterator[tuple[tuple[str, ...], str, frozenset[str]]]:
    """(ring, me, live set including me) for every live subset of an n-node ring."""
    ring = tuple(f"n{i}" for i in range(1, n + 1))
    for me in ring:
        others = [x for x in ring if x != me]
        for k in range(len(others) + 1):
            for rest in itertools.combinations(others, k):
                yield ring, me, frozenset((me, *rest))


@pytest.mark.parametrize("n", [3, 4, 5])
def test_own_ops_go_at_once_to_exactly_one_live_peer_and_never_back(n: int) -> None:
    """Every view: own ops prompt towards one live peer (none when alone), and no
    origin's ops are ever prompt towards the origin itself."""
    for ring, me, live in _views(n):
        incarnations = {name: "i" + name for name in ring}
        prompt = {peer: prompt_origins(ring, me, peer, live, incarnations)
                  for peer in ring if peer != me}
        own_to = [peer for peer, origins in prompt.items() if "i" + me in origins]
        assert len(own_to) == (1 if len(live) > 1 else 0)
        assert all(peer in live for peer in own_to)
        assert all("i" + peer not in origins for peer, origins in prompt.items())


@pytest.mark.parametrize("n", [3, 4, 5])
def test_with_one_view_every_live_node_gets_each_origins_ops_in_two_hops(n: int) -> None:
    """When every live node sees the same live set, an origin's pushes plus its head's
    relays reach every other live node, each exactly once."""
    ring = tuple(f"n{i}" for i in range(1, n + 1))
    incarnations = {name: "i" + name for name in ring}
    for k in range(2, n + 1):
        for live in itertools.combinations(ring, k):
            for origin in live:
                deliveries = [peer for sender in live for peer in live if peer != sender
                              and "i" + origin in prompt_origins(ring, sender, peer, live,
                                                                 incarnations)]
                assert sorted(deliveries) == sorted(p for p in live if p != origin)


# --- over real links --------------------------------------------------------------------
# Heartbeats far apart: anti-entropy relays (one heartbeat period late) cannot explain
# a copy that arrives within the waits below.
SLOW = {"heartbeat": 20.0, "suspect_after": 40.0, "down_after": 60.0, "ack_timeout": 60.0}
QUICK = 8.0  # seconds; well under one heartbeat period


@pytest.fixture
def slow() -> Iterator[InProcessCluster]:
    """Three in-process nodes with 20 s heartbeats, all started and ready."""
    cluster = InProcessCluster(3, **SLOW)
    try:
        cluster.start_all()
        for name in RING:
            others = [n for n in RING if n != name]
            member = cluster[name]
            wait_for(lambda m=member, o=others: all(m.cluster.membership.state(x) == "up"
                                                    for x in o), f"{name} sees both peers")
        yield cluster
    finally:
        cluster.stop_all()


def _cops_out(cluster: InProcessCluster, sender: str, peer: str) -> int:
    """Cops ``sender``'s link to ``peer`` delivered so far (reactor thread)."""
    return int(cluster[sender].cluster.peers[peer].out.cops_out)


def _sent(cluster: InProcessCluster, sender: str, peer: str) -> int:
    """``_cops_out`` from the test thread."""
    return call(_cops_out, cluster, sender, peer)


def _bodies(cluster: InProcessCluster, name: str, user: str) -> list[bytes]:
    """The bodies in ``user``'s INBOX on node ``name`` (reactor thread)."""
    box = cluster[name].node.store.mailbox(user, "INBOX")
    return [rec.blob.data for rec in box.records()]


def _durable_soon(cluster: InProcessCluster, name: str, user: str) -> None:
    """durable() on node ``name`` fires within QUICK seconds."""
    fired: list[object] = []
    call(lambda: cluster[name].cluster.durable(user).addBoth(fired.append) and None)
    wait_for(lambda: fired, f"{name}'s write acknowledged", timeout=QUICK)
    assert fired == [None]


def test_origin_sends_to_its_head_and_the_head_forwards(slow: InProcessCluster) -> None:
    """n1's APPEND goes n1 -> n2 -> n3 at once; n1 sends nothing to n3 itself."""
    before = {(s, p): _sent(slow, s, p) for s, p in (("n1", "n2"), ("n1", "n3"), ("n2", "n3"))}
    body = b"Subject: chained\r\n\r\nvia the head\r\n"
    append(slow["n1"], "alice", body)
    _durable_soon(slow, "n1", "alice")
    wait_for(lambda: _bodies(slow, "n3", "alice") == [body], "the copy on n3", timeout=QUICK)
    assert _sent(slow, "n1", "n2") > before["n1", "n2"]  # durable: n2's answer was read
    wait_for(lambda: _cops_out(slow, "n2", "n3") > before["n2", "n3"], "n2's answer from n3")
    assert _sent(slow, "n1", "n3") == before["n1", "n3"]


def test_the_next_node_is_head_once_the_head_is_gone(slow: InProcessCluster) -> None:
    """With its head n2 stopped, n1 sends to n3 at once, and n3's ack makes it durable."""
    slow.stop("n2")
    wait_for(lambda: slow["n1"].cluster.membership.state("n2") != "up", "n2 gone for n1")
    before = _sent(slow, "n1", "n3")
    body = b"Subject: no head\r\n\r\nstraight to n3\r\n"
    append(slow["n1"], "alice", body)
    _durable_soon(slow, "n1", "alice")
    assert messages(slow["n3"], "alice") == [body]
    assert _sent(slow, "n1", "n3") > before


def test_direct_fanout_sends_to_every_peer() -> None:
    """fanout = "direct": the origin itself sends its change to both peers at once."""
    cluster = InProcessCluster(3, fanout="direct", **SLOW)
    try:
        cluster.start_all()
        before = _sent(cluster, "n1", "n3")
        body = b"Subject: direct\r\n\r\nto all\r\n"
        append(cluster["n1"], "alice", body)
        wait_for(lambda: _cops_out(cluster, "n1", "n3") > before, "n1's batch to n3",
                 timeout=QUICK)
        assert messages(cluster["n3"], "alice") == [body]
    finally:
        cluster.stop_all()
