"""Node settings: defaults, the TOML file, command-line overrides, and every error path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from twisted.python import usage

from twistedmail.config import (
    DEFAULT_IMAP,
    ConfigError,
    NodeSettings,
    load_toml,
    settings_from,
)
from twistedmail.service import Options

FULL = """
[node]
name = "alpha"
uidvalidity_root = 7
imap = ["tcp:2143:interface=127.0.0.1", "tcp:2144:interface=127.0.0.1"]
demo = true

[limits]
max_line = 4096
max_literal = 1048576
idle_timeout_auth = 3600
idle_timeout_preauth = 30.5

[tls]
allow_plaintext = false

[log]
format = "json"

[users]
alice = "secret"
"bob@example.org" = "pa:ss"
"""

CLUSTER = """
[cluster]
secret = "change-me"

[[node]]
name = "node1"
uidvalidity_root = 1
imap = ["tcp:1143:interface=127.0.0.1"]
cluster = "tcp:7001:interface=127.0.0.1"

[[node]]
name = "node2"
uidvalidity_root = 2
imap = ["tcp:2143:interface=127.0.0.1"]
cluster = "tcp:7002:interface=127.0.0.1"

[users]
alice = "secret"
"""


def write(tmp_path: Path, text: str, name: str = "node.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


def config_error(options: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        settings_from(options)
    return str(info.value)


# --- defaults and merging -------------------------------------------------------------


def test_defaults():
    """With nothing configured a node is node1, root 1, on 127.0.0.1:1143, RFC timeouts."""
    s = settings_from({})
    assert s == NodeSettings()
    assert s.node_name == "node1"
    assert s.uidvalidity_root == 1
    assert s.imap_endpoints == [DEFAULT_IMAP] == ["tcp:1143:interface=127.0.0.1"]
    assert s.users == {} and s.demo is False
    assert s.max_line == 65536 and s.max_literal == 64 * 1024 * 1024
    assert s.idle_timeout_auth >= 30 * 60  # RFC 3501 §5.4
    assert s.idle_timeout_preauth == 60
    assert s.tls_cert is None and s.tls_key is None
    assert s.allow_plaintext is False and s.log_format == "text"  # loopback-only plaintext


def test_full_toml_is_read(tmp_path):
    """Every key of the single-node TOML shape lands in its NodeSettings field."""
    s = settings_from({"config": write(tmp_path, FULL)})
    assert s.node_name == "alpha"
    assert s.uidvalidity_root == 7
    assert s.imap_endpoints == ["tcp:2143:interface=127.0.0.1", "tcp:2144:interface=127.0.0.1"]
    assert s.demo is True
    assert (s.max_line, s.max_literal) == (4096, 1048576)
    assert (s.idle_timeout_auth, s.idle_timeout_preauth) == (3600.0, 30.5)
    assert s.allow_plaintext is False
    assert s.log_format == "json"
    assert s.users == {"alice": "secret", "bob@example.org": "pa:ss"}


def test_cli_overrides_toml(tmp_path):
    """Command-line options win over the file; --imap replaces its list, --user adds."""
    options = parse(
        "--config", write(tmp_path, FULL),
        "--uidvalidity-root", "9",
        "--imap", "tcp:3143:interface=127.0.0.1",
        "--user", "carol:pw",
        "--user", "alice:changed",
        "--max-line", "2048",
        "--max-literal", "99",
        "--log-format", "text",
    )  # fmt: skip
    s = options.settings
    assert s is not None
    assert s.node_name == "alpha"
    assert s.uidvalidity_root == 9
    assert s.imap_endpoints == ["tcp:3143:interface=127.0.0.1"]
    assert s.users == {"alice": "changed", "bob@example.org": "pa:ss", "carol": "pw"}
    assert (s.max_line, s.max_literal, s.log_format) == (2048, 99, "text")


def test_imap_and_user_repeat():
    """--imap and --user may be given several times; a password may contain ':'."""
    s = parse(
        "--imap", "tcp:0:interface=127.0.0.1",
        "--imap", r"tcp6:0:interface=\:\:1",
        "--user", "alice:a:b",
        "--user", "bob:x",
        "--demo",
    ).settings  # fmt: skip
    assert s is not None
    assert s.imap_endpoints == ["tcp:0:interface=127.0.0.1", r"tcp6:0:interface=\:\:1"]
    assert s.users == {"alice": "a:b", "bob": "x"}
    assert s.demo is True


def test_toml_without_some_sections_keeps_defaults(tmp_path):
    """Keys the file leaves out keep their defaults."""
    s = settings_from({"config": write(tmp_path, "[node]\nuidvalidity_root = 3\n")})
    assert s.uidvalidity_root == 3
    assert s.node_name == "node1" and s.imap_endpoints == [DEFAULT_IMAP]


def test_cluster_file_node_is_picked_by_name(tmp_path):
    """With [[node]] tables, --node NAME picks that node's name, root and endpoints."""
    s = settings_from({"config": write(tmp_path, CLUSTER), "node": "node2"})
    assert (s.node_name, s.uidvalidity_root) == ("node2", 2)
    assert s.imap_endpoints == ["tcp:2143:interface=127.0.0.1"]
    assert s.users == {"alice": "secret"}


def test_single_cluster_entry_needs_no_node_option(tmp_path):
    """A file with a single [[node]] runs that node without --node."""
    s = settings_from({"config": write(tmp_path, '[[node]]\nname = "solo"\n')})
    assert s.node_name == "solo"


def test_node_option_names_the_node_without_config():
    """--node without --config just names the node."""
    assert settings_from({"node": "edge-3"}).node_name == "edge-3"


def test_node_option_names_an_unnamed_node_table(tmp_path):
    """--node names the node when the single [node] table has no name."""
    s = settings_from({"config": write(tmp_path, "[node]\nuidvalidity_root = 4\n"), "node": "x"})
    assert (s.node_name, s.uidvalidity_root) == ("x", 4)


def test_example_config_is_valid():
    """examples/cluster.toml (documented in the README) loads as it is shipped."""
    example = Path(__file__).resolve().parents[2] / "examples" / "cluster.toml"
    s = settings_from({"config": str(example)})
    assert s.node_name == "node1" and 0 <= s.uidvalidity_root <= 255
    assert s.users


def test_load_toml_returns_the_table(tmp_path):
    """load_toml gives the parsed document as a dict."""
    assert load_toml(write(tmp_path, 'a = 1\n[b]\nc = "d"\n')) == {"a": 1, "b": {"c": "d"}}


# --- errors: one line, naming the key -------------------------------------------------

TOML_ERRORS = [
    ("colour = 1\n", "colour: unknown key"),
    ("[node]\nport = 1\n", "node.port: unknown key"),
    ("[limits]\nmax_lines = 1\n", "limits.max_lines: unknown key"),
    ("[tls]\ncertificate = 'x'\n", "tls.certificate: unknown key"),
    ("[log]\nformat = 'xml'\n", "log.format: must be one of text, json"),
    ("[node]\nuidvalidity_root = 256\n", "node.uidvalidity_root: must be an integer 0-255"),
    ("[node]\nuidvalidity_root = -1\n", "node.uidvalidity_root: must be an integer 0-255"),
    ("[node]\nuidvalidity_root = '3'\n", "node.uidvalidity_root: must be an integer, got '3'"),
    ("[node]\nuidvalidity_root = 1.5\n", "node.uidvalidity_root: must be an integer, got float"),
    ("[node]\nuidvalidity_root = true\n", "node.uidvalidity_root: must be an integer, got bool"),
    ("[node]\nname = 'a b'\n", "node.name: 'a b' is not a node name"),
    ("[node]\nname = 5\n", "node.name: must be a non-empty string"),
    ("[node]\nimap = 'tcp:1143'\n", "node.imap: must be a list of endpoint strings"),
    ("[node]\nimap = []\n", "node.imap: needs at least one endpoint"),
    ("[node]\nimap = ['bogus:1']\n", "node.imap: bad endpoint 'bogus:1'"),
    ("[node]\nimap = ['tcp:notaport']\n", "node.imap: bad endpoint 'tcp:notaport'"),
    ("[node]\ndemo = 'yes'\n", "node.demo: must be true or false"),
    ("node = 3\n", "node: must be a [node] table or [[node]] tables"),
    ("[limits]\nmax_line = 10\n", "limits.max_line: must be an integer >= 1024"),
    ("[limits]\nmax_literal = 0\n", "limits.max_literal: must be an integer >= 1"),
    ("[limits]\nidle_timeout_auth = -5\n", "limits.idle_timeout_auth: must be a positive"),
    ("[limits]\nidle_timeout_preauth = 'soon'\n", "limits.idle_timeout_preauth: must be a number"),
    ("[tls]\nallow_plaintext = 1\n", "tls.allow_plaintext: must be true or false"),
    ("[tls]\ncert = '/nonexistent/cert.pem'\n", "tls.cert: cannot read /nonexistent/cert.pem"),
    ("users = ['alice']\n", "users: must be a table of user = password"),
    ("[users]\nalice = 1\n", "users.alice: password must be a non-empty string"),
    ("[users]\nalice = ''\n", "users.alice: password must be a non-empty string"),
    ("[users]\n'a b' = 'x'\n", "users: bad user name 'a b'"),
    ("limits = 3\n", "limits: must be a table"),
    ("[[node]]\nname = 'a'\n[[node]]\nname = 'a'\n", "node[1].name: duplicate node name 'a'"),
    ("[[node]]\nname = 'a'\n[[node]]\ndemo = true\n", "node[1].name: every [[node]] needs a name"),
    ("[[node]]\nname = 'a'\nport = 1\n", "node.port: unknown key"),
]


@pytest.mark.parametrize(("text", "message"), TOML_ERRORS)
def test_toml_errors_name_the_key(tmp_path, text, message):
    """Each bad config value raises ConfigError: one line starting with its key."""
    error = config_error({"config": write(tmp_path, text)})
    assert error.startswith(message), error
    assert "\n" not in error


CLI_ERRORS = [
    ({"uidvalidity-root": "256"}, "--uidvalidity-root: must be an integer 0-255, got 256"),
    ({"uidvalidity-root": "-1"}, "--uidvalidity-root: must be an integer 0-255, got -1"),
    ({"uidvalidity-root": "one"}, "--uidvalidity-root: must be an integer, got 'one'"),
    ({"max-line": "12"}, "--max-line: must be an integer >= 1024, got 12"),
    ({"max-literal": "lots"}, "--max-literal: must be an integer, got 'lots'"),
    ({"log-format": "xml"}, "--log-format: must be one of text, json, got 'xml'"),
    ({"imap": ["nonsense:1143"]}, "--imap: bad endpoint 'nonsense:1143'"),
    ({"imap": ["tcp:99999999"]}, "--imap: bad endpoint 'tcp:99999999': port must be 0-65535"),
    ({"imap": ["tcp:port=-1"]}, "--imap: bad endpoint 'tcp:port=-1': port must be 0-65535"),
    ({"user": ["alice"]}, "--user: expected NAME:PASSWORD, got 'alice'"),
    ({"user": [":pw"]}, "--user: expected NAME:PASSWORD with both parts"),
    ({"user": ["alice:"]}, "--user: expected NAME:PASSWORD with both parts"),
    ({"tls-cert": "/nonexistent.pem"}, "--tls-cert: cannot read /nonexistent.pem"),
    ({"node": "bad name"}, "--node: 'bad name' is not a node name"),
]


@pytest.mark.parametrize(("options", "message"), CLI_ERRORS)
def test_cli_errors_name_the_option(options, message):
    """Each bad command-line value raises ConfigError: one line starting with the option."""
    error = config_error(options)
    assert error.startswith(message), error
    assert "\n" not in error


def test_unreadable_config(tmp_path):
    """A missing config file is named with the OS reason."""
    missing = tmp_path / "missing.toml"
    assert config_error({"config": str(missing)}) == (
        f"config: cannot read {missing}: No such file or directory"
    )


def test_invalid_toml(tmp_path):
    """A file that is not TOML is reported as such, with the parser's position."""
    error = config_error({"config": write(tmp_path, "[node\nname = 1\n")})
    assert error.startswith("config: ") and "is not valid TOML" in error
    assert "line 1" in error


def test_cluster_file_needs_node_choice(tmp_path):
    """Several [[node]] tables and no --node: the error says to pick one."""
    error = config_error({"config": write(tmp_path, CLUSTER)})
    assert error == "--node: the config lists 2 nodes; pick one with --node"


def test_unknown_node(tmp_path):
    """--node naming no node of the file is refused, listing the known ones."""
    error = config_error({"config": write(tmp_path, CLUSTER), "node": "node9"})
    assert error == "--node: no node named 'node9' in the config (known: node1, node2)"


def test_node_option_must_match_single_named_node(tmp_path):
    """--node must match the name of a single named [node] table."""
    error = config_error({"config": write(tmp_path, '[node]\nname = "a"\n'), "node": "b"})
    assert error == "--node: no node named 'b' in the config (known: a)"


def test_tls_key_without_cert(tmp_path):
    """A TLS key alone (no certificate) is refused."""
    key = tmp_path / "key.pem"
    key.write_text("x")
    error = config_error({"tls-key": str(key)})
    assert error == "tls_key: a key needs a certificate (tls_cert) too"


def test_node_settings_validate_on_construction():
    """NodeSettings built directly (tests, other code) checks its values too."""
    with pytest.raises(ConfigError, match=r"^uidvalidity_root: must be an integer 0-255"):
        NodeSettings(uidvalidity_root=300)
    with pytest.raises(ConfigError, match=r"^imap_endpoints: bad endpoint"):
        NodeSettings(imap_endpoints=["nope:1"])


# --- the twistd Options class ------------------------------------------------------------


def test_options_turn_config_errors_into_usage_errors():
    """Outside twistd, Options.parseOptions raises UsageError with the one-line message."""
    with pytest.raises(usage.UsageError, match=r"^--uidvalidity-root: must be an integer 0-255"):
        parse("--uidvalidity-root", "300")


def test_options_reject_unknown_option():
    """An unknown option is a UsageError naming it."""
    with pytest.raises(usage.UsageError, match="--bogus"):
        parse("--bogus")


def test_options_under_twistd_exit_with_one_line(capsys):
    """Under a parent (twistd), a bad option prints one line on stderr and exits 1."""
    options = Options()
    options.parent = usage.Options()
    with pytest.raises(SystemExit) as info:
        options.parseOptions(["--user", "nocolon"])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("clustermail: error: --user: expected NAME:PASSWORD")
