"""A node's public-folder referral data at run time (issue 5 items 2, 3, 5; seed 003).

``PublicReferrals`` is what ``ClusterNode.public`` holds: the public folders'
replica nodes (``ClusterSpec.public_replicas``), this node's editable copy of the
cost model and the ``CostTable`` built from it on the reactor clock.  The admin
channel (twistedmail/admin/referrals.py) edits the model and forces rebuilds;
the IMAP side asks ``referrals``.

Invariants:
  * Answers come from the table's snapshot, never from the model: an edit is
    invisible until the next rebuild (every ``referral_refresh`` seconds of the
    reactor clock) or ``refresh()`` (``clustermail referrals refresh``).
  * Edits are this node's alone (in memory, not replicated, lost at restart):
    the config file is the cluster-wide source; ``clustermail --all-nodes``
    applies an edit on every node.
  * Every refusal is a ``CostError`` with a one-line text (unknown folder, node,
    site; cost out of the caller's range).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Mapping
from typing import Any

from twistedmail.cluster.costs import CostError, CostModel, Role
from twistedmail.cluster.referrals import CostTable, Referral
from twistedmail.imap.namespaces import PUBLIC

PREFIX = PUBLIC + "/"


class PublicReferrals:
    """Replicas of the public folders and the cost table of one node."""

    def __init__(self, me: str, replicas: Mapping[str, tuple[str, ...]], model: CostModel,
                 clock: Callable[[], float], rng: random.Random | None = None) -> None:
        self.me = me
        self.replicas = dict(replicas)
        self.model = copy.deepcopy(model)  # edits never reach the spec's model
        self.table = CostTable(self.model, clock)
        self.rng = rng or random.Random()

    @classmethod
    def of_spec(cls, spec: Any, clock: Callable[[], float]) -> PublicReferrals:
        """The referral data of the node ``spec`` describes (ClusterSpec)."""
        return cls(spec.me.name, spec.public_replicas, spec.costs, clock)

    # --- questions ------------------------------------------------------------------

    def folder(self, name: str) -> str:
        """The configured name of a public folder: ``News`` or ``Public/News``."""
        bare = name[len(PREFIX):] if name.startswith(PREFIX) else name
        if bare not in self.replicas:
            known = ", ".join(sorted(self.replicas)) or "none"
            raise CostError(f"unknown public folder {name!r} (known: {known})")
        return bare

    def replicas_of(self, folder: str) -> tuple[str, ...]:
        """The nodes holding public folder ``folder`` (``News`` or ``Public/News``)."""
        return self.replicas[self.folder(folder)]

    def referrals(self, folder: str, from_node: str | None = None,
                  rng: random.Random | None = None) -> list[Referral]:
        """The replicas a client of ``from_node`` (default this node) is referred to."""
        return self.table.referral_list(self.replicas_of(folder), from_node or self.me,
                                        rng or self.rng)

    def explain(self, folder: str, from_node: str | None = None,
                rng: random.Random | None = None) -> list[Referral]:
        """Every replica, included ones in referral order first, each with its reason."""
        return self.table.explain(self.replicas_of(folder), from_node or self.me,
                                  rng or self.rng)

    def pending(self) -> bool:
        """Whether the model was edited since the table's last rebuild."""
        return bool(self.model.snapshot() != self.table._snapshot)

    def timing(self) -> dict[str, float]:
        """When the table was built, when it is rebuilt next, and the interval."""
        now = self.table.clock()
        return {"built_ago": now - self.table.built_at,
                "next_in": max(0.0, self.table.next_refresh - now),
                "referral_refresh": self.table.interval}

    # --- edits (checked against the caller's role) ---------------------------------

    def set_referral(self, node: str, server: str, cost: object, role: Role) -> None:
        """Add or change ``server`` in ``node``'s custom referral list."""
        self.model.set_referral(node, server, cost, role)

    def unset_referral(self, node: str, server: str | None, role: Role) -> None:
        """Remove ``server`` (None: the whole list) from ``node``'s custom list."""
        if node not in self.model.node_sites:
            raise CostError(f"unknown node {node!r} (known: "
                            f"{', '.join(sorted(self.model.node_sites))})")
        self.model.unset_referral(node, server, role)

    def set_link(self, a: str, b: str, cost: object, role: Role) -> None:
        """Create or change the site link a–b."""
        self.model.set_link(a, b, cost, role)

    def unset_link(self, a: str, b: str, role: Role) -> None:
        """Remove the site link a–b."""
        self.model.unset_link(a, b, role)

    def refresh(self) -> None:
        """Rebuild the table now."""
        self.table.refresh()

    def describe(self) -> dict[str, Any]:
        """The model (what the next rebuild uses) as JSON-ready data."""
        m = self.model
        sites: dict[str, list[str]] = {s: [] for s in sorted(m.sites())}
        for node, site in m.node_sites.items():
            sites[site].append(node)
        return {
            "sites": sites,
            "transit": sorted(m.transit),
            "links": [[a, b, c] for (a, b), c in sorted(m.links.items())],
            "custom": {n: dict(sorted(lst.items())) for n, lst in sorted(m.custom.items())},
            "default_node": dict(sorted(m.default_node.items())),
            "pending": self.pending(),
            **self.timing(),
        }
