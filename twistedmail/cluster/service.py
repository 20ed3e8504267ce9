"""The node side of the cluster: ``ClusterNode`` (DESIGN.md §3–4, issue 3 items 2, 3, 5, 6).

It owns the node's ``Replica``, listens for peers' links, dials every peer
(reconnecting with a bounded backoff), runs the heartbeat membership, and
answers three questions for the IMAP side: may this node serve (``ready``),
may this user write (``check_writable``), and is a change safe
(``durable()``).

Invariants:
  * ``state`` goes "catching-up" -> "ready" (or -> "refused"), never back.
    Ready needs: in sync (VV covering the peer's VV at Hello) with a majority
    of the cluster counting this node, and this incarnation's UIDVALIDITY
    reservation acknowledged by N - majority + 1 peers, so that the majority a
    later incarnation reads always includes one of them (3 nodes: both peers).
    A single configured node is ready at once.
  * UIDVALIDITY (DESIGN.md §3, RFC 3501 §2.3.1.1): every counter this
    incarnation presents is >= ``floor`` = 1 + the highest reservation any
    peer reported for this node's name (and >= the allocator's clock floor),
    and <= a reservation replicated to peers before it is shown (a block of
    ``BLOCK``, extended asynchronously when half used).  Folders that got a
    counter below the floor while catching up are raised before serving.
  * Configured accounts are created only after the floor is set, so every
    folder this incarnation shows has a fresh UIDVALIDITY.
  * ``durable()`` and ``check_writable`` follow twistedmail/cluster/durability.py.
  * A root collision with a live peer at Hello refuses the link; a node that
    is not ready yet refuses itself (``on_refused``: the process exits 1).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from twisted.application import service
from twisted.internet import defer, endpoints, protocol, task
from twisted.logger import Logger
from twisted.python.failure import Failure

from twistedmail.store.uidvalidity import split

from .chain import chain_applies, prompt_origins
from .cops import Cop
from .durability import CATCHING_UP, READY, REFUSED, Durability, _Waiter
from .durability import ClusterUnavailable as ClusterUnavailable  # re-exported
from .hlc import HLC
from .link import InLink, OutLink, PeerLink
from .membership import UP, HeartbeatMembership
from .public import PublicReferrals
from .replica import Replica
from .runtime import Dialer, LinkTLSClient, LinkTLSFactory, exit_process
from .wire import BadSecret, PeerHello, Refused, RootCollision, covers

log = Logger()

BLOCK = 1024  # UIDVALIDITY counters reserved at a time


@dataclass
class _Peer:
    """Per-peer bookkeeping beyond membership."""

    out: OutLink | None = None
    ins: set[InLink] = field(default_factory=set)
    hello_vv: dict[str, int] | None = None  # its VV when our link to it said Hello
    hello_ready: bool = False  # it was serving when it answered that Hello
    acked: int = 0  # highest own seq it reported applied
    reported: int = 0  # the reservation it holds for this node
    refusal: str = ""


class ClusterNode(Durability, service.Service):
    """Replication, membership and readiness of one node (``node.cluster``)."""

    def __init__(self, node: Any, spec: Any, reactor: Any = None, *,
                 log_limit: int = 200_000,
                 on_refused: Callable[[str], None] | None = None,
                 tls_context: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.node, self.spec, self.reactor = node, spec, reactor
        node.cluster = self
        self.incarnation: str = node.store.node_name
        self.stats: Counter[str] = Counter()
        self.state = CATCHING_UP
        self.reason = "starting"
        self.on_refused = on_refused or (lambda why: exit_process(self.reactor, why))
        self._tls_context = tls_context
        self.hlc = HLC(self.incarnation, lambda: int(self.reactor.seconds() * 1000))
        self.replica = Replica(node.store, self.incarnation, self.hlc, holds=spec.holds,
                               log_limit=log_limit)
        self.replica.listeners.append(self._own_cops)
        self.membership = HeartbeatMembership([p.name for p in spec.peers()],
                                              reactor.seconds, spec.suspect_after,
                                              spec.down_after)
        self.membership.listeners.append(self._member_changed)
        self.peers: dict[str, _Peer] = {p.name: _Peer() for p in spec.peers()}
        self.port: Any = None
        self._dialers: dict[str, Dialer] = {}
        self._beat: task.LoopingCall | None = None
        self._flush_call: Any = None
        self._flush_all = False
        # the relay chain worked out (chain.py): peer -> prompt origins, and the
        # other origins this node relays at once; None: to be worked out anew
        self._prompt: tuple[dict[str, frozenset[str]], frozenset[str]] | None = None
        self._prompt_spec: Any = None
        self._waiters: deque[_Waiter] = deque()
        self._floor = 0  # fixed when the reservation starts; 0: still learning
        self._reserved_top = 0
        self._reserve_seq = 0
        self._max_issued = 0
        # public-folder replicas and the cost table on the reactor clock (issue 5)
        self.public = PublicReferrals.of_spec(spec, reactor.seconds)
        self._install_allocator_hooks()

    # --- public API ---------------------------------------------------------------

    @property
    def root(self) -> int:
        """The UIDVALIDITY root this node uses now (``set-root`` may change it)."""
        return int(self.node.store.uidvalidity_root)

    @property
    def ready(self) -> bool:
        """True once the node may serve IMAP."""
        return self.state == READY

    def referrals(self, folder: str, from_node: str | None = None,
                  rng: Any = None) -> list[Any]:
        """The replicas (``referrals.Referral``) a client of ``from_node`` (default this
        node) is referred to for public folder ``folder``, in order (issue 5 item 3)."""
        return self.public.referrals(folder, from_node, rng)

    def explain(self, folder: str, from_node: str | None = None, rng: Any = None) -> list[Any]:
        """``referrals`` plus the excluded replicas, each with why (referrals show)."""
        return self.public.explain(folder, from_node, rng)

    def status(self) -> dict[str, Any]:
        """Members, their states and roots, VVs, lag, the UIDVALIDITY reservation and
        where this node's changes go at once (``relay``, chain.py)."""
        mine = self.replica.vv()
        members: dict[str, Any] = {}
        for peer in self.spec.peers():
            info = self.membership.info(peer.name)
            members[peer.name] = {
                "state": info.state, "root": peer.root, "site": peer.site,
                "incarnation": info.incarnation, "ready": info.ready,
                "lag": sum(max(0, seq - info.vv.get(o, 0)) for o, seq in mine.items()),
                "acked": self.peers[peer.name].acked,
                "linked": self.peers[peer.name].out is not None,
            }
        return {
            "node": self.spec.me.name, "incarnation": self.incarnation,
            "root": self.root, "state": self.state, "reason": self.reason,
            "members": members, "vv": mine, "seq": self.replica.seq,
            "uidvalidity": {"floor": self._floor, "reserved": self._reserved_top,
                            "issued": self._max_issued},
            "relay": {"fanout": "chain" if chain_applies(self.spec) else "direct",
                      "sends_to": sorted(name for name, origins in self._plan_prompt()[0].items()
                                         if self.incarnation in origins)},
            "stats": dict(self.stats),
        }

    # --- service ------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._update_reason()
        if self.spec.me.cluster_endpoint and self.spec.peers():
            self._listen()
        for peer in self.spec.peers():
            dialer = Dialer(self.reactor, self._client_endpoint(peer), self._out_link(peer.name))
            self._dialers[peer.name] = dialer
            dialer.start()
        self._beat = task.LoopingCall(self._heartbeat)
        self._beat.clock = self.reactor
        self._beat.start(self.spec.heartbeat, now=False)
        self._update_readiness()

    def stopService(self) -> defer.Deferred[None] | None:
        super().stopService()
        log.info("cluster node {node} stopping; link statistics: {stats}",
                 node=self.spec.me.name, stats=dict(sorted(self.stats.items())))
        for dialer in self._dialers.values():
            dialer.stop()
        self._dialers = {}
        if self._beat is not None and self._beat.running:
            self._beat.stop()
        for peer in self.peers.values():
            for link in list(peer.ins):
                link.abort()
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        for waiter in list(self._waiters):
            self._fail(waiter, "this node is shutting down")
        port, self.port = self.port, None
        return port.stopListening() if port is not None else None

    def _out_link(self, name: str) -> Callable[[], OutLink]:
        return lambda: OutLink(self, name)

    def _server_factory(self) -> Any:
        factory = protocol.Factory.forProtocol(lambda: InLink(self))
        factory.noisy = False
        if not self.spec.tls:
            return factory
        from twistedmail.tls import context_for

        context = self._tls_context or context_for(self.node.settings)
        return LinkTLSFactory(context, False, factory)

    def _client_endpoint(self, peer: Any) -> Any:
        tcp = endpoints.HostnameEndpoint(self.reactor, peer.host, peer.port, timeout=5)
        if not self.spec.tls:
            return tcp
        from twistedmail.tls import client_options

        # The cluster secret authenticates peers (HMAC at Hello); TLS keeps the link private.
        return LinkTLSClient(client_options(), tcp)

    def _listen(self) -> None:
        description = self.spec.me.cluster_endpoint
        endpoint = endpoints.serverFromString(self.reactor, description)
        errors: list[str] = []

        def bound(port: Any) -> None:
            self.port = port
            address = port.getHost()
            log.info("cluster listening on {host}:{port} ({tls})", host=address.host,
                     port=address.port, tls="TLS" if self.spec.tls else "plain TCP")

        def failed(reason: Failure) -> None:
            errors.append(f"cannot listen on {description}: {reason.getErrorMessage()}")
            if self.running and len(errors) == 1 and self.port is None:
                self._refuse(errors[0])

        endpoint.listen(self._server_factory()).addCallbacks(bound, failed)
        if errors:  # most endpoints fail synchronously, e.g. port in use
            self.state = REFUSED
            self.reason = errors[0]
            raise SystemExit(f"clustermail: error: {errors[0]}")

    # --- links (LinkHost) -------------------------------------------------------

    def vv(self) -> dict[str, int]:
        return self.replica.vv()

    def reserved_for(self, node: str) -> int:
        return int(self.replica.reservations.get(node, 0))

    def missing_since(self, vv: Mapping[str, int]) -> list[Cop] | None:
        return self.replica.missing_since(vv)

    def snapshot(self) -> Any:
        return self.replica.snapshot()

    def blob(self, digest: str) -> bytes | None:
        return self.replica.blob(digest)

    def can_snapshot_for(self, node: str) -> bool:
        """Our snapshot covers the mail files held here: enough for ``node`` unless
        it holds one we do not ([accounts] placement)."""
        me = self.spec.me.name
        return all(me in holders for holders in self.spec.placement.values()
                   if node in holders)

    def check_hello(self, hello: PeerHello, inbound: bool) -> None:
        """Refuse unknown nodes and UIDVALIDITY root collisions (DESIGN.md §3)."""
        me = self.spec.me
        if hello.node not in self.peers:
            raise Refused(f"{hello.node!r} is not a member of this cluster")
        owner = None
        if hello.root == self.root:
            owner = me.name
        else:
            for name in self.peers:
                info = self.membership.info(name)
                if name != hello.node and info.root == hello.root and info.state == UP:
                    owner = name
        if owner is not None:
            why = (f"node {hello.node} presents uidvalidity root {hello.root}, "
                   f"which is live node {owner}'s")
            if owner == me.name and self.state != READY:
                self._refuse(f"uidvalidity root {self.root} is already used by live node "
                             f"{hello.node}")
            raise RootCollision(why)
        configured = self.spec.node(hello.node).root
        if configured != hello.root:
            log.warn("cluster node {node} presents root {root}; the config says {conf}",
                     node=hello.node, root=hello.root, conf=configured)

    def link_up(self, link: PeerLink) -> None:
        hello = link.peer
        assert hello is not None
        peer = self.peers[hello.node]
        self.membership.identify(hello.node, hello.incarnation, hello.root)
        self._replan()
        peer.reported = max(peer.reported, hello.reserved)
        peer.refusal = ""
        if isinstance(link, OutLink):
            if peer.out is not None and peer.out is not link:
                peer.out.abort()
            peer.out = link
            peer.hello_vv = dict(hello.vv or {})
            peer.hello_ready = bool(hello.ready)
            if peer.acked and (hello.vv or {}).get(self.incarnation, 0) < peer.acked:
                peer.acked = 0  # a new incarnation of the peer: its acks start over
            log.info("cluster link to {node} up ({inc}, root {root})", node=hello.node,
                     inc=hello.incarnation, root=hello.root)
        else:
            assert isinstance(link, InLink)
            peer.ins.add(link)
            dialer = self._dialers.get(hello.node)
            if peer.out is None and dialer is not None:
                dialer.poke()
        self._update_readiness()

    def link_down(self, link: PeerLink) -> None:
        hello = link.peer
        assert hello is not None
        peer = self.peers[hello.node]
        if peer.out is link:
            peer.out = None
            self.membership.lost(hello.node)
            log.info("cluster link to {node} lost", node=hello.node)
            self._replan()
        if isinstance(link, InLink):
            peer.ins.discard(link)

    def link_refused(self, link: PeerLink, peer: str, reason: Failure) -> None:
        """Our Hello to ``peer`` was refused (or its answer was not acceptable)."""
        why = reason.getErrorMessage()
        if reason.check(BadSecret) and "bad cluster secret" not in why:
            why = "bad cluster secret"
        state = self.peers.get(peer)
        if state is not None and state.refusal != why:
            log.warn("cluster link to {peer} refused: {why}", peer=peer, why=why)
            state.refusal = why
        self.stats["refused_out"] += 1
        if reason.check(RootCollision) and self.state != READY:
            self._refuse(f"{peer} refused this node: {why}")

    def answered(self, node: str, vv: Mapping[str, int], ready: bool | None) -> None:
        self.membership.heard(node, vv, ready)
        peer = self.peers[node]
        peer.acked = max(peer.acked, vv.get(self.incarnation, 0))
        self._check_waiters()
        self._update_readiness()

    def heard_from(self, node: str, vv: Mapping[str, int], want: list[str]) -> None:
        """A heartbeat on the peer's own link (its liveness is judged on ours);
        bodies it waits for go out on our link to it."""
        link = self.peers[node].out
        if want and link is not None:
            link.supply(want)

    def wanted_blobs(self) -> list[str]:
        return self.replica.wanted_blobs()

    def receive(self, node: str, cops: list[Cop], blobs: dict[str, bytes],
                absent: list[str]) -> None:
        self.replica.receive(cops, blobs, absent)
        self.stats["cops_in"] += len(cops)
        relayed = self._plan_prompt()[1]
        if relayed and any(cop.origin in relayed for cop in cops):
            self._own_cops(cops)  # this node is their origin's head: on at once
        self._update_readiness()

    def snapshot_part(self, node: str, cops: list[Cop], blobs: dict[str, bytes],
                      absent: list[str]) -> None:
        self.replica.apply_snapshot_cops(cops, blobs, absent)

    def snapshot_done(self, node: str, vv: dict[str, int]) -> None:
        self.replica.finish_snapshot(vv)
        self.stats["snapshots_in"] += 1
        log.info("cluster snapshot from {node} applied", node=node)
        self._update_readiness()

    # --- pushing and heartbeats ------------------------------------------------------

    def _own_cops(self, cops: list[Cop]) -> None:
        """New own cops: push them on every link at the end of this reactor turn, so
        the writes of one turn share a batch; a link still waiting for an answer
        sends them, with whatever comes meanwhile, when the answer comes.  (Holding
        them a few ms more for larger batches measured slower.)"""
        if self._flush_call is None or not self._flush_call.active():
            self._flush_call = self.reactor.callLater(0, self._flush)

    def _flush(self) -> None:
        """Kick the links that push something at once (after a change of the chain:
        every link, so a new head is sent what it lacks)."""
        self._flush_call, every = None, self._flush_all
        self._flush_all = False
        prompt = self._plan_prompt()[0]
        for name, peer in self.peers.items():
            if peer.out is not None and (every or prompt.get(name)):
                peer.out.kick()

    # --- the relay chain (chain.py) ---------------------------------------------------

    def prompt_origins(self, peer: str) -> frozenset[str]:
        """The origins whose new ops go to ``peer`` at once; others' ops only as
        anti-entropy relays, a heartbeat period later (link.py)."""
        return self._plan_prompt()[0].get(peer, frozenset())

    def _plan_prompt(self) -> tuple[dict[str, frozenset[str]], frozenset[str]]:
        plan = self._prompt
        if plan is None or self._prompt_spec is not self.spec:
            plan = self._prompt = self._work_out_chain()
            self._prompt_spec = self.spec
        return plan

    def _work_out_chain(self) -> tuple[dict[str, frozenset[str]], frozenset[str]]:
        """(peer -> prompt origins, the other origins relayed at once).  While
        catching up (its reservation needs every peer's ack soon) or when the chain
        does not apply, a node pushes its own ops to every peer and relays nothing."""
        own = frozenset((self.incarnation,))
        if self.state != READY or not chain_applies(self.spec):
            return dict.fromkeys(self.peers, own), frozenset()
        me = self.spec.me.name
        live = {me} | {name for name, peer in self.peers.items()
                       if peer.out is not None and self.membership.state(name) == UP}
        incarnations = {name: self.membership.info(name).incarnation for name in self.peers}
        incarnations[me] = self.incarnation
        prompt = {name: prompt_origins(self.spec.names, me, name, live, incarnations)
                  for name in self.peers}
        relayed = frozenset().union(*prompt.values()) - own
        return prompt, relayed

    def _replan(self) -> None:
        """A link or a state changed: work the chain out anew, kick every link."""
        self._prompt = None
        if self.running:
            self._flush_all = True
            self._own_cops([])

    def _heartbeat(self) -> None:
        self.membership.tick()
        now = self.reactor.seconds()
        for peer in self.peers.values():
            link = peer.out
            if link is not None and now - link.last_heard > self.spec.down_after:
                log.warn("cluster link {where}: silent for {t:g} s; reconnecting",
                         where=link.describe(), t=now - link.last_heard)
                link.abort()
            elif link is not None:
                link.heartbeat()
            for inbound in list(peer.ins):
                if now - inbound.last_heard > 2 * self.spec.down_after:
                    inbound.abort()
        self._check_waiters()

    def _member_changed(self, node: str, old: str, new: str) -> None:
        log.info("cluster node {node}: {old} -> {new}", node=node, old=old, new=new)
        self.members_changed()
        self._replan()
        self._check_waiters()
        self._update_readiness()

    # --- readiness and UIDVALIDITY -------------------------------------------------------

    def _majority(self) -> int:
        return len(self.spec.nodes) // 2 + 1

    def _update_readiness(self) -> None:
        if self.state != CATCHING_UP or not self.running:
            return
        if self._floor == 0:
            if not self._joined():
                self._update_reason()
                return
            self._start_reservation()
        if self._reserve_acks() < self._reserve_acks_needed():
            self._update_reason()
            return
        self._become_ready()

    def _joined(self) -> bool:
        """In sync with a majority, counting only peers that were serving when they
        answered our Hello: a peer still catching up may not know every UIDVALIDITY
        reservation made for this node yet (found by the simulation: a restarted
        peer's empty memory let a node repeat a UIDVALIDITY).  Exception, a fresh
        start: every peer answered and none serves -- then all of them count."""
        mine = self.replica.vv()
        linked = {n: p for n, p in self.peers.items()
                  if p.out is not None and p.hello_vv is not None}
        for name, peer in linked.items():
            if not peer.hello_ready and self.membership.info(name).ready and peer.out:
                peer.out.abort()  # it serves now: Hello again to learn what it holds
        synced = [n for n, p in linked.items() if covers(mine, p.hello_vv or {})]
        serving = [n for n in synced if linked[n].hello_ready]
        if 1 + len(serving) >= self._majority():
            return True
        fresh_start = not any(p.hello_ready for p in linked.values())
        return fresh_start and len(synced) == len(self.peers)

    def _reserve_acks(self) -> int:
        return sum(1 for p in self.peers.values() if p.acked >= self._reserve_seq)

    def _reserve_acks_needed(self) -> int:
        """Peers that must hold the reservation before it is used: a later
        incarnation reads the peers of one majority (``_majority() - 1`` peers), so
        with N - majority + 1 writers every such read meets one (N=3: both peers)."""
        if not self.peers:
            return 0
        return len(self.spec.nodes) - self._majority() + 1

    def _update_reason(self) -> None:
        total, need = len(self.spec.nodes), self._majority()
        reachable = 1 + sum(1 for p in self.peers.values() if p.out is not None)
        if self._floor:
            self.reason = (f"reserving UIDVALIDITY counters: {self._reserve_acks()} of "
                           f"{self._reserve_acks_needed()} peers needed acknowledged (so any "
                           "later majority knows them; RFC 3501 §2.3.1.1)")
        elif reachable < need:
            self.reason = (f"waiting for a majority of the cluster: {reachable} of {total} "
                           f"nodes reachable")
        else:
            linked = sorted(n for n, p in self.peers.items() if p.out is not None)
            serving = [n for n in linked if self.peers[n].hello_ready]
            self.reason = (f"catching up with {', '.join(linked)} (a majority of {need} of "
                           f"{total} nodes must be in sync, counting only serving peers: "
                           f"{', '.join(serving) or 'none yet'})")

    def _known_reservation(self) -> int:
        reported = max((p.reported for p in self.peers.values()), default=0)
        return max(reported, self.reserved_for(self.spec.me.name))

    def _install_allocator_hooks(self) -> None:
        allocator = self.node.store.allocator
        earlier_floor, earlier_issue = allocator.floor_provider, allocator.on_issue

        def floor() -> int:
            low = earlier_floor() if earlier_floor is not None else 0
            mine = self._floor or self._known_reservation() + 1
            return max(low, mine)

        def on_issue(counter: int) -> None:
            if earlier_issue is not None:
                earlier_issue(counter)
            self._issued(counter)

        allocator.floor_provider = floor
        allocator.on_issue = on_issue

    def _issued(self, counter: int) -> None:
        self._max_issued = max(self._max_issued, counter)
        if not self._reserved_top:
            return
        if counter > self._reserved_top:
            log.warn("UIDVALIDITY counter {c} issued beyond the reservation {top}",
                     c=counter, top=self._reserved_top)
        if counter > self._reserved_top - BLOCK // 2:
            self._reserve(max(self._reserved_top, counter) + BLOCK)

    def _start_reservation(self) -> None:
        self._floor = self._known_reservation() + 1
        start = self.node.store.allocator.floor()
        self._reserve(max(start, self._max_issued) + BLOCK)
        self._update_reason()

    def _reserve(self, top: int) -> None:
        self._reserved_top = top
        self.replica.reserve(top)
        self._reserve_seq = self.replica.seq

    def _become_ready(self) -> None:
        raised = self._raise_stale_uidvalidities()
        self.node.create_accounts()
        self.state, self.reason = READY, ""
        self._replan()
        in_sync = sorted(n for n, p in self.peers.items() if p.out is not None)
        log.info("cluster node {name} ready (incarnation {inc}; in sync with {peers}; "
                 "UIDVALIDITY counters from {floor}, reserved to {top}; {raised} folder(s) "
                 "raised)", name=self.spec.me.name, inc=self.incarnation,
                 peers=", ".join(in_sync) or "nobody",
                 floor=self.node.store.allocator.floor(),
                 top=self._reserved_top, raised=raised)
        self._check_waiters()

    def _raise_stale_uidvalidities(self) -> int:
        """Folders created while catching up whose counter is below the floor get a
        fresh UIDVALIDITY (UIDs unchanged); nobody has seen them yet."""
        store = self.node.store
        raised = 0
        for user in store.users():
            for box in store.mailboxes(user):
                if split(box.uidvalidity)[1] < self._floor:
                    box.uidvalidity = store.allocator.allocate(user, box.name)
                    raised += 1
        return raised

    def _refuse(self, why: str) -> None:
        if self.state == REFUSED:
            return
        self.state, self.reason = REFUSED, f"refused: {why}"
        log.critical("cluster node {name} refused: {why}", name=self.spec.me.name, why=why)
        for waiter in list(self._waiters):
            self._fail(waiter, self.reason)
        self.reactor.callLater(0, self._silence)
        self.reactor.callLater(0, self.on_refused, why)

    def _silence(self) -> None:
        """A refused node stops dialling, answering and listening."""
        for dialer in self._dialers.values():
            dialer.stop()
        for peer in self.peers.values():
            for link in list(peer.ins):
                link.abort()
        port, self.port = self.port, None
        if port is not None:
            port.stopListening()
