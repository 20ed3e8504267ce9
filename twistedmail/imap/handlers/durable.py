"""The cluster side of IMAP writes and logins (DESIGN.md §4, contract §4).

``session.node.cluster`` is the ClusterNode (twistedmail/cluster/service.py), or
None in single-node mode; ``session.node.settings.cluster`` is the ClusterSpec.

Invariants:
  * Single-node mode (``node.cluster is None``): nothing here changes anything;
    the write handlers answer in the same reactor turn, as before.
  * APPEND, COPY and MOVE ask ``check_writable(owner)`` before storing anything;
    a refusal is ``NO [UNAVAILABLE]`` (RFC 5530) and nothing was stored.
  * After storing, the tagged OK waits for ``node.cluster.durable()`` (the
    change is in memory on ``ack_replicas`` nodes).  If that fails (or takes
    longer than twice ``ack_timeout`` plus a second) the messages the command
    added are expunged again before ``NO [UNAVAILABLE]``: a NO leaves nothing
    behind (RFC 3502 all or nothing).  MOVE removes its sources only after
    the copies are durable, so a failed MOVE leaves the mail where it was.
  * A user whose mail file this node does not hold cannot log in here:
    ``NO [UNAVAILABLE] mail file of U is not on node N (held on ...)``.
  * A mail file disabled by ``convert -e-`` (twistedmail/admin/mailfiles.py):
    LOGIN / AUTHENTICATE as its owner and SELECT / EXAMINE of its folders get
    ``NO [UNAVAILABLE] IMAP is disabled for mail file U on N (convert -e-)``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from twistedmail.imap.errors import No
from twistedmail.imap.session import Session
from twistedmail.pernode import PerNode
from twistedmail.store import Expunge, Mailbox, StoreError

log = Logger()
T = TypeVar("T")
UNAVAILABLE = "UNAVAILABLE"  # RFC 5530 §3: the server cannot do it right now


def cluster_of(session: Session) -> Any | None:
    """The node's ClusterNode, or None in single-node mode."""
    return getattr(session.node, "cluster", None)


def check_enabled(session: Session, user: str) -> None:
    """NO [UNAVAILABLE] when ``user``'s mail file is disabled here (convert -e-)."""
    from twistedmail.admin.mailfiles import MailFiles

    refusal = MailFiles.of(session.node).refusal(user)
    if refusal is not None:
        raise No(refusal, UNAVAILABLE)


def track_session(session: Session) -> None:
    """Let the admin side reach this logged-in session (convert -e- sends BYE)."""
    from twistedmail.admin.mailfiles import MailFiles

    MailFiles.of(session.node).track(session)


def check_writable(session: Session, owner: str) -> None:
    """Before storing: NO [UNAVAILABLE] when the cluster cannot take a write for
    ``owner``'s mail file now (too few live replicas, node not ready)."""
    cluster = cluster_of(session)
    if cluster is None:
        return
    if not cluster.ready:
        raise No(f"node is not ready: {cluster.reason or 'catching up'}", UNAVAILABLE)
    try:
        cluster.check_writable(owner)
    except Exception as err:  # noqa: BLE001 - every refusal becomes NO [UNAVAILABLE]
        if not _is_unavailable(err):
            log.failure("check_writable({owner}) failed", Failure(err), owner=owner)
        raise No(str(err) or "the cluster cannot take writes now", UNAVAILABLE) from None


class Added:
    """What a command stored, by message instance (UIDs may be renumbered meanwhile)."""

    def __init__(self) -> None:
        self.boxes: list[tuple[str, frozenset[tuple[str, int]]]] = []

    def note(self, mailbox: Mailbox, uids: list[int] | tuple[int, ...]) -> None:
        """Remember ``uids`` just added to ``mailbox``."""
        records = (mailbox.get(uid) for uid in uids)
        ids = frozenset(r.instance_id for r in records if r is not None)
        if ids:
            self.boxes.append((mailbox.id, ids))

    def undo(self, session: Session) -> None:
        """Expunge every message noted that is still there."""
        store = session.store
        for box_id, ids in self.boxes:
            box = store.mailbox_by_id(box_id)
            if box is None:
                continue  # deleted meanwhile: its messages went with it
            uids = tuple(r.uid for r in box.records() if r.instance_id in ids)
            if not uids:
                continue
            try:
                store.apply(Expunge(box.user, box.name, uids))
            except StoreError:
                log.failure("undoing {n} message(s) in {box}", n=len(uids), box=box.name)


def when_durable(session: Session, owner: str, added: Added, what: str,
                 then: Callable[[], T]) -> T | Deferred[T]:
    """``then()`` once the change stored in ``owner``'s mail file is durable (at once
    in single-node mode); otherwise undo ``added`` and fail with NO [UNAVAILABLE]."""
    cluster = cluster_of(session)
    if cluster is None:
        return then()
    d: Deferred[Any] = cluster.durable(owner)
    spec = getattr(session.node.settings, "cluster", None)
    limit = 2 * getattr(spec, "ack_timeout", 5.0) + 1.0  # a guard; durable() has its own
    if not d.called:
        _GUARDS.of(session.node).watch(d, limit)

    def failed(f: Failure) -> T:
        added.undo(session)
        if not _is_unavailable(f.value):
            log.failure("{what}: durable() failed", f, what=what)
        text = str(f.value) or "too few replicas acknowledged the change"
        if f.check(defer.CancelledError):  # the guard below gave up on it
            text = f"no acknowledgement from the replicas within {limit:g} s"
        raise No(f"{text}; {what} undone", UNAVAILABLE)

    return d.addCallbacks(lambda _: then(), failed)


class _Guard:
    """The ``limit`` guard of every waiting write of one node, with one timer (not a
    timer per write): the deferreds in arming order, so their deadlines ascend."""

    def __init__(self, node: Any) -> None:
        self.reactor = node.reactor
        self.waiting: deque[tuple[float, Deferred[Any]]] = deque()
        self.call: Any = None

    def watch(self, d: Deferred[Any], limit: float) -> None:
        waiting = self.waiting
        while waiting and waiting[0][1].called:
            waiting.popleft()  # fired: not kept alive until its deadline (GC work)
        waiting.append((self.reactor.seconds() + limit, d))
        self._arm()

    def _arm(self) -> None:
        if self.call is None or not self.call.active():
            delay = max(0.0, self.waiting[0][0] - self.reactor.seconds())
            self.call = self.reactor.callLater(delay, self._sweep)

    def _sweep(self) -> None:
        self.call = None
        now = self.reactor.seconds()
        while self.waiting and (self.waiting[0][1].called or self.waiting[0][0] <= now):
            _, d = self.waiting.popleft()
            if not d.called:
                d.cancel()  # the canceller drops the cluster's waiter; CancelledError
        if self.waiting:
            self._arm()


_GUARDS: PerNode[_Guard] = PerNode(_Guard)


def _is_unavailable(err: BaseException | None) -> bool:
    """Whether ``err`` is the cluster's expected refusal (ClusterUnavailable)."""
    try:
        from twistedmail.cluster.service import ClusterUnavailable
    except ImportError:  # no cluster service in this tree
        return False
    return isinstance(err, ClusterUnavailable)
