"""The cluster part of the config file: ``ClusterSpec`` / ``NodeSpec`` (DESIGN.md §6).

    [cluster]            secret, ack policy, timeouts (CLUSTER_DEFAULTS)
    [[node]]             name, uidvalidity_root, site, imap, cluster, cluster_address
    [accounts]           user = ["n1", "n2"]: the nodes holding that mail file (default: all)
    [public.replicas]    "News" = ["n1", "n3"]: the nodes holding that public folder
                         (a folder of [public] folders without an entry: every node);
                         it lives in pseudo-account "#public:News", placed on them
    [sites], [referrals.N], [public] default_node / referral_refresh: the cost model
                         (twistedmail/cluster/costs.py, issue 5)

Invariants:
  * ``load`` returns None for a file with at most one node and no ``[cluster]``
    table: single-node mode, exactly the behaviour before clustering.
  * Every node of a cluster has its own name, its own ``uidvalidity_root``
    (DESIGN.md §3: UIDVALIDITY = root << 24 | counter, so two replicas never
    present one value) and its own cluster address.
  * Every problem is a ConfigError whose one-line text starts with the key at
    fault, e.g. ``"node[1].uidvalidity_root: root 2 is already node n2's"``.
  * A node with a ``[cluster]`` table but no peers needs no secret; more than
    one node needs one (``secret`` or ``secret_file``): links are authenticated
    by it (DESIGN.md §4).  The secret never appears in ``repr``.
  * ``placement`` holds, besides [accounts], ``"#public:F" -> public_replicas[F]``
    for every configured public folder F (contract A), so replication, which keeps
    only what ``holds(user)`` says, places public folders like mail files.  User
    names starting with "#" are reserved for these pseudo-accounts.
  * No Twisted import here: endpoint strings are checked by
    ``config.check_endpoint``, which imports Twisted only when called.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from twistedmail.cluster.chain import FANOUTS
from twistedmail.cluster.costs import CostModel, parse_costs
from twistedmail.config import (
    DEFAULT_IMAP,
    NODE_CLUSTER_KEYS,
    NODE_KEYS,
    ConfigError,
    NodeSettings,
    check_endpoint,
)
from twistedmail.config import _bool as check_bool
from twistedmail.config import _int as check_int
from twistedmail.config import _node_name as check_name
from twistedmail.config import _readable_file as check_readable
from twistedmail.config import _seconds as check_seconds
from twistedmail.config import _str as check_str

DEFAULT_SITE = "default"
PUBLIC_ACCOUNT = "#public:"  # + folder: a configured public folder's pseudo-account
CLUSTER_DEFAULTS: dict[str, Any] = {
    "secret": None,
    "secret_file": None,
    "ack_replicas": None,  # None: min(2, replicas of the account)
    "degraded_writes": False,
    "heartbeat": 0.5,
    "suspect_after": 1.5,
    "down_after": 3.0,
    "ack_timeout": 5.0,
    "tls": True,
    "fanout": "chain",  # chain.py: the origin's head forwards; "direct": the origin sends to all
}
NODE_TABLE_KEYS = (*NODE_KEYS, *NODE_CLUSTER_KEYS)
_TCP = re.compile(r"tcp6?:(?:port=)?(\d+)((?::[A-Za-z]+=[^:]*)*)\Z")
_ADDRESS = re.compile(r"(?:\[([0-9A-Fa-f:.]+)\]|([^\s:\[\]]+)):(\d+)\Z")
_WILDCARD = ("0.0.0.0", "::", "")


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One cluster member: where it serves IMAP and where peers dial it."""

    name: str
    root: int
    site: str
    imap: tuple[str, ...]
    cluster_endpoint: str  # server endpoint string; "" for a lone node (nothing to listen for)
    host: str  # cluster_address: where peers dial it
    port: int

    @property
    def address(self) -> str:
        """``host:port`` (``[v6]:port``) as peers dial it."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """The whole cluster as this node (``me``) sees it; built by :func:`load`."""

    me: NodeSpec
    nodes: tuple[NodeSpec, ...]  # every member, ``me`` included, in file order
    secret: bytes = field(repr=False)
    ack_replicas: int | None = None
    degraded_writes: bool = False
    heartbeat: float = 0.5
    suspect_after: float = 1.5
    down_after: float = 3.0
    ack_timeout: float = 5.0
    tls: bool = True
    fanout: str = "chain"  # chain.py
    placement: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    # public folder -> its replica nodes ([public.replicas]; every listed folder is a key)
    public_replicas: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    # [public] refer: every session gets RFC 2193 referrals (twistedmail/imap/referrals.py)
    public_refer: bool = False
    # the configured cost model (issue 5); empty node_sites: built from ``nodes``
    costs: CostModel = field(default_factory=lambda: CostModel(node_sites={}), compare=False)
    # every node's name in file order (derived; asked on every write's durability check)
    names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(n.name for n in self.nodes))
        public = {PUBLIC_ACCOUNT + f: tuple(r) for f, r in self.public_replicas.items()}
        if any(self.placement.get(k) != v for k, v in public.items()):
            object.__setattr__(self, "placement",
                               MappingProxyType({**self.placement, **public}))
        if not self.costs.node_sites:
            object.__setattr__(self, "costs",
                               CostModel(node_sites={n.name: n.site for n in self.nodes}))

    def peers(self) -> tuple[NodeSpec, ...]:
        """Every member but ``me``."""
        return tuple(n for n in self.nodes if n.name != self.me.name)

    def node(self, name: str) -> NodeSpec:
        """The member called ``name`` (KeyError if none)."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def holders(self, user: str) -> tuple[str, ...]:
        """Names of the nodes holding ``user``'s mail file ([accounts]; default: all)."""
        placed = self.placement.get(user)
        return placed if placed is not None else self.names

    def holds(self, user: str, node: str | None = None) -> bool:
        """Whether ``node`` (default: this one) holds ``user``'s mail file."""
        return (node or self.me.name) in self.holders(user)

    def ack_needed(self, user: str) -> int:
        """Replicas (self included) that must hold a change before APPEND/COPY/MOVE
        answer OK (DESIGN.md §4): ack_replicas, default 2, never more than the holders."""
        wanted = self.ack_replicas if self.ack_replicas is not None else 2
        return max(1, min(wanted, len(self.holders(user))))


# --- loading ---------------------------------------------------------------------------


def load(cfg: Mapping[str, Any], node_name: str) -> ClusterSpec | None:
    """The cluster described by a parsed config file, seen from ``node_name``.

    None (single-node mode) when the file has at most one node and no [cluster]."""
    tables = _node_tables(cfg)
    if len(tables) <= 1 and "cluster" not in cfg and "accounts" not in cfg:
        _check_lone(cfg, tables, node_name)
        return None
    nodes = _nodes(tables, node_name)
    me = next((n for n in nodes if n.name == node_name), None)
    if me is None:
        known = ", ".join(n.name for n in nodes) or "none"
        raise ConfigError(f"--node: no node named {node_name!r} in the config (known: {known})")
    _check_me(me, tables[[n.name for n in nodes].index(me.name)])
    options = _cluster_table(cfg.get("cluster", {}), len(nodes))
    placement = _placement(cfg.get("accounts", {}), [n.name for n in nodes])
    public = _public_replicas(cfg, [n.name for n in nodes])
    costs = parse_costs(cfg, [n.name for n in nodes], {n.name: n.site for n in nodes})
    if len(tables) <= 1 and "cluster" not in cfg:
        return None  # [accounts] checked, but one node alone is no cluster
    return ClusterSpec(me=me, nodes=tuple(nodes), placement=MappingProxyType(placement),
                       public_replicas=MappingProxyType(public), costs=costs,
                       public_refer=_public_refer(cfg), **options)


def _public_refer(cfg: Mapping[str, Any]) -> bool:
    """[public] refer = true|false (default false): referrals for every session."""
    public = cfg.get("public", {})
    value = public.get("refer", False) if isinstance(public, Mapping) else False
    if not isinstance(value, bool):
        raise ConfigError(f"public.refer: must be true or false, got {value!r}")
    return value


def for_settings(cfg: Mapping[str, Any], settings: NodeSettings) -> ClusterSpec | None:
    """``load`` for the node ``settings`` describes, with its command-line overrides:
    ``--imap`` replaces this node's IMAP endpoints; ``--uidvalidity-root`` must agree
    with the file, since every member must know every root (DESIGN.md §3)."""
    spec = load(cfg, settings.node_name)
    if spec is None:
        return None
    if settings.uidvalidity_root != spec.me.root:
        raise ConfigError(
            f"--uidvalidity-root: node {spec.me.name}'s root is {spec.me.root} in the cluster "
            f"config; change it there, where every node sees it")
    me = dataclasses.replace(spec.me, imap=tuple(settings.imap_endpoints))
    nodes = tuple(me if n.name == me.name else n for n in spec.nodes)
    return dataclasses.replace(spec, me=me, nodes=nodes)


Labeled = tuple[str, Mapping[str, Any]]


def _node_tables(cfg: Mapping[str, Any]) -> list[Labeled]:
    """The [node] / [[node]] tables with their labels ("node", "node[1]", ...)."""
    raw = cfg.get("node", {})
    if isinstance(raw, Mapping):
        raw = [raw] if raw or "cluster" in cfg or "accounts" in cfg else []
    if not isinstance(raw, list):
        raise ConfigError("node: must be a [node] table or [[node]] tables")
    tables: list[Labeled] = []
    for i, table in enumerate(raw):
        label = "node" if len(raw) == 1 else f"node[{i}]"
        if not isinstance(table, Mapping):
            raise ConfigError(f"{label}: must be a table")
        tables.append((label, table))
    return tables


def _nodes(tables: list[Labeled], node_name: str) -> list[NodeSpec]:
    """Every member, with names, roots and cluster addresses checked for clashes."""
    nodes: list[NodeSpec] = []
    for label, table in tables:
        node = _node(label, table, node_name, lone=len(tables) == 1)
        for other in nodes:
            if node.name == other.name:
                raise ConfigError(f"{label}.name: duplicate node name {node.name!r}")
            if node.root == other.root:
                raise ConfigError(f"{label}.uidvalidity_root: root {node.root} is already "
                                  f"node {other.name}'s")
            if node.port and (node.host, node.port) == (other.host, other.port):
                key = "cluster_address" if "cluster_address" in table else "cluster"
                raise ConfigError(f"{label}.{key}: cluster address {node.address} is already "
                                  f"node {other.name}'s")
        nodes.append(node)
    return nodes


def _node(label: str, table: Mapping[str, Any], default_name: str, lone: bool) -> NodeSpec:
    for key in table:
        if key not in NODE_TABLE_KEYS:
            raise ConfigError(f"{label}.{key}: unknown key (known: {', '.join(NODE_TABLE_KEYS)})")
    if "name" not in table and not lone:
        raise ConfigError(f"{label}.name: every [[node]] needs a name")
    name = check_name(f"{label}.name", table.get("name", default_name))
    if "uidvalidity_root" not in table and not lone:
        raise ConfigError(f"{label}.uidvalidity_root: every node of a cluster needs its own "
                          "root (an integer 0-255)")
    root = check_int(f"{label}.uidvalidity_root", table.get("uidvalidity_root", 1), 0, 255)
    site = check_name(f"{label}.site", table.get("site", DEFAULT_SITE))
    imap = _endpoint_list(f"{label}.imap", table.get("imap", [DEFAULT_IMAP]))
    if "cluster" not in table:
        if not lone:
            raise ConfigError(f"{label}.cluster: every node of a cluster needs a cluster "
                              "endpoint, e.g. \"tcp:7001:interface=127.0.0.1\"")
        if "cluster_address" in table:
            raise ConfigError(f"{label}.cluster_address: needs {label}.cluster too")
        return NodeSpec(name, root, site, imap, "", "127.0.0.1", 0)
    endpoint = _endpoint(f"{label}.cluster", table["cluster"])
    host, port = _address(label, endpoint, table.get("cluster_address"))
    return NodeSpec(name, root, site, imap, endpoint, host, port)


def _endpoint(label: str, value: object) -> str:
    """A server endpoint string.  Those naming files (ssl: keys) are checked only on
    the node that listens on them (``_check_me``): peers' paths need not exist here."""
    desc = check_str(label, value)
    if desc.startswith("ssl:"):
        return desc
    return check_endpoint(label, desc)


def _endpoint_list(label: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list):
        raise ConfigError(f"{label}: must be a list of endpoint strings, got {value!r}")
    if not value:
        raise ConfigError(f"{label}: needs at least one endpoint")
    return tuple(_endpoint(label, v) for v in value)


def _check_me(me: NodeSpec, labeled: Labeled) -> None:
    """This node's own endpoints, fully (TLS key files included)."""
    label, _ = labeled
    for desc in me.imap:
        check_endpoint(f"{label}.imap", desc)
    if me.cluster_endpoint:
        check_endpoint(f"{label}.cluster", me.cluster_endpoint)


def _address(label: str, endpoint: str, given: object) -> tuple[str, int]:
    """``cluster_address`` as (host, port): given "HOST:PORT", or derived from a
    ``tcp:PORT[:interface=HOST]`` endpoint (HOST default 127.0.0.1)."""
    key = f"{label}.cluster_address"
    if given is not None:
        text = check_str(key, given)
        m = _ADDRESS.match(text)
        if m is None:
            raise ConfigError(f"{key}: must be HOST:PORT (or [IPv6]:PORT), got {text!r}")
        return m.group(1) or m.group(2), check_int(key, int(m.group(3)), 1, 65535)
    m = _TCP.match(endpoint)
    if m is None:
        raise ConfigError(f"{key}: needed when {label}.cluster is not "
                          f"tcp:PORT[:interface=HOST] ({endpoint!r})")
    options = dict(opt.split("=", 1) for opt in m.group(2).split(":") if opt)
    host = options.get("interface", "127.0.0.1")
    port = int(m.group(1))
    if port == 0:
        raise ConfigError(f"{key}: needed when {label}.cluster listens on port 0 "
                          "(peers cannot dial it)")
    if host in _WILDCARD:
        raise ConfigError(f"{key}: needed when {label}.cluster listens on every "
                          f"interface ({host!r}): say where peers dial it")
    return host, port


def _cluster_table(value: object, n_nodes: int) -> dict[str, Any]:
    """The [cluster] table's options, checked, with the defaults filled in."""
    if not isinstance(value, Mapping):
        raise ConfigError("cluster: must be a table")
    for key in value:
        if key not in CLUSTER_DEFAULTS:
            raise ConfigError(f"cluster.{key}: unknown key (known: {', '.join(CLUSTER_DEFAULTS)})")
    opts = {**CLUSTER_DEFAULTS, **value}
    out: dict[str, Any] = {"secret": _secret(opts, n_nodes)}
    if opts["ack_replicas"] is not None:
        out["ack_replicas"] = check_int("cluster.ack_replicas", opts["ack_replicas"], 1, n_nodes)
    for key in ("degraded_writes", "tls"):
        out[key] = check_bool(f"cluster.{key}", opts[key])
    for key in ("heartbeat", "suspect_after", "down_after", "ack_timeout"):
        out[key] = check_seconds(f"cluster.{key}", opts[key])
    out["fanout"] = check_str("cluster.fanout", opts["fanout"])
    if out["fanout"] not in FANOUTS:
        raise ConfigError(f"cluster.fanout: must be one of {', '.join(map(repr, FANOUTS))}, "
                          f"got {out['fanout']!r}")
    _ordered("suspect_after", out, "heartbeat", strict=True)  # suspect only after a missed beat
    _ordered("down_after", out, "suspect_after", strict=False)
    return out


def _ordered(key: str, out: Mapping[str, float], below: str, strict: bool) -> None:
    value, low = out[key], out[below]
    if value < low or (strict and value == low):
        relation = "more than" if strict else "at least"
        raise ConfigError(f"cluster.{key}: must be {relation} cluster.{below} ({low:g} s), "
                          f"got {value:g}")


def _secret(opts: Mapping[str, Any], n_nodes: int) -> bytes:
    """The HMAC key for cluster links: ``secret`` or the content of ``secret_file``."""
    if opts["secret"] is not None and opts["secret_file"] is not None:
        raise ConfigError("cluster.secret_file: give cluster.secret or cluster.secret_file, "
                          "not both")
    if opts["secret"] is not None:
        return check_str("cluster.secret", opts["secret"]).encode()
    if opts["secret_file"] is not None:
        path = check_readable("cluster.secret_file", opts["secret_file"])
        with open(path, "rb") as f:
            secret = f.read().strip()
        if not secret:
            raise ConfigError(f"cluster.secret_file: {path} is empty")
        return secret
    if n_nodes > 1:
        raise ConfigError("cluster.secret: required with more than one node (the key that "
                          "authenticates cluster links), or give cluster.secret_file")
    return b""


def _placement(value: object, names: list[str]) -> dict[str, tuple[str, ...]]:
    """[accounts]: user -> the nodes holding that mail file."""
    if not isinstance(value, Mapping):
        raise ConfigError("accounts: must be a table of user = [node names]")
    placement: dict[str, tuple[str, ...]] = {}
    for user, holders in value.items():
        key = f"accounts.{user}"
        if not isinstance(user, str) or not user or any(c.isspace() for c in user):
            raise ConfigError(f"accounts: bad user name {user!r}")
        if user.startswith("#"):
            raise ConfigError(f"accounts: {user!r}: names starting with '#' are reserved "
                              "(public folders are placed by [public.replicas])")
        placement[user] = _node_list(key, holders, names)
    return placement


def _check_lone(cfg: Mapping[str, Any], tables: list[Labeled], node_name: str) -> None:
    """Single-node mode: [public.replicas] and the cost tables may name only this node."""
    table = tables[0][1] if tables else {}
    name = table.get("name", node_name)
    if not isinstance(name, str):
        return  # NodeSettings reports the bad name
    _public_replicas(cfg, [name])
    parse_costs(cfg, [name], {name: check_name("node.site", table.get("site", DEFAULT_SITE))})


def _public_replicas(cfg: Mapping[str, Any], names: list[str]) -> dict[str, tuple[str, ...]]:
    """[public.replicas]: public folder -> the nodes holding it; a folder of
    [public] folders without an entry lives on every node (issue 5 item 1)."""
    public = cfg.get("public", {})
    if not isinstance(public, Mapping):
        raise ConfigError("public: must be a table")
    folders = public.get("folders", [])
    folders = [f for f in folders if isinstance(f, str)] if isinstance(folders, list) else []
    table = public.get("replicas", {})
    if not isinstance(table, Mapping):
        raise ConfigError("public.replicas: must be a table of folder = [node names]")
    replicas: dict[str, tuple[str, ...]] = {}
    for folder, holders in table.items():
        key = f"public.replicas.{folder}" if re.fullmatch(r"[\w-]+", folder) \
            else f"public.replicas.{json_quote(folder)}"
        if folder not in folders:
            raise ConfigError(f"{key}: {folder!r} is not one of public.folders "
                              f"(known: {', '.join(folders) or 'none'})")
        replicas[folder] = _node_list(key, holders, names)
    return {f: replicas.get(f, tuple(names)) for f in folders}


def json_quote(text: str) -> str:
    """A TOML quoted key (a JSON string is a TOML basic string)."""
    import json

    return json.dumps(text)


def _node_list(key: str, holders: object, names: list[str]) -> tuple[str, ...]:
    if isinstance(holders, str) or not isinstance(holders, list):
        raise ConfigError(f"{key}: must be a list of node names, got {holders!r}")
    if not holders:
        raise ConfigError(f"{key}: needs at least one node")
    for i, holder in enumerate(holders):
        if holder not in names:
            raise ConfigError(f"{key}: unknown node {holder!r} (known: {', '.join(names)})")
        if holder in holders[:i]:
            raise ConfigError(f"{key}: node {holder!r} is listed twice")
    return tuple(holders)
