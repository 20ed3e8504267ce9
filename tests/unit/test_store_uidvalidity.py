"""The UIDVALIDITY rule (DESIGN.md §3): one test per invariant."""

from __future__ import annotations

import datetime

import pytest

from twistedmail.store import (
    Append,
    CreateAccount,
    CreateMailbox,
    DeleteAccount,
    DeleteMailbox,
    Expunge,
    MailboxRegenerated,
    MailboxRenamed,
    MailStore,
    Regenerate,
    RenameMailbox,
    StoreFlags,
    UidValidityAllocator,
    UidValidityExhausted,
)
from twistedmail.store.uidvalidity import EPOCH, MAX_COUNTER, clock_floor, encode, split

T0 = EPOCH + 500_000 * 60  # minute 500000 after the epoch (late 2025)
WHEN = datetime.datetime(2025, 6, 1, tzinfo=datetime.UTC)


class Clock:
    """A settable clock."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def new_store(clock: Clock | None = None, root: int = 7) -> MailStore:
    store = MailStore("n1", root, clock=clock or Clock())
    store.apply(CreateAccount("alice"))
    return store


def uv(store: MailStore, name: str) -> int:
    return store.mailbox("alice", name).uidvalidity


def test_encoding_is_root_shifted_24_or_counter() -> None:
    """UIDVALIDITY = (root << 24) | counter, and split() inverts it."""
    alloc = UidValidityAllocator(0xAB, Clock())
    value = alloc.allocate("alice", "INBOX")
    assert value == (0xAB << 24) | 500_000
    assert split(value) == (0xAB, 500_000)
    assert encode(255, MAX_COUNTER) == 0xFFFFFFFF  # fits IMAP's 32-bit nz-number


@pytest.mark.parametrize("root", [-1, 256, 1000, "7", 7.0, True, None])
def test_root_must_be_a_byte(root: object) -> None:
    """Roots outside 0..255 (or not ints) are a ValueError, for store and allocator."""
    with pytest.raises(ValueError):
        UidValidityAllocator(root, Clock())  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        MailStore("n1", root, clock=Clock())  # type: ignore[arg-type]


@pytest.mark.parametrize("root", [0, 255])
def test_root_bounds_accepted(root: int) -> None:
    """Roots 0 and 255 are valid and end up in the top byte."""
    assert uv(new_store(root=root), "INBOX") >> 24 == root


def test_clock_floor_is_minutes_since_2025() -> None:
    """The floor counts whole minutes since 2025-01-01T00:00Z, never below 0."""
    assert clock_floor(EPOCH) == 0 and clock_floor(EPOCH + 119.9) == 1
    assert clock_floor(EPOCH - 3600) == 0
    alloc = UidValidityAllocator(1, Clock(EPOCH - 3600))
    assert split(alloc.allocate("alice", "x")) == (1, 1)  # counter starts at 1


def test_counter_grows_per_name() -> None:
    """Each allocation for a name is larger; names have their own counters."""
    alloc = UidValidityAllocator(1, Clock())
    a1, a2, a3 = (alloc.allocate("alice", "a") for _ in range(3))
    assert a1 < a2 < a3
    assert alloc.allocate("alice", "b") == a1  # independent counter, same floor
    assert alloc.allocate("bob", "a") == a1


def test_delete_then_create_gets_larger_value() -> None:
    """DELETE + CREATE of a name gives a strictly larger UIDVALIDITY."""
    store = new_store()
    store.apply(CreateMailbox.new("alice", "a"))
    first = uv(store, "a")
    store.apply(DeleteMailbox("alice", "a"))
    store.apply(CreateMailbox.new("alice", "a"))
    assert uv(store, "a") > first


def test_recreated_account_inbox_gets_larger_value() -> None:
    """DeleteAccount keeps the history: a re-created INBOX gets a larger value."""
    store = new_store()
    first = uv(store, "INBOX")
    store.apply(DeleteAccount("alice"))
    store.apply(CreateAccount("alice"))
    assert uv(store, "INBOX") > first


def test_rename_keeps_value_and_both_names_move_on() -> None:
    """RENAME keeps UIDVALIDITY; later mailboxes under the old or the new name
    get larger values than the renamed one had."""
    store = new_store()
    store.apply(CreateMailbox.new("alice", "a"))
    original = uv(store, "a")
    store.apply(RenameMailbox("alice", "a", "b"))
    assert uv(store, "b") == original
    store.apply(CreateMailbox.new("alice", "a"))
    assert uv(store, "a") > original
    store.apply(DeleteMailbox("alice", "b"))
    store.apply(CreateMailbox.new("alice", "b"))
    assert uv(store, "b") > original


def test_rename_onto_used_name_gets_fresh_value() -> None:
    """RENAME onto a name that already showed an equal or larger value gives the
    mailbox a fresh, larger one (else one name would show one value for two
    UID maps) and reports MailboxRegenerated."""
    store = new_store()
    store.apply(CreateMailbox.new("alice", "b"))
    store.apply(CreateMailbox.new("alice", "a"))  # same minute: same counter as b
    b_value = uv(store, "b")
    assert uv(store, "a") == b_value
    store.apply(DeleteMailbox("alice", "b"))
    box = store.mailbox("alice", "a")
    changes = store.apply(RenameMailbox("alice", "a", "b"))
    assert changes == [
        MailboxRenamed("alice", "a", "b", box.id),
        MailboxRegenerated(box.id, box.uidvalidity),
    ]
    assert box.uidvalidity > b_value


def test_restart_uses_wall_clock_floor() -> None:
    """A node restarted with no memory, one minute later, allocates values larger
    than everything the old node issued (one allocation per name per minute)."""
    clock = Clock()
    old = UidValidityAllocator(7, clock)
    issued = [old.allocate("alice", name) for name in ("INBOX", "a", "b")]
    clock.now += 60
    restarted = UidValidityAllocator(7, clock)
    fresh = [restarted.allocate("alice", name) for name in ("INBOX", "a", "b")]
    assert all(f > i for f, i in zip(fresh, issued, strict=True))


def test_restart_limit_bursts_outrun_the_clock() -> None:
    """Documented limit: k allocations for one name within a minute put it k-1
    minutes ahead, so a memoryless restart one minute later can repeat a value."""
    clock = Clock()
    old = UidValidityAllocator(7, clock)
    burst = [old.allocate("alice", "a") for _ in range(3)]
    clock.now += 60
    assert UidValidityAllocator(7, clock).allocate("alice", "a") <= burst[-1]


def test_persisted_state_survives_restart() -> None:
    """With the state mapping kept, a restart at the same instant still grows."""
    clock = Clock()
    state: dict[str, dict[str, int]] = {}
    old = UidValidityAllocator(7, clock, state)
    burst = [old.allocate("alice", "a") for _ in range(3)]
    assert UidValidityAllocator(7, clock, state).allocate("alice", "a") > burst[-1]


def test_floor_provider_raises_floor() -> None:
    """An extra floor (e.g. a peer-recorded generation) lifts fresh counters."""
    alloc = UidValidityAllocator(7, Clock(), floor_provider=lambda: 600_000)
    assert split(alloc.allocate("alice", "a"))[1] == 600_000


def test_overflow_is_refused_never_wrapped() -> None:
    """Past 2**24-1 the allocator raises and records nothing."""
    state = {"alice": {"a": MAX_COUNTER}}
    alloc = UidValidityAllocator(7, Clock(), state)
    with pytest.raises(UidValidityExhausted) as info:
        alloc.allocate("alice", "a")
    assert info.value.code == "LIMIT" and state == {"alice": {"a": MAX_COUNTER}}
    far_future = UidValidityAllocator(7, Clock(EPOCH + 60.0 * (MAX_COUNTER + 1)))
    with pytest.raises(UidValidityExhausted):
        far_future.allocate("alice", "a")


def test_overflow_during_create_changes_nothing() -> None:
    """CREATE a/b whose allocation overflows creates neither a nor a/b."""
    state: dict[str, dict[str, int]] = {"alice": {"a/b": MAX_COUNTER}}
    store = MailStore("n1", 7, clock=Clock(), uidvalidity_state=state)
    store.apply(CreateAccount("alice"))
    with pytest.raises(UidValidityExhausted):
        store.apply(CreateMailbox.new("alice", "a/b"))
    assert [box.name for box in store.mailboxes("alice")] == ["INBOX"]


def test_regenerate_renumbers_with_larger_value() -> None:
    """Regenerate: larger UIDVALIDITY, UIDs 1..n in order, uidnext n+1, flags,
    \\Recent and unseen state carried over."""
    store = new_store()
    for data in (b"a", b"b", b"c", b"d"):
        store.apply(Append.new(store, "alice", "INBOX", data, (), WHEN))
    store.apply(Expunge("alice", "INBOX", (1, 3)))
    store.apply(StoreFlags("alice", "INBOX", (4,), "add", frozenset({"\\Seen"})))
    box = store.mailbox("alice", "INBOX")
    box.claim_recent([2])
    before = box.uidvalidity
    store.apply(Regenerate("alice", "INBOX"))
    assert box.uidvalidity > before
    assert box.uids() == [1, 2] and box.uidnext == 3
    assert [(r.uid, r.blob.data, r.flags) for r in box.records()] == [
        (1, b"b", frozenset()),
        (2, b"d", frozenset({"\\Seen"})),
    ]
    assert box.recent_uids == {2} and box.first_unseen_uid() == 1
    store.check_invariants()


def test_uidnext_never_decreases_without_new_uidvalidity() -> None:
    """Expunging everything keeps uidnext, so no UID is reused under one value."""
    store = new_store()
    for _ in range(3):
        store.apply(Append.new(store, "alice", "INBOX", b"x", (), WHEN))
    store.apply(Expunge("alice", "INBOX", (1, 2, 3)))
    box = store.mailbox("alice", "INBOX")
    assert box.uidnext == 4
    (added,) = store.apply(Append.new(store, "alice", "INBOX", b"y", (), WHEN))
    assert added.uids == (4,)  # type: ignore[attr-defined]
