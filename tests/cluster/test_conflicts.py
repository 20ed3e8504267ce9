"""Conflict rules (twistedmail/cluster/conflicts.py), each as a function and on replicas."""

from __future__ import annotations

import uuid

from twistedmail.cluster import conflicts as c
from twistedmail.store import (
    INBOX,
    Copy,
    CreateAccount,
    CreateMailbox,
    DeleteMailbox,
    Expunge,
    RenameMailbox,
    StoreFlags,
)

from .nodes import Node, Wall, converged, sync

MSG = b"Subject: x\r\n\r\nbody\r\n"
S1, S2, S3 = (10, 0, "a"), (20, 0, "b"), (30, 0, "a")


def pair() -> tuple[Node, Node]:
    wall = Wall()
    a, b = Node("n1", wall), Node("n2", wall)
    a.apply(CreateAccount("alice"))
    sync(a, b)
    return a, b


def box_names(node: Node) -> list[str]:
    return [m.name for m in node.store.mailboxes("alice")]


# --- rule 1: adds are unique, concurrent APPENDs both kept ------------------------------


def test_rule1_accept_add() -> None:
    """An instance already live or tombstoned is not added."""
    assert c.accept_add("x:1", set(), set())
    assert not c.accept_add("x:1", {"x:1"}, set())
    assert not c.accept_add("x:1", set(), {"x:1"})


def test_rule1_concurrent_appends_both_kept() -> None:
    """Two nodes APPEND the same bytes concurrently: two messages everywhere."""
    a, b = pair()
    a.append("alice", INBOX, MSG)
    b.append("alice", INBOX, MSG)
    sync(a, b)
    assert converged(a, b) and len(a.store.mailbox("alice", INBOX)) == 2


# --- rule 2: expunge is a permanent tombstone --------------------------------------------


def test_rule2_expunge_beats_concurrent_flag_change() -> None:
    """EXPUNGE on one node and STORE on the other: the message is gone on both."""
    a, b = pair()
    a.append("alice", INBOX, MSG)
    sync(a, b)
    a.apply(Expunge("alice", INBOX, (1,)))
    b.apply(StoreFlags("alice", INBOX, (1,), "add", frozenset({"\\Flagged"})))
    sync(a, b)
    assert converged(a, b) and len(b.store.mailbox("alice", INBOX)) == 0


def test_rule2_expunged_instance_never_comes_back() -> None:
    """A stale snapshot still holding an expunged message does not resurrect it."""
    a, b = pair()
    a.append("alice", INBOX, MSG)
    sync(a, b)
    stale = b.replica.snapshot()
    a.apply(Expunge("alice", INBOX, (1,)))
    sync(a, b)
    a.replica.apply_snapshot_cops(stale.cops, {})
    b.replica.apply_snapshot_cops(stale.cops, {})
    assert len(a.store.mailbox("alice", INBOX)) == len(b.store.mailbox("alice", INBOX)) == 0


def test_rule2_expunge_arriving_before_the_add() -> None:
    """An expunge overtaking its add (different origins) still wins."""
    a, b = pair()
    c3 = Node("n3")
    sync(a, c3)
    a.append("alice", INBOX, MSG)
    add = a.take()
    a.send(add, b)
    b.apply(Expunge("alice", INBOX, (1,)))
    expunge = b.take()
    c3.replica.receive(expunge, {})
    c3.replica.receive(add, a.blobs_for(add))
    assert len(c3.store.mailbox("alice", INBOX)) == 0


# --- rule 3: flags last-writer-wins per (instance, flag) ---------------------------------


def test_rule3_flag_update_registers() -> None:
    """A register changes only for a larger stamp; with none, the add's stamp is the bar."""
    regs: dict[str, c.FlagReg] = {}
    assert not c.flag_update(regs, S2, "\\Seen", True, S1)  # older than the add
    assert c.flag_update(regs, S1, "\\Seen", True, S2)
    assert not c.flag_update(regs, S1, "\\seen", False, S2)  # same stamp: same write
    assert c.flag_update(regs, S1, "\\SEEN", False, S3)
    assert regs == {"\\seen": (False, S3, "\\SEEN")}
    assert c.effective_flags({"\\Seen", "$a"}, S1, regs) == {"$a"}
    assert c.effective_flags({"$a"}, S1, {"$b": (True, S2, "$b")}) == {"$a", "$b"}
    assert c.effective_flags({"$a"}, S3, {"$b": (True, S2, "$b")}) == {"$a"}


def test_rule3_later_store_wins_on_every_node() -> None:
    """Concurrent +FLAGS and -FLAGS of one flag: the later HLC stamp wins everywhere,
    and an unrelated flag set concurrently is kept.  (A STORE that changes nothing
    on its node writes no register.)"""
    a, b = pair()
    a.append("alice", INBOX, MSG, ["\\Seen"])
    sync(a, b)
    b.apply(StoreFlags("alice", INBOX, (1,), "remove", frozenset({"\\Seen"})))
    a.apply(StoreFlags("alice", INBOX, (1,), "remove", frozenset({"\\Seen"})))
    a.apply(StoreFlags("alice", INBOX, (1,), "add", frozenset({"\\Seen", "$Work"})))  # later
    sync(a, b)
    assert converged(a, b)
    assert b.store.mailbox("alice", INBOX).record(1).flags == {"\\Seen", "$Work"}
    a.apply(StoreFlags("alice", INBOX, (1,), "add", frozenset({"\\Flagged"})))
    b.apply(StoreFlags("alice", INBOX, (1,), "remove", frozenset({"\\Seen"})))  # later
    sync(a, b)
    assert converged(a, b)
    assert b.store.mailbox("alice", INBOX).record(1).flags == {"\\Flagged", "$Work"}


def test_rule3_flags_arriving_before_the_add() -> None:
    """A flag change overtaking its add is kept and applied when the add arrives."""
    a, b = pair()
    c3 = Node("n3", a.wall)
    sync(a, c3)
    a.append("alice", INBOX, MSG)
    add = a.take()
    a.send(add, b)
    b.apply(StoreFlags("alice", INBOX, (1,), "add", frozenset({"$Later"})))
    c3.replica.receive(b.take(), {})
    c3.replica.receive(add, a.blobs_for(add))
    assert c3.store.mailbox("alice", INBOX).record(1).flags == {"$Later"}


# --- rule 4: folder names ------------------------------------------------------------------


def test_rule4_display_names() -> None:
    """The smallest (create stamp, id) keeps a claimed name; others get -<8 hex>."""
    got = c.display_names([("bbbbbbbbbb", "X", S1), ("aaaaaaaaaa", "X", S2), ("cc", "Y", S3)])
    assert got == {"bbbbbbbbbb": "X", "aaaaaaaaaa": "X-aaaaaaaa", "cc": "Y"}
    tie = c.display_names([("b1", "X", S1), ("a1", "X", S1)])
    assert tie == {"a1": "X", "b1": "X-b1"}
    assert c.lww(S2, S1) and not c.lww(S1, S2) and not c.lww(S1, S1) and c.lww(S1, None)


def test_rule4_concurrent_creates_of_one_name() -> None:
    """Both nodes CREATE "Projects": the earlier keeps the name, the other is suffixed."""
    a, b = pair()
    a.apply(CreateMailbox.new("alice", "Projects"))
    b.apply(CreateMailbox.new("alice", "Projects"))
    a.append("alice", "Projects", MSG + b"a")
    b.append("alice", "Projects", MSG + b"b")
    sync(a, b)
    assert converged(a, b)
    first = [m for m in a.replica.folders.values() if m.name == "Projects"]
    loser = max(first, key=lambda f: (f.created, f.id))
    assert box_names(a) == box_names(b) == [INBOX, "Projects", f"Projects-{loser.id[:8]}"]


def test_rule4_name_register_is_lww_and_freed_names_return() -> None:
    """Concurrent renames of one folder: the later wins; deleting the winner of a
    collision gives the loser its claimed name back."""
    a, b = pair()
    a.apply(CreateMailbox.new("alice", "F"))
    sync(a, b)
    a.apply(RenameMailbox("alice", "F", "G"))
    b.apply(RenameMailbox("alice", "F", "H"))  # later stamp
    sync(a, b)
    assert box_names(a) == box_names(b) == ["H", INBOX]
    a.apply(CreateMailbox.new("alice", "K"))
    b.apply(CreateMailbox.new("alice", "K"))
    sync(a, b)
    assert len(box_names(a)) == 4
    a.apply(DeleteMailbox("alice", "K"))
    sync(a, b)
    assert box_names(a) == box_names(b) == ["H", INBOX, "K"]


def test_rule4_swap_of_names_by_a_rename() -> None:
    """Renaming the collision winner away hands its old name to the suffixed folder."""
    a, b = pair()
    a.apply(CreateMailbox.new("alice", "X"))
    b.apply(CreateMailbox.new("alice", "X"))
    sync(a, b)
    winner = next(n for n in box_names(a) if n == "X")
    a.apply(RenameMailbox("alice", winner, "Y"))
    sync(a, b)
    assert box_names(a) == box_names(b) == [INBOX, "X", "Y"]
    assert converged(a, b)


# --- rule 5: DELETE vs concurrent APPEND ----------------------------------------------------


def test_rule5_recovered_id_and_name() -> None:
    """The Recovered folder's id is uuid5(folder id, "recovered"); its name is derived."""
    fid = uuid.uuid4().hex
    assert c.recovered_id(fid) == uuid.uuid5(uuid.UUID(fid), "recovered").hex
    assert c.recovered_id("not-hex") == c.recovered_id("not-hex") != c.recovered_id("other")
    assert c.recovered_name("Work") == "Recovered/Work"
    assert c.known_by_delete("m", [{"x"}, {"m"}]) and not c.known_by_delete("m", [{"x"}])


def test_rule5_delete_against_concurrent_append() -> None:
    """DELETE on one node, APPEND to it on another: the new message lands in
    Recovered/<name> on every node; what the deleter knew is gone."""
    a, b = pair()
    a.apply(CreateMailbox.new("alice", "Work"))
    a.append("alice", "Work", MSG + b"old")
    sync(a, b)
    a.apply(DeleteMailbox("alice", "Work"))
    b.append("alice", "Work", MSG + b"new")
    sync(a, b)
    assert converged(a, b)
    assert box_names(a) == [INBOX, "Recovered/Work"]
    recovered = b.store.mailbox("alice", "Recovered/Work")
    assert [r.blob.data for r in recovered.records()] == [MSG + b"new"]


def test_rule5_add_arriving_after_the_delete() -> None:
    """An add for an already deleted folder is recovered too, in either order."""
    a, b = pair()
    a.apply(CreateMailbox.new("alice", "Work"))
    sync(a, b)
    b.append("alice", "Work", MSG)
    add = b.take()
    a.apply(DeleteMailbox("alice", "Work"))
    a.take()
    a.replica.receive(add, b.blobs_for(add))
    assert box_names(a) == [INBOX, "Recovered/Work"]
    work = next(f for f in a.replica.folders.values() if f.name == "Work")
    announced = a.take()  # the Recovered folder is announced to every node
    assert [(x.kind, x.body["f"]) for x in announced] == [("folder", c.recovered_id(work.id))]
    sync(a, b)
    assert converged(a, b)


def test_rule5_chain_of_recovered_folders() -> None:
    """An add for a deleted folder whose Recovered folder was deleted too goes one
    level further; one a DELETE on the way knew is dead."""
    a, b = pair()
    a.apply(CreateMailbox.new("alice", "W"))
    sync(a, b)
    b.append("alice", "W", MSG + b"late")
    b.append("alice", "W", MSG + b"later")
    late = b.take()
    a.apply(DeleteMailbox("alice", "W"))
    a.replica.receive(late[:1], b.blobs_for(late))  # into Recovered/W
    a.apply(DeleteMailbox("alice", "Recovered/W"))  # knew "late"
    a.replica.receive(late[1:], b.blobs_for(late))  # "later": Recovered/Recovered/W
    assert box_names(a) == [INBOX, "Recovered/Recovered/W"]
    assert [r.blob.data for r in a.store.mailbox("alice", "Recovered/Recovered/W").records()] == [
        MSG + b"later"]
    sync(a, b)
    assert converged(a, b)


def test_rule5_no_recovered_folder_when_the_deleter_knew_everything() -> None:
    """A plain DELETE (even after expunges and moves) leaves no Recovered folder."""
    a, b = pair()
    a.apply(CreateMailbox.new("alice", "W"))
    a.append("alice", "W", MSG)
    a.append("alice", "W", MSG + b"2")
    a.apply(Expunge("alice", "W", (1,)))
    a.apply(Copy("alice", "W", (2,), INBOX, move=True))
    a.append("alice", "W", MSG + b"3")
    sync(a, b)
    b.apply(DeleteMailbox("alice", "W"))
    sync(a, b)
    assert box_names(a) == box_names(b) == [INBOX]


def test_rule5_recovered_folder_is_named_after_the_latest_delete_in_any_order() -> None:
    """Two DELETEs of one folder under different names, an orphan and the Recovered
    folder's announcement, delivered in every order: the same "Recovered/<name>"."""
    import itertools

    wall = Wall()
    a, b, c3 = Node("n1", wall), Node("n2", wall), Node("n3", wall)
    a.apply(CreateAccount("alice"))
    a.apply(CreateMailbox.new("alice", "W"))
    sync(a, b, c3)
    base = a.replica.snapshot()
    b.append("alice", "W", MSG)
    orphan = b.take()
    a.apply(DeleteMailbox("alice", "W"))
    delete_a = a.take()
    c3.apply(RenameMailbox("alice", "W", "X"))
    c3.apply(DeleteMailbox("alice", "X"))
    delete_c = c3.take()
    a.replica.receive(orphan, b.blobs_for(orphan))
    announce = a.take()
    assert [x.kind for x in announce] == ["folder"]
    batches = [orphan, delete_a, delete_c, announce]
    shown = set()
    for order in itertools.permutations(range(4)):
        d = Node("n4", wall)
        d.replica.apply_snapshot_cops(base.cops, {})
        d.replica.finish_snapshot(base.vv)
        for i in order:
            d.replica.receive(batches[i], b.blobs_for(orphan))
        shown.add(tuple(box_names(d)))
    assert shown == {(INBOX, "Recovered/X")}


# --- rule 6: UID alignment -------------------------------------------------------------------


def test_rule6_uid_for() -> None:
    """The origin's UID is taken when >= UIDNEXT, else the replica numbers it."""
    assert c.uid_for(5, 3) == 5
    assert c.uid_for(5, 5) == 5
    assert c.uid_for(2, 5) is None
    assert c.uid_for(0, 1) is None


def test_rule6_gap_in_uids_is_kept() -> None:
    """A message whose origin UID is above UIDNEXT keeps it (UIDs may skip)."""
    a, b = pair()
    for i in range(3):
        a.append("alice", INBOX, MSG + bytes([65 + i]))
    cops = a.take()
    b.replica.receive([cops[0]], a.blobs_for(cops))
    b.replica.receive(cops[2:], a.blobs_for(cops))  # held: seq gap
    b.replica.receive([cops[1]], a.blobs_for(cops))
    assert b.uids("alice", INBOX) == [1, 2, 3]


# --- rule 7: snapshots merge -------------------------------------------------------------------


def test_rule7_snapshot_merge() -> None:
    """A snapshot register wins only with a larger stamp; adds only if absent."""
    assert c.snapshot_merge(None, S1) and c.snapshot_merge(S1, S2) and not c.snapshot_merge(S2, S1)
    a, b = pair()
    a.append("alice", INBOX, MSG, ["\\Seen"])
    sync(a, b)
    old = a.replica.snapshot()
    b.apply(StoreFlags("alice", INBOX, (1,), "remove", frozenset({"\\Seen"})))
    b.replica.apply_snapshot_cops(old.cops, {})
    assert b.store.mailbox("alice", INBOX).record(1).flags == frozenset()
    assert len(b.store.mailbox("alice", INBOX)) == 1
