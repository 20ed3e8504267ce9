"""Public folder placement and cost keys in the config (spec.py, config.py) and the node's
run-time referral data on the reactor clock (cluster/public.py, ClusterNode.referrals)."""

from __future__ import annotations

import random
import tomllib
from pathlib import Path

import pytest
from twisted.internet import task

from twistedmail.cluster import spec
from twistedmail.cluster.costs import CostError, Role
from twistedmail.cluster.public import PublicReferrals
from twistedmail.cluster.spec import ClusterSpec
from twistedmail.config import ConfigError, settings_from

SEED = """
[cluster]
secret = "s"

[[node]]
name = "n1"
uidvalidity_root = 1
site = "site1"
cluster = "tcp:7001:interface=127.0.0.1"

[[node]]
name = "n2"
uidvalidity_root = 2
site = "site2"
cluster = "tcp:7002:interface=127.0.0.1"

[[node]]
name = "n3"
uidvalidity_root = 3
site = "site3"
cluster = "tcp:7003:interface=127.0.0.1"

[[node]]
name = "n4"
uidvalidity_root = 4
site = "site3"
cluster = "tcp:7004:interface=127.0.0.1"

[sites]
links = [["site1", "site2", 10], ["site2", "site3", 10]]
"""
PUBLIC = """
[public]
folders = ["News", "Lists/Announce", "Everywhere"]
referral_refresh = 60

[public.replicas]
News = ["n2", "n3", "n4"]
"Lists/Announce" = ["n1"]
"""


def load(text: str, node: str = "n1") -> ClusterSpec:
    """spec.load on a TOML text (a cluster is expected)."""
    s = spec.load(tomllib.loads(text), node)
    assert s is not None
    return s


def error(text: str, node: str = "n1") -> str:
    """The one-line ConfigError of a TOML text."""
    with pytest.raises(ConfigError) as info:
        spec.load(tomllib.loads(text), node)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_replicas_and_costs_loaded():
    """[public.replicas] gives each listed folder its nodes; a folder without an entry lives
    on every node; the cost model has the nodes' sites, the links and the refresh."""
    s = load(SEED + PUBLIC)
    assert dict(s.public_replicas) == {"News": ("n2", "n3", "n4"), "Lists/Announce": ("n1",),
                                       "Everywhere": ("n1", "n2", "n3", "n4")}
    assert s.costs.node_sites == {"n1": "site1", "n2": "site2", "n3": "site3", "n4": "site3"}
    assert s.costs.links == {("site1", "site2"): 10, ("site2", "site3"): 10}
    assert s.costs.referral_refresh == 60.0
    assert s.costs.snapshot().cost("n1", "n3") == 20  # the seed: site1-site3 = 10 + 10


def test_defaults_without_public_tables():
    """No [public] nor [sites]: no public folders; every node in site "default" at cost 0."""
    s = load(SEED.split("[sites]")[0])
    assert dict(s.public_replicas) == {}
    assert s.costs.snapshot().cost("n1", "n2") is None  # other sites, no link
    assert s.costs.referral_refresh == 3600.0


@pytest.mark.parametrize("extra, message", [
    ('[public]\nfolders = ["News"]\n[public.replicas]\nNews = ["n9"]\n',
     "public.replicas.News: unknown node 'n9' (known: n1, n2, n3, n4)"),
    ('[public]\nfolders = ["News"]\n[public.replicas]\nNews = []\n',
     "public.replicas.News: needs at least one node"),
    ('[public]\nfolders = ["News"]\n[public.replicas]\nNews = "n1"\n',
     "public.replicas.News: must be a list of node names, got 'n1'"),
    ('[public]\nfolders = ["News"]\n[public.replicas]\nNews = ["n1", "n1"]\n',
     "public.replicas.News: node 'n1' is listed twice"),
    ('[public]\nfolders = ["News"]\n[public.replicas]\nSports = ["n1"]\n',
     "public.replicas.Sports: 'Sports' is not one of public.folders (known: News)"),
    ('[public]\nfolders = ["A/B"]\n[public.replicas]\n"A/B" = ["x"]\n',
     "public.replicas.\"A/B\": unknown node 'x' (known: n1, n2, n3, n4)"),
    ('[public]\nreplicas = 3\n', "public.replicas: must be a table of folder = [node names]"),
    ('[public]\ndefault_node = {n1 = "n7"}\n',
     "public.default_node.n1: unknown node 'n7' (known: n1, n2, n3, n4)"),
    ('[public]\nreferral_refresh = 0\n',
     "public.referral_refresh: must be a positive number of seconds, got 0"),
    ('[referrals.n1]\nlist = [["n2", 600]]\n',
     "referrals.n1.list[0]: cost 600: out of range; a cluster administrator may set 1-500"),
    ('[referrals.n8]\nlist = []\n',
     "referrals.n8: unknown node 'n8' (known: n1, n2, n3, n4)"),
])
def test_config_errors(extra, message):
    """Every bad public/cost value is one ConfigError line naming the key at fault."""
    assert error(SEED + extra) == message


def test_bad_site_link():
    """A link naming a site no node is in (nor transit) is refused."""
    text = SEED.replace('["site2", "site3", 10]', '["site2", "moon", 10]')
    assert error(text).startswith("sites.links[1]: unknown site 'moon'")


def test_single_node_checks_public_replicas(tmp_path: Path):
    """Single-node mode (no cluster) still refuses a replica naming another node, through
    settings_from, and accepts the new [public] / [sites] / [referrals] keys."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[node]\nname = "solo"\n[public]\nfolders = ["News"]\n'
                   '[public.replicas]\nNews = ["n2"]\n')
    with pytest.raises(ConfigError, match=r"public.replicas.News: unknown node 'n2' \(known: "
                                          r"solo\)"):
        settings_from({"config": str(bad)})
    good = tmp_path / "good.toml"
    good.write_text('[node]\nname = "solo"\n[public]\nfolders = ["News"]\nreferral_refresh = 5\n'
                    '[public.replicas]\nNews = ["solo"]\n[sites]\nlinks = []\n')
    settings = settings_from({"config": str(good)})
    assert settings.cluster is None and settings.public_folders == ["News"]


def test_settings_from_cluster_file(tmp_path: Path):
    """A whole file through settings_from: the node's ClusterSpec carries replicas and costs."""
    path = tmp_path / "c.toml"
    path.write_text(SEED + PUBLIC)
    settings = settings_from({"config": str(path), "node": "n2"})
    assert settings.cluster is not None
    assert settings.cluster.public_replicas["News"] == ("n2", "n3", "n4")
    assert settings.cluster.costs.referral_refresh == 60.0


# --- the run-time table ------------------------------------------------------------------


def public(text: str = SEED + PUBLIC, node: str = "n1") -> tuple[PublicReferrals, task.Clock]:
    """A node's PublicReferrals on a fake clock."""
    clock = task.Clock()
    return PublicReferrals.of_spec(load(text, node), clock.seconds), clock


def test_seed_scenario_order():
    """From n1 (site1): n2 (10) first, then n3 and n4 (20) in either order; a replica on
    the node itself comes first; "Public/News" and "News" name the same folder."""
    p, _ = public()
    rng = random.Random(1)
    firsts = set()
    for _ in range(40):
        servers = [(r.server, r.cost) for r in p.referrals("Public/News", rng=rng)]
        assert servers[0] == ("n2", 10) and sorted(servers[1:]) == [("n3", 20), ("n4", 20)]
        firsts.add(servers[1][0])
    assert firsts == {"n3", "n4"}  # equal costs are spread
    assert [r.server for r in p.referrals("News", from_node="n3")][0] == "n3"
    with pytest.raises(CostError, match="unknown public folder 'Sports'"):
        p.referrals("Sports")


def test_edit_invisible_until_rebuild():
    """A custom list set at run time changes nothing until referral_refresh seconds of the
    reactor clock pass (or refresh()); the spec's own model is never edited."""
    p, clock = public()
    p.set_referral("n1", "n4", 5, Role.FOLDER_ADMIN)
    assert p.pending()
    assert [r.server for r in p.referrals("News")][0] == "n2"
    clock.advance(59)
    assert [r.server for r in p.referrals("News")][0] == "n2"
    clock.advance(1)
    assert [r.server for r in p.referrals("News")] == ["n4"]  # only n4 is on n1's list
    assert not p.pending()
    p.unset_referral("n1", None, Role.CLUSTER_ADMIN)
    p.refresh()
    assert [r.server for r in p.referrals("News")][0] == "n2"
    assert load(SEED + PUBLIC).costs.custom == {}


def test_cluster_node_owns_table_on_reactor_clock():
    """ClusterNode builds .public from its spec on the reactor's clock and answers
    node.cluster.referrals / explain."""
    from twistedmail.cluster.service import ClusterNode
    from twistedmail.config import NodeSettings
    from twistedmail.node import Node

    s = load(SEED + PUBLIC, "n1")
    clock = task.Clock()
    node = Node(NodeSettings(node_name="n1", cluster=s, public_folders=["News"]), reactor=clock)
    cluster = ClusterNode(node, s, reactor=clock)
    assert node.cluster is cluster and cluster.public.table.clock == clock.seconds
    assert [r.server for r in cluster.referrals("News", rng=random.Random(0))][0] == "n2"
    whys = {r.server: r.reason for r in cluster.explain("Lists/Announce", from_node="n2")}
    assert whys == {"n1": "cost 10 (site links site2 to site1)"}
