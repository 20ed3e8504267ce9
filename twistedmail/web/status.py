"""The status page: what one node knows of its cluster, as data and drawn (issue 6 item 5).

    status_data(node) -> dict     JSON-ready; served at /status.json and by the API
    StatusPage(node)              twisted.web resource; the HTML page at /status
    StatusJSON(node)              twisted.web resource; ``status_data`` as JSON

The web service (twistedmail/web/service.py) mounts the resources; the drawing is
twistedmail/web/status_html.py.

Invariants:
  * Everything is this node's view: peers' states are what its membership says
    (cluster/membership.py: up, suspect, down), a peer's lag is the number of
    changes this node holds that the peer has not confirmed seeing (the
    ``lag`` of ``ClusterNode.status``, the admin channel's ``status``).
  * Referral orders come from the node's cost table snapshot
    (cluster/public.py), exactly as IMAP clients get them, except that replicas of
    equal cost (which IMAP shuffles on every request, seed 003) are listed by name
    and marked ``tied``: they share a ``rank``.
  * Single-node mode gives the same shape: one node, one site, no links.
  * Reading the status never changes the node; a failure is logged and answered
    with a 500 and a one-line text, never a traceback.
"""

from __future__ import annotations

import json
import random
from collections.abc import MutableSequence
from typing import Any

from twisted.logger import Logger
from twisted.web.resource import Resource

from twistedmail.cluster.costs import CostError
from twistedmail.imap.namespaces import PUBLIC

log = Logger()
DEFAULT_SITE = "default"  # a lone node's site (cluster/spec.py DEFAULT_SITE)
DEFAULT_REFRESH = 5  # seconds between reloads of the page; ?refresh=N, 0 = never
MAX_REFRESH = 3600


class _TiesByName(random.Random):
    """An rng that leaves equal-cost replicas in name order (the page must not flicker)."""

    def shuffle(self, x: MutableSequence[Any], *args: Any) -> None:
        """Keep the order."""


_TIES = _TiesByName(0)


# --- the data ---------------------------------------------------------------------------


def status_data(node: Any) -> dict[str, Any]:
    """This node's view of the cluster (see the module's Invariants), JSON-ready."""
    if node.cluster is None:
        return _single(node)
    return _clustered(node, node.cluster)


def _single(node: Any) -> dict[str, Any]:
    name = node.settings.node_name
    me = {
        "name": name, "site": DEFAULT_SITE, "address": None,
        "imap": list(node.settings.imap_endpoints), "self": True, "state": "up",
        "ready": True, "root": int(node.store.uidvalidity_root),
        "configured_root": node.settings.uidvalidity_root, "lag": None, "linked": None,
    }
    local = {"server": name, "cost": 0, "included": True, "rank": 1, "tied": False,
             "reason": f"local replica on {name}"}
    public = [{"folder": f, "mailbox": f"{PUBLIC}/{f}", "replicas": [name],
               "from": {name: {"answerer": name, "order": [local], "excluded": []}}}
              for f in node.settings.public_folders]
    return {
        "node": name, "mode": "single", "state": "ready", "reason": "",
        "time": float(node.reactor.seconds()), "nodes": [me],
        "sites": {DEFAULT_SITE: [name]}, "transit": [], "links": [],
        "custom": {}, "default_node": {}, "referral_table": None, "public": public,
    }


def _clustered(node: Any, cluster: Any) -> dict[str, Any]:
    spec = cluster.spec
    status = cluster.status()
    model = cluster.public.describe()
    nodes = [_me(node, cluster, n) if n.name == spec.me.name
             else _peer(cluster, n, status["members"].get(n.name, {})) for n in spec.nodes]
    return {
        "node": spec.me.name, "mode": "cluster", "state": cluster.state,
        "reason": cluster.reason, "time": float(cluster.reactor.seconds()), "nodes": nodes,
        "sites": model["sites"], "transit": model["transit"],
        "links": [{"a": a, "b": b, "cost": c} for a, b, c in model["links"]],
        "custom": model["custom"], "default_node": model["default_node"],
        "referral_table": {k: model[k] for k in
                           ("pending", "built_ago", "next_in", "referral_refresh")},
        "public": [_folder(cluster, f, spec.names) for f in sorted(cluster.public.replicas)],
    }


def _me(node: Any, cluster: Any, spec_node: Any) -> dict[str, Any]:
    return {
        "name": spec_node.name, "site": spec_node.site, "address": spec_node.address,
        "imap": list(spec_node.imap), "self": True, "state": "up", "ready": cluster.ready,
        "root": cluster.root, "configured_root": node.settings.uidvalidity_root,
        "lag": None, "linked": None,
    }


def _peer(cluster: Any, spec_node: Any, member: dict[str, Any]) -> dict[str, Any]:
    info = cluster.membership.info(spec_node.name)
    presented = info.root  # the root it presented at Hello (set-root may have moved it)
    return {
        "name": spec_node.name, "site": spec_node.site, "address": spec_node.address,
        "imap": list(spec_node.imap), "self": False,
        "state": member.get("state", info.state), "ready": bool(member.get("ready")),
        "root": presented if presented is not None else spec_node.root,
        "configured_root": spec_node.root, "lag": member.get("lag"),
        "linked": member.get("linked"),
    }


def _folder(cluster: Any, folder: str, names: tuple[str, ...]) -> dict[str, Any]:
    """One public folder: its replicas and the referral order asked at every node."""
    orders: dict[str, Any] = {}
    for name in names:
        try:
            explained = cluster.explain(folder, name, rng=_TIES)
            answerer = cluster.public.table.answerer(name)
        except CostError as err:
            orders[name] = {"answerer": None, "order": [], "excluded": [], "error": str(err)}
            continue
        included = [r for r in explained if r.included]
        orders[name] = {
            "answerer": answerer,
            "order": _ranked(included, answerer),
            "excluded": [{"server": r.server, "cost": r.cost, "reason": r.reason}
                         for r in explained if not r.included],
        }
    return {"folder": folder, "mailbox": f"{PUBLIC}/{folder}",
            "replicas": list(cluster.public.replicas[folder]), "from": orders}


def _ranked(included: list[Any], answerer: str) -> list[dict[str, Any]]:
    """Referral order with ranks: the local replica alone first, then one rank per cost;
    replicas sharing a rank are ``tied`` (IMAP gives them in random order)."""
    out: list[dict[str, Any]] = []
    rank, last = 0, None
    for r in included:
        key = ("local",) if r.server == answerer else ("cost", r.cost)
        if key != last:
            rank, last = rank + 1, key
        out.append({"server": r.server, "cost": r.cost, "included": True, "rank": rank,
                    "tied": False, "reason": r.reason})
    for entry in out:
        entry["tied"] = sum(1 for e in out if e["rank"] == entry["rank"]) > 1
    return out


# --- the resources ----------------------------------------------------------------------


def refresh_of(request: Any) -> int:
    """Seconds between reloads: ``?refresh=N`` (0 = never, at most MAX_REFRESH)."""
    raw = (request.args or {}).get(b"refresh", [b""])[0]
    try:
        value = int(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return DEFAULT_REFRESH
    return max(0, min(MAX_REFRESH, value))


class _StatusResource(Resource):
    isLeaf = True

    def __init__(self, node: Any) -> None:
        super().__init__()
        self.node = node

    def body(self, data: dict[str, Any], request: Any) -> tuple[bytes, bytes]:
        """(content type, body) of the answer."""
        raise NotImplementedError

    def render_GET(self, request: Any) -> bytes:
        """The status, or 404 below the page, or 500 with one line if it failed."""
        request.setHeader(b"cache-control", b"no-store")
        if request.postpath not in ([], [b""]):
            request.setResponseCode(404)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"not found\n"
        try:
            kind, body = self.body(status_data(self.node), request)
        except Exception:
            log.failure("status page failed")
            request.setResponseCode(500)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"status unavailable: internal error (see the node's log)\n"
        request.setHeader(b"content-type", kind)
        return body


class StatusPage(_StatusResource):
    """The HTML status page: the cluster map (SVG), roots and referral orders."""

    def body(self, data: dict[str, Any], request: Any) -> tuple[bytes, bytes]:
        """The page, reloading every ``?refresh=`` seconds."""
        from twistedmail.web.status_html import render_page

        return b"text/html; charset=utf-8", render_page(data, refresh_of(request)).encode()


class StatusJSON(_StatusResource):
    """``status_data`` as JSON (what the page shows)."""

    def body(self, data: dict[str, Any], request: Any) -> tuple[bytes, bytes]:
        """The data, indented."""
        return b"application/json", json.dumps(data, indent=1, sort_keys=True).encode() + b"\n"
