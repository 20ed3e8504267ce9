"""The transparent proxy on real nodes (issue 5 item 4; twistedmail/imap/proxied.py).

The seed's layout (tests/cluster/seed.py): n1, n2, n3 in site1..3, public folder News on
n2 and n3 only, so a client of n1 that ignores referrals is proxied to n2 (cost 10)
before n3 (cost 20).  bob's mail file lives on n2 and n3 only.  Each replica numbers
the folder with its own UIDVALIDITY (DESIGN.md §3), which tells which replica a
proxied session reached."""

from __future__ import annotations

import base64
import re
import signal
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.cluster.seed import SEED_CONFIG, seed_cluster
from twistedmail.cluster.proxy import proxy_proof
from twistedmail.testing.cluster import HOST, Cluster, reserve_port
from twistedmail.testing.script import ImapScript, Result

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
USERS = {"alice": "secret", "bob": "hunter2"}
# everyone may read and post in News here (RFC 4314 rights; the default is "lr")
CONFIG = SEED_CONFIG.replace('folders = ["News"]', 'folders = ["News"]\nrights = "lrswipte"')
MESSAGE = b"From: a@example.org\r\nSubject: proxied %d\r\n\r\nbody %d\r\n"


@contextmanager
def proxy_cluster(workdir: Path) -> Iterator[Cluster]:
    """The seed layout with News open to everyone, bob held on n2 and n3, and n1 serving
    /metrics on a reserved port (``c.metrics_url``)."""
    sock = reserve_port()
    http = f"tcp:{sock.getsockname()[1]}:interface={HOST}"
    try:
        with seed_cluster(workdir, USERS, CONFIG, per_node={"n1": {"http": [http]}},
                          accounts={"bob": ["n2", "n3"]}) as c:
            c.metrics_url = f"http://{HOST}:{sock.getsockname()[1]}/metrics"  # type: ignore[attr-defined]
            yield c
    finally:
        sock.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One seed-layout cluster for the tests that kill nothing."""
    with proxy_cluster(tmp_path_factory.mktemp("proxy")) as c:
        yield c


def _script(c: Cluster, node: str, user: str = "alice") -> ImapScript:
    s = ImapScript(*c.imap(node))
    s.login(user, USERS[user])
    return s


def _uidvalidity(result: Result) -> int:
    for line in result.untagged:
        m = re.search(rb"\[UIDVALIDITY (\d+)\]", line)
        if m:
            return int(m.group(1))
    raise AssertionError(f"no UIDVALIDITY in {result.untagged!r}")


def _direct_uidvalidity(c: Cluster, node: str) -> int:
    with _script(c, node) as s:
        return _uidvalidity(s.ok("EXAMINE Public/News"))


def _append(s: ImapScript, n: int, mailbox: str = "Public/News") -> Result:
    body = MESSAGE % (n, n)
    return s.ok(f"APPEND {mailbox} {{{len(body)}}}", body)


def test_select_on_a_non_replica_is_proxied_to_the_cheapest_replica(cluster: Cluster) -> None:
    """SELECT Public/News on n1 (no replica) answers OK with n2's UIDVALIDITY, not n3's."""
    on_n2, on_n3 = _direct_uidvalidity(cluster, "n2"), _direct_uidvalidity(cluster, "n3")
    assert on_n2 != on_n3
    with _script(cluster, "n1") as s:
        result = s.ok("SELECT Public/News")
        assert _uidvalidity(result) == on_n2
        assert b"[READ-WRITE]" in result.tagged
        assert any(re.match(rb"\* \d+ EXISTS", line) for line in result.untagged)


def test_proxied_session_reads_and_writes_through_the_replica(cluster: Cluster) -> None:
    """APPEND on n2, FETCH/STORE/SEARCH/EXPUNGE through n1's proxy, seen on n3."""
    with _script(cluster, "n2") as direct:
        uid = int(re.search(rb"APPENDUID \d+ (\d+)", _append(direct, 1).tagged).group(1))
    with _script(cluster, "n1") as s:
        s.ok("SELECT Public/News")
        fetched = s.ok(f"UID FETCH {uid} (FLAGS BODY.PEEK[])")
        assert any(b"body 1" in line for line in fetched.untagged)
        s.ok(f"UID STORE {uid} +FLAGS (\\Flagged)")
        found = s.ok("UID SEARCH FLAGGED").matching(rb"^\* SEARCH")[0]
        assert str(uid).encode() in found.split()
        s.ok("NOOP")
    cluster.wait_converged(timeout=10)
    with _script(cluster, "n3") as s:
        s.ok("EXAMINE Public/News")
        flagged = s.ok("SEARCH FLAGGED").matching(rb"^\* SEARCH")[0]
        assert len(flagged.split()) >= 3  # "* SEARCH n": the flag replicated to n3


def test_append_and_status_on_a_non_replica_are_proxied(cluster: Cluster) -> None:
    """APPEND Public/News on n1 answers APPENDUID in n2's numbering; STATUS matches n2's."""
    on_n2 = _direct_uidvalidity(cluster, "n2")
    with _script(cluster, "n1") as s:
        appended = _append(s, 2)
        assert re.search(rb"\[APPENDUID %d \d+\]" % on_n2, appended.tagged), appended.tagged
        status = s.ok("STATUS Public/News (MESSAGES UIDVALIDITY)")
    line = status.matching(rb"^\* STATUS")[0]
    assert b"UIDVALIDITY %d" % on_n2 in line
    with _script(cluster, "n2") as direct:
        assert direct.ok("STATUS Public/News (MESSAGES)").matching(rb"MESSAGES")[0] \
            .split(b"MESSAGES ")[1].rstrip(b")") == line.split(b"MESSAGES ")[1].split(b" ")[0]


def test_idle_through_the_proxy_hears_a_write_on_another_replica(cluster: Cluster) -> None:
    """IDLE on n1's proxied Public/News: an APPEND on n3 arrives as EXISTS; DONE ends it."""
    with _script(cluster, "n1") as s:
        s.ok("SELECT Public/News")
        tag = s.next_tag()
        s.send(f"{tag} IDLE")
        assert s.expect_continuation().startswith(b"+")
        with _script(cluster, "n3") as other:
            _append(other, 3)
        line = s.read_line(timeout=10)
        while not re.match(rb"\* \d+ EXISTS", line):
            line = s.read_line(timeout=10)
        s.send("DONE")
        assert s.read_until_tagged(tag).status == "OK"
        s.ok("NOOP")


def test_local_select_after_a_proxied_one_leaves_the_proxy(cluster: Cluster) -> None:
    """SELECT INBOX after Public/News: [CLOSED], then INBOX's own UIDVALIDITY; CLOSE ok."""
    with _script(cluster, "n1") as s:
        s.ok("SELECT Public/News")
        result = s.ok("SELECT INBOX")
        assert result.matching(rb"\[CLOSED\]")
        assert result.matching(rb"^\* 0 EXISTS|^\* \d+ EXISTS")
        s.ok("CLOSE")
        s.bad("FETCH 1 FLAGS")  # nothing selected any more, here or on n2


def test_referral_aware_session_is_referred_not_proxied(cluster: Cluster) -> None:
    """After RLIST the same SELECT answers NO [REFERRAL], so the proxy is only for others."""
    with _script(cluster, "n1") as s:
        s.ok('RLIST "" "Public/*"')
        assert b"[REFERRAL imap://" in s.no("SELECT Public/News").tagged


def test_login_of_a_mail_file_held_elsewhere_proxies_the_whole_session(
        cluster: Cluster) -> None:
    """bob (held on n2, n3) logs in on n1: OK, and his INBOX is n2's (same UIDVALIDITY)."""
    with _script(cluster, "n2", "bob") as direct:
        _append(direct, 4, "INBOX")
        on_n2 = _uidvalidity(direct.ok("EXAMINE INBOX"))
    with ImapScript(*cluster.imap("n1")) as s:
        assert b"[AUTHENTICATIONFAILED]" in s.no('LOGIN "bob" "wrong"').tagged
        assert b"proxied to n2" in s.login("bob", "hunter2").tagged
        assert _uidvalidity(s.ok("SELECT INBOX")) == on_n2
        assert any(b"body 4" in line for line in s.ok("FETCH 1:* BODY.PEEK[]").untagged)
        assert s.ok("LOGOUT").matching(rb"^\* BYE")


def test_proxy_mechanism_refuses_a_wrong_proof(cluster: Cluster) -> None:
    """X-TWISTEDMAIL-PROXY with a proof made from the wrong secret: NO [AUTHENTICATIONFAILED]."""
    with ImapScript(*cluster.imap("n2")) as s:
        tag = s.next_tag()
        s.send(f"{tag} AUTHENTICATE X-TWISTEDMAIL-PROXY")
        nonce = base64.b64decode(s.expect_continuation()[2:])
        proof = proxy_proof(b"not the secret", nonce, "alice", "n1")
        s.send(base64.b64encode(b"\0".join([b"alice", b"n1", proof.encode()])))
        assert b"[AUTHENTICATIONFAILED]" in s.read_until_tagged(tag).tagged
        assert s.bad("AUTHENTICATE X-TWISTEDMAIL-PROXY AAAA").status == "BAD"


def test_failover_to_the_next_replica_and_no_failback_until_reconnect(tmp_path: Path) -> None:
    """n2 killed under a quiet proxied session: it moves to n3 (new UIDVALIDITY, said
    before the next answer); with n2 down a new session goes straight to n3; n2 back:
    the session stays on n3, a new one goes to n2; n2 killed under an IDLE: the IDLE
    ends NO [UNAVAILABLE] on n3; n3 killed too: [CLOSED], nothing selected."""
    with proxy_cluster(tmp_path) as c:
        with _script(c, "n2") as direct:
            _append(direct, 5)
        c.wait_converged(timeout=10)
        on_n3 = _direct_uidvalidity(c, "n3")
        with _script(c, "n1") as s:
            first = _uidvalidity(s.ok("SELECT Public/News"))
            assert first == _direct_uidvalidity(c, "n2")
            c.kill("n2", signal.SIGKILL)
            result = s.ok("NOOP")
            moved = [line for line in result.untagged if b"UIDVALIDITY" in line]
            assert moved and b"[UIDVALIDITY %d]" % on_n3 in moved[0], result.untagged
            assert any(b"body 5" in line for line in s.ok("FETCH 1:* BODY.PEEK[]").untagged)
            with _script(c, "n1") as fresh:  # n2 is down: straight to n3
                assert _uidvalidity(fresh.ok("EXAMINE Public/News")) == on_n3
            c.restart("n2")
            c.wait_converged(timeout=15)
            back = _direct_uidvalidity(c, "n2")
            assert _uidvalidity(s.ok("SELECT Public/News")) == on_n3  # no failback
        with _script(c, "n1") as again:  # reconnect: the cheapest replica again
            assert _uidvalidity(again.ok("SELECT Public/News")) == back
            tag = again.next_tag()
            again.send(f"{tag} IDLE")
            again.expect_continuation()
            c.kill("n2", signal.SIGKILL)
            idle = again.read_until_tagged(tag)
            assert b"NO [UNAVAILABLE]" in idle.tagged
            assert idle.matching(rb"\[UIDVALIDITY %d\]" % on_n3)
            assert again.ok("NOOP").status == "OK"  # no DONE needed: the IDLE is over
            c.kill("n3", signal.SIGKILL)
            closed = again.ok("NOOP")
            assert closed.matching(rb"^\* OK \[CLOSED\]"), closed.untagged
            again.bad("FETCH 1 FLAGS")


def _copyuid(line: bytes) -> tuple[int, bytes, bytes]:
    m = re.search(rb"\[COPYUID (\d+) (\S+) ([^\]]+)\]", line)
    assert m is not None, line
    return int(m.group(1)), m.group(2), m.group(3)


def test_copy_and_move_out_of_a_proxied_folder_into_the_local_inbox(cluster: Cluster) -> None:
    """COPY/UID MOVE from proxied Public/News into n1's INBOX: the messages land locally
    with their flags, COPYUID names INBOX's UIDVALIDITY, MOVE expunges on the replica."""
    with _script(cluster, "n2") as direct:
        _append(direct, 10)
    cluster.wait_converged(timeout=10)
    with _script(cluster, "n1") as s:
        s.ok("CREATE Saved")
        saved_uv = _uidvalidity(s.ok("EXAMINE Saved"))
        s.ok("SELECT Public/News")
        found = s.ok("UID SEARCH BODY \"body 10\"").matching(rb"^\* SEARCH")[0].split()[2:]
        uid = found[0].decode()
        s.ok(f"UID STORE {uid} +FLAGS (\\Flagged)")
        copied = s.ok(f"UID COPY {uid} Saved")
        assert _copyuid(copied.tagged)[0] == saved_uv
        moved = s.ok(f"UID MOVE {uid} Saved")
        assert _copyuid(moved.matching(rb"COPYUID")[0])[1] == uid.encode()
        assert moved.matching(rb"^\* (\d+ EXPUNGE|VANISHED)")
        assert not s.ok(f"UID SEARCH UID {uid}").matching(rb"^\* SEARCH \d")
        status = s.ok("STATUS Saved (MESSAGES)").matching(rb"STATUS")[0]
        assert b"MESSAGES 2" in status
        s.ok("SELECT Saved")
        fetched = s.ok("FETCH 1:* (FLAGS BODY.PEEK[])").untagged
        assert sum(b"body 10" in line for line in fetched) == 2
        assert all(b"\\Flagged" in line for line in fetched if b"body 10" in line)


def test_copy_and_move_from_the_local_inbox_into_a_public_folder_held_elsewhere(
        cluster: Cluster) -> None:
    """COPY/MOVE from n1's INBOX into Public/News (no replica on n1): one MULTIAPPEND on
    n2, COPYUID in n2's numbering, the MOVE's source expunged here, readable on n3."""
    on_n2 = _direct_uidvalidity(cluster, "n2")
    with _script(cluster, "n1") as s:
        _append(s, 20, "INBOX")
        _append(s, 21, "INBOX")
        s.ok("SELECT INBOX")
        found = s.ok('UID SEARCH OR BODY "body 20" BODY "body 21"')
        uids = found.matching(rb"^\* SEARCH")[0].split()[2:]
        assert len(uids) == 2
        copied = s.ok(f"UID COPY {b','.join(uids).decode()} Public/News")
        assert _copyuid(copied.tagged)[0] == on_n2
        moved = s.ok(f"UID MOVE {uids[0].decode()} Public/News")
        assert _copyuid(moved.matching(rb"COPYUID")[0])[0] == on_n2
        assert moved.matching(rb"^\* \d+ EXPUNGE")
        assert not s.ok(f"UID SEARCH UID {uids[0].decode()}").matching(rb"^\* SEARCH \d")
    cluster.wait_converged(timeout=10)
    with _script(cluster, "n3") as other:
        other.ok("EXAMINE Public/News")
        hits = other.ok('SEARCH BODY "body 20"').matching(rb"^\* SEARCH")[0].split()[2:]
        assert len(hits) == 2  # the COPY and the MOVE


def _counter(c: Cluster, name: str, **labels: str) -> float:
    """A counter's value on n1's /metrics (0 when the series does not exist yet)."""
    text = urllib.request.urlopen(c.metrics_url, timeout=10).read().decode()  # type: ignore[attr-defined]
    for line in text.splitlines():
        if line.startswith(f"{name}_total{{") and all(f'{k}="{v}"' in line
                                                        for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_proxy_sessions_and_referrals_by_target(cluster: Cluster) -> None:
    """n1's /metrics: a proxied SELECT adds one proxy session to n2; an RLIST-aware SELECT
    adds one mailbox referral to n2; bob's proxied login one more proxy session."""
    proxies = _counter(cluster, "twistedmail_proxy_sessions", target="n2")
    referred = _counter(cluster, "twistedmail_referrals", target="n2", kind="mailbox")
    with _script(cluster, "n1") as s:
        s.ok("EXAMINE Public/News")
    with _script(cluster, "n1") as s:
        s.ok('RLIST "" "Public/*"')
        s.no("EXAMINE Public/News")
    with _script(cluster, "n1", "bob"):
        pass
    assert _counter(cluster, "twistedmail_proxy_sessions", target="n2") == proxies + 2
    assert _counter(cluster, "twistedmail_referrals", target="n2",
                    kind="mailbox") == referred + 1
