"""Prometheus metrics of one node (issue 6 part 4), on prometheus-client.

Counters and histograms are updated by small hooks (imap/protocol.py for
connections and commands, imap/referrals.py for referrals, imap/proxied.py for
proxy sessions); what the store holds and the replication lag are computed when
scraped, by :class:`NodeCollector`, from ``node.store`` and ``node.cluster``.

Invariants:
  * Every node has its own ``CollectorRegistry`` (``registry_of``); the global
    default registry is never used, so several nodes live in one process.
  * Label values are bounded: a command name outside the dispatch table counts
    as ``OTHER``, a status is one of OK / NO / BAD / NONE (no tagged reply, e.g.
    BYE), targets are cluster node names from the spec.
  * The per-command hook is one dict lookup, a counter ``inc`` and a histogram
    ``observe`` on children made once per (command, status) — no string work.
  * Scrapes run in the reactor thread (the store is not thread-safe); the web
    service calls :func:`render` there.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from twistedmail.pernode import PerNode

# IMAP commands are mostly sub-millisecond in memory; slow ones are APPEND/FETCH of
# big literals and proxied or durable (ack_replicas) commands waiting on a network.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                   0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STATUSES = frozenset({"OK", "NO", "BAD", "NONE"})


class NodeMetrics:
    """The registry of one node and the instruments the hooks update."""

    def __init__(self, node: Any) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections_open = Gauge(
            "twistedmail_imap_connections_open", "IMAP connections open now", registry=r)
        self.connections = Counter(
            "twistedmail_imap_connections", "IMAP connections accepted", registry=r)
        self.commands = Counter(
            "twistedmail_imap_commands", "IMAP commands completed, by name and tagged status",
            ["command", "status"], registry=r)
        self.latency = Histogram(
            "twistedmail_imap_command_duration_seconds",
            "Time from parsing an IMAP command to its tagged reply", ["command"],
            buckets=LATENCY_BUCKETS, registry=r)
        self.referrals = Counter(
            "twistedmail_referrals", "Referrals sent (RFC 2193 mailbox / RFC 2221 login), "
            "by the first node referred to", ["target", "kind"], registry=r)
        self.proxy_sessions = Counter(
            "twistedmail_proxy_sessions", "Proxy connections opened to another node, "
            "by target", ["target"], registry=r)
        self.limit_refusals = Counter(
            "twistedmail_limit_refusals", "Requests refused by a hardening limit "
            "(twistedmail/limits.py), by limit", ["limit"], registry=r)
        r.register(NodeCollector(node))
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._known: frozenset[str] | None = None
        self._sessions = 0

    def next_session(self) -> int:
        """A number for the next IMAP session of this node (log correlation)."""
        self._sessions += 1
        return self._sessions

    def command_done(self, name: str, status: str, seconds: float) -> None:
        """One command finished with tagged ``status`` after ``seconds``."""
        children = self._children.get((name, status))
        if children is None:
            children = self._make_children(name, status)
        children[0].inc()
        children[1].observe(seconds)

    def _make_children(self, name: str, status: str) -> tuple[Any, Any]:
        known = self._known
        if known is None:
            from twistedmail.imap.dispatch import TABLE

            known = self._known = frozenset(TABLE)
        label = name if name in known else "OTHER"
        state = status if status in STATUSES else "NONE"
        children = (self.commands.labels(label, state), self.latency.labels(label))
        if label == name and state == status:  # cache only bounded keys
            self._children[(name, status)] = children
        return children


class NodeCollector:
    """Gauges computed at scrape time: what the store holds, cluster readiness and
    replication lag per peer (the figures ``clustermail status`` shows)."""

    def __init__(self, node: Any) -> None:
        self._node = weakref.ref(node)

    def describe(self) -> list[Metric]:
        """No fixed description: the peer set comes from the spec."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The store and cluster gauges of the node now."""
        node = self._node()
        if node is None:
            return
        yield from _store_families(node.store)
        cluster = getattr(node, "cluster", None)
        if cluster is not None:
            yield from _cluster_families(cluster.status())


def _store_families(store: Any) -> Iterator[Metric]:
    users = store.users()
    boxes = messages = size = 0
    for user in users:
        for box in store.mailboxes(user):
            boxes += 1
            messages += len(box)
            size += box.total_size
    for name, doc, value in (
        ("twistedmail_accounts", "Accounts on this node", len(users)),
        ("twistedmail_mailboxes", "Mailboxes on this node", boxes),
        ("twistedmail_messages", "Messages stored, summed over every mailbox", messages),
        ("twistedmail_message_bytes", "Bytes of messages, summed over every mailbox "
         "(a copy counts again)", size),
        ("twistedmail_blobs", "Distinct message bodies held (copies share one)",
         store.blob_count()),
        ("twistedmail_blob_bytes", "Bytes of distinct message bodies held",
         store.bytes_stored()),
    ):
        yield GaugeMetricFamily(name, doc, value=value)


def _cluster_families(status: dict[str, Any]) -> Iterator[Metric]:
    """From ClusterNode.status(): lag is the ops this node issued or relayed that the
    peer's last heartbeat did not yet acknowledge (cluster/service.py)."""
    ready = GaugeMetricFamily("twistedmail_cluster_ready", "1 when this node serves "
                              "(caught up, not refused)", value=int(status["state"] == "ready"))
    lag = GaugeMetricFamily("twistedmail_replication_lag_ops", "Operations a peer has not "
                            "yet acknowledged to this node", labels=["peer"])
    up = GaugeMetricFamily("twistedmail_peer_up", "1 when the peer's heartbeats arrive "
                           "(membership state up)", labels=["peer"])
    linked = GaugeMetricFamily("twistedmail_peer_linked", "1 when this node's outbound "
                               "replication link to the peer is open", labels=["peer"])
    for peer, info in sorted(status.get("members", {}).items()):
        lag.add_metric([peer], info.get("lag", 0))
        up.add_metric([peer], int(info.get("state") == "up"))
        linked.add_metric([peer], int(bool(info.get("linked"))))
    yield from (ready, lag, up, linked)


_METRICS: PerNode[NodeMetrics] = PerNode(NodeMetrics)


def of(node: Any) -> NodeMetrics:
    """The node's metrics, made on first use (one registry per node)."""
    return _METRICS.of(node)


def registry_of(node: Any) -> CollectorRegistry:
    """The node's own CollectorRegistry."""
    return of(node).registry


def render(node: Any) -> tuple[bytes, str]:
    """The Prometheus text exposition of the node's metrics and its content type."""
    return generate_latest(of(node).registry), CONTENT_TYPE_LATEST


# --- hooks (contract names; the protocol keeps ``of(node)`` and calls methods) ----------


def command_done(node: Any, name: str, status: str, seconds: float) -> None:
    """One IMAP command of ``node`` finished."""
    of(node).command_done(name, status, seconds)


def connection_opened(node: Any) -> None:
    """An IMAP connection to ``node`` was accepted."""
    metrics = of(node)
    metrics.connections.inc()
    metrics.connections_open.inc()


def connection_closed(node: Any) -> None:
    """An IMAP connection to ``node`` ended."""
    of(node).connections_open.dec()


def referral(node: Any, target: str, kind: str = "mailbox") -> None:
    """``node`` referred a client to ``target`` (first of the list); kind mailbox|login."""
    of(node).referrals.labels(target, kind).inc()


def proxy_session(node: Any, target: str) -> None:
    """``node`` opened a proxy connection to ``target`` (imap/proxied.py)."""
    of(node).proxy_sessions.labels(target).inc()
