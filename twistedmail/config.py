"""Node settings: defaults, the TOML config file, and command-line overrides.

The TOML file may describe one node (``[node]``) or several (``[[node]]`` tables,
one picked with ``--node NAME``); the sections ``[limits]``, ``[tls]``, ``[log]``
and ``[users]`` apply to the node being started.  Command-line options override
the file.  Every problem is a :class:`ConfigError` whose text starts with the key
or option at fault, e.g. ``"node.uidvalidity_root: must be an integer 0-255, got 300"``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twistedmail.cluster.spec import ClusterSpec

DEFAULT_IMAP = "tcp:1143:interface=127.0.0.1"
NODE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
LOG_FORMATS = ("text", "json")
LITERAL_MODES = ("plus", "minus")  # RFC 7888 LITERAL+ / LITERAL-


class ConfigError(ValueError):
    """A bad option or config value; ``str(err)`` is one line: ``"key: problem"``."""


@dataclass
class NodeSettings:
    """Everything one node process needs to know, validated."""

    node_name: str = "node1"
    uidvalidity_root: int = 1
    imap_endpoints: list[str] = field(default_factory=lambda: [DEFAULT_IMAP])
    users: dict[str, str] = field(default_factory=dict)
    demo: bool = False
    max_line: int = 65536
    max_literal: int = 64 * 1024 * 1024
    idle_timeout_auth: float = 1800.0
    idle_timeout_preauth: float = 60.0
    # Hardening limits (issue 7; twistedmail/limits.py, README "### Limits"); 0 = none.
    max_connections_per_user: int = 50
    max_connections_per_address: int = 200
    max_in_flight: int = 1000  # pipelined commands queued behind a running one
    login_delay: float = 0.5  # seconds before the 1st failed-login NO, doubling, <= 8x
    login_lockout_after: int = 10  # failures per (address, user) before a lockout
    login_lockout_seconds: float = 300.0
    max_mailboxes: int = 1000  # mailboxes per account (CREATE / RENAME / import)
    # Estimated store bytes (limits.memory_estimate) past which writes are refused;
    # default: half the machine's physical memory.
    memory_limit: int = field(default_factory=lambda: _default_memory_limit())
    tls_cert: str | None = None
    tls_key: str | None = None
    # LOGIN / AUTHENTICATE PLAIN without TLS: always from loopback; from other peers only
    # with allow_plaintext (RFC 3501 §6.2.3 LOGINDISABLED, RFC 8314 §5.3)
    allow_plaintext: bool = False
    log_format: str = "text"
    state_file: str | None = None
    # RFC 7888: "plus" advertises LITERAL+, "minus" LITERAL- ({n+} only up to 4096 bytes).
    literal_mode: str = "plus"
    # RFC 9208 default limits per account: STORAGE in KiB, MESSAGE count; 0 = none.
    quota_storage: int = 0
    quota_messages: int = 0
    # Users who own the public namespace ("Public/...") and may SETQUOTA (RFC 4314, 9208).
    admins: list[str] = field(default_factory=list)
    # Public folders created at start, and the rights "anyone" gets on them (RFC 4314).
    public_folders: list[str] = field(default_factory=list)
    public_rights: str = "lr"
    # The management channel (twistedmail/admin/channel.py); None: the default
    # unix:clustermail-<node>.admin in the working directory (mode 0600).
    admin_endpoint: str | None = None
    # Delivery (issue 6, twistedmail/delivery/): LMTP and SMTP listeners, off by default;
    # smtp_auth: SMTP needs AUTH before MAIL FROM (otherwise optional).
    lmtp_endpoints: list[str] = field(default_factory=list)
    smtp_endpoints: list[str] = field(default_factory=list)
    smtp_auth: bool = False
    # The web service (issue 6, twistedmail/web/): HTTP API, /metrics, status page; off
    # by default.  The API needs "Authorization: Bearer <http_token>".
    http_endpoints: list[str] = field(default_factory=list)
    http_token: str | None = None
    # Directories of .eml / mbox / Maildir fixtures loaded at start (twistedmail/fixtures/).
    preload: list[str] = field(default_factory=list)
    # The cluster this node belongs to ([cluster], [[node]], [accounts]; cluster/spec.py);
    # None in single-node mode.
    cluster: ClusterSpec | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            check = _CHECKS[f.name]
            value = getattr(self, f.name)
            if value is not None:
                setattr(self, f.name, check(f.name, value))
        if self.tls_key is not None and self.tls_cert is None:
            raise ConfigError("tls_key: a key needs a certificate (tls_cert) too")


# --- value checkers: (label, raw value) -> clean value, or ConfigError ------------


def _int(label: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, str):
        raise ConfigError(f"{label}: must be an integer, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{label}: must be an integer, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        span = f"{low}-{high}" if high is not None else f">= {low}"
        raise ConfigError(f"{label}: must be an integer {span}, got {value}")
    return value


def _seconds(label: str, value: object) -> float:
    if isinstance(value, str):
        raise ConfigError(f"{label}: must be a number of seconds, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"{label}: must be a positive number of seconds, got {value!r}")
    return float(value)


def _seconds_or_zero(label: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ConfigError(f"{label}: must be a number of seconds >= 0, got {value!r}")
    return float(value)


_UNITS = {"": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20,
          "g": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tib": 1 << 40}
_SIZE_RE = re.compile(r"\s*([0-9]{1,15})\s*([A-Za-z]*)\s*\Z")


def _byte_size(label: str, value: object) -> int:
    """Bytes as an integer, or a string like "512MiB" / "2G" (binary units); 0 = off."""
    if isinstance(value, str):
        m = _SIZE_RE.match(value)
        if m is None or m.group(2).lower() not in _UNITS:
            raise ConfigError(f"{label}: must be bytes, e.g. 1073741824 or \"1GiB\", "
                              f"got {value!r}")
        value = int(m.group(1)) * _UNITS[m.group(2).lower()]
    return _int(label, value, 0)


def _default_memory_limit() -> int:
    """Half the physical memory (0, i.e. no ceiling, where it cannot be read)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")) // 2
    except (ValueError, OSError, AttributeError):
        return 0


def _bool(label: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{label}: must be true or false, got {value!r}")
    return value


def _str(label: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{label}: must be a non-empty string, got {value!r}")
    return value


def _node_name(label: str, value: object) -> str:
    name = _str(label, value)
    if not NODE_NAME_RE.match(name):
        raise ConfigError(f"{label}: {name!r} is not a node name (letters, digits, _ . -)")
    return name


def _readable_file(label: str, value: object) -> str:
    path = _str(label, value)
    try:
        with open(path, "rb"):
            pass
    except OSError as err:
        raise ConfigError(f"{label}: cannot read {path}: {err.strerror}") from None
    return path


def _writable_path(label: str, value: object) -> str:
    path = _str(label, value)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise ConfigError(f"{label}: directory of {path} is missing or not writable")
    return path


def check_endpoint(label: str, value: object) -> str:
    """Check that ``value`` parses as a Twisted server endpoint string."""
    desc = _str(label, value)
    from twisted.internet import endpoints, reactor

    from twistedmail.tls import plain_description

    try:  # "ssl:993" without privateKey= uses the node's certificate (twistedmail.tls)
        endpoints.serverFromString(reactor, plain_description(desc))
        _check_port(desc)
    except Exception as err:  # parse errors, unreadable TLS keys, unknown types
        problem = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"{label}: bad endpoint {desc!r}: {problem}") from None
    return desc


def _check_port(desc: str) -> None:
    """Twisted checks a TCP port number only when listening; check it now."""
    kind, _, rest = desc.partition(":")
    if kind not in ("tcp", "tcp6", "ssl"):
        return
    args = rest.split(":")
    keyword = [a[len("port=") :] for a in args if a.startswith("port=")]
    positional = [a for a in args if "=" not in a]
    port = (keyword or positional or [""])[0]
    if not port.isdigit() or int(port) > 65535:
        raise ValueError("port must be 0-65535")


def _endpoints(label: str, value: object) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list):
        raise ConfigError(f"{label}: must be a list of endpoint strings, got {value!r}")
    if not value:
        raise ConfigError(f"{label}: needs at least one endpoint")
    return [check_endpoint(label, v) for v in value]


def _optional_endpoints(label: str, value: object) -> list[str]:
    """A list of endpoint strings that may be empty (a listener that is off)."""
    if isinstance(value, str) or not isinstance(value, list):
        raise ConfigError(f"{label}: must be a list of endpoint strings, got {value!r}")
    return [check_endpoint(label, v) for v in value]


def _directories(label: str, value: object) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list):
        raise ConfigError(f"{label}: must be a list of directories, got {value!r}")
    out = []
    for item in value:
        if not isinstance(item, str) or not os.path.isdir(item):
            raise ConfigError(f"{label}: not a directory: {item!r}")
        out.append(item)
    return out


def _users(label: str, value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{label}: must be a table of user = password")
    users: dict[str, str] = {}
    for name, password in value.items():
        if not isinstance(name, str) or not name or any(c.isspace() for c in name):
            raise ConfigError(f"{label}: bad user name {name!r}")
        if not isinstance(password, str) or not password:
            raise ConfigError(f"{label}.{name}: password must be a non-empty string")
        from twistedmail.passwords import BadPasswordHash, check_stored_form

        try:  # "SCRAM-SHA-256$..." / "scrypt$..." must parse (twistedmail/passwords.py)
            check_stored_form(password)
        except BadPasswordHash as err:
            raise ConfigError(f"{label}.{name}: {err}") from None
        users[name] = password
    return users


def _names(label: str, value: object) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list):
        raise ConfigError(f"{label}: must be a list of names, got {value!r}")
    for name in value:
        if not isinstance(name, str) or not name or name.strip() != name or "\n" in name:
            raise ConfigError(f"{label}: bad name {name!r}")
    return list(value)


def _public_folders(label: str, value: object) -> list[str]:
    names = _names(label, value)
    for name in names:
        parts = name.split("/")
        if "" in parts or parts[0].upper() == "INBOX":
            raise ConfigError(f"{label}: bad public folder name {name!r}")
    return names


def _rights(label: str, value: object) -> str:
    from twistedmail.store.acl import BadRights, canonical, parse_rights

    if not isinstance(value, str):
        raise ConfigError(f"{label}: must be a string of RFC 4314 rights, got {value!r}")
    try:
        return canonical(parse_rights(value))
    except BadRights as err:
        raise ConfigError(f"{label}: {err}") from None


def _choice(label: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{label}: must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _log_format(label: str, value: object) -> str:
    if value not in LOG_FORMATS:
        raise ConfigError(f"{label}: must be one of {', '.join(LOG_FORMATS)}, got {value!r}")
    return str(value)


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "node_name": _node_name,
    "uidvalidity_root": lambda k, v: _int(k, v, 0, 255),
    "imap_endpoints": _endpoints,
    "users": _users,
    "demo": _bool,
    "max_line": lambda k, v: _int(k, v, 1024),
    "max_literal": lambda k, v: _int(k, v, 1),
    "idle_timeout_auth": _seconds,
    "idle_timeout_preauth": _seconds,
    "max_connections_per_user": lambda k, v: _int(k, v, 0),
    "max_connections_per_address": lambda k, v: _int(k, v, 0),
    "max_in_flight": lambda k, v: _int(k, v, 1),
    "login_delay": _seconds_or_zero,
    "login_lockout_after": lambda k, v: _int(k, v, 0),
    "login_lockout_seconds": _seconds,
    "max_mailboxes": lambda k, v: _int(k, v, 0),
    "memory_limit": _byte_size,
    "tls_cert": _readable_file,
    "tls_key": _readable_file,
    "allow_plaintext": _bool,
    "log_format": _log_format,
    "state_file": lambda k, v: _writable_path(k, v),
    "literal_mode": lambda k, v: _choice(k, v, LITERAL_MODES),
    "quota_storage": lambda k, v: _int(k, v, 0),
    "quota_messages": lambda k, v: _int(k, v, 0),
    "admins": _names,
    "public_folders": _public_folders,
    "public_rights": _rights,
    "lmtp_endpoints": _optional_endpoints,
    "smtp_endpoints": _optional_endpoints,
    "smtp_auth": _bool,
    "http_endpoints": _optional_endpoints,
    "http_token": _str,
    "preload": _directories,
    "cluster": lambda k, v: v,  # built and checked by twistedmail.cluster.spec
    "admin_endpoint": check_endpoint,
}

# --- the TOML file -----------------------------------------------------------------

# TOML key -> NodeSettings field, per table.  [users] is handled apart.
NODE_KEYS = {
    "name": "node_name",
    "uidvalidity_root": "uidvalidity_root",
    "imap": "imap_endpoints",
    "demo": "demo",
    "state_file": "state_file",
    "admins": "admins",
    "admin": "admin_endpoint",
    "http": "http_endpoints",  # per node; wins over [http] listen (issue 6 status page)
}
SECTION_KEYS = {
    "limits": {
        "max_line": "max_line",
        "max_literal": "max_literal",
        "literal_mode": "literal_mode",
        "idle_timeout_auth": "idle_timeout_auth",
        "idle_timeout_preauth": "idle_timeout_preauth",
        "connections_per_user": "max_connections_per_user",
        "connections_per_address": "max_connections_per_address",
        "commands_in_flight": "max_in_flight",
        "login_delay": "login_delay",
        "login_lockout_after": "login_lockout_after",
        "login_lockout_seconds": "login_lockout_seconds",
        "mailboxes_per_account": "max_mailboxes",
        "memory_limit": "memory_limit",
    },
    "tls": {"cert": "tls_cert", "key": "tls_key", "allow_plaintext": "allow_plaintext"},
    "log": {"format": "log_format"},
    "quota": {"storage": "quota_storage", "messages": "quota_messages"},
    "public": {"folders": "public_folders", "rights": "public_rights"},
    "delivery": {"lmtp": "lmtp_endpoints", "smtp": "smtp_endpoints", "smtp_auth": "smtp_auth"},
    "http": {"listen": "http_endpoints", "token": "http_token"},
    "fixtures": {"preload": "preload"},
}
# Keys of a node table read by twistedmail.cluster.spec, not by NodeSettings.
NODE_CLUSTER_KEYS = ("site", "cluster", "cluster_address")
# Keys of a section read by twistedmail/cluster/spec.py and costs.py (public folders'
# replicas, cost model; issue 5), not by NodeSettings.
SECTION_OTHERS = {"public": ("replicas", "default_node", "referral_refresh", "refer")}
TOP_LEVEL = ("node", *SECTION_KEYS, "users", "cluster", "accounts", "sites", "referrals")

# command-line option -> NodeSettings field (the repeatable ones are handled apart)
CLI_KEYS = {
    "uidvalidity-root": "uidvalidity_root",
    "max-line": "max_line",
    "max-literal": "max_literal",
    "literal-mode": "literal_mode",
    "log-format": "log_format",
    "tls-cert": "tls_cert",
    "tls-key": "tls_key",
    "state-file": "state_file",
    "admin": "admin_endpoint",
    "http-token": "http_token",
    "max-connections-per-user": "max_connections_per_user",
    "max-connections-per-address": "max_connections_per_address",
    "max-mailboxes": "max_mailboxes",
    "memory-limit": "memory_limit",
}
# repeatable command-line options -> NodeSettings list fields (replace the config's list)
CLI_LISTS = {"lmtp": "lmtp_endpoints", "smtp": "smtp_endpoints", "http": "http_endpoints",
             "preload": "preload"}

CLI_INTEGERS = ("uidvalidity-root", "max-line", "max-literal", "max-connections-per-user",
                "max-connections-per-address", "max-mailboxes")

Raw = dict[str, tuple[Any, str]]  # field -> (raw value, label naming where it came from)


def load_toml(path: str) -> dict[str, Any]:
    """Read a TOML config file; unreadable or invalid files raise ConfigError."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as err:
        raise ConfigError(f"config: cannot read {path}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config: {path} is not valid TOML: {err}") from None


def _table(label: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{label}: must be a table")
    return value


def _take(label: str, table: Mapping[str, Any], keys: Mapping[str, str], raw: Raw,
          others: tuple[str, ...] = ()) -> None:
    for key, value in table.items():
        if key in others:  # read elsewhere (cluster/spec.py)
            continue
        if key not in keys:
            known = ", ".join([*keys, *others])
            raise ConfigError(f"{label}.{key}: unknown key (known: {known})")
        raw[keys[key]] = (value, f"{label}.{key}")


def _node_table(cfg: Mapping[str, Any], wanted: str | None) -> tuple[str, Mapping[str, Any]]:
    """Pick the node table: the single ``[node]``, or the ``[[node]]`` named ``wanted``."""
    nodes = cfg.get("node", {})
    if isinstance(nodes, Mapping):
        nodes = [nodes]
    if not isinstance(nodes, list):
        raise ConfigError("node: must be a [node] table or [[node]] tables")
    tables = [_table(f"node[{i}]", n) for i, n in enumerate(nodes)]
    names = [t.get("name") for t in tables]
    if len(tables) > 1:
        _check_names(names)
    if wanted is None:
        if len(tables) > 1:
            raise ConfigError(f"--node: the config lists {len(tables)} nodes; pick one with --node")
        return "node", tables[0] if tables else {}
    for i, table in enumerate(tables):
        if table.get("name") == wanted:
            return ("node" if len(tables) == 1 else f"node[{i}]"), table
    if len(tables) == 1 and "name" not in tables[0]:
        return "node", {**tables[0], "name": wanted}
    known = ", ".join(str(n) for n in names) or "none"
    raise ConfigError(f"--node: no node named {wanted!r} in the config (known: {known})")


def _check_names(names: list[Any]) -> None:
    """Several [[node]] tables: each needs a name of its own."""
    for i, name in enumerate(names):
        if name is None:
            raise ConfigError(f"node[{i}].name: every [[node]] needs a name")
        if name in names[:i]:
            raise ConfigError(f"node[{i}].name: duplicate node name {name!r}")


def settings_from_toml(cfg: Mapping[str, Any], node: str | None = None) -> Raw:
    """Raw values from a parsed config file, for the node named ``node``."""
    for key in cfg:
        if key not in TOP_LEVEL:
            raise ConfigError(f"{key}: unknown key (known: {', '.join(TOP_LEVEL)})")
    raw: Raw = {}
    label, table = _node_table(cfg, node)
    for section, keys in SECTION_KEYS.items():
        if section in cfg:
            _take(section, _table(section, cfg[section]), keys, raw,
                  SECTION_OTHERS.get(section, ()))
    _take(label, table, NODE_KEYS, raw, NODE_CLUSTER_KEYS)  # the node's own keys win
    if "users" in cfg:
        raw["users"] = (cfg["users"], "users")
    return raw


def _split_user(spec: object) -> tuple[str, str]:
    if not isinstance(spec, str) or ":" not in spec:
        raise ConfigError(f"--user: expected NAME:PASSWORD, got {spec!r}")
    name, password = spec.split(":", 1)
    if not name or not password:
        raise ConfigError(f"--user: expected NAME:PASSWORD with both parts, got {spec!r}")
    return name, password


def _cli_number(option: str, value: object) -> object:
    """Command-line values arrive as strings: make numbers of the numeric ones."""
    if option not in CLI_INTEGERS or not isinstance(value, str):
        return value
    try:
        return int(value.strip(), 10)
    except ValueError:
        raise ConfigError(f"--{option}: must be an integer, got {value!r}") from None


def settings_from_cli(options: Mapping[str, Any], raw: Raw) -> Raw:
    """Overlay command-line options (twistd option names) onto ``raw``."""
    raw = dict(raw)
    for option, name in CLI_KEYS.items():
        if options.get(option) is not None:
            raw[name] = (_cli_number(option, options[option]), f"--{option}")
    if options.get("imap"):
        raw["imap_endpoints"] = (list(options["imap"]), "--imap")
    for option, name in CLI_LISTS.items():
        if options.get(option):
            raw[name] = (list(options[option]), f"--{option}")
    if options.get("smtp-auth"):
        raw["smtp_auth"] = (True, "--smtp-auth")
    if options.get("user"):
        users = dict(raw.get("users", ({}, "users"))[0])
        users.update(_split_user(spec) for spec in options["user"])
        raw["users"] = (users, "--user")
    if options.get("demo"):
        raw["demo"] = (True, "--demo")
    if options.get("allow-plaintext"):
        raw["allow_plaintext"] = (True, "--allow-plaintext")
    if options.get("node") is not None and "node_name" not in raw:
        raw["node_name"] = (options["node"], "--node")
    return raw


def settings_from(options: Mapping[str, Any]) -> NodeSettings:
    """Build NodeSettings from twistd options: config file first, then overrides."""
    raw: Raw = {}
    cfg: dict[str, Any] | None = None
    config_path = options.get("config")
    if config_path:
        cfg = load_toml(os.fspath(config_path))
        raw = settings_from_toml(cfg, options.get("node"))
    raw = settings_from_cli(options, raw)
    clean = {name: _CHECKS[name](label, value) for name, (value, label) in raw.items()}
    settings = NodeSettings(**clean)
    if cfg is not None:
        from twistedmail.cluster import spec

        settings.cluster = spec.for_settings(cfg, settings)
    return settings
