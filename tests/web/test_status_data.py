"""status_data and the status page's HTML on the seed layout (issue 6 item 5), in process:
n1, n2, n3 in site1..site3 (links 10, 10), Public/News on n2 and n3 (tests/cluster/seed.py).
Nothing listens: the ClusterNode is built on a task.Clock and never started; its membership
is fed by hand.  The page in a real browser: tests/web/test_status_page.py."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import task
from twisted.web.test.requesthelper import DummyRequest

from tests.cluster.seed import SEED_CONFIG
from twistedmail.cluster.costs import Role
from twistedmail.cluster.service import ClusterNode
from twistedmail.config import NodeSettings, settings_from
from twistedmail.node import Node
from twistedmail.web.status import StatusJSON, StatusPage, status_data
from twistedmail.web.status_html import render_page

NODES = "".join(f'[[node]]\nname = "n{i}"\nuidvalidity_root = {i}\nsite = "site{i}"\n'
                f'cluster = "tcp:{47000 + i}:interface=127.0.0.1"\n\n' for i in (1, 2, 3))
CONFIG = '[cluster]\nsecret = "s"\n\n' + NODES + '[users]\nalice = "secret"\n' + SEED_CONFIG
SVG = re.compile(r"<svg .*?</svg>", re.S)


@pytest.fixture
def seed(tmp_path: Path) -> tuple[Node, ClusterNode, task.Clock]:
    """Node n1 of the seed layout with its (unstarted) ClusterNode on a fake clock."""
    path = tmp_path / "cluster.toml"
    path.write_text(CONFIG)
    settings = settings_from({"config": str(path), "node": "n1"})
    clock = task.Clock()
    node = Node(settings, reactor=clock)
    return node, ClusterNode(node, settings.cluster, reactor=clock), clock


def by_name(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["name"]: n for n in data["nodes"]}


def test_seed_nodes_sites_links_and_roots(seed: tuple[Node, ClusterNode, task.Clock]) -> None:
    """Every node with its site, cluster address and root; sites and link costs of the model."""
    data = status_data(seed[0])
    nodes = by_name(data)
    assert (data["node"], data["mode"]) == ("n1", "cluster")
    assert list(nodes) == ["n1", "n2", "n3"]
    assert {n: v["site"] for n, v in nodes.items()} == {f"n{i}": f"site{i}" for i in (1, 2, 3)}
    assert {n: v["root"] for n, v in nodes.items()} == {"n1": 1, "n2": 2, "n3": 3}
    assert nodes["n2"]["address"] == "127.0.0.1:47002"
    assert [n for n, v in nodes.items() if v["self"]] == ["n1"]
    assert data["sites"] == {"site1": ["n1"], "site2": ["n2"], "site3": ["n3"]}
    assert data["links"] == [{"a": "site1", "b": "site2", "cost": 10},
                             {"a": "site2", "b": "site3", "cost": 10}]


def test_states_and_lag_as_membership_sees_them(
        seed: tuple[Node, ClusterNode, task.Clock]) -> None:
    """Never heard: down; heard: up; silent past suspect_after: suspect; lag counts own
    changes a peer has not confirmed; a root presented at Hello wins over the config's."""
    node, cluster, clock = seed
    assert {n["name"]: n["state"] for n in status_data(node)["nodes"]} == \
        {"n1": "up", "n2": "down", "n3": "down"}
    cluster.membership.heard("n2", vv={})
    cluster.membership.identify("n3", "n3~x", 7)
    assert by_name(status_data(node))["n2"]["lag"] == 0
    cluster.replica.reserve(10)  # one own change no peer has seen
    clock.advance(cluster.spec.suspect_after + 0.01)
    cluster.membership.tick()
    nodes = by_name(status_data(node))
    assert [nodes[n]["state"] for n in ("n2", "n3")] == ["suspect", "down"]
    assert (nodes["n2"]["lag"], nodes["n3"]["lag"], nodes["n1"]["lag"]) == (1, 1, None)
    assert (nodes["n3"]["root"], nodes["n3"]["configured_root"]) == (7, 3)


def test_seed_referral_order_from_each_node(seed: tuple[Node, ClusterNode, task.Clock]) -> None:
    """Public/News from n1: n2 (10) then n3 (20); n2 and n3 list their own replica first."""
    (news,) = status_data(seed[0])["public"]
    assert (news["mailbox"], news["replicas"]) == ("Public/News", ["n2", "n3"])
    order = {n: [(r["server"], r["cost"], r["rank"]) for r in a["order"]]
             for n, a in news["from"].items()}
    assert order == {"n1": [("n2", 10, 1), ("n3", 20, 2)],
                     "n2": [("n2", 0, 1), ("n3", 10, 2)],
                     "n3": [("n3", 0, 1), ("n2", 10, 2)]}
    assert all(not a["excluded"] and a["answerer"] == n for n, a in news["from"].items())


def test_equal_costs_share_a_rank_and_edits_wait_for_the_rebuild(
        seed: tuple[Node, ClusterNode, task.Clock]) -> None:
    """A site1–site3 link of 10 shows only after a rebuild; then n2 and n3 tie from n1."""
    node, cluster, _clock = seed
    cluster.public.set_link("site1", "site3", 10, Role.CLUSTER_ADMIN)
    data = status_data(node)
    assert data["referral_table"]["pending"] is True
    assert [r["cost"] for r in data["public"][0]["from"]["n1"]["order"]] == [10, 20]
    cluster.public.refresh()
    order = status_data(node)["public"][0]["from"]["n1"]["order"]
    assert [(r["server"], r["rank"], r["tied"]) for r in order] == \
        [("n2", 1, True), ("n3", 1, True)]


def test_cost_500_is_listed_as_excluded(seed: tuple[Node, ClusterNode, task.Clock]) -> None:
    """A replica at cost >= 500 is not in the order but listed as excluded with the reason."""
    node, cluster, _clock = seed
    cluster.public.set_link("site2", "site3", 500, Role.CLUSTER_ADMIN)
    cluster.public.refresh()
    answer = status_data(node)["public"][0]["from"]["n2"]
    assert [r["server"] for r in answer["order"]] == ["n2"]
    assert [r["server"] for r in answer["excluded"]] == ["n3"]
    assert "never referred" in answer["excluded"][0]["reason"]


def test_single_node_mode_is_one_node_one_site() -> None:
    """Without a cluster: this node alone, site "default", no links, its folders local."""
    node = Node(NodeSettings(node_name="solo", uidvalidity_root=9, public_folders=["News"]),
                reactor=task.Clock())
    data = status_data(node)
    assert (data["mode"], data["links"], data["sites"]) == ("single", [], {"default": ["solo"]})
    (me,) = data["nodes"]
    assert (me["name"], me["state"], me["root"], me["self"]) == ("solo", "up", 9, True)
    assert [r["server"] for r in data["public"][0]["from"]["solo"]["order"]] == ["solo"]
    assert json.loads(json.dumps(data)) == data


def test_page_draws_every_node_with_its_state(
        seed: tuple[Node, ClusterNode, task.Clock]) -> None:
    """The page's SVG is well-formed and has one shape per node (data-state), each site, each
    link with its cost; the roots table and the referral chips name every node."""
    node, cluster, _clock = seed
    cluster.membership.heard("n2", vv={})
    page = render_page(status_data(node), refresh=7)
    svg = ET.fromstring(SVG.findall(page)[0])
    ns = "{http://www.w3.org/2000/svg}"
    shapes = {g.get("data-node"): g.get("data-state") for g in svg.iter(f"{ns}g")
              if g.get("data-node")}
    assert shapes == {"n1": "up", "n2": "up", "n3": "down"}
    assert {g.get("data-site") for g in svg.iter(f"{ns}g") if g.get("data-site")} == \
        {"site1", "site2", "site3"}
    links = {(g.get("data-a"), g.get("data-b"), g.get("data-cost"))
             for g in svg.iter(f"{ns}g") if g.get("class") == "link"}
    assert links == {("site1", "site2", "10"), ("site2", "site3", "10")}
    assert '<meta http-equiv="refresh" content="7">' in page
    assert all(f'<tr data-node="n{i}">' in page for i in (1, 2, 3))
    assert page.count('<span class="chip ') == 6
    assert not re.search(r"<script|<link|<img|src=|url\(", page)  # no external asset


def test_names_are_escaped() -> None:
    """A folder name with markup characters is shown escaped, never as markup."""
    node = Node(NodeSettings(public_folders=["<b>&co"]), reactor=task.Clock())
    page = render_page(status_data(node), refresh=0)
    assert "<b>&co" not in page and "&lt;b&gt;&amp;co" in page
    assert "http-equiv" not in page


def render(resource: Any, path: bytes = b"", args: dict[bytes, list[bytes]] | None = None
           ) -> tuple[int, str, bytes]:
    request = DummyRequest([path] if path else [])
    request.args = args or {}
    body = resource.render(request)
    kind = request.responseHeaders.getRawHeaders(b"content-type")[0].decode()
    return request.responseCode or 200, kind, body


def test_resources_answer_html_json_404_and_500(
        seed: tuple[Node, ClusterNode, task.Clock]) -> None:
    """StatusPage gives HTML (?refresh honoured, bad values default), StatusJSON the data,
    a path below them 404, and a failing node a 500 with one line and no traceback."""
    node = seed[0]
    code, kind, body = render(StatusPage(node), args={b"refresh": [b"0"]})
    assert (code, kind) == (200, "text/html; charset=utf-8") and b"http-equiv" not in body
    assert b'content="5"' in render(StatusPage(node), args={b"refresh": [b"x"]})[2]
    code, kind, body = render(StatusJSON(node))
    assert (code, kind) == (200, "application/json")
    assert json.loads(body) == json.loads(json.dumps(status_data(node)))
    assert render(StatusPage(node), b"extra")[0] == 404
    broken = Node(NodeSettings(), reactor=task.Clock())
    broken.store = None  # status_data now fails
    code, _kind, body = render(StatusPage(broken))
    assert code == 500 and b"Traceback" not in body and body.count(b"\n") == 1


def test_node_table_http_wins_over_the_http_section(tmp_path: Path) -> None:
    """``[[node]] http`` gives each node its own listener; ``[http] listen`` is the default."""
    path = tmp_path / "cluster.toml"
    path.write_text(CONFIG.replace('name = "n2"\n', 'name = "n2"\nhttp = ["tcp:0"]\n')
                    + '\n[http]\nlisten = ["tcp:8080"]\n')
    assert settings_from({"config": str(path), "node": "n2"}).http_endpoints == ["tcp:0"]
    assert settings_from({"config": str(path), "node": "n1"}).http_endpoints == ["tcp:8080"]
