"""Unit tests for twistedmail.store: every op, its errors, naming rules, views,
listeners and op serialisation."""

from __future__ import annotations

import datetime
import json
import zoneinfo

import pytest

from twistedmail.store import (
    INBOX,
    AccountCreated,
    AccountDeleted,
    Append,
    Blob,
    Cannot,
    CannotDelete,
    Copied,
    Copy,
    CreateAccount,
    CreateMailbox,
    DeleteAccount,
    DeleteAcl,
    DeleteMailbox,
    Expunge,
    FlagsChanged,
    InvalidMailboxName,
    MailboxCreated,
    MailboxDeleted,
    MailboxExists,
    MailboxRegenerated,
    MailboxRenamed,
    MailStore,
    MessagesAdded,
    MessagesExpunged,
    NoSuchAccount,
    NoSuchMailbox,
    NoSuchMessage,
    Op,
    Regenerate,
    RenameMailbox,
    SetAcl,
    SetMetadata,
    SetQuota,
    SetSpecialUse,
    StoreError,
    StoreFailed,
    StoreFlags,
    Subscribe,
    Subscribed,
    UidValidityExhausted,
    Unsubscribe,
    Unsubscribed,
    op_from_dict,
)

T0 = 1_760_000_000.0  # 2025-10-09, well past the allocator epoch
WHEN = datetime.datetime(2025, 6, 1, 12, 0, tzinfo=datetime.UTC)


def new_store(user: str | None = "alice") -> MailStore:
    store = MailStore("n1", 7, clock=lambda: T0)
    if user:
        store.apply(CreateAccount(user))
    return store


def add(store: MailStore, box: str = "INBOX", data: bytes = b"m", flags: tuple = ()) -> int:
    (added,) = store.apply(Append.new(store, "alice", box, data, flags, WHEN))
    assert isinstance(added, MessagesAdded)
    return added.uids[0]


def mkbox(store: MailStore, name: str) -> list:
    return store.apply(CreateMailbox.new("alice", name))


def names(store: MailStore, user: str = "alice") -> list[str]:
    return [box.name for box in store.mailboxes(user)]


# --- accounts ----------------------------------------------------------------


def test_create_account_makes_inbox() -> None:
    """CreateAccount creates the account and an empty INBOX, reporting both."""
    store = new_store(None)
    changes = store.apply(CreateAccount("alice"))
    inbox = store.mailbox("alice", "INBOX")
    assert changes == [AccountCreated("alice"), MailboxCreated("alice", INBOX, inbox.id)]
    assert store.has_account("alice") and store.users() == ["alice"]
    assert (len(inbox), inbox.uidnext, inbox.highestmodseq) == (0, 1, 0)


def test_create_account_is_idempotent() -> None:
    """A second CreateAccount changes nothing and reports nothing."""
    store = new_store()
    add(store)
    assert store.apply(CreateAccount("alice")) == []
    assert len(store.mailbox("alice", "INBOX")) == 1


def test_inbox_id_is_the_same_on_every_node() -> None:
    """INBOX ids derive from the user name, so independent nodes agree."""
    a, b = new_store(), MailStore("n2", 9, clock=lambda: T0 + 999)
    b.apply(CreateAccount("alice"))
    assert a.mailbox("alice", "INBOX").id == b.mailbox("alice", "INBOX").id


def test_delete_account_removes_everything() -> None:
    """DeleteAccount drops every mailbox (reported), subscriptions and blobs."""
    store = new_store()
    mkbox(store, "work")
    add(store, data=b"x")
    store.apply(Subscribe("alice", "work"))
    ids = {box.name: box.id for box in store.mailboxes("alice")}
    changes = store.apply(DeleteAccount("alice"))
    assert changes == [
        MailboxDeleted("alice", "INBOX", ids["INBOX"]),
        MailboxDeleted("alice", "work", ids["work"]),
        AccountDeleted("alice"),
    ]
    assert not store.has_account("alice") and store.mailbox_by_id(ids["work"]) is None
    assert (store.blob_count(), store.bytes_stored()) == (0, 0)


@pytest.mark.parametrize(
    "op",
    [
        DeleteAccount("bob"),
        CreateMailbox("bob", "x", "0" * 32),
        DeleteMailbox("bob", "x"),
        RenameMailbox("bob", "x", "y"),
        Subscribe("bob", "x"),
        Unsubscribe("bob", "x"),
        Append("bob", "INBOX", b"m", frozenset(), WHEN, ("n1", 1)),
        StoreFlags("bob", "INBOX", (1,), "add", frozenset()),
        Expunge("bob", "INBOX", (1,)),
        Copy("bob", "INBOX", (1,), "x"),
        Regenerate("bob", "INBOX"),
    ],
)
def test_ops_on_unknown_account_raise(op: Op) -> None:
    """Every op but CreateAccount raises NoSuchAccount for an unknown user."""
    with pytest.raises(NoSuchAccount):
        new_store().apply(op)


def test_readers_on_unknown_account_raise() -> None:
    """mailbox / mailboxes / subscriptions raise NoSuchAccount for an unknown user."""
    store = new_store()
    for call in (lambda: store.mailbox("bob", "INBOX"), lambda: store.mailboxes("bob")):
        with pytest.raises(NoSuchAccount):
            call()
    with pytest.raises(NoSuchAccount):
        store.subscriptions("bob")


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (NoSuchAccount, "NONEXISTENT"),
        (NoSuchMailbox, "NONEXISTENT"),
        (NoSuchMessage, "NONEXISTENT"),
        (MailboxExists, "ALREADYEXISTS"),
        (InvalidMailboxName, "CANNOT"),
        (Cannot, "CANNOT"),
        (CannotDelete, "CANNOT"),
        (UidValidityExhausted, "LIMIT"),
    ],
)
def test_error_codes(cls: type[StoreError], code: str) -> None:
    """Each error is a StoreError with its RFC 5530 code and a human str()."""
    err = cls("some words")
    assert isinstance(err, StoreError) and err.code == code and str(err) == "some words"


# --- create / naming rules -------------------------------------------------------


def test_create_mailbox() -> None:
    """CreateMailbox makes an empty mailbox with the op's id."""
    store = new_store()
    op = CreateMailbox.new("alice", "work")
    assert store.apply(op) == [MailboxCreated("alice", "work", op.mailbox_id)]
    box = store.mailbox("alice", "work")
    assert (box.id, box.user, box.name, len(box)) == (op.mailbox_id, "alice", "work", 0)
    assert store.mailbox_by_id(op.mailbox_id) is box


def test_create_makes_missing_parents() -> None:
    """CREATE a/b/c also creates a and a/b, parents first (RFC 3501 §6.3.3)."""
    store = new_store()
    mkbox(store, "a")
    changes = mkbox(store, "a/b/c")
    assert [c.name for c in changes] == ["a/b", "a/b/c"]
    assert names(store) == ["INBOX", "a", "a/b", "a/b/c"]


def test_parent_ids_are_deterministic() -> None:
    """Applying one CreateMailbox op on two stores yields the same parent ids."""
    op = CreateMailbox.new("alice", "a/b")
    one, two = new_store(), new_store()
    assert one.apply(op) == two.apply(op)


@pytest.mark.parametrize("name", ["work", "INBOX", "inbox", "InBoX"])
def test_create_existing_raises(name: str) -> None:
    """CREATE of an existing name (INBOX in any case) raises MailboxExists."""
    store = new_store()
    mkbox(store, "work")
    with pytest.raises(MailboxExists) as info:
        mkbox(store, name)
    assert info.value.code == "ALREADYEXISTS"


def test_create_reused_id_raises() -> None:
    """A CreateMailbox whose id is already in use is refused."""
    store = new_store()
    op = CreateMailbox.new("alice", "a")
    store.apply(op)
    with pytest.raises(MailboxExists):
        store.apply(CreateMailbox("alice", "b", op.mailbox_id))


def test_mailbox_ids_are_never_reused() -> None:
    """A deleted mailbox's id stays retired: explicit reuse is refused and a
    re-created account's INBOX gets a different id (RFC 8474 MAILBOXID)."""
    store = new_store()
    op = CreateMailbox.new("alice", "a")
    store.apply(op)
    store.apply(DeleteMailbox("alice", "a"))
    with pytest.raises(MailboxExists):
        store.apply(CreateMailbox("alice", "a", op.mailbox_id))
    inbox_id = store.mailbox("alice", "INBOX").id
    store.apply(DeleteAccount("alice"))
    store.apply(CreateAccount("alice"))
    assert store.mailbox("alice", "INBOX").id != inbox_id
    with pytest.raises(ValueError):
        CreateMailbox("alice", "a", "")


def test_create_trailing_delimiter_is_stripped() -> None:
    """CREATE "foo/" creates "foo" (RFC 3501 §6.3.3)."""
    store = new_store()
    assert [c.name for c in mkbox(store, "foo/")] == ["foo"]


@pytest.mark.parametrize(
    "name", ["", "/", "/a", "a//b", "a//", "a\x00b", "a\rb", "a\nb", "x" * 1025]
)
def test_invalid_names_refused(name: str) -> None:
    """Empty names, empty levels, NUL/CR/LF and >1024 chars are InvalidMailboxName."""
    store = new_store()
    with pytest.raises(InvalidMailboxName):
        mkbox(store, name)
    with pytest.raises(InvalidMailboxName):
        store.apply(RenameMailbox("alice", "INBOX", name))
    assert names(store) == ["INBOX"]


def test_name_of_1024_chars_allowed() -> None:
    """Exactly MAX_NAME_LENGTH characters is fine."""
    store = new_store()
    mkbox(store, "x" * 1024)
    assert store.mailbox("alice", "x" * 1024).name == "x" * 1024


def test_inbox_matched_case_insensitively() -> None:
    """ "inbox" and "inbox/Sub" mean INBOX and INBOX/Sub (RFC 3501 §5.1)."""
    store = new_store()
    mkbox(store, "inbox/Sub")
    assert names(store) == ["INBOX", "INBOX/Sub"]
    assert store.mailbox("alice", "iNbOx").name == "INBOX"
    assert store.mailbox("alice", "Inbox/Sub").name == "INBOX/Sub"


def test_other_names_case_sensitive() -> None:
    """Non-INBOX names are case-sensitive: Foo and foo are two mailboxes."""
    store = new_store()
    mkbox(store, "Foo")
    with pytest.raises(NoSuchMailbox):
        store.mailbox("alice", "foo")
    with pytest.raises(NoSuchMailbox):
        store.mailbox("alice", "Inbox/sub")
    mkbox(store, "foo")
    assert names(store) == ["Foo", "INBOX", "foo"]


# --- delete --------------------------------------------------------------------


def test_delete_mailbox_drops_messages_and_blobs() -> None:
    """DELETE removes the mailbox, its messages and their unshared blobs."""
    store = new_store()
    mkbox(store, "a")
    add(store, "a", b"only here")
    box_id = store.mailbox("alice", "a").id
    assert store.apply(DeleteMailbox("alice", "a")) == [MailboxDeleted("alice", "a", box_id)]
    assert names(store) == ["INBOX"] and store.blob_count() == 0


@pytest.mark.parametrize("name", ["INBOX", "inbox"])
def test_delete_inbox_refused(name: str) -> None:
    """DELETE INBOX is refused with CANNOT (RFC 3501 §6.3.4)."""
    store = new_store()
    with pytest.raises(CannotDelete) as info:
        store.apply(DeleteMailbox("alice", name))
    assert isinstance(info.value, Cannot) and info.value.code == "CANNOT"


def test_delete_missing_raises() -> None:
    """DELETE of an unknown name raises NoSuchMailbox."""
    with pytest.raises(NoSuchMailbox):
        new_store().apply(DeleteMailbox("alice", "nope"))


def test_delete_keeps_inferiors() -> None:
    """Deleting a parent keeps its inferiors (RFC 3501 §6.3.4)."""
    store = new_store()
    mkbox(store, "a/b")
    store.apply(DeleteMailbox("alice", "a"))
    assert names(store) == ["INBOX", "a/b"]
    assert [c.name for c in mkbox(store, "a/b/c")] == ["a", "a/b/c"]


def test_delete_then_create_is_a_new_mailbox() -> None:
    """Re-creating a deleted name gives a new id, empty UIDs, larger UIDVALIDITY."""
    store = new_store()
    mkbox(store, "a")
    add(store, "a")
    old = store.mailbox("alice", "a")
    store.apply(DeleteMailbox("alice", "a"))
    mkbox(store, "a")
    new = store.mailbox("alice", "a")
    assert new.id != old.id and new.uidnext == 1 and new.uidvalidity > old.uidvalidity


# --- rename ----------------------------------------------------------------------


def test_rename_moves_inferiors() -> None:
    """RENAME a -> b renames a/x too; ids, UIDs and UIDVALIDITY stay."""
    store = new_store()
    mkbox(store, "a/x")
    uid = add(store, "a/x", b"kept")
    before = {b.name: (b.id, b.uidvalidity) for b in store.mailboxes("alice")}
    changes = store.apply(RenameMailbox("alice", "a", "b"))
    assert changes == [
        MailboxRenamed("alice", "a", "b", before["a"][0]),
        MailboxRenamed("alice", "a/x", "b/x", before["a/x"][0]),
    ]
    assert names(store) == ["INBOX", "b", "b/x"]
    moved = store.mailbox("alice", "b/x")
    assert (moved.id, moved.uidvalidity) == before["a/x"]
    assert moved.record(uid).blob.data == b"kept"


def test_rename_creates_missing_parents() -> None:
    """RENAME a -> p/q/a creates p and p/q (RFC 3501 §6.3.5)."""
    store = new_store()
    mkbox(store, "a")
    changes = store.apply(RenameMailbox("alice", "a", "p/q/a"))
    assert [type(c) for c in changes] == [MailboxCreated, MailboxCreated, MailboxRenamed]
    assert names(store) == ["INBOX", "p", "p/q", "p/q/a"]


def test_rename_errors() -> None:
    """RENAME of a missing mailbox, onto an existing one, or under itself fails."""
    store = new_store()
    mkbox(store, "a")
    mkbox(store, "b")
    for op, err in [
        (RenameMailbox("alice", "nope", "c"), NoSuchMailbox),
        (RenameMailbox("alice", "a", "b"), MailboxExists),
        (RenameMailbox("alice", "a", "INBOX"), MailboxExists),
        (RenameMailbox("alice", "a", "a"), MailboxExists),
        (RenameMailbox("alice", "a", "a/sub"), Cannot),
    ]:
        with pytest.raises(err):
            store.apply(op)
    assert names(store) == ["INBOX", "a", "b"]


def test_rename_inferior_collision_changes_nothing() -> None:
    """If a moved inferior would land on an existing name, nothing happens."""
    store = new_store()
    mkbox(store, "a/x")
    mkbox(store, "p/b/x")
    store.apply(DeleteMailbox("alice", "p/b"))
    store.apply(DeleteMailbox("alice", "p"))
    with pytest.raises(MailboxExists):
        store.apply(RenameMailbox("alice", "a", "p/b"))  # a/x -> p/b/x collides
    assert names(store) == ["INBOX", "a", "a/x", "p/b/x"]  # p not created either


def test_rename_inferior_too_long_changes_nothing() -> None:
    """An inferior whose new name passes 1024 chars refuses the whole rename."""
    store = new_store()
    mkbox(store, "a/" + "x" * 1000)
    with pytest.raises(InvalidMailboxName):
        store.apply(RenameMailbox("alice", "a", "p/" + "b" * 100))
    assert names(store) == ["INBOX", "a", "a/" + "x" * 1000]


def test_rename_up_onto_own_inferior_names() -> None:
    """a/x -> a works even though a/x/x moves onto the old name a/x."""
    store = new_store()
    mkbox(store, "a/x/x")
    store.apply(DeleteMailbox("alice", "a"))
    store.apply(RenameMailbox("alice", "a/x", "a"))
    assert names(store) == ["INBOX", "a", "a/x"]


def test_rename_inbox_moves_messages() -> None:
    """RENAME INBOX: messages move to a new mailbox as UIDs 1..n with flags and
    dates kept; INBOX stays, empty, its inferiors unmoved (RFC 3501 §6.3.5)."""
    store = new_store()
    mkbox(store, "INBOX/keep")
    add(store, data=b"one", flags=("\\Seen",))
    add(store, data=b"two")
    store.apply(Expunge("alice", "INBOX", (1,)))
    add(store, data=b"three", flags=("$Work",))
    inbox = store.mailbox("alice", "INBOX")
    changes = store.apply(RenameMailbox("alice", "inbox", "Old"))
    old = store.mailbox("alice", "Old")
    assert [type(c) for c in changes] == [MailboxCreated, MessagesAdded, MessagesExpunged]
    assert changes[1] == MessagesAdded(old.id, (1, 2))
    assert [(r.uid, r.blob.data, r.flags) for r in old.records()] == [
        (1, b"two", frozenset()),
        (2, b"three", frozenset({"$Work"})),
    ]
    assert all(r.internaldate == WHEN for r in old.records())
    assert len(inbox) == 0 and inbox.uidnext == 4
    assert names(store) == ["INBOX", "INBOX/keep", "Old"]
    assert store.mailbox("alice", "INBOX") is inbox and old.id != inbox.id


def test_rename_empty_inbox_just_creates() -> None:
    """RENAME of an empty INBOX only creates the target."""
    store = new_store()
    changes = store.apply(RenameMailbox.fresh("alice", "INBOX", "x/y"))
    assert [c.name for c in changes] == ["x", "x/y"]  # type: ignore[attr-defined]


# --- subscriptions ----------------------------------------------------------------


def test_subscribe_and_unsubscribe() -> None:
    """SUBSCRIBE/UNSUBSCRIBE report real changes only; repeats are no-ops."""
    store = new_store()
    assert store.apply(Subscribe("alice", "news")) == [Subscribed("alice", "news")]
    assert store.apply(Subscribe("alice", "news")) == []
    assert store.subscriptions("alice") == {"news"}
    assert store.apply(Unsubscribe("alice", "news")) == [Unsubscribed("alice", "news")]
    assert store.apply(Unsubscribe("alice", "news")) == []
    assert store.subscriptions("alice") == set()


def test_subscriptions_outlive_mailboxes() -> None:
    """Subscriptions may name missing mailboxes and survive DELETE (RFC 3501 §6.3.6)."""
    store = new_store()
    mkbox(store, "a")
    store.apply(Subscribe("alice", "a"))
    store.apply(Subscribe("alice", "inbox"))
    store.apply(DeleteMailbox("alice", "a"))
    assert store.subscriptions("alice") == {"a", "INBOX"}
    with pytest.raises(InvalidMailboxName):
        store.apply(Subscribe("alice", "a//b"))


# --- append ------------------------------------------------------------------


def test_append_records_message() -> None:
    """Append stores bytes, flags, date, instance id; UID and modseq ascend."""
    store = new_store()
    assert add(store, data=b"hello") == 1
    changes = store.apply(Append("alice", "inbox", b"bye", frozenset(), WHEN, ("n9", 5)))
    box = store.mailbox("alice", "INBOX")
    assert changes == [MessagesAdded(box.id, (2,))]
    rec = box.record(2)
    assert (rec.blob.data, rec.size, rec.internaldate, rec.instance_id) == (
        b"bye",
        3,
        WHEN,
        ("n9", 5),
    )
    assert (box.record(1).modseq, rec.modseq, box.highestmodseq, box.uidnext) == (1, 2, 2, 3)
    assert box.total_size == 8


def test_append_to_missing_mailbox_raises() -> None:
    """APPEND to an unknown mailbox raises NoSuchMailbox (IMAP adds TRYCREATE)."""
    with pytest.raises(NoSuchMailbox):
        add(new_store(), "nope")


def test_append_new_uses_store_clock_and_ids() -> None:
    """Append.new takes the next instance id and the store clock (whole seconds)."""
    store = MailStore("n1", 7, clock=lambda: T0 + 0.75)
    op = Append.new(store, "alice", "INBOX", b"x")
    assert op.instance_id == ("n1", 1) and store.next_instance_id() == ("n1", 2)
    assert op.internaldate == datetime.datetime.fromtimestamp(T0, datetime.UTC)


def test_append_validates_fields() -> None:
    """A naive internaldate, empty flag or bad instance id is a ValueError."""
    naive = datetime.datetime(2025, 1, 1)
    with pytest.raises(ValueError):
        Append("alice", "INBOX", b"x", frozenset(), naive, ("n1", 1))
    with pytest.raises(ValueError):
        Append("alice", "INBOX", b"x", frozenset({""}), WHEN, ("n1", 1))
    with pytest.raises(ValueError):
        Append("alice", "INBOX", b"x", frozenset(), WHEN, ("n1", "1"))  # type: ignore[arg-type]


def test_internaldate_zone_becomes_fixed_offset() -> None:
    """A zoneinfo internaldate is stored as the same instant with a fixed offset,
    so it survives serialisation (even inside a DST fold)."""
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    fold = datetime.datetime(2025, 10, 26, 2, 30, fold=1, tzinfo=paris)
    op = Append("alice", "INBOX", b"x", frozenset(), fold, ("n1", 1))
    assert type(op.internaldate.tzinfo) is datetime.timezone
    assert op.internaldate.utcoffset() == datetime.timedelta(hours=1)
    assert op.internaldate.timestamp() == fold.timestamp()
    assert op_from_dict(json.loads(json.dumps(op.to_dict()))) == op


def test_replayed_local_instance_ids_advance_counter() -> None:
    """Applying an Append with a local id ≥ the counter moves the counter past it."""
    store = new_store()
    store.apply(Append("alice", "INBOX", b"x", frozenset(), WHEN, ("n1", 41)))
    assert store.next_instance_id() == ("n1", 42)


def test_identical_bytes_share_one_blob() -> None:
    """The same bytes appended twice are stored once (content addressed)."""
    store = new_store()
    mkbox(store, "a")
    add(store, data=b"same")
    add(store, "a", b"same")
    one, two = store.mailbox("alice", "INBOX").record(1), store.mailbox("alice", "a").record(1)
    assert one.blob is two.blob and one.blob == Blob(b"same")
    assert (store.blob_count(), store.bytes_stored()) == (1, 4)
    assert store.blobs.refcount(one.blob.digest) == 2


def test_blob_is_immutable_and_cache_ignored_by_equality() -> None:
    """Blob refuses assignment; its cache does not affect equality or hash."""
    a, b = Blob(b"x"), Blob(b"x")
    a.cache["mime"] = object()
    assert a == b and hash(a) == hash(b) and a.digest == b.digest
    with pytest.raises(AttributeError):
        a.data = b"y"


def test_recent_set_on_append_and_claimed_once() -> None:
    """New messages are \\Recent until one session claims them (RFC 3501 §2.3.2)."""
    store = new_store()
    for _ in range(3):
        add(store)
    box = store.mailbox("alice", "INBOX")
    assert box.recent_uids == {1, 2, 3}
    assert box.claim_recent([2, 9]) == {2}
    assert box.claim_recent() == {1, 3}
    assert box.claim_recent() == set() and box.recent_uids == set()


# --- flags -----------------------------------------------------------------------


def test_system_flags_canonicalised_and_recent_dropped() -> None:
    """System flags are stored canonically; \\Recent is never stored."""
    store = new_store()
    add(store, flags=("\\SEEN", "\\answered", "\\fLaGgEd", "\\deleted", "\\DRAFT", "\\recent"))
    flags = store.mailbox("alice", "INBOX").record(1).flags
    assert flags == {"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"}


def test_keywords_compare_case_insensitively() -> None:
    """A keyword keeps its first spelling; add/remove match it in any case."""
    store = new_store()
    add(store, flags=("$Work",))
    add(store)
    store.apply(StoreFlags("alice", "INBOX", (1, 2), "add", frozenset({"$WORK"})))
    box = store.mailbox("alice", "INBOX")
    assert box.record(1).flags == box.record(2).flags == {"$Work"}
    assert box.keywords() == ["$Work"]
    store.apply(StoreFlags("alice", "INBOX", (1,), "remove", frozenset({"$work"})))
    assert box.record(1).flags == frozenset()


def test_store_modes() -> None:
    """+FLAGS adds, -FLAGS removes, FLAGS replaces (RFC 3501 §6.4.6)."""
    store = new_store()
    add(store, flags=("\\Seen", "a"))
    box = store.mailbox("alice", "INBOX")
    for mode, flags, expected in [
        ("add", {"b"}, {"\\Seen", "a", "b"}),
        ("remove", {"a", "zz"}, {"\\Seen", "b"}),
        ("replace", {"\\Flagged"}, {"\\Flagged"}),
    ]:
        store.apply(StoreFlags("alice", "INBOX", (1,), mode, frozenset(flags)))
        assert box.record(1).flags == expected


def test_store_reports_changes_with_one_new_modseq() -> None:
    """Changed messages share one new modseq; unchanged ones keep theirs."""
    store = new_store()
    add(store, flags=("\\Seen",))
    add(store)
    box = store.mailbox("alice", "INBOX")
    changes = store.apply(StoreFlags("alice", "INBOX", (1, 2, 7), "add", frozenset({"\\Seen"})))
    assert changes == [FlagsChanged(box.id, 2, frozenset({"\\Seen"}), 3)]
    assert (box.record(1).modseq, box.record(2).modseq, box.highestmodseq) == (1, 3, 3)
    assert store.apply(StoreFlags("alice", "INBOX", (1, 2), "add", frozenset({"\\Seen"}))) == []
    assert box.highestmodseq == 3


def test_store_unchangedsince() -> None:
    """UNCHANGEDSINCE skips and reports messages with a larger modseq (RFC 7162 §3.2)."""
    store = new_store()
    add(store)
    add(store)
    box = store.mailbox("alice", "INBOX")
    op = StoreFlags("alice", "INBOX", (1, 2), "add", frozenset({"\\Flagged"}), unchangedsince=1)
    changes = store.apply(op)
    assert changes == [
        FlagsChanged(box.id, 1, frozenset({"\\Flagged"}), 3),
        StoreFailed(box.id, (2,)),
    ]
    assert box.record(2).flags == frozenset()


def test_equal_flag_sets_are_shared() -> None:
    """Records with equal flags share one frozenset object (memory)."""
    store = new_store()
    for _ in range(3):
        add(store, flags=("\\Seen", "x"))
    store.apply(StoreFlags("alice", "INBOX", (1, 2, 3), "add", frozenset({"y"})))
    recs = list(store.mailbox("alice", "INBOX").records())
    assert recs[0].flags is recs[1].flags is recs[2].flags


def test_unseen_count_and_first_unseen() -> None:
    """unseen_count / first_unseen_uid follow \\Seen changes and expunges."""
    store = new_store()
    for _ in range(4):
        add(store)
    box = store.mailbox("alice", "INBOX")
    assert (box.unseen_count(), box.first_unseen_uid()) == (4, 1)
    store.apply(StoreFlags("alice", "INBOX", (1, 2), "add", frozenset({"\\seen"})))
    assert (box.unseen_count(), box.first_unseen_uid()) == (2, 3)
    store.apply(StoreFlags("alice", "INBOX", (1,), "replace", frozenset()))
    assert (box.unseen_count(), box.first_unseen_uid()) == (3, 1)
    store.apply(Expunge("alice", "INBOX", (1, 3, 4)))
    assert (box.unseen_count(), box.first_unseen_uid()) == (0, None)


# --- expunge ---------------------------------------------------------------------


def test_expunge() -> None:
    """Expunge removes the UIDs present, keeps uidnext and bumps HIGHESTMODSEQ
    (RFC 7162 §3.2); UIDs are never reused."""
    store = new_store()
    for _ in range(3):
        add(store)
    box = store.mailbox("alice", "INBOX")
    changes = store.apply(Expunge("alice", "INBOX", (3, 1, 9)))
    assert changes == [MessagesExpunged(box.id, (1, 3), 4)]
    assert (box.uids(), box.uidnext, box.highestmodseq, box.total_size) == ([2], 4, 4, 1)
    assert store.apply(Expunge("alice", "INBOX", (1, 3))) == []
    assert add(store) == 4


def test_expunge_many_keeps_order() -> None:
    """A large expunge (bulk path) keeps the survivors ascending."""
    store = new_store()
    for i in range(100):
        add(store, data=b"%d" % i)
    store.apply(Expunge("alice", "INBOX", tuple(range(1, 101, 3))))
    box = store.mailbox("alice", "INBOX")
    assert box.uids() == [u for u in range(1, 101) if u % 3 != 1]
    store.check_invariants()


def test_blob_freed_with_last_reference() -> None:
    """A blob lives until the last record using it is expunged."""
    store = new_store()
    add(store, data=b"dup")
    add(store, data=b"dup")
    store.apply(Expunge("alice", "INBOX", (1,)))
    assert store.blob_count() == 1
    store.apply(Expunge("alice", "INBOX", (2,)))
    assert (store.blob_count(), store.bytes_stored()) == (0, 0)


# --- copy / move ----------------------------------------------------------------


def test_copy_uid_map_and_fields() -> None:
    """COPY reports (src, dst) UID pairs and keeps flags, dates and the blob."""
    store = new_store()
    mkbox(store, "dst")
    add(store, "dst")
    for data in (b"a", b"b", b"c"):
        add(store, data=data, flags=("\\Seen",))
    src, dst = store.mailbox("alice", "INBOX"), store.mailbox("alice", "dst")
    changes = store.apply(Copy("alice", "INBOX", (3, 1, 99), "dst"))
    assert changes == [MessagesAdded(dst.id, (2, 3)), Copied(src.id, dst.id, ((1, 2), (3, 3)))]
    for s_uid, d_uid in ((1, 2), (3, 3)):
        a, b = src.record(s_uid), dst.record(d_uid)
        assert (a.blob, a.flags, a.internaldate) == (b.blob, b.flags, b.internaldate)
        assert a.blob is b.blob and a.instance_id != b.instance_id
    assert dst.recent_uids == {1, 2, 3} and len(src) == 3  # RFC 3501 §6.4.7


def test_copy_nothing_or_to_missing() -> None:
    """COPY of absent UIDs reports nothing; to a missing mailbox raises."""
    store = new_store()
    mkbox(store, "dst")
    assert store.apply(Copy("alice", "INBOX", (5,), "dst")) == []
    with pytest.raises(NoSuchMailbox):
        store.apply(Copy("alice", "INBOX", (), "nope"))
    with pytest.raises(NoSuchMailbox):
        store.apply(Copy("alice", "nope", (1,), "dst"))


def test_copy_keyword_spelling_follows_destination() -> None:
    """A copied keyword takes the destination's existing spelling."""
    store = new_store()
    mkbox(store, "dst")
    add(store, "dst", flags=("$JUNK",))
    add(store, flags=("$junk",))
    store.apply(Copy("alice", "INBOX", (1,), "dst"))
    assert store.mailbox("alice", "dst").record(2).flags == {"$JUNK"}


def test_move_expunges_source() -> None:
    """MOVE = copy + expunge from the source in one op (RFC 6851)."""
    store = new_store()
    mkbox(store, "dst")
    add(store, data=b"a")
    add(store, data=b"b")
    src, dst = store.mailbox("alice", "INBOX"), store.mailbox("alice", "dst")
    changes = store.apply(Copy("alice", "INBOX", (1, 2), "dst", move=True))
    assert changes == [
        MessagesAdded(dst.id, (1, 2)),
        Copied(src.id, dst.id, ((1, 1), (2, 2))),
        MessagesExpunged(src.id, (1, 2), src.highestmodseq),
    ]
    assert len(src) == 0 and [r.blob.data for r in dst.records()] == [b"a", b"b"]
    assert store.blob_count() == 2


def test_move_within_one_mailbox_renumbers() -> None:
    """MOVE onto the same mailbox gives the messages new UIDs."""
    store = new_store()
    add(store, data=b"a")
    store.apply(Copy("alice", "INBOX", (1,), "INBOX", move=True))
    box = store.mailbox("alice", "INBOX")
    assert box.uids() == [2] and box.record(2).blob.data == b"a"


# --- regenerate -----------------------------------------------------------------


def test_regenerate_reports_change() -> None:
    """Regenerate emits MailboxRegenerated with the new UIDVALIDITY."""
    store = new_store()
    box = store.mailbox("alice", "INBOX")
    changes = store.apply(Regenerate("alice", "inbox"))
    assert changes == [MailboxRegenerated(box.id, box.uidvalidity)]


# --- views -----------------------------------------------------------------------


def test_mailbox_views() -> None:
    """uids() is the live list; get/record/records/len/in agree."""
    store = new_store()
    for _ in range(3):
        add(store)
    box = store.mailbox("alice", "INBOX")
    live = box.uids()
    store.apply(Expunge("alice", "INBOX", (2,)))
    assert live is box.uids() and live == [1, 3]
    assert [r.uid for r in box.records()] == [1, 3] and len(box) == 2
    assert box.get(2) is None and 3 in box and 2 not in box
    with pytest.raises(NoSuchMessage):
        box.record(2)


def test_mailboxes_sorted_and_by_id() -> None:
    """mailboxes() is sorted by name; mailbox_by_id finds live ones only."""
    store = new_store()
    for name in ("zeta", "Alpha", "mid/x"):
        mkbox(store, name)
    assert names(store) == ["Alpha", "INBOX", "mid", "mid/x", "zeta"]
    zeta = store.mailbox("alice", "zeta")
    assert store.mailbox_by_id(zeta.id) is zeta
    assert store.mailbox_by_id("nope") is None


# --- listeners -------------------------------------------------------------------


def test_listeners_called_in_order() -> None:
    """Listeners get (op, changes) after each apply, in subscription order."""
    store = new_store()
    calls: list[tuple[str, Op, list]] = []
    store.subscribe(lambda op, ch: calls.append(("first", op, ch)))
    store.subscribe(lambda op, ch: calls.append(("second", op, ch)))
    op = Subscribe("alice", "x")
    changes = store.apply(op)
    assert calls == [("first", op, changes), ("second", op, changes)]


def test_listener_errors_are_contained(caplog: pytest.LogCaptureFixture) -> None:
    """A raising listener neither breaks apply nor the later listeners."""
    store = new_store()
    seen: list[Op] = []

    def bad(op: Op, changes: list) -> None:
        raise RuntimeError("boom")

    store.subscribe(bad)
    store.subscribe(lambda op, ch: seen.append(op))
    assert store.apply(Subscribe("alice", "x")) == [Subscribed("alice", "x")]
    assert len(seen) == 1 and store.listener_errors == 1
    assert isinstance(store.last_listener_error, RuntimeError) and "boom" in caplog.text


def test_unsubscribe_and_failed_ops() -> None:
    """Unsubscribed listeners hear nothing; failed ops are not announced."""
    store = new_store()
    seen: list[Op] = []
    stop = store.subscribe(lambda op, ch: seen.append(op))
    with pytest.raises(NoSuchMailbox):
        store.apply(DeleteMailbox("alice", "nope"))
    assert seen == []
    stop()
    stop()  # idempotent
    store.apply(Subscribe("alice", "x"))
    assert seen == []


def test_ops_applied_by_listeners_are_delivered_in_order() -> None:
    """An op applied from a listener reaches every listener after the current op."""
    store = new_store()
    log: list[tuple[str, str]] = []

    def chain(op: Op, changes: list) -> None:
        log.append(("a", type(op).__name__))
        if isinstance(op, Subscribe):
            store.apply(Unsubscribe("alice", op.name))

    store.subscribe(chain)
    store.subscribe(lambda op, ch: log.append(("b", type(op).__name__)))
    store.apply(Subscribe("alice", "x"))
    assert log == [
        ("a", "Subscribe"),
        ("b", "Subscribe"),
        ("a", "Unsubscribe"),
        ("b", "Unsubscribe"),
    ]


# --- ops: construction and serialisation ----------------------------------------------

ALL_OPS: list[Op] = [
    CreateAccount("alice"),
    DeleteAccount("alice"),
    CreateMailbox("alice", "a/b", "f" * 32),
    DeleteMailbox("alice", "a"),
    RenameMailbox("alice", "a", "b"),
    RenameMailbox("alice", "INBOX", "old", "seed"),
    Subscribe("alice", "ä/日本"),
    Unsubscribe("alice", "a"),
    Append("alice", "INBOX", bytes(range(256)), frozenset({"\\Seen", "$X"}), WHEN, ("n1", 3)),
    Append(
        "alice",
        "INBOX",
        b"",
        frozenset(),
        datetime.datetime(
            2024, 2, 29, 23, 59, 59, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))
        ),
        ("n2", 1),
    ),
    StoreFlags("alice", "INBOX", (3, 1), "add", frozenset({"\\Deleted"})),
    StoreFlags("alice", "INBOX", (1,), "replace", frozenset(), unchangedsince=7),
    Expunge("alice", "INBOX", (1, 2)),
    Copy("alice", "INBOX", (1,), "a"),
    Copy("alice", "INBOX", (1, 5), "a", move=True),
    Regenerate("alice", "INBOX"),
    CreateAccount.standard("alice"),
    CreateMailbox("alice", "s", "e" * 32, frozenset({"\\Sent"})),
    SetSpecialUse("alice", "s", frozenset({"\\Trash", "\\Junk"})),
    SetMetadata("alice", "", (("/private/comment", b"\x00hi"), ("/shared/x", None)), "bob"),
    SetAcl("alice", "a", "bob", "lrc"),
    DeleteAcl("alice", "a", "-anyone"),
    SetQuota("alice", (("STORAGE", 10), ("MESSAGE", 0))),
    Copy("alice", "INBOX", (1,), "a", False, "bob"),
]


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda op: type(op).__name__)
def test_op_json_roundtrip(op: Op) -> None:
    """op_from_dict(json(op.to_dict())) == op for every op type."""
    text = json.dumps(op.to_dict())
    assert op_from_dict(json.loads(text)) == op


def test_roundtrip_covers_every_op_type() -> None:
    """ALL_OPS exercises every registered op class."""
    assert {type(op).__name__ for op in ALL_OPS} == set(Op.registry)


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"op": "Nope"},
        {"op": "Append", "user": "x"},
        {"op": "Subscribe", "user": 1, "name": "x"},
        {"op": "Expunge", "user": "u", "mailbox": "m", "uids": ["1", 2]},
        {"op": "Expunge", "user": "u", "mailbox": "m", "uids": 5},
        {**ALL_OPS[8].to_dict(), "data": "not base64!"},
        {**ALL_OPS[8].to_dict(), "instance_id": ["n1", 1, 2]},
        {**ALL_OPS[8].to_dict(), "internaldate": "yesterday"},
        {**ALL_OPS[8].to_dict(), "flags": 3},
        [],
    ],
)
def test_op_from_dict_rejects_garbage(bad: object) -> None:
    """Malformed dicts raise ValueError."""
    with pytest.raises(ValueError):
        op_from_dict(bad)  # type: ignore[arg-type]


def test_ops_normalise_and_freeze() -> None:
    """uids become sorted unique tuples, flags frozensets; ops are immutable."""
    op = StoreFlags("alice", "INBOX", [3, 1, 3], "add", ["a"])  # type: ignore[arg-type]
    assert op.uids == (1, 3) and op.flags == frozenset({"a"})
    with pytest.raises(AttributeError):
        op.mode = "remove"  # type: ignore[misc]
    with pytest.raises(ValueError):
        StoreFlags("alice", "INBOX", (1,), "toggle", frozenset())
    with pytest.raises(ValueError):
        Expunge("alice", "INBOX", (0,))


def test_apply_rejects_non_ops() -> None:
    """apply() of something that is not an op raises TypeError."""
    with pytest.raises(TypeError):
        new_store().apply("CreateAccount")  # type: ignore[arg-type]
