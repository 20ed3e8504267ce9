"""``clustermail referrals …`` / ``sites …`` against a real 3-node twistd cluster: the seed's
three-site scenario (site1-site2 10, site2-site3 10 => site1-site3 20), one-line errors,
cost limits by role (UNIX socket and TCP credentials), and refresh."""

from __future__ import annotations

import imaplib
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.admin.cluster_admin import CLI_TIMEOUT, admin_socket, one_line_error
from tests.cluster.seed import SEED_CONFIG as EXTRA
from twistedmail.testing.cluster import Cluster, reserve_port

USERS = {"alice": "secret", "bob": "secret", "root": "rootpw"}


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """n1 in site1, n2 in site2, n3 in site3 (admin channel on TCP, admin "root");
    Public/News held by n2 and n3 only."""
    sock = reserve_port()
    port = sock.getsockname()[1]
    sock.close()
    options = {"n1": {"site": "site1"}, "n2": {"site": "site2"},
               "n3": {"site": "site3", "admin": f"tcp:{port}:interface=127.0.0.1",
                      "admins": ["root"]}}
    c = Cluster(3, users=USERS, extra_config=EXTRA, node_options=options,
                workdir=tmp_path_factory.mktemp("referrals"))
    c.tcp_admin = f"tcp:127.0.0.1:{port}"  # type: ignore[attr-defined]
    try:
        c.start()
        yield c
    finally:
        c.stop()


def run(c: Cluster, node: str, *args: str, user: str | None = None,
        password: str | None = None) -> subprocess.CompletedProcess[str]:
    """``clustermail`` against ``node``: its UNIX socket, or (credentials given) n3's TCP
    admin channel."""
    if user is None:
        target = ["--admin", f"unix:{admin_socket(c, node)}"]
    else:
        target = ["--admin", c.tcp_admin, "--admin-user", user,  # type: ignore[attr-defined]
                  "--admin-password", password or ""]
    argv = [sys.executable, "-m", "twistedmail.admin.cli", *target, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=CLI_TIMEOUT,
                          stdin=subprocess.DEVNULL, errors="replace")


def ok(c: Cluster, node: str, *args: str, **creds: str) -> str:
    """Run; exit status 0 required; stdout."""
    result = run(c, node, *args, **creds)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


def refused(c: Cluster, node: str, *args: str, **creds: str) -> str:
    """Run; exit status 1 and one stderr line required; that line."""
    result = run(c, node, *args, **creds)
    line = one_line_error(result)
    assert result.returncode == 1, (result.stdout, result.stderr)
    return line


def rows(output: str) -> list[list[str]]:
    """The table rows of ``referrals show`` (ORDER SERVER COST IN WHY), header left out."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["ORDER", "SERVER"])
    return [line.split(None, 4) for line in lines[start + 1:]]


def test_seed_scenario_show(seed: Cluster):
    """From n1 (site1, no replica): n2 at 10, then n3 at 20 via site2; from n3: its own
    replica first at 0, then n2 at 10; --json carries the same list."""
    out = ok(seed, "n1", "referrals", "show", "News")
    assert out.splitlines()[0].startswith("n1: Public/News for clients of n1: replicas n2, n3")
    assert rows(out) == [["1", "n2", "10", "in", "cost 10 (site links site1 to site2)"],
                         ["2", "n3", "20", "in", "cost 20 (site links site1 to site3)"]]
    assert rows(ok(seed, "n1", "referrals", "show", "Public/News", "--from", "n3")) == [
        ["1", "n3", "0", "in", "local replica on n3"],
        ["2", "n2", "10", "in", "cost 10 (site links site3 to site2)"]]
    answer = json.loads(ok(seed, "n2", "referrals", "show", "News", "--json"))
    assert [(r["server"], r["cost"], r["order"]) for r in answer["referrals"]] == [
        ("n2", 0, 1), ("n3", 10, 2)]
    sites = ok(seed, "n1", "sites", "show")
    assert "site1  n1" in sites and "site1   site2   10" in sites


@pytest.mark.parametrize("args, message", [
    (("referrals", "show", "Sports"), "unknown public folder 'Sports' (known: News)"),
    (("referrals", "show", "News", "--from", "n9"), "unknown node 'n9' (known: n1, n2, n3)"),
    (("referrals", "set", "n1", "n9", "5"), "unknown node 'n9' (known: n1, n2, n3)"),
    (("referrals", "unset", "n1", "n2"), "n1 has no custom referral list"),
    (("sites", "link", "site1", "mars", "5"),
     "unknown site 'mars' (known: site1, site2, site3)"),
    (("sites", "unlink", "site1", "site3"), "no site link site1-site3"),
])
def test_errors_are_one_line(seed: Cluster, args: tuple[str, ...], message: str):
    """Unknown folder, node, site or link: one line on stderr, exit status 1."""
    assert refused(seed, "n1", *args) == f"clustermail: error: {message}"


def test_role_limits_on_unix_socket(seed: Cluster):
    """The UNIX socket is a cluster administrator (1-500); --role folder-admin limits an edit
    to 1-100 and may not touch an entry above 100."""
    assert refused(seed, "n2", "referrals", "set", "n2", "n3", "600") == (
        "clustermail: error: cost 600: out of range; a cluster administrator may set 1-500")
    assert refused(seed, "n2", "referrals", "set", "n2", "n3", "150", "--role",
                   "folder-admin") == ("clustermail: error: cost 150: out of range; a folder "
                                       "administrator may set 1-100")
    out = ok(seed, "n2", "referrals", "set", "n2", "n3", "300")
    assert "ok (as cluster administrator)" in out and "referrals refresh" in out
    assert refused(seed, "n2", "referrals", "set", "n2", "n3", "50", "--role",
                   "folder-admin") == ("clustermail: error: n2's entry n3 costs 300: a folder "
                                       "administrator may only change costs 1-100")
    assert refused(seed, "n2", "sites", "link", "site1", "site3", "0") == (
        "clustermail: error: cost 0: out of range; a cluster administrator may set 1-500")
    ok(seed, "n2", "referrals", "unset", "n2")
    ok(seed, "n2", "referrals", "refresh")


def test_change_invisible_until_refresh(seed: Cluster):
    """A custom list on n1 (n3 at 5) changes nothing until `referrals refresh`; then n3
    comes first and n2, not on the list, is out; removing it needs a refresh again."""
    ok(seed, "n1", "referrals", "set", "n1", "n3", "5")
    before = ok(seed, "n1", "referrals", "show", "News")
    assert [r[1] for r in rows(before)] == ["n2", "n3"]
    assert "edited since the last rebuild" in before
    assert "cost table rebuilt" in ok(seed, "n1", "referrals", "refresh")
    assert rows(ok(seed, "n1", "referrals", "show", "News")) == [
        ["1", "n3", "5", "in", "cost 5 (n1's custom referral list)"],
        ["-", "n2", "-", "out", "not in n1's custom referral list"]]
    ok(seed, "n1", "referrals", "unset", "n1")
    assert [r[1] for r in rows(ok(seed, "n1", "referrals", "show", "News"))] == ["n3", "n2"]
    ok(seed, "n1", "referrals", "refresh")
    assert [r[1] for r in rows(ok(seed, "n1", "referrals", "show", "News"))] == ["n2", "n3"]


def test_site_link_change_after_refresh(seed: Cluster):
    """A direct site1-site3 link at 5 makes n3 cheaper than n2 from n1 once refreshed."""
    ok(seed, "n1", "sites", "link", "site1", "site3", "5")
    ok(seed, "n1", "referrals", "refresh")
    assert [(r[1], r[2]) for r in rows(ok(seed, "n1", "referrals", "show", "News"))] == [
        ("n3", "5"), ("n2", "10")]
    ok(seed, "n1", "sites", "unlink", "site1", "site3")
    ok(seed, "n1", "referrals", "refresh")


def test_tcp_roles(seed: Cluster):
    """On TCP: root (in admins) is a cluster administrator; alice is refused until she holds
    'a' on Public/News, then is a folder administrator (1-100, no cluster-admin role);
    bob and a wrong password are refused."""
    denied = "clustermail: error: permission denied: alice is not an admin and holds the " \
             "'a' right on no public folder"
    assert refused(seed, "n3", "referrals", "show", "News", user="alice",
                   password="secret") == denied
    host, port = seed.imap("n3")
    imap = imaplib.IMAP4(host, port)
    try:
        imap.login("root", "rootpw")
        typ, data = imap.setacl('"Public/News"', "alice", "lra")
        assert typ == "OK", data
    finally:
        imap.logout()
    alice = {"user": "alice", "password": "secret"}
    assert "as folder administrator" in ok(seed, "n3", "referrals", "set", "n3", "n1", "50",
                                           **alice)
    assert refused(seed, "n3", "referrals", "set", "n3", "n1", "150", **alice) == (
        "clustermail: error: cost 150: out of range; a folder administrator may set 1-100")
    assert refused(seed, "n3", "referrals", "set", "n3", "n1", "150", "--role",
                   "cluster-admin", **alice) == ("clustermail: error: permission denied: a "
                                                 "folder administrator may not act as cluster "
                                                 "administrator")
    assert "wrong or missing admin credentials" in refused(seed, "n3", "status", **alice)
    root = {"user": "root", "password": "rootpw"}
    assert "as cluster administrator" in ok(seed, "n3", "referrals", "set", "n3", "n1", "150",
                                            **root)
    assert "permission denied" in refused(seed, "n3", "sites", "show", user="bob",
                                          password="secret")
    assert "wrong or missing admin credentials" in refused(seed, "n3", "sites", "show",
                                                           user="root", password="nope")
    ok(seed, "n3", "referrals", "unset", "n3", **root)
