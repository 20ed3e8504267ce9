"""Cluster links (twistedmail/cluster/link.py, wire.py): handshake, auth, chunking, relays.

Pure helpers first; then nodes in the shared reactor thread linked over real
127.0.0.1 TCP with TLS (tests/cluster/inproc.py).
"""

from __future__ import annotations

import hashlib
import os
import socket
import ssl

import pytest

from twistedmail.cluster.cops import Cop
from twistedmail.cluster.wire import (
    BATCH_COPS,
    CHUNK,
    BadRequest,
    batches,
    covers,
    parse_vv,
    proof,
)

from .inproc import (
    InProcessCluster,
    LogCapture,
    Member,
    append,
    call,
    messages,
    replace_node,
    wait_for,
)

# --- pure helpers ------------------------------------------------------------------


def test_proof_binds_secret_label_fields_and_both_nonces() -> None:
    """The Hello proof changes with the secret, the role label, any field or either nonce."""
    base = proof(b"s", b"hello", "n1", "n1~a", 1, "default", b"A" * 32, b"B" * 32)
    assert base == proof(b"s", b"hello", "n1", "n1~a", 1, "default", b"A" * 32, b"B" * 32)
    variants = [
        proof(b"t", b"hello", "n1", "n1~a", 1, "default", b"A" * 32, b"B" * 32),
        proof(b"s", b"welcome", "n1", "n1~a", 1, "default", b"A" * 32, b"B" * 32),
        proof(b"s", b"hello", "n2", "n1~a", 1, "default", b"A" * 32, b"B" * 32),
        proof(b"s", b"hello", "n1", "n1~b", 1, "default", b"A" * 32, b"B" * 32),
        proof(b"s", b"hello", "n1", "n1~a", 2, "default", b"A" * 32, b"B" * 32),
        proof(b"s", b"hello", "n1", "n1~a", 1, "other", b"A" * 32, b"B" * 32),
        proof(b"s", b"hello", "n1", "n1~a", 1, "default", b"C" * 32, b"B" * 32),
        proof(b"s", b"hello", "n1", "n1~a", 1, "default", b"A" * 32, b"C" * 32),
    ]
    assert base not in variants


def test_parse_vv_accepts_only_origin_to_seq() -> None:
    """A VV is JSON {str: int >= 0}; anything else is BadRequest."""
    assert parse_vv('{"n1~a": 3}') == {"n1~a": 3}
    for bad in ("[1]", '{"a": -1}', '{"a": "1"}', '{"a": 1.5}', "nope", '{"a": true}'):
        with pytest.raises(BadRequest):
            parse_vv(bad)


def test_covers() -> None:
    """covers(a, b): a has every origin of b at least as far."""
    assert covers({"x": 3, "y": 1}, {"x": 3})
    assert not covers({"x": 2}, {"x": 3})
    assert not covers({}, {"y": 1})
    assert covers({}, {})


def test_batches_cut_by_count_and_body_bytes() -> None:
    """Batches hold at most BATCH_COPS cops and ~4 MiB of bodies; order is kept."""
    cops = [Cop("o", i + 1, "reserve", {"node": "n", "top": i}) for i in range(BATCH_COPS + 3)]
    cut = list(batches(cops, lambda d: 0))
    assert [len(b) for b in cut] == [BATCH_COPS, 3]
    assert [c for b in cut for c in b] == cops
    big = [Cop("o", i + 1, "reserve", {"node": "n", "top": i}, (f"{i:064x}",)) for i in range(5)]
    cut = list(batches(big, lambda d: 3 * 1024 * 1024))
    assert [len(b) for b in cut] == [1, 1, 1, 1, 1]


# --- over TCP + TLS ------------------------------------------------------------------------


def test_wrong_secret_refused_and_logged_on_both_sides(inproc: InProcessCluster) -> None:
    """A node with another secret is refused: both sides log it, neither sees the other up."""
    two = inproc.nodes[:2]
    with LogCapture() as logs:
        inproc.start("n1", inproc.spec("n1", nodes=two))
        inproc.start("n2", inproc.spec("n2", nodes=two, secret=b"not the secret"))
        wait_for(lambda: logs.has("cluster link from n2 (127.0.0.1:")
                 and logs.has("cluster link to n2 refused: bad cluster secret")
                 and logs.has("cluster link from n1 (127.0.0.1:")
                 and logs.has("cluster link to n1 refused: bad cluster secret"),
                 "both refusals logged")
    assert any("refused: bad cluster secret" in line and "from n2" in line
               for line in logs.lines)
    n1, n2 = inproc["n1"].cluster, inproc["n2"].cluster
    assert call(lambda: n1.membership.state("n2")) == "down"
    assert call(lambda: n2.membership.state("n1")) == "down"
    assert call(lambda: (n1.state, n1.reason)) == (
        "catching-up", "waiting for a majority of the cluster: 1 of 2 nodes reachable")


def test_unauthenticated_commands_refused_without_traceback(inproc: InProcessCluster) -> None:
    """Ops before Hello, or garbage, gets an AMP error and a closed link; the node lives on."""
    member = inproc.start("n1")
    port = inproc.nodes[0].port
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw) as tls:
        batch = b"[]"
        box = b"".join(len(k).to_bytes(2, "big") + k + len(v).to_bytes(2, "big") + v
                       for k, v in [(b"_command", b"Ops"), (b"_ask", b"1"), (b"batch", batch)])
        tls.sendall(box + b"\x00\x00")
        answer = b""
        while True:
            data = tls.recv(4096)
            if not data:
                break
            answer += data
    assert b"_error_code\x00\x07REFUSED" in answer
    assert b"not authenticated" in answer
    assert b"Traceback" not in answer
    assert call(lambda: member.cluster.state) == "catching-up"


def test_big_message_crosses_in_chunks(inproc: InProcessCluster) -> None:
    """A 1.5 MiB body reaches the peer intact, sent as Blob chunks of <= 60000 bytes."""
    inproc.options["ack_timeout"] = 10.0
    two = inproc.nodes[:2]
    a = inproc.start("n1", inproc.spec("n1", nodes=two))
    b = inproc.start("n2", inproc.spec("n2", nodes=two))
    inproc.wait_ready("n1")
    inproc.wait_ready("n2")
    body = b"Subject: big\r\n\r\n" + os.urandom(1536 * 1024).hex().encode()[: 1536 * 1024]
    before = call(lambda: a.cluster.stats["blob_chunks_out"])
    append(a, "alice", body)
    call(a.cluster.durable, "alice")
    assert messages(b, "alice") == [body]
    chunks = call(lambda: a.cluster.stats["blob_chunks_out"]) - before
    assert chunks >= -(-len(body) // CHUNK)
    digest = hashlib.sha256(body).hexdigest()
    assert call(lambda: b.cluster.replica.blob(digest)) == body


def test_batches_over_64k_are_spooled(inproc: InProcessCluster) -> None:
    """Hundreds of ops in one reactor turn travel as one batch larger than an AMP value."""
    two = inproc.nodes[:2]
    a = inproc.start("n1", inproc.spec("n1", nodes=two))
    b = inproc.start("n2", inproc.spec("n2", nodes=two))
    inproc.wait_ready("n1")
    inproc.wait_ready("n2")

    def burst() -> None:
        from twistedmail.store import Append

        store = a.node.store
        for i in range(400):
            store.apply(Append.new(store, "bob", "INBOX", b"Subject: %d\r\n\r\nx\r\n" % i))

    call(burst)
    call(a.cluster.durable, "bob")
    assert len(messages(b, "bob")) == 400
    assert call(lambda: a.cluster.stats["spooled"]) >= 1


def test_anti_entropy_relays_ops_from_a_third_node(inproc: InProcessCluster) -> None:
    """n1 and n3 cannot reach each other; n2 relays each one's ops to the other."""
    from twistedmail.testing.tcpproxy import TcpProxy

    a, c = inproc.nodes[0], inproc.nodes[2]
    with TcpProxy((c.host, c.port), name="n1->n3") as to_n3, \
            TcpProxy((a.host, a.port), name="n3->n1") as to_n1:
        via3 = replace_node(inproc.nodes, "n3", host=to_n3.address[0], port=to_n3.address[1])
        via1 = replace_node(inproc.nodes, "n1", host=to_n1.address[0], port=to_n1.address[1])
        n1 = inproc.start("n1", inproc.spec("n1", nodes=via3))
        inproc.start("n2")
        n3 = inproc.start("n3", inproc.spec("n3", nodes=via1))
        for name in ("n1", "n2", "n3"):  # serving needs both peers' acks (service.py)
            inproc.wait_ready(name)
        to_n3.cut()
        to_n1.cut()
        wait_for(lambda: n1.cluster.peers["n3"].out is None, "n1 -> n3 down")
        wait_for(lambda: n3.cluster.peers["n1"].out is None, "n3 -> n1 down")
        append(n1, "alice", b"Subject: from n1\r\n\r\nrelayed\r\n")
        append(n3, "bob", b"Subject: from n3\r\n\r\nrelayed too\r\n")
        wait_for(lambda: _count(n3, "alice") == 1, "n1's op at n3")
        wait_for(lambda: _count(n1, "bob") == 1, "n3's op at n1")
        wait_for(lambda: n1.cluster.membership.state("n3") == "down", "n3 down for n1")
        inproc.wait_converged()


def _count(member: Member, user: str) -> int:
    """Messages in ``user``'s INBOX on ``member`` (reactor thread)."""
    return len(list(member.node.store.mailbox(user, "INBOX").records()))


def test_relayed_add_without_body_gets_it_on_request(inproc: InProcessCluster) -> None:
    """n2 (not holding alice) relays n1's add to n3 without its body while n1->n3 is
    cut; n3 asks for the body in its heartbeats, and n1 sends it once the link is back."""
    from twistedmail.testing.tcpproxy import TcpProxy

    n3 = inproc.nodes[2]
    placement = {"alice": ("n1", "n3")}
    with TcpProxy((n3.host, n3.port), name="n1->n3") as proxy:
        via = replace_node(inproc.nodes, "n3", host=proxy.address[0], port=proxy.address[1])
        a = inproc.start("n1", inproc.spec("n1", nodes=via, placement=placement))
        inproc.start("n2", inproc.spec("n2", placement=placement))
        c = inproc.start("n3", inproc.spec("n3", placement=placement))
        for name in ("n1", "n2", "n3"):
            inproc.wait_ready(name)
        wait_for(lambda: a.cluster.membership.state("n3") == "up", "n1 -> n3 up")
        proxy.cut()
        wait_for(lambda: a.cluster.peers["n3"].out is None, "n1 -> n3 down")
        body = b"Subject: relayed\r\n\r\nbody comes later\r\n"
        append(a, "alice", body)
        seq = call(lambda: a.cluster.replica.seq)
        origin = call(lambda: a.cluster.incarnation)
        wait_for(lambda: c.cluster.replica.vv().get(origin, 0) >= seq, "the relay reached n3")
        assert call(c.cluster.replica.wanted_blobs) == [hashlib.sha256(body).hexdigest()]
        assert messages(c, "alice") == []
        proxy.restore()
        wait_for(lambda: _count(c, "alice") == 1, "the body supplied to n3")
    assert messages(c, "alice") == [body]
    # n3 applies the body before n1 has read n3's answer, which is when n1 counts it
    wait_for(lambda: a.cluster.stats["bodies_supplied"] >= 1, "n1 counted the body it supplied")


def _pair(inproc: InProcessCluster) -> tuple[Member, Member]:
    two = inproc.nodes[:2]
    a = inproc.start("n1", inproc.spec("n1", nodes=two))
    b = inproc.start("n2", inproc.spec("n2", nodes=two))
    inproc.wait_ready("n1")
    inproc.wait_ready("n2")
    return a, b


def test_small_bodies_ride_inline_and_sent_digests_stay_bounded(
        inproc: InProcessCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small messages travel inside the Ops boxes (no Blob box), and the digests a link
    remembers as sent never exceed SENT_MEMORY."""
    monkeypatch.setattr("twistedmail.cluster.link.SENT_MEMORY", 10)
    a, b = _pair(inproc)
    for i in range(30):
        append(a, "alice", b"Subject: small %d\r\n\r\ninline\r\n" % i)
        call(a.cluster.durable, "alice")
    assert len(messages(b, "alice")) == 30
    assert call(lambda: a.cluster.stats["blob_chunks_out"]) == 0
    assert call(lambda: len(a.cluster.peers["n2"].out._sent_blobs)) == 10


def test_body_the_peer_lost_is_sent_again_on_the_same_link(inproc: InProcessCluster) -> None:
    """A body the link remembers as sent but the peer dropped since (its message was
    expunged) is sent again when the same body is appended anew, without a reconnect."""
    from twistedmail.store import Expunge

    a, b = _pair(inproc)
    body = b"Subject: again\r\n\r\nsame bytes twice\r\n"
    append(a, "alice", body)
    call(a.cluster.durable, "alice")
    link = call(lambda: a.cluster.peers["n2"].out)

    def expunge_all() -> None:
        box = a.node.store.mailbox("alice", "INBOX")
        a.node.store.apply(Expunge("alice", "INBOX", tuple(r.uid for r in box.records())))

    call(expunge_all)
    digest = hashlib.sha256(body).hexdigest()
    wait_for(lambda: b.cluster.replica.blob(digest) is None, "n2 dropped the body")
    append(a, "alice", body)
    call(a.cluster.durable, "alice")
    assert messages(b, "alice") == [body]
    assert call(lambda: a.cluster.stats["bodies_missing_resent"]) >= 1
    assert call(lambda: a.cluster.peers["n2"].out) is link


def test_a_burst_over_the_inline_room_goes_in_several_plain_boxes(
        inproc: InProcessCluster) -> None:
    """Ops whose bodies together overflow one Ops box's inline room (INLINE_MAX) are
    split into several plain Ops boxes, the first ops first, never into Blob boxes."""
    from twistedmail.cluster.wire import INLINE_MAX

    a, b = _pair(inproc)
    bodies = [b"Subject: burst %d\r\n\r\n" % i + b"y" * 2000 + b"\r\n" for i in range(40)]
    assert sum(map(len, bodies)) > INLINE_MAX
    before = call(lambda: a.cluster.stats["batches_out"])

    def burst() -> None:
        from twistedmail.store import Append

        store = a.node.store
        for body in bodies:  # one reactor turn: they are pending together
            store.apply(Append.new(store, "alice", "INBOX", body))

    call(burst)
    call(a.cluster.durable, "alice")
    assert messages(b, "alice") == bodies
    assert call(lambda: a.cluster.stats["blob_chunks_out"]) == 0
    assert call(lambda: a.cluster.stats["batches_out"]) - before >= 2


def test_link_tls_hands_each_write_to_tcp_at_once() -> None:
    """A cluster link's TLS layer passes a written AMP box to the TCP transport in the
    same call, where Twisted's default TLS transport waits for the next reactor turn."""
    from twisted.internet import protocol
    from twisted.test.iosim import connectedServerAndClient

    from twistedmail.cluster.runtime import LinkTLSFactory
    from twistedmail.tls import client_options, context_for

    class Settings:
        tls_cert = None

    server_factory = LinkTLSFactory(context_for(Settings()), False,
                                    protocol.Factory.forProtocol(protocol.Protocol))
    client_factory = LinkTLSFactory(client_options(), True,
                                    protocol.Factory.forProtocol(protocol.Protocol))
    client, server, pump = connectedServerAndClient(
        lambda: server_factory.buildProtocol(None), lambda: client_factory.buildProtocol(None))
    pump.flush()  # the handshake
    assert client.wrappedProtocol.transport is client
    before = len(client.transport.stream)
    client.write(b"x" * 100)
    assert len(client.transport.stream) > before  # no reactor turn in between
    pump.flush()
    received: list[bytes] = []
    server.wrappedProtocol.dataReceived = received.append
    client.write(b"box")
    pump.flush()
    assert b"".join(received) == b"box"
