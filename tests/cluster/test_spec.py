"""Cluster config (twistedmail/cluster/spec.py): defaults, placement, every error path."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from twistedmail.cluster import spec
from twistedmail.cluster.spec import ClusterSpec, NodeSpec
from twistedmail.config import ConfigError, settings_from

NODES = """
[[node]]
name = "n1"
uidvalidity_root = 1
imap = ["tcp:1143:interface=127.0.0.1"]
cluster = "tcp:7001:interface=127.0.0.1"

[[node]]
name = "n2"
uidvalidity_root = 2
site = "west"
imap = ["tcp:1144:interface=127.0.0.1"]
cluster = "tcp:7002"

[[node]]
name = "n3"
uidvalidity_root = 3
imap = ["tcp:1145:interface=127.0.0.1"]
cluster = "tcp:7003:interface=0.0.0.0"
cluster_address = "10.0.0.3:7003"
"""
SECRET = '[cluster]\nsecret = "change-me"\n'
THREE = SECRET + NODES


def load(text: str, node: str = "n1") -> ClusterSpec | None:
    """spec.load on a TOML text."""
    return spec.load(tomllib.loads(text), node)


def test_defaults_and_nodes():
    """A minimal 3-node file: every node parsed, [cluster] defaults as documented."""
    s = load(THREE, "n2")
    assert s is not None
    assert s.me == NodeSpec("n2", 2, "west", ("tcp:1144:interface=127.0.0.1",), "tcp:7002",
                            "127.0.0.1", 7002)
    assert [n.name for n in s.nodes] == ["n1", "n2", "n3"]
    assert [n.name for n in s.peers()] == ["n1", "n3"]
    assert s.node("n1").site == "default"
    assert (s.node("n3").host, s.node("n3").port) == ("10.0.0.3", 7003)
    assert s.secret == b"change-me"
    assert (s.ack_replicas, s.degraded_writes, s.tls) == (None, False, True)
    assert (s.heartbeat, s.suspect_after, s.down_after, s.ack_timeout) == (0.5, 1.5, 3.0, 5.0)
    assert s.fanout == "chain"
    assert dict(s.placement) == {}


def test_secret_never_in_repr():
    """repr(ClusterSpec) does not show the cluster secret (it ends up in logs)."""
    assert "change-me" not in repr(load(THREE))


def test_placement_holders_and_ack_needed():
    """[accounts] places mail files; unlisted users live everywhere; ack_needed <= holders."""
    s = load(THREE + '[accounts]\nalice = ["n1", "n3"]\nsolo = ["n2"]\n')
    assert s is not None
    assert s.holders("alice") == ("n1", "n3") and s.holders("bob") == ("n1", "n2", "n3")
    assert s.holds("alice") and not s.holds("alice", "n2") and not s.holds("solo")
    assert (s.ack_needed("alice"), s.ack_needed("bob"), s.ack_needed("solo")) == (2, 2, 1)


def test_ack_replicas_option():
    """ack_replicas = 3 asks three copies where three nodes hold the file, two where two do."""
    text = THREE.replace("[cluster]\n", "[cluster]\nack_replicas = 3\n")
    s = load(text + '[accounts]\nalice = ["n1", "n3"]\n')
    assert s is not None and s.ack_replicas == 3
    assert (s.ack_needed("bob"), s.ack_needed("alice")) == (3, 2)


def test_all_cluster_options():
    """Every [cluster] key is read (numbers as floats)."""
    text = ('[cluster]\nsecret = "x"\nack_replicas = 1\ndegraded_writes = true\nheartbeat = 1\n'
            "suspect_after = 2\ndown_after = 2\nack_timeout = 0.25\ntls = false\n"
            'fanout = "direct"\n' + NODES)
    s = load(text)
    assert s is not None
    assert (s.ack_replicas, s.degraded_writes, s.tls, s.fanout) == (1, True, False, "direct")
    assert (s.heartbeat, s.suspect_after, s.down_after, s.ack_timeout) == (1.0, 2.0, 2.0, 0.25)


def test_secret_file(tmp_path: Path):
    """secret_file: the file's content, surrounding whitespace stripped."""
    path = tmp_path / "secret"
    path.write_bytes(b"  s3cr3t\n")
    s = load(f'[cluster]\nsecret_file = "{path}"\n' + NODES)
    assert s is not None and s.secret == b"s3cr3t"


@pytest.mark.parametrize(
    "text",
    [
        "",
        '[node]\nname = "n1"\n',
        '[[node]]\nname = "n1"\nuidvalidity_root = 4\n',
        '[users]\nalice = "x"\n',
    ],
)
def test_single_node_mode(text: str):
    """At most one node and no [cluster] table: None, single-node mode as before."""
    assert load(text) is None


def test_one_node_with_cluster_table():
    """A lone node with [cluster]: a cluster of one, no secret or cluster endpoint needed."""
    s = load('[cluster]\nack_timeout = 2\n[node]\nname = "n1"\nuidvalidity_root = 9\n')
    assert s is not None and s.peers() == () and s.secret == b""
    assert (s.me.root, s.me.cluster_endpoint, s.me.port, s.ack_needed("x")) == (9, "", 0, 1)


def test_lone_table_without_name_takes_node_name():
    """A [cluster] file whose single node table has no name: the node is --node's name."""
    s = load("[cluster]\n", "edge")
    assert s is not None and s.me.name == "edge" and s.me.root == 1


def test_ipv6_cluster_address():
    """cluster_address accepts [IPv6]:PORT."""
    s = load(THREE.replace('"10.0.0.3:7003"', '"[fd00::3]:7003"'))
    assert s is not None and s.node("n3").host == "fd00::3"
    assert s.node("n3").address == "[fd00::3]:7003"


def node(name: str, root: int, extra: str = "", cluster: str | None = None) -> str:
    """One [[node]] table."""
    port = 7000 + root
    endpoint = cluster if cluster is not None else f'cluster = "tcp:{port}"\n'
    return f'[[node]]\nname = "{name}"\nuidvalidity_root = {root}\n{endpoint}{extra}'


TWO = node("n1", 1) + node("n2", 2)


def n2(extra: str = "", cluster: str | None = None, root: int = 2) -> str:
    """A two-node cluster file (with the secret) whose second node, n2, is at fault."""
    return SECRET + node("n1", 1) + node("n2", root, extra, cluster)


ERRORS: list[tuple[str, str]] = [
    # nodes
    (SECRET + node("n1", 1) + node("n1", 2), "node[1].name: duplicate node name 'n1'"),
    (n2(root=1), "node[1].uidvalidity_root: root 1 is already node n1's"),
    (SECRET + node("n1", 1) + '[[node]]\nuidvalidity_root = 2\ncluster = "tcp:7002"\n',
     "node[1].name: every [[node]] needs a name"),
    (SECRET + node("n1", 1) + '[[node]]\nname = "bad name"\n', "node[1].name: 'bad name' is not"),
    (SECRET + node("n1", 1) + '[[node]]\nname = "n2"\ncluster = "tcp:7002"\n',
     "node[1].uidvalidity_root: every node of a cluster needs its own root"),
    (n2(root=256), "node[1].uidvalidity_root: must be an integer 0-255, got 256"),
    (n2(cluster=""), "node[1].cluster: every node of a cluster needs a cluster endpoint"),
    (n2('colour = "red"\n'), "node[1].colour: unknown key"),
    (n2('site = ""\n'), "node[1].site: must be a non-empty"),
    (n2('site = "a b"\n'), "node[1].site: 'a b' is not"),
    # endpoints and addresses
    (n2(cluster='cluster = "nonsense:1"\n'), "node[1].cluster: bad endpoint 'nonsense:1'"),
    (n2(cluster='cluster = "tcp:99999"\n'),
     "node[1].cluster: bad endpoint 'tcp:99999': port must be 0-65535"),
    (n2('imap = ["nonsense:1"]\n'), "node[1].imap: bad endpoint 'nonsense:1'"),
    (n2('imap = "tcp:1"\n'), "node[1].imap: must be a list of endpoint strings"),
    (n2("imap = []\n"), "node[1].imap: needs at least one"),
    (n2(cluster='cluster = "tcp:0"\n'),
     "node[1].cluster_address: needed when node[1].cluster listens on port 0"),
    (n2(cluster='cluster = "tcp:7002:interface=0.0.0.0"\n'),
     "node[1].cluster_address: needed when node[1].cluster listens on every interface"),
    (n2(cluster='cluster = "unix:/tmp/c.sock"\n'),
     "node[1].cluster_address: needed when node[1].cluster is not tcp:PORT"),
    (n2('cluster_address = "nohost"\n'), "node[1].cluster_address: must be HOST:PORT"),
    (n2('cluster_address = "h:0"\n'), "node[1].cluster_address: must be an integer 1-65535, got 0"),
    (n2('cluster_address = "127.0.0.1:7001"\n'),
     "node[1].cluster_address: cluster address 127.0.0.1:7001 is already node n1's"),
    (n2(cluster='cluster = "tcp:7001:interface=127.0.0.1"\n'),
     "node[1].cluster: cluster address 127.0.0.1:7001 is already node n1's"),
    ('[cluster]\n[node]\nname = "n1"\ncluster_address = "h:1"\n',
     "node.cluster_address: needs node.cluster too"),
    # [cluster]
    (TWO, "cluster.secret: required with more than one node"),
    ("[cluster]\n" + TWO, "cluster.secret: required with more than one node"),
    ('[cluster]\nsecret = ""\n' + TWO, "cluster.secret: must be a non-empty string"),
    ("[cluster]\nsecret = 5\n" + TWO, "cluster.secret: must be a non-empty string"),
    ('[cluster]\nsecret = "a"\nsecret_file = "/etc/hostname"\n' + TWO,
     "cluster.secret_file: give cluster.secret or cluster.secret_file, not both"),
    ('[cluster]\nsecret_file = "/nonexistent/secret"\n' + TWO,
     "cluster.secret_file: cannot read /nonexistent/secret"),
    (SECRET + "colour = 1\n" + TWO, "cluster.colour: unknown key (known: secret, secret_file"),
    (SECRET + "ack_replicas = 0\n" + TWO, "cluster.ack_replicas: must be an integer 1-2, got 0"),
    (SECRET + "ack_replicas = 3\n" + TWO, "cluster.ack_replicas: must be an integer 1-2, got 3"),
    (SECRET + 'ack_replicas = "2"\n' + TWO, "cluster.ack_replicas: must be an integer, got '2'"),
    (SECRET + "degraded_writes = 1\n" + TWO, "cluster.degraded_writes: must be true or false"),
    (SECRET + 'tls = "yes"\n' + TWO, "cluster.tls: must be true or false"),
    (SECRET + "heartbeat = 0\n" + TWO, "cluster.heartbeat: must be a positive number"),
    (SECRET + "ack_timeout = -1\n" + TWO, "cluster.ack_timeout: must be a positive number"),
    (SECRET + 'down_after = "3"\n' + TWO, "cluster.down_after: must be a number of seconds"),
    (SECRET + "heartbeat = 2\n" + TWO, "cluster.suspect_after: must be more than "
                                       "cluster.heartbeat (2 s), got 1.5"),
    (SECRET + "suspect_after = 1.5\nheartbeat = 1.5\n" + TWO,
     "cluster.suspect_after: must be more than cluster.heartbeat (1.5 s), got 1.5"),
    (SECRET + "down_after = 1\n" + TWO, "cluster.down_after: must be at least "
                                        "cluster.suspect_after (1.5 s), got 1"),
    ("cluster = 1\n" + TWO, "cluster: must be a table"),
    (SECRET + 'fanout = "star"\n' + TWO,
     "cluster.fanout: must be one of 'chain', 'direct', got 'star'"),
    (SECRET + "fanout = 2\n" + TWO, "cluster.fanout: must be a non-empty string"),
    # [accounts]
    (SECRET + TWO + '[accounts]\nalice = ["n1", "n9"]\n',
     "accounts.alice: unknown node 'n9' (known: n1, n2)"),
    (SECRET + TWO + '[accounts]\nalice = ["n1", "n1"]\n', "accounts.alice: node 'n1' is listed "
                                                          "twice"),
    (SECRET + TWO + "[accounts]\nalice = []\n", "accounts.alice: needs at least one node"),
    (SECRET + TWO + '[accounts]\nalice = "n1"\n', "accounts.alice: must be a list of node names"),
    (SECRET + TWO + '[accounts]\n"a b" = ["n1"]\n', "accounts: bad user name 'a b'"),
    ("accounts = 3\n" + SECRET + TWO, "accounts: must be a table"),
    ('[node]\nname = "n1"\n[accounts]\nalice = ["n2"]\n', "accounts.alice: unknown node 'n2'"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_errors_name_the_key(text: str, message: str):
    """Each bad cluster config is one ConfigError line that starts with the key at fault."""
    with pytest.raises(ConfigError) as err:
        load(text)
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_node_name():
    """spec.load for a node the file does not list names the known ones."""
    with pytest.raises(ConfigError, match=r"^--node: no node named 'n9' .*known: n1, n2, n3"):
        load(THREE, "n9")


def test_peer_ssl_endpoints_are_not_opened_here():
    """A peer's ssl: endpoint may name key files of its own machine: not read here."""
    text = THREE.replace('imap = ["tcp:1144:interface=127.0.0.1"]',
                         'imap = ["ssl:993:privateKey=/n2/only/key.pem"]')
    s = load(text)
    assert s is not None and s.node("n2").imap == ("ssl:993:privateKey=/n2/only/key.pem",)
    with pytest.raises(ConfigError, match=r"^node\[1\]\.imap: bad endpoint"):
        load(text, "n2")


# --- through config.settings_from (what twistd runs) ----------------------------------


def settings(tmp_path: Path, text: str, **options: Any) -> Any:
    """settings_from for a config file with ``text``."""
    path = tmp_path / "cluster.toml"
    path.write_text(text)
    return settings_from({"config": str(path), **options})


def test_settings_carry_the_cluster(tmp_path: Path):
    """NodeSettings.cluster is the ClusterSpec of the node picked with --node."""
    s = settings(tmp_path, THREE + '[users]\nalice = "pw"\n', node="n3")
    assert s.node_name == "n3" and s.uidvalidity_root == 3
    assert s.cluster is not None and s.cluster.me.name == "n3"
    assert s.imap_endpoints == ["tcp:1145:interface=127.0.0.1"]


def test_single_node_settings_have_no_cluster(tmp_path: Path):
    """A plain single-node file (and no file at all): cluster is None."""
    assert settings(tmp_path, '[node]\nname = "x"\n').cluster is None
    assert settings_from({}).cluster is None


def test_imap_option_overrides_me(tmp_path: Path):
    """--imap replaces this node's IMAP endpoints in the spec too."""
    s = settings(tmp_path, THREE, node="n1", imap=["tcp:0:interface=127.0.0.1"])
    assert s.cluster.me.imap == ("tcp:0:interface=127.0.0.1",)
    assert s.cluster.node("n1").imap == ("tcp:0:interface=127.0.0.1",)


def test_root_option_must_agree(tmp_path: Path):
    """--uidvalidity-root cannot contradict the root every peer reads from the file."""
    with pytest.raises(ConfigError, match=r"^--uidvalidity-root: node n1's root is 1"):
        settings(tmp_path, THREE, node="n1", **{"uidvalidity-root": "7"})


def test_node_table_cluster_keys_allowed_and_others_listed(tmp_path: Path):
    """config.py accepts site/cluster/cluster_address in node tables and lists them as known."""
    with pytest.raises(ConfigError) as err:
        settings(tmp_path, THREE.replace('site = "west"', 'sight = "west"'), node="n2")
    assert str(err.value).startswith("node[1].sight: unknown key")
    assert "site, cluster, cluster_address" in str(err.value)


# --- through real twistd ------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("text", "message"),
    [
        (n2(root=1), "node[1].uidvalidity_root: root 1 is already"),
        (TWO, "cluster.secret: required with more than one node"),
        (SECRET + TWO + '[accounts]\nalice = ["n7"]\n', "accounts.alice: unknown node 'n7'"),
    ],
)
def test_twistd_refuses_bad_cluster_config(tmp_path: Path, text: str, message: str):
    """`twistd clustermail --config f --node n2` with a bad cluster config: exit 1, one line."""
    from twistedmail.testing import run_twistd

    path = tmp_path / "cluster.toml"
    path.write_text(text)
    result = run_twistd(["--config", str(path), "--node", "n2"])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, result.stderr
    assert lines == [lines[0]] and lines[0].startswith(f"clustermail: error: {message}"), lines
    assert "Traceback" not in result.stdout + result.stderr


def test_example_file_cluster_comment_is_valid():
    """The commented cluster example in examples/cluster.toml loads for both nodes."""
    example = Path(__file__).resolve().parents[2] / "examples" / "cluster.toml"
    lines = example.read_text().splitlines()
    start = lines.index("#   [cluster]")
    block = []
    for line in lines[start:]:
        if not line.startswith("#"):
            break
        block.append(line[4:] if line.startswith("#   ") else "")
    cfg = tomllib.loads("\n".join(block))
    for name in ("node1", "node2"):
        s = spec.load(cfg, name)
        assert s is not None and s.me.name == name and s.holders("alice") == ("node1", "node2")
