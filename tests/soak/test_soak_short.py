"""The fault soak's CI version (issue 7 item 5): ``bench/soak.py`` for ~100 s with 12
clients on a real 3-node cluster, the nemesis injecting kill -9 + restart-empty,
partitions (cut and pause), isolation and ``convert -e-``/``-e`` in rotation.  The long
run is ``python -m bench.soak --duration 600 --clients 50`` (README "### Fault soak")."""

from __future__ import annotations

import pytest

from bench.soak import Report, check, run_soak
from bench.soak_client import Ledger

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_soak_short_loses_nothing(tmp_path):
    """After ~100 s of load and faults and a heal: every acknowledged, not expunged APPEND
    is on every node exactly once, nothing is doubled, flags and folders converged, no
    refused APPEND appears, the UID/UIDVALIDITY invariants hold, no client saw BAD, and
    every fault was injected and undone (each node served again within 90 s)."""
    report = run_soak(duration=100, clients=12, n_users=3, pace=0.1, interval=2.0, seed=7,
                      converge_timeout=120, workdir=tmp_path / "cluster", log=lambda _s: None)
    print(report.text())
    assert sum(report.faults.values()) >= 10, report.text()
    assert {"kill9+restart-empty", "partition-cut", "convert -e-/-e"} <= set(report.faults), \
        report.text()
    assert report.acked >= 100, report.text()
    assert not report.not_converged, report.text()
    assert report.lost == [], report.text()
    assert report.duplicates == [], report.text()
    assert report.flag_divergence == [], report.text()
    assert report.refused_present == [], report.text()
    assert report.invariant_problems == [], report.text()
    assert report.client_errors == [], report.text()
    assert report.fault_errors == [], report.text()


def test_check_finds_loss_duplicates_and_refused(make_cluster):
    """The soak's final check is not blind: on a converged cluster, an acknowledged
    Message-ID that is absent counts as lost on every node, one appended twice as a
    duplicate, and a refused one that is present as present."""
    c = make_cluster(users={"u1": "pw-1"})
    msg = b"Message-ID: <%s@t>\r\nSubject: x\r\n\r\nbody %s\r\n"
    assert c.append("n1", "u1", "INBOX", msg % (b"twice", b"1"))
    assert c.append("n2", "u1", "INBOX", msg % (b"twice", b"2"))
    assert c.append("n1", "u1", "INBOX", msg % (b"refused", b"3"))
    c.wait_converged(timeout=30)
    ledger = Ledger()
    ledger.acked = {"<twice@t>": "u1", "<never@t>": "u1"}
    ledger.refused = {"<refused@t>"}
    report = Report()
    check(c, {"u1": "pw-1"}, ledger, report)
    assert sorted(line.split()[0] for line in report.lost) == ["n1", "n2", "n3"]
    assert all("<never@t>" in line for line in report.lost)
    assert len(report.duplicates) == 3 and all("<twice@t> x2" in d for d in report.duplicates)
    assert len(report.refused_present) == 3
    assert not report.ok
