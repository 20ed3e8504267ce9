"""RFC 2193 MAILBOX-REFERRALS and RFC 2221 LOGIN-REFERRALS on a real 3-node cluster
(issue 5 item 4, twistedmail/imap/referrals.py).

Public folder "News" has replicas on n2 and n3 only; sites site1–site2 10, site2–site3 10
put n2 (10) before n3 (20) as seen from n1.  bob's mail file lives on n2 and n3 only.
IMAP ports are fixed in the config, so each node knows where the others listen."""

from __future__ import annotations

import re
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from tests.cluster.seed import SEED_CONFIG as EXTRA
from tests.cluster.seed import seed_cluster
from twistedmail.client import Client
from twistedmail.imap import referrals
from twistedmail.imap.imapurl import parse_url
from twistedmail.testing.cluster import Cluster
from twistedmail.testing.script import ImapScript

pytestmark = [pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::DeprecationWarning:imaplib2")]
USERS = {"alice": "secret", "bob": "hunter2"}
_REFERRAL = re.compile(rb"\[REFERRAL ([^\]]+)\]")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One cluster for the module; IMAP on reserved fixed ports (n1..n3 in sites 1..3)."""
    with seed_cluster(tmp_path_factory.mktemp("referrals"), USERS, EXTRA,
                      accounts={"bob": ["n2", "n3"]}) as c:
        yield c


def _script(c: Cluster, node: str, user: str = "alice") -> ImapScript:
    s = ImapScript(*c.imap(node))
    s.login(user, USERS[user])
    return s


def _urls(tagged: bytes) -> list:
    m = _REFERRAL.search(tagged)
    assert m is not None, tagged
    return [parse_url(u) for u in m.group(1).decode().split(" ")]


def test_capability_line_has_both_referral_capabilities(cluster: Cluster) -> None:
    """Cluster mode advertises MAILBOX-REFERRALS and LOGIN-REFERRALS before and after login."""
    with ImapScript(*cluster.imap("n1")) as s:
        caps = s.ok("CAPABILITY").matching(rb"^\* CAPABILITY ")[0].split()
        assert b"MAILBOX-REFERRALS" in caps and b"LOGIN-REFERRALS" in caps
        s.login()
        caps = s.ok("CAPABILITY").matching(rb"^\* CAPABILITY ")[0].split()
        assert b"MAILBOX-REFERRALS" in caps and b"LOGIN-REFERRALS" in caps


def test_single_node_mode_advertises_no_referrals() -> None:
    """Without a cluster spec no referral capability is offered and no session is aware."""
    session = SimpleNamespace(node=SimpleNamespace(settings=SimpleNamespace(cluster=None)),
                              referral_aware=True)
    assert referrals.capabilities(session) == ()  # type: ignore[arg-type]
    assert not referrals.aware(session)  # type: ignore[arg-type]


def test_rlist_then_select_public_news_is_referred_in_cost_order(cluster: Cluster) -> None:
    """RLIST lists Public/News; after it SELECT, EXAMINE, STATUS, SUBSCRIBE, DELETE, APPEND
    and COPY on n1 answer NO [REFERRAL] with n2's then n3's URL (strict RFC 5092)."""
    expected = [cluster.imap("n2"), cluster.imap("n3")]
    with _script(cluster, "n1") as s:
        listed = s.ok('RLIST "" "Public/*"')
        assert listed.matching(rb'^\* LIST \([^)]*\) "/" "?Public/News"?$'), listed.untagged
        for line in ('SELECT "Public/News"', 'EXAMINE "Public/News"',
                     'STATUS "Public/News" (MESSAGES)', 'SUBSCRIBE "Public/News"',
                     'DELETE "Public/News"'):
            urls = _urls(s.no(line).tagged)
            assert [(u.host, u.port) for u in urls] == expected, line
            assert all(u.mailbox == "Public/News" and u.auth == "*" for u in urls)
        urls = _urls(s.no('APPEND "Public/News" {3}', b"a\r\n").tagged)
        assert [(u.host, u.port) for u in urls] == expected
        s.ok("SELECT INBOX")  # private folders are unaffected
        urls = _urls(s.no('COPY 1:* "Public/News"').tagged)  # the destination is referred
        assert [(u.host, u.port) for u in urls] == expected


def test_session_without_rlist_keeps_local_behaviour(cluster: Cluster) -> None:
    """A session that never sent RLIST/RLSUB selects Public/News on n1 locally (no referral)."""
    with _script(cluster, "n1") as s:
        s.ok("LIST \"\" \"Public/*\"")
        result = s.ok('EXAMINE "Public/News"')
        assert b"REFERRAL" not in result.tagged


def test_rlsub_makes_the_session_aware(cluster: Cluster) -> None:
    """RLSUB alone also switches the session to referrals (RFC 2193 §4.2)."""
    with _script(cluster, "n1") as s:
        s.ok('RLSUB "" "*"')
        assert _urls(s.no('EXAMINE "Public/News"').tagged)


def test_replica_node_serves_public_news_after_rlist(cluster: Cluster) -> None:
    """On n2, a replica, RLIST changes nothing: SELECT Public/News is served there."""
    with _script(cluster, "n2") as s:
        s.ok('RLIST "" "*"')
        s.ok('EXAMINE "Public/News"')


@pytest.fixture(scope="module")
def refer_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The same layout with ``[public] refer = true``: every session gets referrals,
    logins included (without it a login is proxied: tests/cluster/test_proxy.py)."""
    extra = EXTRA.replace('folders = ["News"]', 'folders = ["News"]\nrefer = true')
    with seed_cluster(tmp_path_factory.mktemp("refer"), USERS, extra,
                      accounts={"bob": ["n2", "n3"]}) as c:
        yield c


def test_login_of_a_user_held_elsewhere_is_referred(refer_cluster: Cluster) -> None:
    """With refer = true, LOGIN bob on n1 (mail file on n2, n3): NO [REFERRAL
    imap://bob;AUTH=*@n2/ n3] in cost order; a wrong password still gets
    AUTHENTICATIONFAILED, not the referral; SELECT of Public/News is referred at once."""
    cluster = refer_cluster
    with ImapScript(*cluster.imap("n1")) as s:
        s.login("alice", USERS["alice"])
        assert b"[REFERRAL imap://" in s.no("SELECT Public/News").tagged
    with ImapScript(*cluster.imap("n1")) as s:
        bad = s.no('LOGIN "bob" "wrong"')
        assert b"AUTHENTICATIONFAILED" in bad.tagged and b"REFERRAL" not in bad.tagged
        urls = _urls(s.no('LOGIN "bob" "hunter2"').tagged)
        assert [(u.host, u.port) for u in urls] == [cluster.imap("n2"), cluster.imap("n3")]
        assert all(u.user == "bob" and u.auth == "*" and u.mailbox is None for u in urls)


def test_client_follows_the_referral_to_a_replica(cluster: Cluster) -> None:
    """twistedmail.client on n1 sends RLIST, is referred for Public/News and selects it on
    n2 (the cheapest replica); bob's LOGIN on n1 is proxied (no refer = true)."""
    client = Client([cluster.imap("n1")], "alice", USERS["alice"], timeout=10)
    try:
        client.connect()
        typ, _ = client.conn.xatom("RLIST", '""', '"Public/*"')
        assert typ == "OK"
        selected = client.select("Public/News", readonly=True)
        assert client.server == cluster.imap("n2") and selected.uidvalidity is not None
        assert [e.what for e in client.events] == ["connected", "referred", "connected"]
    finally:
        client.close()
    bob = Client([cluster.imap("n1")], "bob", USERS["bob"], timeout=10)
    try:  # no referral for a login without refer = true: n1 proxies bob to n2
        assert bob.connect() == cluster.imap("n1")
        assert bob.select("INBOX", readonly=True).uidvalidity is not None
    finally:
        bob.close()


def _cfg(refer: object) -> dict:
    nodes = [{"name": f"n{i}", "uidvalidity_root": i, "cluster": f"tcp:{7000 + i}"}
             for i in (1, 2)]
    return {"cluster": {"secret": "s"}, "node": nodes, "public": {"refer": refer}}


def test_public_refer_config_key() -> None:
    """[public] refer = true makes every session referral-aware; a non-boolean is refused."""
    from twistedmail.cluster import spec
    from twistedmail.config import ConfigError

    loaded = spec.load(_cfg(True), "n1")
    assert loaded is not None and loaded.public_refer
    session = SimpleNamespace(node=SimpleNamespace(settings=SimpleNamespace(cluster=loaded)),
                              referral_aware=False)
    assert referrals.aware(session)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="public.refer: must be true or false"):
        spec.load(_cfg("yes"), "n1")
