"""Referral lists for public folders (DESIGN.md §5, issue 5 item 3, seed 003).

Pure: no Twisted, no IMAP.  The clock and the random source are injected.

Invariants:
  * The list is computed from the default public-folder node's point of view (the
    answerer of the requesting node, costs.CostSnapshot.answerer): its own replica,
    if any, comes first; then the other replicas it may refer to, by rising cost.
  * Among replicas of equal cost the order is a fresh random permutation on every
    request (the injected rng), so load spreads evenly (seed 003).
  * Excluded, each with its reason: cost >= 500, servers missing from the
    answerer's custom list, replicas with no site-link path, unknown nodes.
  * ``CostTable`` answers from a snapshot rebuilt at most every ``referral_refresh``
    seconds of the injected clock: a cost or list change is invisible until the
    next rebuild (the seed's hourly refresh); ``refresh()`` rebuilds at once.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import groupby

from twistedmail.cluster.costs import NEVER, CostError, CostModel, CostSnapshot


@dataclass(frozen=True, slots=True)
class Referral:
    """One replica server as the answerer sees it: its cost, in or out, and why."""

    server: str
    cost: int | None  # None: no cost (unlisted, no path, unknown)
    included: bool
    reason: str


def explain(snapshot: CostSnapshot, replicas: Iterable[str], from_node: str,
            rng: random.Random) -> list[Referral]:
    """Every replica: the included ones in referral order, then the excluded ones by
    name, each with the reason (what ``clustermail referrals show`` prints).
    An unknown ``from_node`` is a CostError."""
    answerer = snapshot.answerer(from_node)
    if answerer not in snapshot.node_sites:
        known = ", ".join(sorted(snapshot.node_sites))
        raise CostError(f"unknown node {from_node!r} (known: {known})")
    ins: list[Referral] = []
    outs: list[Referral] = []
    for server in sorted(set(replicas)):
        entry = _judge(snapshot, answerer, server)
        (ins if entry.included else outs).append(entry)
    return _order(ins, answerer, rng) + outs


def referral_list(snapshot: CostSnapshot, replicas: Iterable[str], from_node: str,
                  rng: random.Random) -> list[Referral]:
    """The replicas a client of ``from_node`` is referred to, in order."""
    return [r for r in explain(snapshot, replicas, from_node, rng) if r.included]


def _judge(snap: CostSnapshot, answerer: str, server: str) -> Referral:
    if server == answerer:
        return Referral(server, 0, True, f"local replica on {answerer}")
    if server not in snap.node_sites:
        return Referral(server, None, False, "unknown node")
    if answerer in snap.custom:
        cost = snap.custom[answerer].get(server)
        if cost is None:
            return Referral(server, None, False, f"not in {answerer}'s custom referral list")
        how = f"{answerer}'s custom referral list"
    else:
        cost = snap.site_cost(answerer, server)
        a, b = snap.node_sites[answerer], snap.node_sites[server]
        if cost is None:
            return Referral(server, None, False, f"no site link path {a} to {b}")
        how = "same site" if a == b else f"site links {a} to {b}"
    if cost >= NEVER:
        return Referral(server, cost, False, f"cost {cost} >= {NEVER} ({how}): never referred")
    return Referral(server, cost, True, f"cost {cost} ({how})")


def _order(ins: list[Referral], answerer: str, rng: random.Random) -> list[Referral]:
    local = [r for r in ins if r.server == answerer]
    rest = sorted((r for r in ins if r.server != answerer), key=lambda r: (r.cost, r.server))
    out = list(local)
    for _, group in groupby(rest, key=lambda r: r.cost):
        tied = list(group)
        rng.shuffle(tied)  # equal costs: spread load evenly (seed 003)
        out.extend(tied)
    return out


class CostTable:
    """The cost data a node answers from, rebuilt every ``referral_refresh`` seconds."""

    def __init__(self, model: CostModel, clock: Callable[[], float],
                 interval: float | None = None) -> None:
        self.model = model
        self.clock = clock
        self.interval = model.referral_refresh if interval is None else interval
        self._snapshot = model.snapshot()
        self.built_at = clock()

    def snapshot(self) -> CostSnapshot:
        """The current snapshot, rebuilt first if ``interval`` seconds have passed."""
        if self.clock() - self.built_at >= self.interval:
            self.refresh()
        return self._snapshot

    def refresh(self) -> None:
        """Rebuild now (``clustermail referrals refresh``)."""
        self._snapshot = self.model.snapshot()
        self.built_at = self.clock()

    @property
    def next_refresh(self) -> float:
        """Clock time of the next scheduled rebuild."""
        return self.built_at + self.interval

    def referral_list(self, folder_replicas: Iterable[str], from_node: str,
                      rng: random.Random) -> list[Referral]:
        """The referral list for a folder held on ``folder_replicas``, asked at
        ``from_node`` (answered by its default public-folder node)."""
        return referral_list(self.snapshot(), folder_replicas, from_node, rng)

    def explain(self, folder_replicas: Iterable[str], from_node: str,
                rng: random.Random) -> list[Referral]:
        """Included replicas in order, then excluded ones, each with its reason."""
        return explain(self.snapshot(), folder_replicas, from_node, rng)

    def answerer(self, node: str) -> str:
        """The default public-folder node answering for ``node`` (as of the snapshot)."""
        return self.snapshot().answerer(node)
