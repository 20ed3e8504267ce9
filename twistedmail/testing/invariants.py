"""An observer of what clients saw on a cluster, checked for the UID/UIDVALIDITY invariants.

Tests (or the :class:`~twistedmail.testing.cluster.Cluster` helpers) feed it every message
and folder view they see; :meth:`Invariants.check` raises :class:`InvariantViolation`
listing every rule broken so far.

Invariants (issue 3 item 8; RFC 3501 §2.3.1.1, RFC 9051 §2.3.1.1; DESIGN.md §3):
1. A (user, folder, UIDVALIDITY, UID) never names two different messages (EMAILIDs): a UID
   is never reused within one UIDVALIDITY, whichever node shows it.
2. A UIDVALIDITY value is shown by one node only: each node numbers with its own root
   (UIDVALIDITY = root << 24 | counter), so when the roots are given, ``uv >> 24`` is the
   node's root.
3. Per (node, user, folder) the UIDVALIDITY values seen, in the order seen, never decrease
   (a restarted node presents a larger one, issue 3 item 5).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

Key = tuple[str, str, int, int]  # user, folder, uidvalidity, uid


class InvariantViolation(AssertionError):
    """One or more invariants broken; the message lists each, one per line."""


@dataclass
class _Seen:
    """Where one EMAILID was seen for a key (for a readable report)."""

    emailid: str
    node: str


@dataclass
class Invariants:
    """Thread-safe record of (node, user, folder, UIDVALIDITY, UID) -> EMAILID observations."""

    roots: Mapping[str, int] = field(default_factory=dict)  # node name -> uidvalidity root
    _uids: dict[Key, list[_Seen]] = field(default_factory=dict, repr=False)
    _uv_node: dict[int, set[str]] = field(default_factory=dict, repr=False)
    _uv_history: dict[tuple[str, str, str], list[int]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def folder(self, node: str, user: str, folder: str, uidvalidity: int) -> None:
        """Record that ``node`` showed ``folder`` of ``user`` with ``uidvalidity``."""
        with self._lock:
            self._uv_node.setdefault(uidvalidity, set()).add(node)
            history = self._uv_history.setdefault((node, user, folder), [])
            if not history or history[-1] != uidvalidity:
                history.append(uidvalidity)

    def message(
        self, node: str, user: str, folder: str, uidvalidity: int, uid: int, emailid: str
    ) -> None:
        """Record that ``node`` showed UID ``uid`` of that folder view as ``emailid``."""
        self.folder(node, user, folder, uidvalidity)
        with self._lock:
            seen = self._uids.setdefault((user, folder, uidvalidity, uid), [])
            if all(s.emailid != emailid for s in seen):
                seen.append(_Seen(emailid, node))

    def messages(
        self,
        node: str,
        user: str,
        folder: str,
        uidvalidity: int,
        uids: Mapping[int, str],
    ) -> None:
        """Record a whole folder view: ``uids`` maps UID -> EMAILID."""
        self.folder(node, user, folder, uidvalidity)
        for uid, emailid in uids.items():
            self.message(node, user, folder, uidvalidity, uid, emailid)

    @property
    def observations(self) -> int:
        """How many distinct (user, folder, UIDVALIDITY, UID) keys were recorded."""
        with self._lock:
            return len(self._uids)

    def problems(self) -> list[str]:
        """Every broken invariant, one readable line each (empty when all hold)."""
        with self._lock:
            return self._reused_uids() + self._shared_uidvalidities() + self._decreasing()

    def check(self) -> None:
        """Raise InvariantViolation if any invariant is broken."""
        problems = self.problems()
        if problems:
            raise InvariantViolation(
                f"{len(problems)} invariant violation(s):\n" + "\n".join(problems)
            )

    # --- the rules ------------------------------------------------------------------

    def _reused_uids(self) -> list[str]:
        """Rule 1: one (user, folder, UIDVALIDITY, UID) -> one EMAILID."""
        out = []
        for (user, folder, uv, uid), seen in sorted(self._uids.items()):
            if len(seen) > 1:
                shown = ", ".join(f"{s.emailid} on {s.node}" for s in seen)
                out.append(f"uid reused: {user} {folder!r} UIDVALIDITY {uv} UID {uid} is {shown}")
        return out

    def _shared_uidvalidities(self) -> list[str]:
        """Rule 2: one UIDVALIDITY value -> one node (whose root it carries)."""
        out = []
        for uv, nodes in sorted(self._uv_node.items()):
            if len(nodes) > 1:
                out.append(f"UIDVALIDITY {uv} shown by several nodes: {', '.join(sorted(nodes))}")
            for node in sorted(nodes):
                root = self.roots.get(node)
                if root is not None and uv >> 24 != root:
                    out.append(
                        f"UIDVALIDITY {uv} shown by {node} carries root {uv >> 24}, not {root}"
                    )
        return out

    def _decreasing(self) -> list[str]:
        """Rule 3: per (node, user, folder) the UIDVALIDITY never decreases."""
        out = []
        for (node, user, folder), history in sorted(self._uv_history.items()):
            for before, after in zip(history, history[1:], strict=False):
                if after < before:
                    out.append(
                        f"UIDVALIDITY decreased: {node} {user} {folder!r} {before} -> {after}"
                        f" (seen in order: {history})"
                    )
        return out
