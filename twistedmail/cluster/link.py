"""Cluster links: AMP connections between nodes (DESIGN.md §4); commands in wire.py.

Each node dials every peer (runtime.Dialer).
The dialled connection (``OutLink``) carries the dialler's pushes: catch-up
(the ops the peer lacks, or a snapshot), live ops of the origins it carries at
once (``host.prompt_origins``: this node's own, and under the relay chain those
of the origins whose head this node is; chain.py) batched per reactor turn,
heartbeats, and anti-entropy relays of every other origin's ops.  The accepted
connection (``InLink``) only answers.

Invariants:
  * Nothing but Challenge/Hello is answered before Hello succeeded; a wrong
    secret is refused (BAD_SECRET), the link closed, and both sides log it.
  * Per origin, an OutLink sends ops in seq order (``missing_since`` order) and
    each batch only after the previous one was answered (stop-and-wait), so a
    peer sees every origin's ops FIFO; the bodies a batch needs go before it.
    (Two batches in flight measured no faster: the peer is rarely the wait.)
  * ``OutLink.sent`` is what the peer has or is being sent; it is reset to the
    peer's own VV whenever the link is idle and a heartbeat answer arrives, so
    anything the peer lost or holds out of order is sent again.  Other
    origins' ops are relayed once the peer still lacks them a heartbeat
    period after this node had them (prompt pushes usually win that race).
  * Bad input from a peer is answered with an AMP error and logged; it never
    raises out of a responder as a traceback to the peer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections import Counter, OrderedDict
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from twisted.internet import defer
from twisted.internet.error import ConnectionClosed
from twisted.logger import Logger
from twisted.protocols import amp
from twisted.python.failure import Failure

from .cops import Cop, MissingBlobs, decode, encode
from .wire import (
    _DIGEST,
    BATCH_COPS,
    BLOB_WINDOW,
    CHUNK,
    HANDSHAKE_TIMEOUT,
    INLINE_MAX,
    MAX_BLOB,
    MAX_PARTIAL,
    MAX_RETRIES,
    MAX_SPOOL,
    MAX_WANT,
    PROTOCOL_VERSION,
    SENT_MEMORY,
    BadRequest,
    BadSecret,
    Blob,
    BlobsMissing,
    Challenge,
    Heartbeat,
    Hello,
    Ops,
    PeerHello,
    Refused,
    RootCollision,
    SnapshotDone,
    SnapshotPart,
    Spool,
    batches,
    digests_of,
    dump_vv,
    pack_inline,
    parse_vv,
    proof,
    unpack_inline,
)

log = Logger()
HEALTHY_AFTER = 5.0  # seconds a link must live for a redial to start at the shortest delay
_CLOSED = Failure(ConnectionClosed())


def _no_delay(transport: Any) -> None:
    """TCP_NODELAY on the link's socket (under TLS, on the wrapped transport): a
    batch and its answer are small writes that Nagle's algorithm would hold back."""
    for candidate in (transport, getattr(transport, "transport", None)):
        try:
            candidate.setTcpNoDelay(True)  # type: ignore[union-attr]
            return
        except (AttributeError, OSError):
            continue


def _before_any(cops: list[Cop], digests: set[str]) -> list[Cop]:
    """The first ``cops``, up to the first that needs a body in ``digests``."""
    for n, cop in enumerate(cops):
        if not digests.isdisjoint(cop.blobs):
            return cops[:n]
    return cops


def _is_closed(reason: Failure) -> bool:
    return reason.check(ConnectionClosed, amp.ProtocolSwitched) is not None


class LinkHost(Protocol):
    """What a link needs from the cluster service (``ClusterNode``)."""

    spec: Any  # ClusterSpec
    incarnation: str
    stats: Counter[str]
    reactor: Any

    @property
    def ready(self) -> bool: ...
    def vv(self) -> dict[str, int]: ...
    def reserved_for(self, node: str) -> int: ...
    def check_hello(self, hello: PeerHello, inbound: bool) -> None: ...
    def link_up(self, link: PeerLink) -> None: ...
    def link_down(self, link: PeerLink) -> None: ...
    def link_refused(self, link: PeerLink, peer: str, reason: Failure) -> None: ...
    def answered(self, node: str, vv: Mapping[str, int], ready: bool | None) -> None: ...
    def receive(self, node: str, cops: list[Cop], blobs: dict[str, bytes],
                absent: list[str]) -> None: ...
    def snapshot_part(self, node: str, cops: list[Cop], blobs: dict[str, bytes],
                      absent: list[str]) -> None: ...
    def snapshot_done(self, node: str, vv: dict[str, int]) -> None: ...
    def heard_from(self, node: str, vv: Mapping[str, int], want: list[str]) -> None: ...
    def wanted_blobs(self) -> list[str]: ...
    def prompt_origins(self, peer: str) -> frozenset[str]: ...
    def missing_since(self, vv: Mapping[str, int]) -> list[Cop] | None: ...
    def snapshot(self) -> Any: ...
    def can_snapshot_for(self, node: str) -> bool: ...
    def blob(self, digest: str) -> bytes | None: ...


# --- links -----------------------------------------------------------------------------

class PeerLink(amp.AMP):
    """One cluster connection; ``peer`` is set once Hello succeeded."""

    outbound = False

    def __init__(self, host: LinkHost) -> None:
        super().__init__()
        self.host = host
        self.peer: PeerHello | None = None
        self.nonce = os.urandom(32)
        self.last_heard = self.connected_at = 0.0
        self._timeout: Any = None

    @property
    def reactor(self) -> Any:
        return self.host.reactor

    def connectionMade(self) -> None:
        super().connectionMade()
        _no_delay(self.transport)  # small AMP boxes: no Nagle + delayed-ACK stalls
        self.last_heard = self.connected_at = self.reactor.seconds()
        self._timeout = self.reactor.callLater(HANDSHAKE_TIMEOUT, self._handshake_timeout)

    def _handshake_timeout(self) -> None:
        self._timeout = None
        if self.peer is None and self.transport is not None:
            log.warn("cluster link {where} closed: no Hello within {t:g} s",
                     where=self.describe(), t=HANDSHAKE_TIMEOUT)
            self.transport.abortConnection()  # type: ignore[attr-defined]

    def connectionLost(self, reason: Failure = _CLOSED) -> None:
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        self._timeout = None
        super().connectionLost(reason)
        if self.peer is not None:
            self.host.link_down(self)

    def describe(self) -> str:
        """"from n2 (127.0.0.1:4242)" / "to n2" for log lines."""
        raise NotImplementedError

    def abort(self) -> None:
        """Drop the connection at once."""
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]

    def my_fields(self) -> tuple[str, str, int, str]:
        me = self.host.spec.me
        root = getattr(self.host, "root", me.root)  # the current root (admin set-root)
        return me.name, self.host.incarnation, root, me.site

    def authenticated(self, hello: PeerHello) -> None:
        self.peer = hello
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        self._timeout = None
        self.last_heard = self.reactor.seconds()


class InLink(PeerLink):
    """An accepted connection: answers a peer's Hello, ops, snapshots and heartbeats."""

    def __init__(self, host: LinkHost) -> None:
        super().__init__(host)
        self._challenged = False
        self._spool = bytearray()
        self._partial: dict[str, bytearray] = {}
        self._blobs: dict[str, bytes] = {}

    def describe(self) -> str:
        name = self.peer.node if self.peer is not None else "?"
        return f"from {name} ({self.address()})"

    def address(self) -> str:
        """The peer's host:port."""
        addr: Any = self.transport.getPeer() if self.transport is not None else None
        return f"{addr.host}:{addr.port}" if hasattr(addr, "port") else str(addr)

    def _need_peer(self) -> str:
        if self.peer is None:
            raise Refused("not authenticated: Hello first")
        self.last_heard = self.reactor.seconds()
        return self.peer.node

    @Challenge.responder
    def challenge(self) -> dict[str, Any]:
        if self._challenged:
            raise Refused("Challenge twice")
        self._challenged = True
        return {"nonce": self.nonce}

    @Hello.responder
    def hello(self, node: str, incarnation: str, root: int, site: str, nonce: bytes,
              proof: bytes, version: int, reserved: int | None = None) -> dict[str, Any]:
        peer = PeerHello(node, incarnation, root, site, max(0, reserved or 0))
        try:
            self._check_hello(peer, nonce, proof, version)
        except (BadSecret, Refused, RootCollision) as err:
            self.host.stats["refused_in"] += 1
            log.warn("cluster link from {node} ({addr}) refused: {why}", node=node,
                     addr=self.address(), why=_why(err))
            raise
        self.authenticated(peer)
        self.host.link_up(self)
        name, inc, my_root, my_site = self.my_fields()
        return {
            "node": name, "incarnation": inc, "root": my_root, "site": my_site,
            "nonce": self.nonce, "proof": _proof_b(self.host.spec.secret, self, nonce),
            "vv_json": dump_vv(self.host.vv()), "ready": self.host.ready,
            "reserved": self.host.reserved_for(node),
        }

    def _check_hello(self, peer: PeerHello, nonce: bytes, given: bytes, version: int) -> None:
        if self.peer is not None:
            raise Refused("Hello twice")
        if not self._challenged:
            raise Refused("Hello before Challenge")
        expected = proof(self.host.spec.secret, b"hello", peer.node, peer.incarnation,
                         peer.root, peer.site, self.nonce, nonce)
        if len(nonce) < 16 or not hmac.compare_digest(expected, given):
            raise BadSecret("bad cluster secret")
        if version != PROTOCOL_VERSION:
            raise Refused(f"protocol version {version}, this node speaks {PROTOCOL_VERSION}")
        self.host.check_hello(peer, True)

    @Blob.responder
    def blob(self, digest: str, offset: int, total: int, chunk: bytes) -> dict[str, Any]:
        self._need_peer()
        if not _DIGEST.match(digest) or not 0 <= total <= MAX_BLOB or len(chunk) > CHUNK:
            raise BadRequest("bad Blob (digest, size or chunk)")
        part = self._partial.get(digest)
        if offset == 0:
            if part is None and len(self._partial) >= MAX_PARTIAL:
                raise BadRequest("too many bodies in transfer")
            part = self._partial[digest] = bytearray()
        if part is None or offset != len(part) or offset + len(chunk) > total:
            self._partial.pop(digest, None)
            raise BadRequest(f"Blob chunk out of order at {offset}")
        part += chunk
        self.host.stats["blob_chunks_in"] += 1
        if len(part) == total:
            del self._partial[digest]
            data = bytes(part)
            if hashlib.sha256(data).hexdigest() != digest:
                raise BadRequest("Blob content does not match its digest")
            self._blobs[digest] = data
        return {}

    @Spool.responder
    def spool(self, chunk: bytes) -> dict[str, Any]:
        self._need_peer()
        if len(self._spool) + len(chunk) > MAX_SPOOL:
            self._spool = bytearray()
            raise BadRequest("batch too large")
        self._spool += chunk
        return {}

    def _take_batch(self, tail: bytes) -> list[Cop]:
        data = bytes(self._spool) + tail
        self._spool = bytearray()
        try:
            return decode(data)
        except ValueError as err:
            raise BadRequest(f"bad batch: {err}") from None

    def _apply(self, fn: Any, batch: bytes, absent_json: str | None) -> None:
        node = self._need_peer()
        cops = self._take_batch(batch)
        absent = digests_of(absent_json) if absent_json is not None else []
        blobs, self._blobs = self._blobs, {}
        try:
            fn(node, cops, blobs, absent)
        except MissingBlobs as err:
            self._blobs = blobs  # keep what came: a retry then needs only the rest
            raise BlobsMissing(json.dumps(list(err.digests)[:800])) from None
        except Exception:
            log.failure("cluster link {where}: applying ops failed", where=self.describe())
            raise BadRequest("the ops could not be applied (logged on the receiver)") from None

    @Ops.responder
    def ops(self, batch: bytes, absent_json: str | None = None,
            inline: bytes | None = None) -> dict[str, Any]:
        if inline:
            self._need_peer()
            self._blobs.update(unpack_inline(inline))
        self._apply(self.host.receive, batch, absent_json)
        self.host.stats["batches_in"] += 1
        return {"vv_json": dump_vv(self.host.vv())}

    @SnapshotPart.responder
    def snapshot_part(self, batch: bytes, absent_json: str | None = None) -> dict[str, Any]:
        self._apply(self.host.snapshot_part, batch, absent_json)
        return {}

    @SnapshotDone.responder
    def snapshot_done(self, vv_json: str) -> dict[str, Any]:
        node = self._need_peer()
        self.host.snapshot_done(node, parse_vv(vv_json))
        return {"vv_json": dump_vv(self.host.vv())}

    @Heartbeat.responder
    def heartbeat(self, vv_json: str, want_json: str | None = None) -> dict[str, Any]:
        node = self._need_peer()
        want = digests_of(want_json)[:MAX_WANT] if want_json is not None else []
        self.host.heard_from(node, parse_vv(vv_json), want)
        return {"vv_json": dump_vv(self.host.vv()), "ready": self.host.ready}


def _why(err: BaseException) -> str:
    return str(err) or type(err).__name__


def _proof_b(secret: bytes, link: PeerLink, their_nonce: bytes) -> bytes:
    name, inc, root, site = link.my_fields()
    return proof(secret, b"welcome", name, inc, root, site, their_nonce, link.nonce)


class OutLink(PeerLink):
    """A dialled connection to ``expected``: it carries this node's pushes."""

    outbound = True

    def __init__(self, host: LinkHost, expected: str) -> None:
        super().__init__(host)
        self.expected = expected
        self.sent: dict[str, int] = {}
        self.cops_out = 0  # cops this link delivered (answered batches)
        self.busy = False
        self._again = False
        self._relay_limit: dict[str, int] = {}
        self._beat_vv: dict[str, int] = {}
        self._beating = False
        self._sent_blobs: OrderedDict[str, None] = OrderedDict()
        self._snapshot_warned = False
        self._supply: set[str] = set()
        self.on_lost: Callable[[bool], None] | None = None  # (was healthy) -> None

    def describe(self) -> str:
        return f"to {self.expected}"

    def connectionLost(self, reason: Failure = _CLOSED) -> None:
        super().connectionLost(reason)
        if self.on_lost is not None:  # healthy: authenticated and up for a while
            lived = self.reactor.seconds() - self.connected_at
            self.on_lost(self.peer is not None and lived > HEALTHY_AFTER)

    def connectionMade(self) -> None:
        super().connectionMade()
        d = self._handshake()
        d.addErrback(self._handshake_failed)

    @defer.inlineCallbacks
    def _handshake(self) -> Generator[Any, Any, None]:
        answer = yield self.callRemote(Challenge)
        their_nonce = answer["nonce"]
        name, inc, root, site = self.my_fields()
        secret = self.host.spec.secret
        answer = yield self.callRemote(
            Hello, node=name, incarnation=inc, root=root, site=site, nonce=self.nonce,
            proof=proof(secret, b"hello", name, inc, root, site, their_nonce, self.nonce),
            version=PROTOCOL_VERSION, reserved=self.host.reserved_for(self.expected))
        expected = proof(secret, b"welcome", answer["node"], answer["incarnation"],
                         answer["root"], answer["site"], self.nonce, their_nonce)
        if answer["nonce"] != their_nonce or not hmac.compare_digest(expected, answer["proof"]):
            raise BadSecret("bad cluster secret (the peer's proof)")
        if answer["node"] != self.expected:
            raise Refused(f"{self.expected}'s address is answered by node {answer['node']}")
        vv = parse_vv(answer["vv_json"])
        peer = PeerHello(answer["node"], answer["incarnation"], answer["root"], answer["site"],
                         max(0, answer["reserved"]), vv, answer["ready"])
        self.host.check_hello(peer, False)
        self.authenticated(peer)
        self.sent = dict(vv)
        self._relay_limit = self._beat_vv = self.host.vv()  # all held now: catch-up
        self.host.link_up(self)
        self.host.answered(peer.node, vv, peer.ready)
        self.kick()

    def _handshake_failed(self, reason: Failure) -> None:
        if _is_closed(reason):
            return
        if reason.check(BadSecret, Refused, RootCollision, amp.RemoteAmpError):
            self.host.link_refused(self, self.expected, reason)
        else:
            log.failure("cluster link to {peer}: handshake failed", reason, peer=self.expected)
        self.abort()

    # --- heartbeats and anti-entropy ---------------------------------------------------

    def heartbeat(self) -> None:
        """Send one Heartbeat unless one is still unanswered."""
        if self.peer is None or self._beating:
            return
        self._beating = True
        mine = self.host.vv()
        want = self.host.wanted_blobs()[:MAX_WANT]
        extra = {"want_json": json.dumps(want)} if want else {}
        d = self.callRemote(Heartbeat, vv_json=dump_vv(mine), **extra)
        d.addCallback(self._beat_answered, mine)
        d.addErrback(self._call_failed, "Heartbeat")

    def _beat_answered(self, answer: dict[str, Any], mine: dict[str, int]) -> None:
        self._beating = False
        assert self.peer is not None
        vv = parse_vv(answer["vv_json"])
        self.last_heard = self.reactor.seconds()
        self.host.answered(self.peer.node, vv, answer["ready"])
        if not self.busy:
            self.sent = dict(vv)  # idle: the peer's own account of what it has wins
        # relay other origins' ops the peer still lacks after a whole heartbeat period
        self._relay_limit, self._beat_vv = self._beat_vv, mine
        self.kick()

    def _call_failed(self, reason: Failure, what: str) -> None:
        self._beating = False
        if not _is_closed(reason):
            log.warn("cluster link to {peer}: {what} failed: {why}", peer=self.expected,
                     what=what, why=reason.getErrorMessage())
            self.abort()

    # --- pushing ----------------------------------------------------------------------------

    def kick(self) -> None:
        """Send whatever the peer lacks (prompt origins' ops at once, relays after a
        heartbeat)."""
        if self.peer is None:
            return
        if self.busy:
            self._again = True
            return
        self.busy = True
        self._round()

    def _round(self) -> None:
        """One push round: the common case (own or relayed ops whose bodies all fit in
        the Ops box) as one plain AMP call; anything else through ``_push``."""
        self._again = False
        fast = None if self._supply else self._fast_batch()
        if fast is None:
            d = self._push()
            d.addErrback(self._push_failed)
            return
        batch, encoded, inline = fast
        if not batch:
            self.busy = False
            return
        extra = {"inline": inline} if inline else {}
        call = self.callRemote(Ops, batch=encoded, **extra)
        call.addCallbacks(self._round_answered, self._round_failed, (batch,))

    def _fast_batch(self) -> tuple[list[Cop], bytes, bytes] | None:
        """(batch, its encoding, packed bodies) for one plain Ops box: the pending
        ops, or as many of the first ones as fit in it (the rest go after its
        answer); an empty batch when nothing is pending; None when ``_push`` must
        handle them (a snapshot, bodies this node lacks, a first body too big to
        inline, a long catch-up)."""
        cops = self._pending()
        if cops is None or len(cops) > BATCH_COPS:
            return None
        if not cops:
            return [], b"", b""
        bodies = self._new_bodies(cops)
        if bodies is None:
            return None
        small: list[tuple[str, bytes]] = []
        room = INLINE_MAX
        for digest, data in bodies.items():
            if len(data) + 72 > room:
                cops = _before_any(cops, set(bodies) - {d for d, _ in small})
                if not cops:
                    return None
                break
            small.append((digest, data))
            room -= len(data) + 72
        encoded = encode(cops)
        if len(encoded) > CHUNK:
            return None  # spooled the long way
        for digest, _ in small:
            self._remember_sent(digest)
        return cops, encoded, pack_inline(small)

    def _new_bodies(self, cops: list[Cop]) -> dict[str, bytes] | None:
        """The bodies ``cops`` need that the peer was not sent yet, in order; None if
        this node lacks one (``_push`` then declares it absent)."""
        out: dict[str, bytes] = {}
        for digest in self._needed(cops):
            if digest in self._sent_blobs or digest in out:
                continue
            data = self.host.blob(digest)
            if data is None:
                return None
            out[digest] = data
        return out

    def _needed(self, cops: Iterable[Cop]) -> Iterator[str]:
        """The digests of the bodies ``cops`` reference in mail files the peer holds
        (it ignores the others' bodies), in order, repeats included."""
        assert self.peer is not None
        spec, node = self.host.spec, self.peer.node
        held: dict[str, bool] = {}
        for cop in cops:
            if not cop.blobs:
                continue
            user = cop.body.get("u")
            if isinstance(user, str):
                holds = held.get(user)
                if holds is None:
                    holds = held[user] = spec.holds(user, node)
                if not holds:
                    continue
            yield from cop.blobs

    def _round_answered(self, answer: Mapping[str, Any], batch: list[Cop]) -> None:
        self.host.stats["batches_out"] += 1
        self.cops_out += len(batch)
        for cop in batch:
            if cop.seq > self.sent.get(cop.origin, 0):
                self.sent[cop.origin] = cop.seq
        self._acked(answer)
        self._round()  # on a lost connection callRemote fails: _round_failed ends it

    def _round_failed(self, reason: Failure) -> None:
        if reason.check(BlobsMissing):  # the peer lost bodies sent before: the long way
            self.host.stats["bodies_missing_resent"] += 1
            for digest in digests_of(reason.getErrorMessage()):
                self._sent_blobs.pop(digest, None)
            d = self._push()
            d.addErrback(self._push_failed)
            return
        self._push_failed(reason)

    def _remember_sent(self, digest: str) -> None:
        self._sent_blobs[digest] = None
        if len(self._sent_blobs) > SENT_MEMORY:
            self._sent_blobs.popitem(last=False)

    def _push_failed(self, reason: Failure) -> None:
        self.busy = False
        if _is_closed(reason):
            return
        log.failure("cluster link to {peer}: sending failed; reconnecting", reason,
                    peer=self.expected)
        self.abort()

    def _pending(self) -> list[Cop] | None:
        cops = self.host.missing_since(self.sent)
        if cops is None:
            return None
        assert self.peer is not None
        prompt, limit = self.host.prompt_origins(self.peer.node), self._relay_limit
        return [c for c in cops if c.origin in prompt or c.seq <= limit.get(c.origin, 0)]

    @defer.inlineCallbacks
    def _push(self) -> Generator[Any, Any, None]:
        try:
            for _ in range(1_000_000):  # bounded: each round sends or stops
                self._again = False
                if self._supply:
                    yield self._send_supply()
                cops = self._pending()
                if cops is None and self._may_snapshot():  # the log does not reach back
                    yield self._send_snapshot()
                    continue
                if not cops:
                    if self._again and cops is not None:
                        continue
                    break
                for batch in batches(cops, self._body_size):
                    answer = yield self._send_cops(Ops, batch)
                    self.host.stats["batches_out"] += 1
                    self.cops_out += len(batch)
                    for cop in batch:
                        if cop.seq > self.sent.get(cop.origin, 0):
                            self.sent[cop.origin] = cop.seq
                    self._acked(answer)
        finally:
            self.busy = False

    def _acked(self, answer: Mapping[str, Any]) -> None:
        assert self.peer is not None
        self.last_heard = self.reactor.seconds()
        self.host.answered(self.peer.node, parse_vv(answer["vv_json"]), None)

    def _may_snapshot(self) -> bool:
        """A snapshot covers the mail files held here; a peer holding others must
        take its snapshot from a node that holds them (replica.py)."""
        assert self.peer is not None
        if self.host.can_snapshot_for(self.peer.node):
            return True
        if not self._snapshot_warned:
            self._snapshot_warned = True
            log.warn("cluster link to {peer}: it is too far behind for the op log, and "
                     "holds mail files this node does not; another node must send it a "
                     "snapshot", peer=self.expected)
        return False

    def supply(self, digests: Iterable[str]) -> None:
        """The peer waits for these bodies (adds it applied without them): send
        those held here, then an empty Ops so its waiting adds apply."""
        self._supply.update(d for d in digests if isinstance(d, str) and _DIGEST.match(d))
        if len(self._supply) > MAX_WANT:
            self._supply = set(sorted(self._supply)[:MAX_WANT])
        self.kick()

    @defer.inlineCallbacks
    def _send_supply(self) -> Generator[Any, Any, None]:
        digests, self._supply = sorted(self._supply), set()
        held = [d for d in digests if self.host.blob(d) is not None]
        if not held:
            return
        for digest in held:
            self._sent_blobs.pop(digest, None)
        answer = yield self._send_cops(Ops, [], held)
        self.host.stats["bodies_supplied"] += len(held)
        self._acked(answer)

    def _body_size(self, digest: str) -> int:
        if digest in self._sent_blobs:
            return 0
        data = self.host.blob(digest)
        return len(data) if data is not None else 0

    def _bodies(self, cops: Iterable[Cop]) -> tuple[list[str], list[str]]:
        """(bodies to send first, bodies this node lacks) for a batch."""
        send: dict[str, None] = {}
        absent: dict[str, None] = {}
        for digest in self._needed(cops):
            if self.host.blob(digest) is None:
                absent[digest] = None
            elif digest not in self._sent_blobs:
                send[digest] = None
        return list(send), list(absent)

    @defer.inlineCallbacks
    def _send_cops(self, command: type[amp.Command], batch: list[Cop],
                   extra: Sequence[str] = ()) -> Generator[Any, Any, Any]:
        """Bodies, then ``command`` with the batch; bodies the peer reports missing
        are sent again (bounded), those gone here too are declared absent."""
        send, absent = self._bodies(batch)
        send += [d for d in extra if d not in send]
        for _ in range(MAX_RETRIES + 1):
            inline, send = self._inline(send) if command is Ops else (b"", send)
            yield self._send_bodies(send)
            try:
                answer = yield self._call_big(command, encode(batch), absent, inline)
                return answer
            except BlobsMissing as err:
                digests = [d for d in digests_of(str(err)) if d not in absent]
                absent += [d for d in digests if self.host.blob(d) is None]
                send = [d for d in digests if d not in absent]
                for digest in send:
                    self._sent_blobs.pop(digest, None)
        raise Refused("the peer keeps lacking bodies sent to it")

    @defer.inlineCallbacks
    def _send_snapshot(self) -> Generator[Any, Any, None]:
        snap = self.host.snapshot()
        log.info("cluster link to {peer}: sending a snapshot ({n} state ops)",
                 peer=self.expected, n=len(snap.cops))
        for batch in batches(snap.cops, self._body_size):
            yield self._send_cops(SnapshotPart, batch)
        answer = yield self.callRemote(SnapshotDone, vv_json=dump_vv(snap.vv))
        self.host.stats["snapshots_out"] += 1
        for origin, seq in snap.vv.items():
            self.sent[origin] = max(self.sent.get(origin, 0), seq)
        self._acked(answer)

    def _inline(self, digests: list[str]) -> tuple[bytes, list[str]]:
        """(small bodies packed for the Ops box, the digests left for Blob boxes)."""
        small: list[tuple[str, bytes]] = []
        rest: list[str] = []
        room = INLINE_MAX
        for digest in digests:
            data = self.host.blob(digest)
            if data is not None and len(data) + 72 <= room:
                small.append((digest, data))
                room -= len(data) + 72
                self._remember_sent(digest)
            else:
                rest.append(digest)
        return pack_inline(small), rest

    def _call_big(self, command: type[amp.Command], payload: bytes,
                  absent: Sequence[str], inline: bytes = b"") -> defer.Deferred[Any]:
        """``command(batch=payload)``, the payload's head sent as Spool pieces first."""
        head, tail = payload[:-CHUNK] if len(payload) > CHUNK else b"", payload[-CHUNK:]
        if head:
            self.host.stats["spooled"] += 1
        for offset in range(0, len(head), CHUNK):
            self.callRemote(Spool, chunk=head[offset:offset + CHUNK]).addErrback(lambda f: None)
        extra: dict[str, Any] = {"absent_json": json.dumps(list(absent))} if absent else {}
        if inline:
            extra["inline"] = inline
        return self.callRemote(command, batch=tail, **extra)

    @defer.inlineCallbacks
    def _send_bodies(self, digests: Sequence[str]) -> Generator[Any, Any, None]:
        for digest in digests:
            data = self.host.blob(digest)
            if data is None:
                continue  # gone here too; the peer says so if it needs it
            yield self._send_body(digest, data)
            self._remember_sent(digest)

    @defer.inlineCallbacks
    def _send_body(self, digest: str, data: bytes) -> Generator[Any, Any, None]:
        """Chunks of at most CHUNK bytes, BLOB_WINDOW of them in flight.  The last
        window is not waited for: the peer handles boxes in order, so the Ops that
        follows finds the body (or answers BlobsMissing, and the batch is retried);
        a message that fits in one chunk thus costs no round trip of its own."""
        flying: list[defer.Deferred[Any]] = []
        try:
            for offset in range(0, len(data), CHUNK) if data else [0]:
                flying.append(self.callRemote(Blob, digest=digest, offset=offset,
                                              total=len(data),
                                              chunk=data[offset:offset + CHUNK]))
                self.host.stats["blob_chunks_out"] += 1
                if len(flying) >= BLOB_WINDOW:
                    yield flying.pop(0)
        finally:
            for d in flying:
                d.addErrback(lambda f: None)
