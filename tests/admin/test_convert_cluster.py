"""``convert`` and ``set-root`` on a real 3-node cluster, driven by the ``clustermail`` CLI
against each node's default admin socket (issue 4 item 5).

Pinned: convert -e- / -e under client load loses nothing (every acknowledged APPEND once on
every node, flags kept); imaplib2, imapclient and mbsync see the new UIDVALIDITY (root of
the node, UIDs 1..n) only on the converted node; set-root + convert -e changes the root
byte of every folder of the mail file; a root of another member and a stopped node are
clear one-line errors.
"""

from __future__ import annotations

import re
import shutil
import signal
from pathlib import Path

import pytest

from tests.clients.fixtures import PASSWORD, USER, maildir_messages, require, run
from tests.clients.mbsync import mbsyncrc
from tests.cluster.failover import LIBS, by_message_id, load, message, wait_for
from twistedmail.testing.cluster import Cluster

from .cluster_admin import (
    LoadClient,
    cli,
    cli_ok,
    one_line_error,
    status,
    uidvalidities,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::DeprecationWarning:imaplib2")]
ALICE = "alice"


@pytest.mark.clients
def test_convert_under_load_loses_nothing(make_cluster):
    """imaplib2 + imapclient append and flag on n1 through convert -e- / -e: they see
    [UNAVAILABLE], every acknowledged message is then once on every node with its
    acknowledged flags, unknown ones at most once, refused ones absent."""
    c = make_cluster()
    loaders = [LoadClient(LIBS[name], c, "n1", ALICE, tag=f"load-{name}").start()
               for name in ("imaplib2", "imapclient")]
    try:
        wait_for("5 acknowledged APPENDs per client",
                 lambda: all(len(lc.acked) >= 5 for lc in loaders), timeout=30)
        assert "IMAP disabled" in cli_ok(c, "n1", "convert", "-e-", ALICE)
        wait_for("each client refused with [UNAVAILABLE]",
                 lambda: all(lc.saw_unavailable() for lc in loaders), timeout=30)
        before = [len(lc.acked) for lc in loaders]
        assert "IMAP enabled" in cli_ok(c, "n1", "convert", "-e", ALICE)
        wait_for("5 more acknowledged APPENDs per client after convert -e",
                 lambda: all(len(lc.acked) >= n + 5 for lc, n in zip(loaders, before, strict=True)),
                 timeout=30)
    finally:
        for lc in loaders:
            lc.finish()
    c.wait_converged(timeout=60)
    acked = {m: f for lc in loaders for m, f in lc.acked.items()}
    unknown = set().union(*(lc.unknown for lc in loaders)) - set(acked)
    refused = set().union(*(lc.refused for lc in loaders)) - set(acked) - unknown
    for node in c.names:
        _uv, msgs = by_message_id(c, node, ALICE, "INBOX")
        missing = {m: len(msgs.get(m, [])) for m in acked if len(msgs.get(m, [])) != 1}
        assert not missing, f"{node}: acknowledged messages not present once: {missing}"
        lost_flags = {m: (f, msgs[m][0][1]) for m, f in acked.items() if not f <= msgs[m][0][1]}
        assert not lost_flags, f"{node}: acknowledged flags missing: {lost_flags}"
        assert all(len(msgs.get(m, [])) <= 1 for m in unknown), (node, unknown)
        assert not refused & set(msgs), (node, refused & set(msgs))
        assert set(msgs) <= set(acked) | unknown, (node, set(msgs) - set(acked) - unknown)
    c.invariants.check()


@pytest.mark.clients
def test_clients_resync_after_convert(make_cluster):
    """After convert -e on n1 (UIDs 1,3,5,6 before), imaplib2 and imapclient SELECT INBOX
    on n1 and see a larger UIDVALIDITY of root 1 and UIDs 1..4; n2/n3 keep theirs."""
    c = make_cluster()
    load(c, "n1", ALICE, {"INBOX": [(message("resync", i), ("\\Seen",) if i % 2 else ())
                                    for i in range(6)]})
    with c.session("n1", ALICE) as imap:  # make gaps, so that renumbering shows
        assert imap.select("INBOX")[0] == "OK"
        assert imap.uid("STORE", "2,4", "+FLAGS", "(\\Deleted)")[0] == "OK"
        assert imap.expunge()[0] == "OK"
    c.wait_converged(timeout=30)
    old = {node: by_message_id(c, node, ALICE, "INBOX") for node in c.names}
    assert sorted(u for copies in old["n1"][1].values() for u, _f in copies) == [1, 3, 5, 6]
    others = {node: uidvalidities(c, node, ALICE) for node in ("n2", "n3")}

    assert "IMAP enabled" in cli_ok(c, "n1", "convert", "-e", ALICE)
    for name, lib in LIBS.items():
        host, port = c.imap("n1")
        conn = lib.connect(host, port, ALICE, c.users[ALICE])
        try:
            uv = lib.select(conn, "INBOX")
            msgs = lib.messages(conn)
        finally:
            lib.close(conn)
        assert uv > old["n1"][0] and uv >> 24 == 1, (name, uv, old["n1"][0])
        assert sorted(u for copies in msgs.values() for u, _f in copies) == [1, 2, 3, 4], name
        assert {m: c_[0][1] for m, c_ in msgs.items()} == \
            {m: c_[0][1] for m, c_ in old["n1"][1].items()}, name
    for node in ("n2", "n3"):
        assert by_message_id(c, node, ALICE, "INBOX")[0] == old[node][0], node
        assert uidvalidities(c, node, ALICE) == others[node], node
    c.wait_converged(timeout=30)
    c.invariants.check()


MBSYNC_FOLDERS = {"INBOX": 8, "Work": 6}  # Work keeps UIDs 1..6; INBOX gets gaps


def _mbsync(tmp: Path, c: Cluster) -> tuple[int, str]:
    """One mbsync run against n1 (exit 0 or 1 accepted): (exit status, stdout + stderr)."""
    rc = mbsyncrc(tmp, c.imap("n1")[1])
    result = run([require("mbsync"), "-V", "-c", str(rc), "-a"], ok=(0, 1))
    return result.returncode, result.stdout + result.stderr


@pytest.mark.clients
def test_mbsync_after_convert(make_cluster, tmp_path):
    """mbsync synced with n1, then convert -e- / -e on n1: while disabled it fails with
    [UNAVAILABLE]; after, Work (UIDs unchanged) "Recovered from change of UIDVALIDITY" but
    INBOX (renumbered) "UIDVALIDITY genuinely changed", exit 1, again on a rerun, until its
    local folder is removed; the server's data is untouched throughout."""
    c = make_cluster(users={USER: PASSWORD})
    load(c, "n1", USER, {f: [(message(f"mb-{f}", i), ("\\Seen",) if i % 3 else ())
                             for i in range(n)] for f, n in MBSYNC_FOLDERS.items()})
    with c.session("n1", USER) as imap:
        assert imap.select("INBOX")[0] == "OK"
        assert imap.uid("STORE", "1,4", "+FLAGS", "(\\Deleted)")[0] == "OK"
        assert imap.expunge()[0] == "OK"
    code, out = _mbsync(tmp_path, c)
    assert code == 0 and "change of UIDVALIDITY" not in out, out[-2000:]
    c.wait_converged(timeout=30)
    before = {f: by_message_id(c, "n1", USER, f) for f in MBSYNC_FOLDERS}

    assert "IMAP disabled" in cli_ok(c, "n1", "convert", "-e-", USER)
    code, out = _mbsync(tmp_path, c)
    assert code == 1 and "UNAVAILABLE" in out, out[-2000:]
    assert "IMAP enabled" in cli_ok(c, "n1", "convert", "-e", USER)
    code, out = _mbsync(tmp_path, c)
    assert code == 1, out[-3000:]
    assert re.search(r"far side box INBOX: UIDVALIDITY genuinely changed", out), out[-3000:]
    assert re.search(r"far side box Work: Recovered from change of UIDVALIDITY", out), \
        out[-3000:]
    code, out = _mbsync(tmp_path, c)  # Work's new UIDVALIDITY is recorded; INBOX stays stuck
    assert code == 1 and "Recovered" not in out, out[-3000:]
    assert re.search(r"far side box INBOX: UIDVALIDITY genuinely changed", out), out[-3000:]
    shutil.rmtree(tmp_path / "mail" / "INBOX")  # the way out: resync INBOX from scratch
    code, out = _mbsync(tmp_path, c)
    assert code == 0 and "UIDVALIDITY genuinely changed" not in out, out[-3000:]
    local = maildir_messages(tmp_path / "mail" / "INBOX")
    assert set(local) == set(before["INBOX"][1]), sorted(local)
    for folder, (uv, msgs) in before.items():
        new_uv, now = by_message_id(c, "n1", USER, folder)
        assert new_uv > uv and new_uv >> 24 == 1, folder
        assert {m: cs[0][1] for m, cs in now.items()} == \
            {m: cs[0][1] for m, cs in msgs.items()}, folder
        assert all(len(cs) == 1 for cs in now.values()), folder
    c.wait_converged(timeout=30)
    c.invariants.check()


def test_set_root_then_convert(make_cluster):
    """set-root 9 on n1, then (seed order) convert -e- / -e alice: every alice folder on n1
    has UIDVALIDITY >> 24 == 9, n2/n3 keep theirs; set-root 2 (n2's root) is refused."""
    c = make_cluster()
    assert c.append("n1", ALICE, "INBOX", message("root", 0))
    c.wait_converged(timeout=30)
    others = {node: uidvalidities(c, node, ALICE) for node in ("n2", "n3")}
    cli_ok(c, "n1", "set-root", "9")
    assert all(uv >> 24 == 1 for uv in uidvalidities(c, "n1", ALICE).values())  # pending
    assert ALICE in status(c, "n1")["pending"]
    cli_ok(c, "n1", "load", "convert", "-e-", "mail\\alice.nsf")
    cli_ok(c, "n1", "convert", "-e", ALICE)
    roots = {name: uv >> 24 for name, uv in uidvalidities(c, "n1", ALICE).items()}
    assert roots and set(roots.values()) == {9}, roots
    assert ALICE not in status(c, "n1")["pending"]
    with c.session("n1", ALICE) as imap:
        assert imap.select("INBOX", readonly=True)[0] == "OK"
        assert int(imap.response("UIDVALIDITY")[1][-1]) >> 24 == 9
    for node in ("n2", "n3"):
        assert uidvalidities(c, node, ALICE) == others[node], node
    line = one_line_error(cli(c, "n1", "set-root", "2"))
    assert "n2" in line, line
    assert status(c, "n1")["root"] == 9
    assert c.append("n1", ALICE, "INBOX", message("root", 1))
    c.wait_converged(timeout=30)


def test_cli_against_stopped_node(make_cluster):
    """The CLI against the socket of a node killed -9 (stale socket) or stopped (SIGTERM)
    exits != 0 with one line naming it unreachable; n1's channel still answers."""
    c = make_cluster()
    c.kill("n3")
    line = one_line_error(cli(c, "n3", "status"))
    assert "unreachable" in line and "n3" in line, line
    c.kill("n2", signal.SIGTERM)
    for args in (("status",), ("convert", "-e-", ALICE), ("set-root", "7")):
        line = one_line_error(cli(c, "n2", *args))
        assert "unreachable" in line and "n2" in line, (args, line)
    assert status(c, "n1")["node"] == "n1"  # the live node's channel still answers
