"""Property tests: random op sequences never break the store's invariants, failed
ops change nothing, and replaying the (JSON-serialised) op stream on a fresh
store reproduces the same state."""

from __future__ import annotations

import contextlib
import datetime
import json
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from twistedmail.store import (
    Append,
    Copy,
    CreateAccount,
    CreateMailbox,
    DeleteAccount,
    DeleteMailbox,
    Expunge,
    MailboxRegenerated,
    MailStore,
    Op,
    Regenerate,
    RenameMailbox,
    StoreError,
    StoreFlags,
    Subscribe,
    Unsubscribe,
    op_from_dict,
)
from twistedmail.store.mailbox import SEEN
from twistedmail.store.uidvalidity import EPOCH

T0 = EPOCH + 400_000 * 60
USERS = st.sampled_from(["alice", "bob"])
_VALID = ["INBOX", "inbox", "a", "a/b", "b", "B", "INBOX/x", "c/d", "x/a", "x/a/b"]
NAMES = st.sampled_from(_VALID * 3 + ["a/b/c", "a/", "a//b", ""])  # mostly valid
DATA = st.sampled_from([b"x", b"y", b"zz", b"hello world", b""])
FLAGS = st.frozensets(
    st.sampled_from(
        ["\\Seen", "\\seen", "\\Deleted", "\\Flagged", "$Junk", "$junk", "kw", "\\Recent"]
    ),
    max_size=4,
)
STORE_FLAGS = st.one_of(*[FLAGS.filter(bool)] * 3, st.just(frozenset[str]()))
UIDS_ONE = st.integers(1, 12)
DATES = st.sampled_from(
    [
        datetime.datetime(2025, 3, 1, tzinfo=datetime.UTC),
        datetime.datetime(
            2024, 12, 31, 23, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
        ),
    ]
)


class Clock:
    """A settable clock."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def fingerprint(store: MailStore) -> Any:
    """Everything a reader can observe, as comparable tuples."""
    users = []
    for user in store.users():
        boxes = []
        for box in store.mailboxes(user):
            recs = tuple(
                (
                    r.uid,
                    r.blob.digest,
                    tuple(sorted(r.flags)),
                    r.internaldate,
                    r.modseq,
                    r.instance_id,
                )
                for r in box.records()
            )
            boxes.append(
                (
                    box.id,
                    box.name,
                    box.uidvalidity,
                    box.uidnext,
                    box.highestmodseq,
                    tuple(sorted(box.recent_uids)),
                    tuple(box.keywords()),
                    recs,
                )
            )
        users.append((user, tuple(boxes), tuple(sorted(store.subscriptions(user)))))
    return tuple(users), tuple(sorted(store.blobs.refcounts().items()))


def recount(store: MailStore) -> None:
    """Independent recounts of every derived number the store keeps."""
    refs: Counter[str] = Counter()
    for user in store.users():
        for box in store.mailboxes(user):
            uids = box.uids()
            assert uids == sorted(set(uids)), "uids not ascending and unique"
            assert all(uid < box.uidnext for uid in uids), "uidnext not above every uid"
            recs = list(box.records())
            assert [r.uid for r in recs] == uids
            unseen = [r.uid for r in recs if SEEN not in r.flags]
            assert box.unseen_count() == len(unseen)
            assert box.first_unseen_uid() == (unseen[0] if unseen else None)
            assert box.total_size == sum(len(r.blob.data) for r in recs)
            assert all(r.modseq <= box.highestmodseq for r in recs)
            refs.update(r.blob.digest for r in recs)
    assert dict(refs) == store.blobs.refcounts(), "blob refcounts inconsistent"
    assert store.blob_count() == len(refs)


class StoreMachine(RuleBasedStateMachine):
    """Drives a MailStore with random ops and checks it after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.store = MailStore("n1", 42, clock=self.clock)
        self.actions: list[tuple[str, Any]] = []
        self.shown: dict[tuple[str, str, int], tuple[str, int]] = {}  # uv shown -> map
        self.generation: Counter[str] = Counter()  # Regenerates per mailbox id
        self.uidnext: dict[tuple[str, int], int] = {}
        self.modseq: dict[str, int] = {}
        self.counters: dict[tuple[str, str], int] = {}

    # --- driving ----------------------------------------------------------

    def do(self, op: Op) -> None:
        before = fingerprint(self.store)
        self.actions.append(("op", op))
        try:
            changes = self.store.apply(op)
        except StoreError:
            assert fingerprint(self.store) == before, f"failed {op!r} changed the store"
            return
        for change in changes:
            if isinstance(change, MailboxRegenerated):
                self.generation[change.mailbox_id] += 1

    def pick(self, data: st.DataObject, full: bool = False) -> tuple[str, str]:
        """Mostly an existing (user, mailbox name), one with messages if ``full``;
        sometimes anything."""
        boxes = [b for u in self.store.users() for b in self.store.mailboxes(u)]
        if full and any(boxes) and data.draw(st.integers(0, 5)) > 0:
            boxes = [b for b in boxes if len(b)]
        if boxes and data.draw(st.integers(0, 5)) > 0:
            box = data.draw(st.sampled_from(boxes))
            return box.user, box.name
        return data.draw(USERS), data.draw(NAMES)

    def uids(self, data: st.DataObject, user: str, name: str) -> tuple[int, ...]:
        """Mostly UIDs present in the mailbox, plus the odd absent one."""
        try:
            present = list(self.store.mailbox(user, name).uids())
        except StoreError:
            present = []
        return tuple(
            data.draw(st.lists(st.sampled_from(present + [99]) | UIDS_ONE, min_size=1, max_size=8))
        )

    @initialize()
    def populate(self) -> None:
        for user in ("alice", "bob"):
            self.do(CreateAccount(user))
            self.do(CreateMailbox(user, "a/b", f"{user}-ab"))

    @rule(user=USERS, delete=st.sampled_from([False, False, False, True]))
    def account(self, user: str, delete: bool) -> None:
        self.do(DeleteAccount(user) if delete else CreateAccount(user))

    @rule(user=USERS, name=NAMES, seed=st.integers(0, 3))
    def create_mailbox(self, user: str, name: str, seed: int) -> None:
        # Few distinct ids, so id reuse and derived-id collisions get exercised.
        self.do(CreateMailbox(user, name, f"{seed:032x}"))

    @rule(data=st.data())
    def delete_mailbox(self, data: st.DataObject) -> None:
        self.do(DeleteMailbox(*self.pick(data)))

    @rule(data=st.data(), new=NAMES, seed=st.sampled_from(["", "s"]))
    def rename(self, data: st.DataObject, new: str, seed: str) -> None:
        self.do(RenameMailbox(*self.pick(data, full=True), new, seed))

    @rule(user=USERS, name=NAMES, on=st.booleans())
    def subscription(self, user: str, name: str, on: bool) -> None:
        self.do(Subscribe(user, name) if on else Unsubscribe(user, name))

    @rule(data=st.data(), bodies=st.lists(DATA, min_size=1, max_size=6), flags=FLAGS, when=DATES)
    def append(
        self, data: st.DataObject, bodies: list[bytes], flags: frozenset[str], when: Any
    ) -> None:
        user, name = self.pick(data)
        for body in bodies:
            self.actions.append(("id", None))
            self.do(Append.new(self.store, user, name, body, flags, when))

    @rule(
        data=st.data(),
        mode=st.sampled_from(["add", "remove", "replace"]),
        flags=STORE_FLAGS,
        since=st.none() | st.integers(0, 30),
    )
    def store_flags(self, data: st.DataObject, mode: str, flags: Any, since: Any) -> None:
        user, name = self.pick(data, full=True)
        self.do(StoreFlags(user, name, self.uids(data, user, name), mode, flags, since))

    @rule(data=st.data())
    def expunge(self, data: st.DataObject) -> None:
        user, name = self.pick(data, full=True)
        self.do(Expunge(user, name, self.uids(data, user, name)))

    @rule(data=st.data(), move=st.booleans())
    def copy(self, data: st.DataObject, move: bool) -> None:
        user, src = self.pick(data, full=True)
        try:
            own = [box.name for box in self.store.mailboxes(user)]
        except StoreError:
            own = []
        dst = data.draw(st.sampled_from(own + [src, "nope"]))
        self.do(Copy(user, src, self.uids(data, user, src), dst, move))

    @rule(data=st.data())
    def regenerate(self, data: st.DataObject) -> None:
        self.do(Regenerate(*self.pick(data, full=True)))

    @rule(seconds=st.sampled_from([0, 1, 30, 60, 3600]))
    def tick(self, seconds: int) -> None:
        self.clock.now += seconds
        self.actions.append(("tick", seconds))

    @rule(user=USERS, name=NAMES, uids=st.none() | st.lists(UIDS_ONE, max_size=6))
    def claim_recent(self, user: str, name: str, uids: Any) -> None:
        self.actions.append(("claim", (user, name, uids)))
        claim(self.store, user, name, uids)

    # --- checking ---------------------------------------------------------

    @invariant()
    def consistent(self) -> None:
        self.store.check_invariants()
        recount(self.store)

    @invariant()
    def uidvalidity_rule(self) -> None:
        """A (name, UIDVALIDITY) pair never shows two UID maps; counters,
        uidnext (per UID map) and modseq never go back."""
        store = self.store
        for user in store.users():
            for box in store.mailboxes(user):
                uid_map = (box.id, self.generation[box.id])
                key = (user, box.name, box.uidvalidity)
                assert self.shown.setdefault(key, uid_map) == uid_map, f"{key} shows two maps"
                assert box.uidnext >= self.uidnext.get(uid_map, 0)
                self.uidnext[uid_map] = box.uidnext
                assert box.highestmodseq >= self.modseq.get(box.id, 0)
                self.modseq[box.id] = box.highestmodseq
        for user, names in store.allocator.state.items():
            for name, counter in names.items():
                assert counter >= self.counters.get((user, name), 0), "counter went back"
                self.counters[(user, name)] = counter

    def teardown(self) -> None:
        """Replaying the JSON-serialised action log reproduces the same state."""
        clock = Clock()
        replica = MailStore("n1", 42, clock=clock)
        for kind, arg in self.actions:
            if kind == "id":
                replica.next_instance_id()  # what Append.new consumed
            elif kind == "tick":
                clock.now += arg
            elif kind == "claim":
                claim(replica, *arg)
            else:
                op = op_from_dict(json.loads(json.dumps(arg.to_dict())))
                assert op == arg
                with contextlib.suppress(StoreError):
                    replica.apply(op)
        assert fingerprint(replica) == fingerprint(self.store)
        assert replica.allocator.state == self.store.allocator.state
        assert replica.next_instance_id() == self.store.next_instance_id()


def claim(store: MailStore, user: str, name: str, uids: list[int] | None) -> None:
    """claim_recent on a mailbox if it exists."""
    try:
        box = store.mailbox(user, name)
    except StoreError:
        return
    box.claim_recent(uids)


StoreMachine.TestCase.settings = settings(
    max_examples=75,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestStoreMachine = StoreMachine.TestCase


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(max_size=300),
    flags=st.frozensets(st.text(min_size=1, max_size=8), max_size=5),
    seq=st.integers(0, 2**63),
    when=st.datetimes(timezones=st.timezones()),
)
def test_append_roundtrips_any_bytes_flags_and_dates(
    data: bytes, flags: frozenset[str], seq: int, when: datetime.datetime
) -> None:
    """Append ops survive JSON roundtrip for arbitrary bytes, flags, dates and zones."""
    op = Append("u", "INBOX", data, flags, when, ("n1", seq))
    back = op_from_dict(json.loads(json.dumps(op.to_dict())))
    assert back == op and back.internaldate.utcoffset() == when.utcoffset()


@settings(max_examples=200, deadline=None)
@given(flags=st.lists(st.sampled_from(["\\SEEN", "\\seen", "$A", "$a", "x", "X", "\\Recent"])))
def test_flag_canonicalisation_is_case_insensitive_and_idempotent(flags: list[str]) -> None:
    """Canonical flags hold one spelling per flag, never \\Recent, and are a fixed point."""
    store = MailStore("n1", 1, clock=lambda: T0)
    store.apply(CreateAccount("u"))
    box = store.mailbox("u", "INBOX")
    canon = box._canon_flags(frozenset(flags))
    lowered = {f.lower() for f in flags} - {"\\recent"}
    assert {f.lower() for f in canon} == lowered and len(canon) == len(lowered)
    assert box._canon_flags(canon) == canon
