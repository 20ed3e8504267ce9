"""Per-node hardening limits (issue 7 item 2): connections, failed logins, mailboxes,
the memory ceiling.  Settings come from ``[limits]`` (twistedmail/config.py); README
"### Limits" lists every limit, its default and what a client sees.

Invariants:
  * Every table here is bounded: connection sets shrink on disconnect (the protocol
    calls :meth:`NodeLimits.release`), the failed-login table holds at most
    ``MAX_TRACKED`` keys (oldest dropped first) and forgets a key ``login_lockout_seconds``
    after its last failure.
  * Failed logins are keyed by (client address, the user name as sent), whether or not
    the user exists: the delay, the lockout and its wording are the same for an unknown
    name, so nothing reveals which users exist.  A locked-out key is refused before the
    password is looked at (a right password does not end a lockout early).
  * The memory measure is :func:`memory_estimate`: the store's distinct message bytes
    plus ``PER_MESSAGE_OVERHEAD`` per distinct message.  It is O(1) (two counters the
    store keeps), deterministic, and falls again when mail is expunged; RSS does not
    (freed memory is rarely returned to the OS), so a node past an RSS ceiling would
    refuse writes for ever.  ``PER_MESSAGE_OVERHEAD`` is ~2.5x the ~820 bytes a small
    message costs in Python objects (measured: 30k appends, RSS minus body bytes).
  * The ceiling refuses only new writes from clients (APPEND, COPY, REPLACE, LMTP,
    SMTP, HTTP send, import).  Replication apply never checks it: a replica that
    refused an op its peers applied would diverge for good (DESIGN.md §4); the
    ceiling leaves room for that by refusing client writes first.
  * Every refusal is counted (``NodeLimits.refusals``) and logged as a
    ``limit.refused`` event (twistedmail/observe/events.py), a memory refusal only
    when the node crosses the ceiling (not once per refused APPEND).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from twistedmail.imap.errors import No
from twistedmail.observe import metrics
from twistedmail.observe.events import event, peer_of
from twistedmail.pernode import PerNode

PER_MESSAGE_OVERHEAD = 2048  # bytes of Python objects per stored message (see above)
MAX_TRACKED = 10_000  # (address, user) keys of the failed-login table
DELAY_CAP = 8  # the failed-login delay doubles up to login_delay * DELAY_CAP
LOCKED_TEXT = "Too many failed logins; try again later"
MEMORY_TEXT = "The server is short of memory; try again later"


@dataclass
class _Failures:
    count: int
    last: float
    locked_until: float = 0.0


class NodeLimits:
    """The limits' state of one node: who is connected, failed logins, counters."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.by_address: dict[str, set[Any]] = {}
        self.by_user: dict[str, set[Any]] = {}
        self.held: dict[Any, tuple[str | None, str | None]] = {}  # proto -> (address, user)
        self.failures: dict[tuple[str, str], _Failures] = {}
        self.refusals: Counter[str] = Counter()
        self.over_memory = False

    @property
    def settings(self) -> Any:
        """The node's settings (read each time: tests and reloads may change them)."""
        return self.node.settings

    def refused(self, limit: str, peer: str, user: str | None, detail: str,
                log: bool = True) -> None:
        """Count one refusal of ``limit``; log it as a ``limit.refused`` event."""
        self.refusals[limit] += 1
        metrics.of(self.node).limit_refusals.labels(limit).inc()
        if log:
            event("limit.refused", limit=limit, peer=peer, user=user, detail=detail)

    # --- connections per address (at connect) and per user (at login) ---------------

    def connect(self, proto: Any) -> bool:
        """Record a new IMAP connection; False if its address has too many already."""
        address = _host(proto)
        limit = self.settings.max_connections_per_address
        if address is None or address in _exempt_hosts(self.node):
            self.held[proto] = (None, None)
            return True
        conns = self.by_address.setdefault(address, set())
        if limit and len(conns) >= limit:
            if not conns:
                del self.by_address[address]
            self.refused("connections_per_address", peer_of(proto.transport), None,
                         f"{len(conns)} connections open, limit {limit}")
            return False
        conns.add(proto)
        self.held[proto] = (address, None)
        return True

    def claim_user(self, proto: Any, user: str) -> None:
        """At login: count ``proto`` as one of ``user``'s sessions, or NO [LIMIT]."""
        address, held_user = self.held.get(proto, (None, None))
        if held_user == user:
            return
        sessions = self.by_user.setdefault(user, set())
        limit = self.settings.max_connections_per_user
        if limit and len(sessions) >= limit:
            if not sessions:
                del self.by_user[user]
            self.refused("connections_per_user", peer_of(proto.transport), user,
                         f"{len(sessions)} sessions, limit {limit}")
            raise No(f"Too many connections for this user (limit {limit})", "LIMIT")
        if held_user is not None:
            self._drop(self.by_user, held_user, proto)
        sessions.add(proto)
        self.held[proto] = (address, user)

    def release(self, proto: Any) -> None:
        """The connection ended: it no longer counts for its address or user."""
        address, user = self.held.pop(proto, (None, None))
        if address is not None:
            self._drop(self.by_address, address, proto)
        if user is not None:
            self._drop(self.by_user, user, proto)

    @staticmethod
    def _drop(table: dict[str, set[Any]], key: str, proto: Any) -> None:
        members = table.get(key)
        if members is not None:
            members.discard(proto)
            if not members:
                del table[key]

    # --- failed logins -------------------------------------------------------------------

    def _now(self) -> float:
        return float(self.node.reactor.seconds())

    def _entry(self, key: tuple[str, str]) -> _Failures | None:
        entry = self.failures.get(key)
        if entry is None:
            return None
        now = self._now()
        if now >= entry.locked_until and now - entry.last >= self.settings.login_lockout_seconds:
            del self.failures[key]  # forgotten: no failure for a lockout period
            return None
        return entry

    def check_login(self, proto: Any, user: str) -> None:
        """Before checking a password: NO [UNAVAILABLE] while (address, user) is locked."""
        entry = self._entry(_login_key(proto, user))
        if entry is not None and self._now() < entry.locked_until:
            self.refused("login_lockout", peer_of(proto.transport), user,
                         "refused while locked out", log=False)
            raise No(LOCKED_TEXT, "UNAVAILABLE")

    def login_failed(self, proto: Any, user: str) -> Deferred[None]:
        """Count a failure; fires after the progressive delay (RFC 3501 §6.2.3 allows
        a server to slow down failed logins).  Locks the key at ``login_lockout_after``."""
        settings = self.settings
        key = _login_key(proto, user)
        entry = self._entry(key)
        now = self._now()
        if entry is None:
            while len(self.failures) >= MAX_TRACKED:
                del self.failures[next(iter(self.failures))]
            entry = _Failures(0, now)
        self.failures.pop(key, None)
        self.failures[key] = entry  # most recent last (eviction order)
        entry.count += 1
        entry.last = now
        after = settings.login_lockout_after
        if after and entry.count >= after and now >= entry.locked_until:
            entry.locked_until = now + settings.login_lockout_seconds
            self.refused("login_lockout", peer_of(proto.transport), user,
                         f"{entry.count} failed logins; locked for "
                         f"{settings.login_lockout_seconds:g}s")
        delay = min(settings.login_delay * 2 ** (entry.count - 1),
                    settings.login_delay * DELAY_CAP)
        return deferLater(self.node.reactor, delay, lambda: None)

    def login_succeeded(self, proto: Any, user: str) -> None:
        """A right password (not while locked): forget the key's failures."""
        self.failures.pop(_login_key(proto, user), None)

    # --- mailboxes per account -----------------------------------------------------------

    def check_mailboxes(self, owner: str, adding: int, peer: str = "-",
                        user: str | None = None) -> None:
        """NO [LIMIT] if ``adding`` more mailboxes would pass ``max_mailboxes``."""
        limit = self.settings.max_mailboxes
        if not limit or adding <= 0:
            return
        have = len(self.node.store.mailboxes(owner)) if self.node.store.has_account(owner) else 0
        if have + adding > limit:
            self.refused("mailboxes_per_account", peer, user or owner,
                         f"{owner} has {have} mailboxes, limit {limit}")
            raise No(f"Too many mailboxes (limit {limit} per account)", "LIMIT")

    # --- memory ceiling --------------------------------------------------------------------

    def memory_room(self, adding: int = 0, peer: str = "-", user: str | None = None) -> bool:
        """False (counted; logged when first crossed) once the estimate plus ``adding``
        bytes passes ``memory_limit``."""
        limit = self.settings.memory_limit
        estimate = memory_estimate(self.node.store)
        if not limit or estimate + adding + PER_MESSAGE_OVERHEAD <= limit:
            self.over_memory = False
            return True
        crossed, self.over_memory = not self.over_memory, True
        self.refused("memory_limit", peer, user,
                     f"estimate {estimate} + {adding} bytes over {limit}", log=crossed)
        return False

    def check_memory(self, session: Any, adding: int = 0) -> None:
        """IMAP: NO [OVERQUOTA] past the memory ceiling (RFC 5530 / RFC 9208 §4.3)."""
        peer = peer_of(getattr(session.conn, "transport", None))
        if not self.memory_room(adding, peer, session.user):
            raise No(MEMORY_TEXT, "OVERQUOTA")


def memory_estimate(store: Any) -> int:
    """Bytes the node's mail costs: distinct bodies plus a per-message overhead."""
    return int(store.bytes_stored()) + int(store.blob_count()) * PER_MESSAGE_OVERHEAD


def new_mailboxes(store: Any, owner: str, name: str) -> int:
    """How many mailboxes creating ``name`` (and its missing superiors) adds."""
    from twistedmail.store import names

    if not store.has_account(owner):
        return 1
    existing = {m.name for m in store.mailboxes(owner)}
    return sum(1 for n in (*names.parents(name), name) if n not in existing)


_LIMITS: PerNode[NodeLimits] = PerNode(NodeLimits)


def of(node: Any) -> NodeLimits:
    """The node's limits state, made on first use."""
    return _LIMITS.of(node)


def _host(proto: Any) -> str | None:
    """The client's IP address; None for a UNIX socket (local, never limited)."""
    transport = getattr(proto, "transport", None)
    peer = transport.getPeer() if transport is not None else None
    host = getattr(peer, "host", None)
    return host if isinstance(host, str) and not host.startswith("/") else None


def _exempt_hosts(node: Any) -> frozenset[str]:
    """Cluster peers' addresses: proxied sessions of many users come from them."""
    spec = getattr(node.settings, "cluster", None)
    if spec is None:
        return frozenset()
    return frozenset(peer.host for peer in spec.peers())


def _login_key(proto: Any, user: str) -> tuple[str, str]:
    return (_host(proto) or "local", user[:256])
