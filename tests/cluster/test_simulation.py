"""Layer 3 (DESIGN.md §7): the deterministic cluster simulation on task.Clock.

Each run boots a simulated cluster, drives concurrent client writes on every node through a
seeded fault injector (partitions, kills = state wipe, restarts), heals, settles and checks the
invariants listed in twistedmail/testing/simcluster.py.  A failure names its seed and the
command that reproduces it.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from twistedmail.store import Expunge
from twistedmail.testing.simcluster import USERS, SimCluster, SimFailure, Stats, main, run_seed

FIXED_SEEDS = (1, 2, 3, 7, 42)


def _run(seed: int, steps: int, n: int = 3, **kwargs: object) -> Stats:
    """Run one seed; a broken invariant fails the test with the reproducing command."""
    try:
        return run_seed(seed, steps, n, **kwargs)
    except SimFailure as e:
        failure = str(e)
    pytest.fail(failure, pytrace=False)


@pytest.mark.parametrize("seed", FIXED_SEEDS)
def test_fixed_seed_keeps_every_invariant(seed: int) -> None:
    """A 3-node run with faults keeps acked mail, converges and never reuses UID maps."""
    stats = _run(seed, 400, fault_rate=0.05)
    assert stats.converged and stats.lost == 0
    assert stats.acked > 0 and stats.ops > 0


def test_two_nodes_and_five_nodes() -> None:
    """Other cluster sizes: 2 nodes (ack 2 of 2) and 5 nodes (ack 2 of 5)."""
    for n in (2, 5):
        stats = _run(11, 300, n, fault_rate=0.05)
        assert stats.converged and stats.acked > 0


def test_kills_and_snapshots_happen() -> None:
    """A fault-heavy run with a short log really kills, restarts and ships snapshots."""
    stats = _run(5, 600, fault_rate=0.15, log_limit=40)
    assert stats.kills > 0 and stats.restarts >= stats.kills
    assert stats.partitions > 0 and stats.snapshots > 0


@pytest.mark.parametrize("seed", (23, 101))
def test_crash_loop_never_reuses_a_uidvalidity(seed: int) -> None:
    """Crash loops (a node killed again while or right after joining) never present a
    UIDVALIDITY counter twice: the join counts only serving peers (service.py's rule)."""
    stats = _run(seed, 300, fault_rate=0.1)
    assert stats.kills > 1


def test_same_seed_same_run() -> None:
    """Deterministic: a seed replays to identical state and counters in one process."""
    a, b = SimCluster(3, 9), SimCluster(3, 9)
    sa, sb = a.run(200), b.run(200)
    assert sa == sb
    assert [nd.replica.summary() for nd in a.nodes] == [  # type: ignore[union-attr]
        nd.replica.summary() for nd in b.nodes]  # type: ignore[union-attr]


def test_same_seed_same_run_across_processes(capsys: pytest.CaptureFixture[str]) -> None:
    """The printed reproduce command replays a seed in another process (other hash seed)."""
    args = ["--seed", "4", "--steps", "200"]
    main(args)
    here = capsys.readouterr().out.splitlines()[:-1]  # the last line holds wall time
    env = dict(os.environ, PYTHONHASHSEED=str(os.getpid() % 1000 + 1))
    done = subprocess.run([sys.executable, "-m", "twistedmail.testing.simcluster", *args],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.splitlines()[:-1] == here, done.stderr[-2000:]
    assert here[0].startswith("seeds 1 x 200 steps")


def test_checks_catch_a_lost_message() -> None:
    """The end checks are not vacuous: an acknowledged message expunged on one node is lost."""
    sim = SimCluster(3, 1)
    sim.run(200)
    node = sim.nodes[1]
    assert node.store is not None
    victim = sorted(sim.acked - sim.excused)[0]
    for box in [b for user in USERS for b in node.store.mailboxes(user)]:
        uids = [rec.uid for rec in box.records() if rec.instance_id == victim]
        if uids:
            node.store.apply(Expunge(box.user, box.name, tuple(uids)))
    with pytest.raises(SimFailure, match="n2 lost 1 acknowledged"):
        sim.check()


def test_uid_map_reuse_is_reported() -> None:
    """One (node, folder, UIDVALIDITY, UID) seen with two instances is a violation."""
    sim = SimCluster(3, 5)
    sim.run(400)
    node, box = next((nd, b) for nd in sim.nodes if nd.store is not None
                     for user in USERS for b in nd.store.mailboxes(user) if len(b))
    uid = box.uids()[0]
    sim.seen.see(node.name, box, uid, ("someone-else~0", 1))
    with pytest.raises(SimFailure, match="mapped to"):
        sim.check()


def test_failure_names_the_reproducing_command() -> None:
    """A broken invariant raises SimFailure carrying the seed and the CLI to rerun it."""
    sim = SimCluster(3, 123)
    sim.violations.append("planted")
    with pytest.raises(SimFailure, match=r"seed 123.*\n  reproduce: python -m "
                       r"twistedmail\.testing\.simcluster --nodes 3 --seed 123"):
        sim._raise_violations()


# No shrinking: a smaller seed is another run, not a simpler one.
@settings(max_examples=25, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), n=st.sampled_from((2, 3, 4)))
def test_random_seeds_keep_every_invariant(seed: int, n: int) -> None:
    """Hypothesis draws seeds and sizes; every short run keeps every invariant."""
    stats = _run(seed, 150, n, fault_rate=0.08)
    assert stats.converged and stats.lost == 0
