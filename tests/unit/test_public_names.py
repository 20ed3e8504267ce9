"""Public-folder names and placement (issue 5, contract A): namespaces.resolve /
client_name / is_public_owner / directory, ClusterSpec placement of "#public:F",
referrals.remote_public and the public folders a node creates at start."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from twisted.internet import task

from twistedmail.cluster import spec as cluster_spec
from twistedmail.config import ConfigError, NodeSettings
from twistedmail.imap import namespaces as ns
from twistedmail.imap import referrals
from twistedmail.node import Node

FOLDERS = ["News", "Lists/Announce", "Everywhere"]


def _cfg(**extra: Any) -> dict[str, Any]:
    nodes = [{"name": f"n{i}", "uidvalidity_root": i, "cluster": f"tcp:{7000 + i}"}
             for i in (1, 2, 3)]
    return {"cluster": {"secret": "s"}, "node": nodes,
            "public": {"folders": FOLDERS,
                       "replicas": {"News": ["n2", "n3"], "Lists/Announce": ["n1"]}},
            **extra}


def _spec(node: str = "n1") -> Any:
    loaded = cluster_spec.load(_cfg(), node)
    assert loaded is not None
    return loaded


def _session(spec: Any, user: str = "alice", admins: tuple[str, ...] = (),
             rights: str = "lr") -> Any:
    settings = SimpleNamespace(cluster=spec, admins=admins, public_rights=rights,
                               public_folders=FOLDERS)
    return SimpleNamespace(node=SimpleNamespace(settings=settings), user=user,
                           username=user, referral_aware=False)


def _box(user: str, name: str) -> Any:
    return SimpleNamespace(user=user, name=name)


@pytest.mark.parametrize("name, owner, local", [
    ("Public/News", "#public:News", "News"),
    ("Public/News/Sub/Deep", "#public:News", "News/Sub/Deep"),
    ("Public/Newsletter", "#public", "Newsletter"),
    ("Public/Lists", "#public", "Lists"),
    ("Public/Lists/Announce/x", "#public:Lists/Announce", "Lists/Announce/x"),
    ("Public/Misc", "#public", "Misc"),
    ("Public", "#public", ""),
    ("Other Users/#public:News/News", "#public", ""),
    ("Other Users/bob/Work", "bob", "Work"),
    ("INBOX", "alice", "INBOX"),
])
def test_resolve_in_cluster_mode(name: str, owner: str, local: str) -> None:
    """A configured folder and everything below it resolve to "#public:F" (longest F);
    other public names to "#public"; pseudo-accounts are not reachable via Other Users."""
    assert ns.resolve(_session(_spec()), name) == (owner, local)


def test_resolve_single_node_keeps_public() -> None:
    """Single-node mode: every public name, configured or not, stays in "#public"."""
    session = _session(None)
    assert ns.resolve(session, "Public/News/Sub") == ("#public", "News/Sub")
    assert ns.resolve(session, "Public/Misc") == ("#public", "Misc")


@pytest.mark.parametrize("owner, name, client", [
    ("#public:News", "News/Sub", "Public/News/Sub"),
    ("#public", "Misc", "Public/Misc"),
    ("bob", "Work", "Other Users/bob/Work"),
    ("alice", "Drafts", "Drafts"),
])
def test_client_name_inverts_resolve(owner: str, name: str, client: str) -> None:
    """client_name gives "Public/" + name for any public owner, and resolve maps it back."""
    session = _session(_spec())
    assert ns.client_name(session, _box(owner, name)) == client
    assert ns.resolve(session, client) == (owner, name)


def test_is_public_owner() -> None:
    """"#public" and "#public:*" are public owners; users and look-alikes are not."""
    assert ns.is_public_owner("#public") and ns.is_public_owner("#public:News")
    assert not ns.is_public_owner("alice") and not ns.is_public_owner("#publicity")


def test_spec_places_public_accounts_on_replicas() -> None:
    """holders("#public:F") is F's replica list; an unlisted folder is on every node."""
    s = _spec("n1")
    assert s.holders("#public:News") == ("n2", "n3")
    assert s.holders("#public:Lists/Announce") == ("n1",)
    assert s.holders("#public:Everywhere") == ("n1", "n2", "n3")
    assert s.holders("#public") == ("n1", "n2", "n3")
    assert not s.holds("#public:News") and s.holds("#public:News", "n2")


def test_accounts_may_not_name_pseudo_accounts() -> None:
    """[accounts] refuses a name starting with "#" (public placement comes from config)."""
    with pytest.raises(ConfigError, match="accounts: '#public:News': names starting"):
        cluster_spec.load(_cfg(accounts={"#public:News": ["n1"]}), "n1")


def test_directory_lists_remote_folders_to_those_allowed() -> None:
    """n1 holds no replica of News: its directory entry is shown to admins, and to all when
    public_rights has "l"; never on a replica, never in single-node mode."""
    assert ns.directory(_session(_spec("n1"))) == ["Public/News"]
    assert ns.directory(_session(_spec("n1"), rights="r")) == []
    assert ns.directory(_session(_spec("n1"), admins=("alice",), rights="")) == ["Public/News"]
    assert ns.directory(_session(_spec("n2"))) == ["Public/Lists/Announce"]
    assert ns.directory(_session(None)) == []


def test_remote_public() -> None:
    """remote_public names the configured folder only where this node holds no replica."""
    n1, n2 = _session(_spec("n1")), _session(_spec("n2"))
    assert referrals.remote_public(n1, "Public/News/Sub") == "News"
    assert referrals.remote_public(n2, "Public/News/Sub") is None
    assert referrals.remote_public(n1, "Public/Misc") is None
    assert referrals.remote_public(n1, "INBOX") is None
    assert referrals.remote_public(_session(None), "Public/News") is None


def test_configured_conflict() -> None:
    """A configured folder and its superiors are config-made; folders below are not."""
    session = _session(_spec())
    assert ns.configured_conflict(session, "#public:News", "News")
    assert ns.configured_conflict(session, "#public", "Lists")
    assert not ns.configured_conflict(session, "#public:News", "News/Sub")
    assert not ns.configured_conflict(session, "alice", "News")


def _node(name: str) -> Node:
    s = _spec(name)
    settings = NodeSettings(node_name=name, uidvalidity_root=s.me.root, cluster=s,
                            public_folders=list(FOLDERS), admins=["root"],
                            users={"root": "pw"})
    node = Node(settings, reactor=task.Clock())
    node.create_accounts()
    return node


def test_node_creates_public_accounts_only_on_replicas() -> None:
    """At start n1 makes "#public" and the accounts of folders it replicates, with
    anyone=public_rights; "#public:News" (n2, n3) is not made there."""
    users = set(_node("n1").store.users())
    assert {"#public", "#public:Lists/Announce", "#public:Everywhere"} <= users
    assert "#public:News" not in users
    n2 = _node("n2")
    assert "#public:Lists/Announce" not in n2.store.users()
    news = n2.store.mailbox("#public:News", "News")
    assert news.acl == {"anyone": "lr"}
    assert not any(m.name == "News" for m in n2.store.mailboxes("#public"))


def test_single_node_keeps_public_folders_in_public() -> None:
    """Single-node mode: configured folders are created in "#public" as before."""
    node = Node(NodeSettings(public_folders=["News"]), reactor=task.Clock())
    assert not any(u.startswith("#public:") for u in node.store.users())
    assert node.store.mailbox("#public", "News").acl == {"anyone": "lr"}


def test_visible_shows_each_public_folder_under_its_own_name() -> None:
    """An admin on n1 sees Public/Lists/Announce once, and not the superior "Lists" that
    CREATE made inside "#public:Lists/Announce" (it is not that account's folder)."""
    node = _node("n1")
    session = SimpleNamespace(node=node, store=node.store, user="root", username="root")
    seen = [(name, box.user) for name, box in ns.visible(session)  # type: ignore[arg-type]
            if name.startswith("Public/")]
    assert sorted(seen) == [("Public/Everywhere", "#public:Everywhere"),
                            ("Public/Lists/Announce", "#public:Lists/Announce")]
