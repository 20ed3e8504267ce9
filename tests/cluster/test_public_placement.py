"""Per-folder placement of public folders on a real 3-node cluster (issue 5, contract A).

Seed layout (tests/cluster/seed.py): public folder News has replicas n2 and n3 only, so it
lives in pseudo-account "#public:News" on those two; n1 keeps only its directory entry.
What each node's store holds is read through the admin channel (``clustermail status
--json``), never guessed from timing: writes are waited for on n3, and n1 is inspected
only once n2 reports that n1 has seen (and ignored) every op n2 made (lag 0)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.admin.cluster_admin import status
from tests.cluster.seed import SEED_CONFIG as EXTRA
from tests.cluster.seed import seed_cluster
from twistedmail.testing.cluster import Cluster
from twistedmail.testing.script import ImapScript

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
USERS = {"alice": "secret", "root": "rootpw"}
NEWS = "#public:News"
CANNOT = b"NO [CANNOT] configured public folder; change [public] in the config"
WAIT = 30.0  # seconds: upper bound of every wait below
TRIES = 200  # ... and of its number of polls


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """n1..n3 in sites 1..3, IMAP on reserved fixed ports, admin "root" on every node."""
    with seed_cluster(tmp_path_factory.mktemp("placement"), USERS, EXTRA,
                      node_extra={"admins": ["root"]}) as c:
        yield c


def _script(c: Cluster, node: str, user: str = "root") -> ImapScript:
    s = ImapScript(*c.imap(node))
    s.login(user, USERS[user])
    return s


def _wait(what: str, check: Callable[[], Any]) -> Any:
    """Poll ``check`` until it returns something truthy; bounded in tries and time."""
    deadline = time.monotonic() + WAIT
    for _ in range(TRIES):
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            break
        time.sleep(0.15)
    raise AssertionError(f"timed out waiting for {what}")


def _folders(c: Cluster, node: str, account: str) -> dict[str, int] | None:
    """Folder -> message count of ``account`` on ``node`` (None: no such account)."""
    accounts = status(c, node)["accounts"]
    if account not in accounts:
        return None
    return {f["name"]: int(f["messages"]) for f in accounts[account]["folders"]}


def _n1_caught_up(c: Cluster) -> None:
    """Wait until n2 reports n1 (and n3) have every op n2 made: n1 saw them all."""
    def done() -> bool:
        members = status(c, "n2")["members"]
        return all(members[n]["lag"] == 0 for n in ("n1", "n3"))
    _wait("n1 and n3 to have every op of n2", done)


def _list_rows(result: Any) -> list[bytes]:
    return [line for line in result.untagged if line.startswith(b"* LIST ")]


def test_news_account_only_on_its_replicas(cluster: Cluster) -> None:
    """At start n2 and n3 hold "#public:News" with mailbox News; n1 holds "#public" only."""
    for node in ("n2", "n3"):
        folders = _folders(cluster, node, NEWS)
        assert folders is not None and "News" in folders, (node, folders)
    assert _folders(cluster, "n1", NEWS) is None
    for node in ("n1", "n2", "n3"):
        assert "News" not in (_folders(cluster, node, "#public") or {}), node


def test_writes_on_n2_reach_n3_and_never_n1(cluster: Cluster) -> None:
    """APPEND, STORE and CREATE of a subfolder on n2's Public/News reach n3; once n1 has
    seen every op of n2, its store still has no "#public:News" nor any of that mail."""
    body = b"Subject: placement\r\n\r\nonly on n2 and n3\r\n"
    with _script(cluster, "n2") as s:
        s.ok('CREATE "Public/News/Sub"')
        s.ok(f'APPEND "Public/News" {{{len(body)}}}', body)
        s.ok('SELECT "Public/News"')
        s.ok("STORE 1 +FLAGS (\\Flagged)")

    def on_n3() -> bool:
        folders = _folders(cluster, "n3", NEWS) or {}
        return folders.get("News") == 1 and "News/Sub" in folders

    def flagged_on_n3() -> bool:
        seen = cluster.messages("n3", "root", "Public/News").values()
        return any("\\Flagged" in flags for _, flags in seen)

    _wait("n3 to have News/Sub and the message", on_n3)
    _wait("the flag on n3", flagged_on_n3)
    _n1_caught_up(cluster)
    assert _folders(cluster, "n1", NEWS) is None
    public = _folders(cluster, "n1", "#public") or {}
    assert not any(name.startswith("News") for name in public), public
    assert sum(public.values()) == 0, public


def test_list_on_n1_shows_the_directory_entry(cluster: Cluster) -> None:
    """LIST on n1 shows Public/News with no \\NonExistent nor child attribute; SUBSCRIBE
    is allowed there; LSUB and LIST-EXTENDED (SUBSCRIBED) then show it too."""
    with _script(cluster, "n1", "alice") as s:
        rows = _list_rows(s.ok('LIST "" "Public/*"'))
        assert rows.count(b'* LIST () "/" "Public/News"') == 1, rows
        s.ok('SUBSCRIBE "Public/News"')
        lsub = s.ok('LSUB "" "Public/*"').matching(rb"^\* LSUB ")
        assert lsub == [b'* LSUB () "/" "Public/News"'], lsub
        ext = _list_rows(s.ok('LIST (SUBSCRIBED) "" "Public/*" RETURN (CHILDREN)'))
        assert ext == [b'* LIST (\\Subscribed) "/" "Public/News"'], ext
        s.ok('UNSUBSCRIBE "Public/News"')


def test_rlist_on_n1_shows_news_once(cluster: Cluster) -> None:
    """RLIST on n1 names Public/News exactly once (LIST's directory entry, not again)."""
    with _script(cluster, "n1", "alice") as s:
        rows = _list_rows(s.ok('RLIST "" "*"'))
        news = [r for r in rows if re.search(rb'"/" "?Public/News"?$', r)]
        assert len(news) == 1, rows


def test_rename_and_delete_of_configured_folder_refused(cluster: Cluster) -> None:
    """On replica n2 (admin): RENAME of Public/News, into it and out of it, and DELETE of
    it answer NO [CANNOT]; a subfolder renames and deletes by the normal rules."""
    with _script(cluster, "n2") as s:
        s.ok('CREATE "Public/News/Old"')
        s.ok('CREATE "Public/Loose"')
        for line in ('RENAME "Public/News" "Public/Gazette"',
                     'RENAME "Public/News/Old" "Public/Old"',
                     'RENAME "Public/Loose" "Public/News/Loose"',
                     'DELETE "Public/News"'):
            assert s.no(line).tagged.endswith(CANNOT), line
        s.ok('RENAME "Public/News/Old" "Public/News/Older"')
        s.ok('DELETE "Public/News/Older"')
        s.ok('DELETE "Public/Loose"')
        rows = _list_rows(s.ok('LIST "" "Public/*"'))
        assert any(r.endswith(b'"/" "Public/News"') for r in rows), rows
        assert not any(b"Older" in r or b"Loose" in r for r in rows), rows


def test_create_under_news_on_n1_refused(cluster: Cluster) -> None:
    """CREATE Public/News/X on non-replica n1 (admin, no RLIST): NO [CANNOT], nothing made."""
    with _script(cluster, "n1") as s:
        no = s.no('CREATE "Public/News/X"').tagged
        assert b"[CANNOT]" in no and b"not on this node" in no, no
    assert _folders(cluster, "n1", NEWS) is None


def test_unconfigured_public_folder_reaches_every_node(cluster: Cluster) -> None:
    """Public/Misc, created by an admin on n1, is in "#public" and reaches n2 and n3."""
    with _script(cluster, "n1") as s:
        s.ok('CREATE "Public/Misc"')
    for node in ("n1", "n2", "n3"):
        _wait(f"Public/Misc on {node}",
              lambda node=node: "Misc" in (_folders(cluster, node, "#public") or {}))
        assert "Misc" not in (_folders(cluster, node, NEWS) or {}), node
