"""Costs and referral lists (twistedmail/cluster/costs.py, referrals.py; issue 5, seed 003)."""

from __future__ import annotations

import random
import tomllib
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twistedmail.cluster.costs import (
    DEFAULT_REFRESH,
    NEVER,
    CostError,
    CostModel,
    Role,
    check_cost,
    parse_costs,
)
from twistedmail.cluster.referrals import CostTable, Referral
from twistedmail.config import ConfigError

# The seed's scenario: three sites in a row, one or two nodes each.
SEED_SITES = {"n1": "site1", "n2": "site2", "n3": "site3", "n4": "site3"}
SEED = """
[sites]
links = [["site1", "site2", 10], ["site2", "site3", 10]]
"""


class Clock:
    """A settable clock (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def model(text: str = SEED, sites: dict[str, str] | None = None) -> CostModel:
    sites = SEED_SITES if sites is None else sites
    return parse_costs(tomllib.loads(text), list(sites), sites)


def table(text: str = SEED, sites: dict[str, str] | None = None) -> CostTable:
    return CostTable(model(text, sites), Clock())


def servers(refs: list[Referral]) -> list[str]:
    return [r.server for r in refs]


def parse_error(text: str, sites: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        model(text, sites)
    return str(info.value)


# --- site costs --------------------------------------------------------------------


def test_seed_scenario_costs() -> None:
    """site1–site2 10 and site2–site3 10 give site1–site3 20 (the seed's example)."""
    snap = model().snapshot()
    assert snap.cost("n1", "n2") == 10
    assert snap.cost("n1", "n3") == 20
    assert snap.cost("n3", "n1") == 20
    assert snap.cost("n3", "n4") == 0  # same site
    assert snap.cost("n1", "n1") == 0


def test_cheapest_path_beats_direct_link() -> None:
    """A direct link dearer than a two-hop path loses to the path."""
    snap = model(SEED.replace("]]", '], ["site1", "site3", 50]]')).snapshot()
    assert snap.cost("n1", "n3") == 20
    snap = model(SEED.replace("]]", '], ["site1", "site3", 15]]')).snapshot()
    assert snap.cost("n1", "n3") == 15


def test_seed_referral_list_sorted_by_cost() -> None:
    """From n1 the list is n2 (10) before the two site3 nodes (20)."""
    refs = table().referral_list(["n2", "n3", "n4"], "n1", random.Random(1))
    assert servers(refs)[0] == "n2"
    assert set(servers(refs)[1:]) == {"n3", "n4"}
    assert [r.cost for r in refs] == [10, 20, 20]


def test_local_replica_first() -> None:
    """The answerer's own replica comes first, before a same-site replica (cost 0)."""
    refs = table().referral_list(["n1", "n3", "n4"], "n3", random.Random(1))
    assert servers(refs) == ["n3", "n4", "n1"]
    assert refs[0].reason == "local replica on n3"


def test_no_path_excluded() -> None:
    """A replica in a site with no link path is out, with the reason."""
    sites = {**SEED_SITES, "n5": "island"}
    refs = table(sites=sites).explain(["n2", "n5"], "n1", random.Random(1))
    assert [(r.server, r.included) for r in refs] == [("n2", True), ("n5", False)]
    assert refs[1].reason == "no site link path site1 to island"


def test_path_cost_500_excluded() -> None:
    """A summed path of 500 or more is never referred."""
    text = '[sites]\nlinks = [["site1", "site2", 250], ["site2", "site3", 250]]\n'
    refs = table(text).explain(["n2", "n3"], "n1", random.Random(1))
    assert [(r.server, r.cost, r.included) for r in refs] == [
        ("n2", 250, True), ("n3", 500, False)]
    assert "never referred" in refs[1].reason


def test_unknown_replica_and_from_node() -> None:
    """An unknown replica is excluded; an unknown requesting node is a clear error."""
    refs = table().explain(["n2", "zz"], "n1", random.Random(1))
    assert refs[-1] == Referral("zz", None, False, "unknown node")
    with pytest.raises(CostError, match="unknown node 'zz'"):
        table().referral_list(["n2"], "zz", random.Random(1))


# --- custom referral lists -----------------------------------------------------------

CUSTOM = SEED + '[referrals.n1]\nlist = [["n3", 5], ["n4", 500]]\n'


def test_custom_list_only_listed_servers() -> None:
    """With a custom list, only listed servers are eligible, at the listed cost."""
    refs = table(CUSTOM).explain(["n2", "n3", "n4"], "n1", random.Random(1))
    by = {r.server: r for r in refs}
    assert servers(refs) == ["n3", "n2", "n4"]
    assert by["n3"].included and by["n3"].cost == 5
    assert not by["n2"].included and by["n2"].reason == "not in n1's custom referral list"
    assert not by["n4"].included and by["n4"].cost == NEVER


def test_custom_list_applies_only_to_its_node() -> None:
    """n2 has no list: it still uses site costs."""
    refs = table(CUSTOM).referral_list(["n1", "n3"], "n2", random.Random(1))
    assert [(r.server, r.cost) for r in refs] in ([("n1", 10), ("n3", 10)],
                                                  [("n3", 10), ("n1", 10)])


def test_empty_custom_list_refers_nowhere() -> None:
    """An empty custom list leaves no remote server eligible; a local replica still is."""
    refs = table(SEED + "[referrals.n1]\nlist = []\n").referral_list(
        ["n1", "n2"], "n1", random.Random(1))
    assert servers(refs) == ["n1"]


# --- default public-folder node --------------------------------------------------------

DEFAULT = CUSTOM + '[public]\ndefault_node = {n2 = "n1"}\n'


def test_default_node_answers() -> None:
    """n2's client gets the list n1 would give: n1's custom list, n1 first if a replica."""
    t = table(DEFAULT)
    assert t.answerer("n2") == "n1" and t.answerer("n3") == "n3"
    assert servers(t.referral_list(["n2", "n3"], "n2", random.Random(1))) == ["n3"]
    assert servers(t.referral_list(["n1", "n3"], "n2", random.Random(1))) == ["n1", "n3"]


# --- role limits -------------------------------------------------------------------------


@pytest.mark.parametrize("role, cost, ok", [
    (Role.FOLDER_ADMIN, 1, True), (Role.FOLDER_ADMIN, 100, True),
    (Role.FOLDER_ADMIN, 0, False), (Role.FOLDER_ADMIN, 101, False),
    (Role.CLUSTER_ADMIN, 1, True), (Role.CLUSTER_ADMIN, 500, True),
    (Role.CLUSTER_ADMIN, 0, False), (Role.CLUSTER_ADMIN, 501, False),
    (Role.CLUSTER_ADMIN, -3, False), (Role.CLUSTER_ADMIN, 5.0, False),
    (Role.CLUSTER_ADMIN, True, False), (Role.CLUSTER_ADMIN, "10", False),
])
def test_cost_limits_by_role(role: Role, cost: Any, ok: bool) -> None:
    """Folder administrators set 1-100, cluster administrators 1-500; nothing else."""
    if ok:
        assert check_cost(cost, role) == cost
    else:
        with pytest.raises(CostError) as info:
            check_cost(cost, role)
        text = str(info.value)
        assert "\n" not in text and role.value in text and f"1-{role.limit}" in text


def test_error_texts() -> None:
    """The one-line texts name the cost, the limit and the role."""
    with pytest.raises(CostError, match=r"^cost 150: out of range; a folder administrator "
                                        r"may set 1-100$"):
        check_cost(150, "folder")
    with pytest.raises(CostError, match="role 'user' may not set costs"):
        check_cost(10, "user")


def test_edits_check_role() -> None:
    """set_referral / set_link refuse out-of-range costs and leave the model unchanged."""
    m = model()
    m.set_referral("n1", "n2", 100, "folder")
    with pytest.raises(CostError, match="folder administrator may set 1-100"):
        m.set_referral("n1", "n3", 101, Role.FOLDER_ADMIN)
    assert m.custom == {"n1": {"n2": 100}}
    m.set_link("site1", "site3", 500, "cluster")
    with pytest.raises(CostError, match="cluster administrator may set 1-500"):
        m.set_link("site1", "site2", 501, "cluster")
    assert m.links[("site1", "site2")] == 10


def test_folder_admin_cannot_undo_cluster_admin_exclusion() -> None:
    """An entry a cluster administrator set above 100 is out of a folder admin's reach."""
    m = model(CUSTOM)
    with pytest.raises(CostError, match="n1's entry n4 costs 500"):
        m.set_referral("n1", "n4", 5, "folder")
    with pytest.raises(CostError, match="costs 500"):
        m.unset_referral("n1", "n4", "folder")
    m.unset_referral("n1", "n4", "cluster")
    assert m.custom["n1"] == {"n3": 5}
    m.unset_referral("n1", None, "folder")
    assert "n1" not in m.custom


def test_edit_unknown_names() -> None:
    """Unknown nodes and sites, self-listing and self-links are refused."""
    m = model()
    for call, text in [
        (lambda: m.set_referral("n1", "n9", 5, "cluster"), "unknown node 'n9'"),
        (lambda: m.set_referral("n1", "n1", 5, "cluster"), "cannot list itself"),
        (lambda: m.set_link("site1", "mars", 5, "cluster"), "unknown site 'mars'"),
        (lambda: m.set_link("site1", "site1", 5, "cluster"), "two different sites"),
        (lambda: m.unset_link("site1", "site3", "cluster"), "no site link site1-site3"),
        (lambda: m.unset_referral("n2", None, "cluster"), "n2 has no custom referral list"),
    ]:
        with pytest.raises(CostError, match=text):
            call()


# --- spread among equal costs ------------------------------------------------------------


def test_equal_costs_spread_evenly() -> None:
    """Over 1,000 requests two equal-cost replicas each come first 50% ± 5%."""
    t = table()
    rng = random.Random(20261122)
    firsts = Counter(t.referral_list(["n3", "n4", "n2"], "n1", rng)[1].server
                     for _ in range(1000))
    assert set(firsts) == {"n3", "n4"}
    firsts = Counter(t.referral_list(["n3", "n4"], "n1", rng)[0].server for _ in range(1000))
    assert 450 <= firsts["n3"] <= 550 and 450 <= firsts["n4"] <= 550


def test_local_replica_never_shuffled() -> None:
    """The local replica stays first on every request even with a same-site tie."""
    t = table()
    rng = random.Random(7)
    assert {t.referral_list(["n3", "n4"], "n3", rng)[0].server for _ in range(200)} == {"n3"}


# --- refresh interval ----------------------------------------------------------------------


def test_changes_invisible_until_refresh_interval() -> None:
    """A cost change is not seen before referral_refresh seconds have passed."""
    m = model(SEED + "[public]\nreferral_refresh = 60\n")
    clock = Clock()
    t = CostTable(m, clock)
    m.set_link("site1", "site3", 5, "cluster")
    clock.now += 59
    assert t.referral_list(["n2", "n3"], "n1", random.Random(1))[0].server == "n2"
    clock.now += 1
    assert t.referral_list(["n2", "n3"], "n1", random.Random(1))[0].server == "n3"
    assert t.next_refresh == clock.now + 60


def test_refresh_forces_rebuild() -> None:
    """refresh() makes a custom-list change visible at once."""
    m = model()
    t = CostTable(m, Clock())
    m.set_referral("n1", "n3", 1, "folder")
    assert servers(t.referral_list(["n2", "n3"], "n1", random.Random(1))) == ["n2", "n3"]
    t.refresh()
    assert servers(t.referral_list(["n2", "n3"], "n1", random.Random(1))) == ["n3"]


def test_default_refresh_is_an_hour() -> None:
    """Without referral_refresh the table rebuilds hourly (the seed's interval)."""
    assert model().referral_refresh == DEFAULT_REFRESH == 3600.0
    assert table().interval == 3600.0


# --- config parsing -------------------------------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ("sites = 3", "sites: must be a table"),
    ("[sites]\nlink = []", "sites.link: unknown key (known: links, transit)"),
    ("[sites]\nlinks = 3", "sites.links: must be a list"),
    ('[sites]\nlinks = [["site1", "site2"]]',
     'sites.links[0]: must be ["site_a", "site_b", cost], got'),
    ('[sites]\nlinks = [["site1", "site2", 501]]',
     "sites.links[0]: cost 501: out of range; a cluster administrator may set 1-500"),
    ('[sites]\nlinks = [["site1", "site2", 0]]', "sites.links[0]: cost 0: out of range"),
    ('[sites]\nlinks = [["site1", "stie2", 5]]', "sites.links[0]: unknown site 'stie2'"),
    ('[sites]\nlinks = [["site1", "site2", 5], ["site2", "site1", 6]]',
     "sites.links[1]: the link site2-site1 is listed twice"),
    ('[referrals.n9]\nlist = []', "referrals.n9: unknown node 'n9'"),
    ('[referrals.n1]\nlist = [["n2", 5], ["n2", 6]]',
     "referrals.n1.list[1]: n2 is listed twice"),
    ('[referrals.n1]\nlist = [["n2", 101.5]]',
     "referrals.n1.list[0]: cost 101.5: must be an integer"),
    ('[referrals.n1]\nlist = [["n1", 5]]', "referrals.n1.list[0]: n1 cannot list itself"),
    ('[referrals.n1]\nlisst = []', "referrals.n1.lisst: unknown key (known: list)"),
    ('[public]\ndefault_node = {n1 = "n7"}', "public.default_node.n1: unknown node 'n7'"),
    ('[public]\nreferral_refresh = 0', "public.referral_refresh: must be a positive number"),
])
def test_config_errors(text: str, message: str) -> None:
    """Each bad value is one ConfigError line starting with the key at fault."""
    error = parse_error(text)
    assert error.startswith(message) and "\n" not in error


def test_config_full_shape() -> None:
    """The proposed TOML shape parses into the model; other [public] keys are left alone."""
    m = model("""
[sites]
links = [["site1", "site2", 10], ["site2", "site3", 10]]
transit = ["hub"]
[referrals.n1]
list = [["n2", 5], ["n3", 50]]
[public]
folders = ["Public/News"]
default_node = {n4 = "n3"}
referral_refresh = 2.5
""")
    assert m.links == {("site1", "site2"): 10, ("site2", "site3"): 10}
    assert m.transit == {"hub"} and m.custom == {"n1": {"n2": 5, "n3": 50}}
    assert m.default_node == {"n4": "n3"} and m.referral_refresh == 2.5


def test_transit_site_carries_paths() -> None:
    """A site with no node (transit) may carry links between node sites."""
    sites = {"a": "east", "b": "west"}
    text = '[sites]\ntransit = ["hub"]\nlinks = [["east", "hub", 7], ["hub", "west", 8]]\n'
    assert model(text, sites).snapshot().cost("a", "b") == 15


# --- properties ---------------------------------------------------------------------------

SITES = ["s0", "s1", "s2", "s3", "s4"]
links_st = st.dictionaries(
    st.tuples(st.sampled_from(SITES), st.sampled_from(SITES)).filter(lambda p: p[0] < p[1]),
    st.integers(1, 500), max_size=10)
nodes_st = st.dictionaries(st.sampled_from([f"n{i}" for i in range(7)]),
                           st.sampled_from(SITES), min_size=1)


def build(nodes: dict[str, str], links: dict[tuple[str, str], int]) -> CostModel:
    m = CostModel(node_sites=dict(nodes), transit=set(SITES))
    for (a, b), cost in links.items():
        m.set_link(a, b, cost, "cluster")
    return m


@given(nodes_st, links_st)
def test_site_costs_symmetric_and_triangle(nodes: dict[str, str],
                                           links: dict[tuple[str, str], int]) -> None:
    """Computed costs are symmetric and obey the triangle inequality."""
    snap = build(nodes, links).snapshot()
    for a in nodes:
        for b in nodes:
            assert snap.cost(a, b) == snap.cost(b, a)
            for c in nodes:
                ab, bc, ac = snap.cost(a, b), snap.cost(b, c), snap.cost(a, c)
                if ab is not None and bc is not None:
                    assert ac is not None and ac <= ab + bc


@given(nodes_st, links_st, st.data())
def test_referral_list_sorted(nodes: dict[str, str], links: dict[tuple[str, str], int],
                              data: st.DataObject) -> None:
    """The list is local-first then non-decreasing in cost, all below 500, all replicas."""
    t = CostTable(build(nodes, links), Clock())
    names = sorted(nodes)
    replicas = data.draw(st.sets(st.sampled_from(names)))
    origin = data.draw(st.sampled_from(names))
    refs = t.explain(replicas, origin, random.Random(data.draw(st.integers(0, 99))))
    ins = [r for r in refs if r.included]
    assert {r.server for r in refs} == replicas
    assert refs[:len(ins)] == ins
    costs = [r.cost for r in ins if r.server != origin]
    assert all(c is not None and c < NEVER for c in costs)
    assert costs == sorted(costs)  # type: ignore[type-var]
    if origin in replicas:
        assert ins[0].server == origin
