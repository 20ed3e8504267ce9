"""Replica: capture, apply, ordering, snapshots (twistedmail/cluster/replica.py)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twistedmail.cluster.cops import Cop, MissingBlobs, decode, encode
from twistedmail.store import (
    INBOX,
    Copy,
    CreateAccount,
    CreateMailbox,
    DeleteAcl,
    DeleteMailbox,
    Expunge,
    Regenerate,
    RenameMailbox,
    SetAcl,
    SetMetadata,
    SetQuota,
    SetSpecialUse,
    StoreFlags,
    Subscribe,
    Unsubscribe,
)

from .nodes import Node, converged, deliver, snapshot, sync

MSG = b"Subject: hello\r\n\r\nbody\r\n"


def pair(**kw: object) -> tuple[Node, Node]:
    a, b = Node("n1", **kw), Node("n2", **kw)  # type: ignore[arg-type]
    a.apply(CreateAccount.standard("alice"))
    sync(a, b)
    return a, b


def ship(a: Node, *peers: Node) -> list[Cop]:
    """Send a's new own cops to peers (through the wire encoding)."""
    cops = decode(encode(a.take()))
    a.send(cops, *peers)
    return cops


def test_account_creation_replicates_with_the_same_folder_ids() -> None:
    """CreateAccount makes one "account" cop; the peer gets the same folders and ids."""
    a, b = Node("n1"), Node("n2")
    a.apply(CreateAccount.standard("alice"))
    cops = ship(a, b)
    assert [c.kind for c in cops] == ["account"]
    ids = {m.name: m.id for m in a.store.mailboxes("alice")}
    assert {m.name: m.id for m in b.store.mailboxes("alice")} == ids
    assert b.store.mailbox("alice", "Sent").special_use == {"\\Sent"}
    assert b.take() == []  # applying remote cops emits nothing


def test_capture_of_every_message_op() -> None:
    """APPEND, STORE, COPY, MOVE, EXPUNGE, cross-account COPY all replicate."""
    a, b = pair()
    a.apply(CreateAccount("bob"))
    a.apply(CreateMailbox.new("alice", "work"))
    u1 = a.append("alice", INBOX, MSG, ["\\Seen"])
    u2 = a.append("alice", INBOX, MSG + b"2", ["$Label"])
    a.apply(StoreFlags("alice", INBOX, (u1, u2), "add", frozenset({"\\Flagged"})))
    a.apply(StoreFlags("alice", INBOX, (u2,), "remove", frozenset({"$label"})))
    a.apply(Copy("alice", INBOX, (u1,), "work"))
    a.apply(Copy("alice", INBOX, (u2,), "work", move=True))
    a.apply(Copy("alice", "work", (1,), INBOX, dst_user="bob"))
    a.apply(StoreFlags("alice", INBOX, (u1,), "add", frozenset({"\\Deleted"})))
    a.apply(Expunge("alice", INBOX, (u1,)))
    kinds = {c.kind for c in ship(a, b)}
    assert kinds >= {"account", "folder", "add", "flags", "expunge"}
    assert converged(a, b)
    assert len(b.store.mailbox("bob", INBOX)) == 1
    assert [sorted(r.flags) for r in b.store.mailbox("alice", "work").records()] == [
        ["\\Flagged", "\\Seen"], ["\\Flagged"]]
    assert b.take() == []
    b.store.check_invariants()


def test_internal_dates_keep_their_zone_across_replicas() -> None:
    """Messages appended one after the other with the same instant in different zones
    (and the same zone again) arrive with each its own date-time text."""
    import datetime

    from twistedmail.store import Append

    a, b = pair()
    zones = [datetime.UTC, datetime.timezone(datetime.timedelta(hours=2)),
             datetime.timezone(datetime.timedelta(hours=2)), datetime.UTC]
    instant = datetime.datetime(2026, 3, 4, 5, 6, 7, tzinfo=datetime.UTC)
    for i, zone in enumerate(zones):
        a.apply(Append("alice", INBOX, MSG + b"%d" % i, frozenset(), instant.astimezone(zone),
                       a.store.next_instance_id()))  # no savedate: "t" alone is printed
    adds = [c for c in ship(a, b) if c.kind == "add"]
    assert [c.body["t"] for c in adds] == [instant.astimezone(z).isoformat() for z in zones]
    assert [r.internaldate.utcoffset() for r in b.store.mailbox("alice", INBOX).records()] == [
        z.utcoffset(None) for z in zones]


def test_capture_of_folder_ops() -> None:
    """CREATE (with superiors), RENAME (with inferiors), DELETE replicate by folder id."""
    a, b = pair()
    a.apply(CreateMailbox.new("alice", "p/q/r"))
    a.apply(CreateMailbox.new("alice", "p/q/s"))
    a.append("alice", "p/q/s", MSG)
    a.apply(RenameMailbox("alice", "p/q", "x/y"))
    a.apply(DeleteMailbox("alice", "x/y/s"))
    ship(a, b)
    assert converged(a, b)
    names = {m.name: m.id for m in a.store.mailboxes("alice")}
    assert {m.name: m.id for m in b.store.mailboxes("alice")} == names
    assert "x/y/r" in names and "x/y/s" not in names and "p" in names


def test_rename_inbox_moves_messages_to_a_new_folder() -> None:
    """RENAME INBOX = new folder + its messages moved; INBOX stays, empty."""
    a, b = pair()
    a.append("alice", INBOX, MSG)
    a.append("alice", INBOX, MSG + b"x")
    ship(a, b)
    a.apply(RenameMailbox("alice", INBOX, "Old"))
    ship(a, b)
    assert converged(a, b)
    assert len(b.store.mailbox("alice", "Old")) == 2 and len(b.store.mailbox("alice", INBOX)) == 0


def test_capture_of_account_settings() -> None:
    """SUBSCRIBE/UNSUBSCRIBE, ACLs, METADATA, special use and quotas replicate."""
    a, b = pair()
    a.apply(CreateMailbox.new("alice", "lists"))
    a.apply(Subscribe("alice", "lists"))
    a.apply(Subscribe("alice", "gone"))
    a.apply(Unsubscribe("alice", "gone"))
    a.apply(SetAcl("alice", "lists", "bob", "lrs"))
    a.apply(SetAcl("alice", "lists", "carol", "lr"))
    a.apply(DeleteAcl("alice", "lists", "carol"))
    a.apply(SetMetadata("alice", "lists", (("/shared/comment", b"team"),
                                           ("/private/color", b"red"))))
    a.apply(SetMetadata("alice", "", (("/private/vendor/x", b"1"),)))
    a.apply(SetSpecialUse("alice", "lists", frozenset({"\\Archive"})))
    a.apply(SetQuota("alice", (("STORAGE", 512),)))
    ship(a, b)
    box = b.store.mailbox("alice", "lists")
    assert b.store.subscriptions("alice") == {"lists"}
    assert box.acl == {"bob": "lrs"}
    assert box.metadata == {("", "/shared/comment"): b"team", ("alice", "/private/color"): b"red"}
    assert b.store.server_metadata() == {("alice", "/private/vendor/x"): b"1"}
    assert box.special_use == {"\\Archive"}
    assert b.store.quota_limits("alice") == (("STORAGE", 512),)


def test_regenerate_is_local_only() -> None:
    """Regenerate renumbers locally and makes no cop; the peer's UIDs stay."""
    a, b = pair()
    a.append("alice", INBOX, MSG)
    a.append("alice", INBOX, MSG + b"1")
    a.apply(Expunge("alice", INBOX, (1,)))
    ship(a, b)
    a.apply(Regenerate("alice", INBOX))
    assert a.take() == []
    assert a.uids("alice", INBOX) == [1] and b.uids("alice", INBOX) == [2]
    assert converged(a, b)


def test_receiving_a_batch_twice_changes_nothing() -> None:
    """Idempotence: a duplicated batch (and duplicates inside one) are ignored."""
    a, b = pair()
    a.append("alice", INBOX, MSG)
    a.apply(StoreFlags("alice", INBOX, (1,), "add", frozenset({"\\Seen"})))
    cops = a.take()
    blobs = a.blobs_for(cops)
    b.replica.receive(cops + cops, blobs)
    before = (b.replica.summary(), b.replica.vv(), b.store.mailbox("alice", INBOX).highestmodseq)
    b.replica.receive(cops, blobs)
    assert (b.replica.summary(), b.replica.vv(),
            b.store.mailbox("alice", INBOX).highestmodseq) == before
    assert converged(a, b)


def test_out_of_order_cops_are_held_until_the_gap_fills() -> None:
    """Per-origin FIFO: later cops wait for earlier ones; the VV counts only contiguous ones."""
    a, b = pair()
    for i in range(4):
        a.append("alice", INBOX, MSG + bytes([48 + i]))
    cops = a.take()
    base = b.replica.vv()[a.incarnation]
    b.replica.receive(cops[2:], a.blobs_for(cops))
    assert b.replica.vv()[a.incarnation] == base and b.replica.held_count() == 2
    assert len(b.store.mailbox("alice", INBOX)) == 0
    assert not [c for c in b.replica.snapshot().cops if c.kind == "add"]  # held: not shown
    b.replica.receive(cops[:2], a.blobs_for(cops))
    assert b.replica.vv()[a.incarnation] == base + 4 and b.replica.held_count() == 0
    assert converged(a, b)
    assert b.uids("alice", INBOX) == a.uids("alice", INBOX)


def test_held_add_keeps_its_body() -> None:
    """A held add needs no second delivery of its body once the gap fills."""
    a, b = pair()
    a.append("alice", INBOX, MSG + b"one")
    a.append("alice", INBOX, MSG + b"two")
    first, second = a.take()
    b.replica.receive([second], a.blobs_for([second]))
    b.replica.receive([first], a.blobs_for([first]))
    assert converged(a, b)


def test_missing_blobs_applies_nothing() -> None:
    """An add whose body is nowhere raises MissingBlobs and the batch is not applied."""
    a, b = pair()
    a.apply(Subscribe("alice", "x"))
    a.append("alice", INBOX, MSG)
    cops = a.take()
    vv = b.replica.vv()
    with pytest.raises(MissingBlobs) as err:
        b.replica.receive(cops, {})
    assert err.value.digests == cops[1].blobs
    assert b.replica.vv() == vv and b.store.subscriptions("alice") == set()
    b.replica.receive(cops, a.blobs_for(cops))
    assert converged(a, b)


def test_absent_body_waits_for_the_body() -> None:
    """An add whose body the sender lacks too (absent) applies later, when the body comes."""
    a, b = pair()
    a.append("alice", INBOX, MSG)
    cops = a.take()
    digest = cops[0].blobs[0]
    with pytest.raises(MissingBlobs):
        b.replica.receive(cops, {})
    b.replica.receive(cops, {}, absent=[digest])
    assert b.replica.vv()[a.incarnation] == cops[-1].seq
    assert b.replica.wanted_blobs() == [digest] and len(b.store.mailbox("alice", INBOX)) == 0
    assert any(c.kind == "add" for c in b.replica.snapshot().cops)  # waiting adds travel
    b.replica.offer_blobs({digest: MSG})
    assert b.replica.wanted_blobs() == [] and converged(a, b)


def test_absent_body_of_a_dead_message_is_dropped_on_its_tombstone() -> None:
    """A waiting add whose instance is then expunged stops waiting (nothing to fetch)."""
    a, b = pair()
    a.append("alice", INBOX, MSG)
    add = a.take()
    a.apply(Expunge("alice", INBOX, (1,)))
    expunge = a.take()
    assert a.replica.blob(add[0].blobs[0]) is None  # gone at the sender
    b.replica.receive(add, {}, absent=add[0].blobs)
    b.replica.receive(expunge, {})
    assert b.replica.wanted_blobs() == [] and b.replica.held_count() == 0
    assert converged(a, b)


def test_add_killed_later_in_the_batch_needs_no_body() -> None:
    """A batch that adds then expunges a message needs no body for it."""
    a, b = pair()
    a.append("alice", INBOX, MSG)
    a.apply(Expunge("alice", INBOX, (1,)))
    b.replica.receive(a.take(), {})
    assert converged(a, b)


def test_body_already_in_the_pool_is_not_needed() -> None:
    """A body the store already holds (same digest) satisfies an add."""
    a, b = pair()
    b.append("alice", INBOX, MSG)
    b.take()
    a.append("alice", INBOX, MSG)
    b.replica.receive(a.take(), {})
    assert len(b.store.mailbox("alice", INBOX)) == 2


def test_uids_align_in_the_common_case() -> None:
    """Messages appended on one node get the same UIDs on its peers."""
    a, b = pair()
    for i in range(5):
        a.append("alice", INBOX, MSG + bytes([65 + i]))
    a.apply(Expunge("alice", INBOX, (2, 3)))
    a.append("alice", INBOX, MSG + b"late")
    ship(a, b)
    assert b.uids("alice", INBOX) == a.uids("alice", INBOX) == [1, 4, 5, 6]


def test_concurrent_appends_are_numbered_locally() -> None:
    """Both concurrent APPENDs are kept; the later-arriving one gets the next free UID."""
    a, b = pair()
    ua = a.append("alice", INBOX, MSG + b"a")
    ub = b.append("alice", INBOX, MSG + b"b")
    assert ua == ub == 1
    sync(a, b)
    assert converged(a, b)
    assert a.uids("alice", INBOX) == b.uids("alice", INBOX) == [1, 2]
    recs_a = {r.uid: r.instance_id for r in a.store.mailbox("alice", INBOX).records()}
    recs_b = {r.uid: r.instance_id for r in b.store.mailbox("alice", INBOX).records()}
    assert recs_a[1] != recs_b[1]  # each node numbered its own first


def test_snapshot_to_an_empty_store() -> None:
    """A snapshot recreates everything on an empty node, same UIDs, same VV."""
    a, b = pair()
    a.apply(CreateMailbox.new("alice", "work"))
    for i in range(3):
        a.append("alice", "work", MSG + bytes([65 + i]), ["\\Seen"])
    a.apply(Expunge("alice", "work", (1,)))
    a.apply(StoreFlags("alice", "work", (3,), "add", frozenset({"$Todo"})))
    a.apply(SetAcl("alice", "work", "bob", "lr"))
    a.apply(Subscribe("alice", "work"))
    a.apply(CreateMailbox.new("alice", "tmp"))
    a.apply(DeleteMailbox("alice", "tmp"))
    a.replica.reserve(4096)
    sync(a, b)
    c = Node("n3")
    snap = a.replica.snapshot()
    assert all(cop.seq == 0 for cop in snap.cops)
    c.replica.apply_snapshot_cops(decode(encode(snap.cops)),
                                  {d: a.replica.blob(d) for d in snap.blobs})
    c.replica.finish_snapshot(snap.vv)
    assert c.replica.summary() == a.replica.summary()
    assert c.uids("alice", "work") == a.uids("alice", "work") == [2, 3]
    assert c.replica.vv() == {**a.replica.vv(), c.incarnation: 0}
    assert c.store.mailbox("alice", "work").acl == {"bob": "lr"}
    assert c.replica.reservations == {"n1": 4096}
    assert c.take() == []
    # later live cops apply on top; anything older is ignored
    a.append("alice", "work", MSG + b"new")
    ship(a, b, c)
    assert converged(a, b, c)
    c.store.check_invariants()


def test_snapshot_is_a_merge() -> None:
    """Applying a snapshot to a node with state of its own keeps both sides' mail."""
    a, b = pair()
    a.append("alice", INBOX, MSG + b"a")
    b.append("alice", INBOX, MSG + b"b")
    snap = a.replica.snapshot()
    b.replica.apply_snapshot_cops(snap.cops, {d: a.replica.blob(d) for d in snap.blobs})
    b.replica.apply_snapshot_cops(snap.cops, {})  # twice: idempotent, bodies now local
    b.replica.finish_snapshot(snap.vv)
    assert len(b.store.mailbox("alice", INBOX)) == 2
    sync(a, b)
    assert converged(a, b)


def test_missing_since_and_log_truncation() -> None:
    """missing_since serves a peer's gap, and answers None past the bounded log."""
    a = Node("n1", log_limit=3)
    a.apply(CreateAccount("alice"))
    for i in range(4):
        a.append("alice", INBOX, MSG + bytes([65 + i]))
    top = a.replica.vv()[a.incarnation]
    assert [c.seq for c in a.replica.missing_since({a.incarnation: top - 2}) or []] == \
        [top - 1, top]
    assert a.replica.missing_since({a.incarnation: top}) == []
    assert a.replica.missing_since({}) is None  # seq 1 no longer logged
    b = Node("n2")
    snap = a.replica.snapshot()
    b.replica.apply_snapshot_cops(snap.cops, {d: a.replica.blob(d) for d in snap.blobs})
    b.replica.finish_snapshot(snap.vv)
    assert converged(a, b)
    assert b.replica.missing_since({}) is None  # b's log of a has a gap
    assert b.replica.missing_since(a.replica.vv()) == []


def test_relay_through_a_third_node() -> None:
    """Cops of any origin are logged and relayed (anti-entropy)."""
    a, b, c = Node("n1"), Node("n2"), Node("n3")
    a.apply(CreateAccount("alice"))
    a.append("alice", INBOX, MSG)
    ship(a, b)
    cops = b.replica.missing_since(c.replica.vv())
    assert cops and {x.origin for x in cops} == {a.incarnation}
    b.send(cops, c)
    assert converged(a, b, c)


def test_cops_of_accounts_not_held_change_nothing() -> None:
    """Placement: cops for an account not held here count in the VV but apply nothing."""
    a = Node("n1")
    b = Node("n2", holds=["bob"])
    a.apply(CreateAccount("alice"))
    a.append("alice", INBOX, MSG)
    cops = a.take()
    b.replica.receive(cops, {})  # no body needed either
    assert not b.store.has_account("alice")
    assert b.replica.vv()[a.incarnation] == cops[-1].seq
    assert b.replica.missing_since({}) == cops  # still relayed


def test_add_for_an_unknown_folder_is_parked() -> None:
    """An add that overtakes its folder's creation (another origin) waits for it."""
    a, b = pair()
    c = Node("n3")
    sync(a, c)
    a.apply(CreateMailbox.new("alice", "new"))
    create = a.take()
    a.send(create, b)
    b.append("alice", "new", MSG)
    add = b.take()
    c.replica.receive(add, b.blobs_for(add))
    assert c.replica.held_count() == 1 and c.replica.vv()[b.incarnation] == add[-1].seq
    snap = c.replica.snapshot()  # parked cops travel in snapshots
    assert any(cop.kind == "add" for cop in snap.cops)
    c.replica.receive(create, {})
    assert c.replica.held_count() == 0
    assert [len(r) for r in [c.store.mailbox("alice", "new")]] == [1]
    sync(a, b, c)
    assert converged(a, b, c)


def test_existing_store_content_is_adopted() -> None:
    """A Replica attached to a used store emits its content as own cops."""
    from twistedmail.cluster.hlc import HLC
    from twistedmail.cluster.replica import Replica
    from twistedmail.store import Append, MailStore

    store = MailStore("n1~9", 1, clock=lambda: 1.7e9)
    store.apply(CreateAccount.standard("alice"))
    store.apply(Append.new(store, "alice", INBOX, MSG, flags={"\\Seen"}))
    store.apply(Subscribe("alice", "Sent"))
    rep = Replica(store, "n1~9", HLC("n1~9", lambda: 5))
    assert rep.seq > 0
    b = Node("n2")
    cops = rep.missing_since({})
    assert cops is not None
    b.replica.receive(cops, {d: rep.blob(d) for c in cops for d in c.blobs})
    assert b.replica.summary() == rep.summary()
    assert b.store.subscriptions("alice") == {"Sent"}


def test_bad_remote_cop_is_logged_not_raised() -> None:
    """A cop the store refuses (bad name) is counted and skipped; the VV moves on."""
    a, b = pair()
    bad = Cop("x~1", 1, "folder", {"u": "alice", "f": "ff" * 16, "name": "a//b",
                                   "st": [1, 0, "x~1"]})
    bad_date = Cop("x~1", 2, "add", {"u": "alice", "f": b.store.mailbox("alice", INBOX).id,
                                     "i": "x~1:1", "d": "ab" * 32, "fl": [], "t": "yesterday",
                                     "sv": None, "uid": 1, "st": [1, 1, "x~1"]}, ("ab" * 32,))
    b.replica.receive([bad, bad_date], {"ab" * 32: b"x"})
    assert b.replica.vv()["x~1"] == 2 and b.replica.apply_errors == 2
    b.store.check_invariants()


# --- convergence property ------------------------------------------------------------

BOXES = [INBOX, "A", "B"]
op_strategy = st.one_of(
    st.tuples(st.just("append"), st.sampled_from(BOXES), st.sampled_from(["", "\\Seen", "$k"])),
    st.tuples(st.just("flag"), st.sampled_from(BOXES), st.sampled_from(["add", "remove"]),
              st.sampled_from(["\\Seen", "\\Flagged", "$K"])),
    st.tuples(st.just("expunge"), st.sampled_from(BOXES), st.integers(0, 3)),
    st.tuples(st.just("move"), st.sampled_from(BOXES), st.sampled_from(BOXES)),
    st.tuples(st.just("create"), st.sampled_from(["A", "B", "C"])),
    st.tuples(st.just("delete"), st.sampled_from(["A", "B", "C"])),
    st.tuples(st.just("rename"), st.sampled_from(["A", "B", "C"]),
              st.sampled_from(["A", "B", "C"])),
)


def run_op(node: Node, op: tuple, n: int) -> None:
    """Apply a generated op locally, ignoring ops invalid in the node's state."""
    from twistedmail.store import StoreError

    kind, box = op[0], op[1]
    try:
        mbox = node.store.mailbox("alice", box)
    except StoreError:
        mbox = None
    try:
        if kind == "append" and mbox is not None:
            node.append("alice", box, MSG + f"{node.name}{n}".encode(), [op[2]] if op[2] else [])
        elif kind == "flag" and mbox is not None and len(mbox):
            node.apply(StoreFlags("alice", box, tuple(mbox.uids()[:2]), op[2],
                                  frozenset({op[3]})))
        elif kind == "expunge" and mbox is not None and len(mbox) > op[2]:
            node.apply(Expunge("alice", box, (mbox.uids()[op[2]],)))
        elif kind == "move" and mbox is not None and len(mbox) and box != op[2]:
            node.apply(Copy("alice", box, (mbox.uids()[0],), op[2], move=True))
        elif kind == "create":
            node.apply(CreateMailbox.new("alice", box))
        elif kind == "delete" and mbox is not None:
            node.apply(DeleteMailbox("alice", box))
        elif kind == "rename" and mbox is not None:
            node.apply(RenameMailbox("alice", box, op[2]))
    except StoreError:
        pass


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op_strategy, max_size=12), st.lists(op_strategy, max_size=12),
       st.randoms(use_true_random=False))
def test_any_interleaving_converges(ops_a: list, ops_b: list, rnd) -> None:  # type: ignore[no-untyped-def]
    """Two nodes' concurrent cop streams, delivered in any order with duplicates
    (and maybe a snapshot merge first), converge."""
    a, b = pair()
    for i, op in enumerate(ops_a):
        run_op(a, op, i)
    for i, op in enumerate(ops_b):
        run_op(b, op, i)
    cops_a, cops_b = a.take(), b.take()
    blobs_a, blobs_b = a.blobs_for(cops_a), b.blobs_for(cops_b)
    # deliver a's cops to b in random chunks, shuffled, some twice; and b's to a
    if rnd.random() < 0.3:  # a snapshot merge in the middle of it all
        snapshot(a, b)
    for dst, cops, blobs in ((b, cops_a, blobs_a), (a, cops_b, blobs_b)):
        pending = list(cops)
        rnd.shuffle(pending)
        while pending:
            k = rnd.randint(1, 4)
            batch, pending = pending[:k], pending[k:]
            if rnd.random() < 0.3:
                batch = batch + batch[:1]
            deliver(dst, batch, blobs)
        deliver(dst, cops, blobs)  # a final complete redelivery
    sync(a, b)  # cops the nodes made while applying (Recovered folders)
    assert a.replica.held_count() == 0 and b.replica.held_count() == 0
    assert a.replica.summary() == b.replica.summary()
    a.store.check_invariants()
    b.store.check_invariants()
