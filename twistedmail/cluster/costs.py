"""Costs between nodes for public-folder referrals (DESIGN.md §5, issue 5, seed 003).

Pure model, no Twisted and no IMAP: the node and the admin channel wire it.

    [sites]      links = [["site1", "site2", 10], ...]; transit = ["site2"] (sites with no node)
    [referrals.N] list = [["n2", 5], ["n3", 50]]   custom referral list of node N
    [public]     default_node = {n4 = "n1"}; referral_refresh = 3600

Invariants:
  * The cost from node a to node b (a != b) is the cheapest sum of site-link costs
    between their sites (Dijkstra); nodes of one site cost 0 to each other, a node
    costs 0 to itself; no path: no cost (never referred).  So site costs are
    symmetric and obey the triangle inequality.
  * A node with a custom referral list uses it instead of site costs: only the
    servers listed are eligible from that node (seed 003).
  * Every cost an administrator sets is an integer within the role's range: a
    folder administrator 1-100, a cluster administrator 1-500 (the config file is a
    cluster administrator's); anything else is a ``CostError``.  A folder
    administrator may not change or remove an entry that costs more than 100.
  * A cost >= ``NEVER`` (500) is never referred: the seed says both "500 ensures a
    server is not used" and "more than 500 are not returned"; 500 is the first
    excluded value (MISSION.md).
  * Each node has a default public-folder node that answers for it (the seed's
    default public folder database); by default itself.  No chains: the default
    node of n1 answers for n1 even if it has another default itself.
  * ``CostModel`` is the editable configuration; ``CostModel.snapshot`` freezes it
    into a ``CostSnapshot``, from which referral lists are computed
    (twistedmail/cluster/referrals.py).  Editing the model never changes a snapshot.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from twistedmail.config import ConfigError
from twistedmail.config import _node_name as check_name
from twistedmail.config import _seconds as check_seconds

NEVER = 500  # cost >= NEVER: never referred (seed 003)
DEFAULT_REFRESH = 3600.0  # seconds; the seed's hourly refresh
PUBLIC_KEYS = ("default_node", "referral_refresh")  # the keys of [public] read here
SITES_KEYS = ("links", "transit")
REFERRALS_KEYS = ("list",)


class CostError(ValueError):
    """A refused cost edit or request; ``str(err)`` is one line (for a cost out of a
    role's range it names the limit and the role)."""


class Role(enum.Enum):
    """Who sets a cost, and the highest cost that role may set (seed 003)."""

    FOLDER_ADMIN = "folder administrator"
    CLUSTER_ADMIN = "cluster administrator"

    @property
    def limit(self) -> int:
        """The highest cost this role may set (the lowest is always 1)."""
        return 100 if self is Role.FOLDER_ADMIN else NEVER

    @classmethod
    def parse(cls, value: Role | str) -> Role:
        """A Role from itself, its value, or a short name ("folder", "cluster")."""
        if isinstance(value, Role):
            return value
        for role in cls:
            if value in (role.value, role.value.split()[0], role.name.lower()):
                return role
        raise CostError(f"role {value!r} may not set costs: only a folder administrator "
                        f"(1-100) or a cluster administrator (1-{NEVER}) may")


def check_cost(cost: object, role: Role | str) -> int:
    """``cost`` if ``role`` may set it, else CostError naming the limit and the role."""
    who = Role.parse(role)
    if isinstance(cost, bool) or not isinstance(cost, int):
        raise CostError(f"cost {cost!r}: must be an integer; a {who.value} may set "
                        f"1-{who.limit}")
    if not 1 <= cost <= who.limit:
        raise CostError(f"cost {cost}: out of range; a {who.value} may set 1-{who.limit}")
    return cost


def _may_replace(old: int | None, who: Role, what: str) -> None:
    """A folder administrator may not touch what only a cluster administrator could set."""
    if old is not None and old > who.limit:
        raise CostError(f"{what} costs {old}: a {who.value} may only change costs "
                        f"1-{who.limit}")


def site_distances(sites: Iterable[str],
                   links: Mapping[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    """Cheapest path cost between every pair of connected sites (Dijkstra from each)."""
    graph: dict[str, list[tuple[str, int]]] = {s: [] for s in sites}
    for (a, b), cost in links.items():
        graph.setdefault(a, []).append((b, cost))
        graph.setdefault(b, []).append((a, cost))
    return {s: _dijkstra(graph, s) for s in graph}


def _dijkstra(graph: Mapping[str, list[tuple[str, int]]], start: str) -> dict[str, int]:
    best = {start: 0}
    heap = [(0, start)]
    while heap:
        dist, site = heapq.heappop(heap)
        if dist > best[site]:
            continue
        for other, cost in graph[site]:
            if dist + cost < best.get(other, dist + cost + 1):
                best[other] = dist + cost
                heapq.heappush(heap, (dist + cost, other))
    return best


def _link_key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


@dataclass(frozen=True)
class CostSnapshot:
    """The cost data as of one rebuild; what referral lists are computed from."""

    node_sites: Mapping[str, str]
    distances: Mapping[str, Mapping[str, int]]  # site -> site -> cheapest path cost
    custom: Mapping[str, Mapping[str, int]]  # node -> {server: cost}
    default_node: Mapping[str, str]

    def answerer(self, node: str) -> str:
        """The default public-folder node that answers for ``node``."""
        return self.default_node.get(node, node)

    def site_cost(self, a: str, b: str) -> int | None:
        """Cheapest site-link cost from node a to node b; None: no path."""
        if a == b:
            return 0
        sa, sb = self.node_sites[a], self.node_sites[b]
        return self.distances.get(sa, {}).get(sb)

    def cost(self, a: str, b: str) -> int | None:
        """The cost node a uses for b: its custom list if it has one, else site costs;
        None when b is not eligible from a (unlisted, or no path)."""
        if a == b:
            return 0
        if a in self.custom:
            return self.custom[a].get(b)
        return self.site_cost(a, b)


@dataclass
class CostModel:
    """The editable cost configuration of a cluster (edits check the caller's role)."""

    node_sites: dict[str, str]
    links: dict[tuple[str, str], int] = field(default_factory=dict)
    transit: set[str] = field(default_factory=set)
    custom: dict[str, dict[str, int]] = field(default_factory=dict)
    default_node: dict[str, str] = field(default_factory=dict)
    referral_refresh: float = DEFAULT_REFRESH

    def snapshot(self) -> CostSnapshot:
        """Freeze the current configuration (Dijkstra runs here, once per rebuild)."""
        sites = {*self.node_sites.values(), *self.transit}
        dist = site_distances(sites, self.links)
        return CostSnapshot(
            node_sites=MappingProxyType(dict(self.node_sites)),
            distances=MappingProxyType({s: MappingProxyType(d) for s, d in dist.items()}),
            custom=MappingProxyType({n: MappingProxyType(dict(lst))
                                     for n, lst in self.custom.items()}),
            default_node=MappingProxyType(dict(self.default_node)))

    # --- edits (clustermail sites / referrals set|unset) ---------------------------

    def sites(self) -> set[str]:
        """Every site known: the nodes' sites and the transit sites."""
        return {*self.node_sites.values(), *self.transit}

    def set_link(self, a: str, b: str, cost: object, role: Role | str) -> None:
        """Create or change the site link a–b (undirected)."""
        who = Role.parse(role)
        for site in (a, b):
            if site not in self.sites():
                raise CostError(f"unknown site {site!r} (known: {_known(self.sites())})")
        if a == b:
            raise CostError(f"site link {a}-{b}: a link joins two different sites")
        value = check_cost(cost, who)
        key = _link_key(a, b)
        _may_replace(self.links.get(key), who, f"site link {a}-{b}")
        self.links[key] = value

    def unset_link(self, a: str, b: str, role: Role | str) -> None:
        """Remove the site link a–b."""
        who = Role.parse(role)
        key = _link_key(a, b)
        if key not in self.links:
            raise CostError(f"no site link {a}-{b}")
        _may_replace(self.links[key], who, f"site link {a}-{b}")
        del self.links[key]

    def set_referral(self, node: str, server: str, cost: object, role: Role | str) -> None:
        """Add or change ``server`` in ``node``'s custom referral list (creating it)."""
        who = Role.parse(role)
        self._check_pair(node, server)
        value = check_cost(cost, who)
        _may_replace(self.custom.get(node, {}).get(server), who, f"{node}'s entry {server}")
        self.custom.setdefault(node, {})[server] = value

    def unset_referral(self, node: str, server: str | None, role: Role | str) -> None:
        """Remove ``server`` from ``node``'s list, or the whole list (``server`` None):
        the node then uses site costs again."""
        who = Role.parse(role)
        entries = self.custom.get(node)
        if entries is None:
            raise CostError(f"{node} has no custom referral list")
        targets = list(entries) if server is None else [server]
        for target in targets:
            if target not in entries:
                raise CostError(f"{target} is not in {node}'s referral list")
            _may_replace(entries[target], who, f"{node}'s entry {target}")
        for target in targets:
            del entries[target]
        if server is None:
            del self.custom[node]

    def _check_pair(self, node: str, server: str) -> None:
        for name in (node, server):
            if name not in self.node_sites:
                raise CostError(f"unknown node {name!r} (known: {_known(self.node_sites)})")
        if node == server:
            raise CostError(f"{node} cannot list itself: its own replica is always first")


def _known(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "none"


# --- the config file -------------------------------------------------------------------


def parse_costs(cfg: Mapping[str, Any], node_names: Iterable[str],
                node_sites: Mapping[str, str]) -> CostModel:
    """The cost model of a parsed TOML config (``[sites]``, ``[referrals.N]``,
    ``[public]``); every problem is a ConfigError ``"key: problem"``.  Values in the
    file are a cluster administrator's: costs 1-500."""
    names = list(node_names)
    sites = {n: node_sites.get(n, "default") for n in names}
    model = CostModel(node_sites=sites)
    sites_table = _table("sites", cfg.get("sites", {}), SITES_KEYS)
    model.transit = set(_transit(sites_table.get("transit", [])))
    for i, item in enumerate(_list("sites.links", sites_table.get("links", []))):
        _parse_link(model, f"sites.links[{i}]", item)
    referrals = _table("referrals", cfg.get("referrals", {}), ())
    for node, table in referrals.items():
        _parse_list(model, f"referrals.{node}", node, table)
    public = cfg.get("public", {})
    if not isinstance(public, Mapping):
        raise ConfigError("public: must be a table")
    if "referral_refresh" in public:
        model.referral_refresh = check_seconds("public.referral_refresh",
                                               public["referral_refresh"])
    defaults = _table("public.default_node", public.get("default_node", {}), ())
    for node, target in defaults.items():
        label = f"public.default_node.{node}"
        _known_node(label, node, sites)
        _known_node(label, target, sites)
        model.default_node[node] = target
    return model


def _table(label: str, value: object, keys: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{label}: must be a table")
    for key in value:
        if keys and key not in keys:
            raise ConfigError(f"{label}.{key}: unknown key (known: {', '.join(keys)})")
    return value


def _list(label: str, value: object) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{label}: must be a list")
    return value


def _transit(value: object) -> list[str]:
    return [check_name(f"sites.transit[{i}]", s)
            for i, s in enumerate(_list("sites.transit", value))]


def _triple(label: str, item: object, shape: str, size: int) -> list[Any]:
    if not isinstance(item, list) or len(item) != size:
        raise ConfigError(f"{label}: must be {shape}, got {item!r}")
    return item


def _parse_link(model: CostModel, label: str, item: object) -> None:
    a, b, cost = _triple(label, item, '["site_a", "site_b", cost]', 3)
    a, b = check_name(label, a), check_name(label, b)
    if _link_key(a, b) in model.links:
        raise ConfigError(f"{label}: the link {a}-{b} is listed twice")
    try:
        model.set_link(a, b, cost, Role.CLUSTER_ADMIN)
    except CostError as err:
        raise ConfigError(f"{label}: {err}") from None


def _parse_list(model: CostModel, label: str, node: str, table: object) -> None:
    _known_node(label, node, model.node_sites)
    entries = _list(f"{label}.list", _table(label, table, REFERRALS_KEYS).get("list", []))
    model.custom[node] = {}  # an empty list: nothing is eligible from this node
    for i, item in enumerate(entries):
        where = f"{label}.list[{i}]"
        server, cost = _triple(where, item, '["node", cost]', 2)
        if server in model.custom[node]:
            raise ConfigError(f"{where}: {server} is listed twice")
        try:
            model.set_referral(node, server, cost, Role.CLUSTER_ADMIN)
        except CostError as err:
            raise ConfigError(f"{where}: {err}") from None


def _known_node(label: str, name: object, nodes: Mapping[str, str]) -> None:
    if name not in nodes:
        raise ConfigError(f"{label}: unknown node {name!r} (known: {_known(nodes)})")
