"""Store ops for RFC 6154 special use and RFC 5464 metadata: CreateAccount.standard,
CreateMailbox.special_use, SetSpecialUse, SetMetadata (apply, determinism, JSON)."""

from __future__ import annotations

import json

import pytest

from twistedmail.store import (
    CreateAccount,
    CreateMailbox,
    DeleteAccount,
    DeleteMailbox,
    MailboxCreated,
    MailStore,
    MetadataChanged,
    NoSuchMailbox,
    RenameMailbox,
    SetMetadata,
    SetSpecialUse,
    SpecialUseChanged,
    op_from_dict,
)


def new_store() -> MailStore:
    return MailStore("n1", 1, clock=lambda: 1_800_000_000.0)


def test_standard_account_has_special_mailboxes() -> None:
    """CreateAccount.standard makes INBOX + Drafts Sent Trash Junk Archive with attributes."""
    store = new_store()
    changes = store.apply(CreateAccount.standard("alice"))
    created = [c.name for c in changes if isinstance(c, MailboxCreated)]
    assert created == ["INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"]
    uses = {b.name: b.special_use for b in store.mailboxes("alice")}
    assert uses == {"INBOX": frozenset(), "Drafts": {"\\Drafts"}, "Sent": {"\\Sent"},
                    "Trash": {"\\Trash"}, "Junk": {"\\Junk"}, "Archive": {"\\Archive"}}
    store.check_invariants()


def test_plain_account_has_only_inbox() -> None:
    """CreateAccount without special mailboxes is unchanged: INBOX only."""
    store = new_store()
    store.apply(CreateAccount("alice"))
    assert [b.name for b in store.mailboxes("alice")] == ["INBOX"]


def test_standard_account_is_deterministic() -> None:
    """Two stores applying the same op derive the same mailbox ids."""
    a, b = new_store(), new_store()
    a.apply(CreateAccount.standard("alice"))
    b.apply(CreateAccount.standard("alice"))
    assert [m.id for m in a.mailboxes("alice")] == [m.id for m in b.mailboxes("alice")]


def test_nested_special_mailbox_creates_parents() -> None:
    """A nested special name gets its superiors; only the leaf carries the attribute."""
    store = new_store()
    store.apply(CreateAccount("alice", (("Mail/Sent", "\\Sent"),)))
    boxes = {b.name: b.special_use for b in store.mailboxes("alice")}
    assert boxes == {"INBOX": frozenset(), "Mail": frozenset(), "Mail/Sent": {"\\Sent"}}


def test_create_mailbox_with_special_use_and_rename_keeps_it() -> None:
    """CreateMailbox.special_use is set on the new mailbox and survives RENAME."""
    store = new_store()
    store.apply(CreateAccount("alice"))
    store.apply(CreateMailbox("alice", "a/b", "f" * 32, frozenset({"\\Drafts"})))
    assert store.mailbox("alice", "a").special_use == frozenset()
    store.apply(RenameMailbox("alice", "a", "z"))
    assert store.mailbox("alice", "z/b").special_use == {"\\Drafts"}


def test_set_special_use() -> None:
    """SetSpecialUse replaces the attributes; a no-op reports nothing."""
    store = new_store()
    store.apply(CreateAccount.standard("alice"))
    box = store.mailbox("alice", "Junk")
    assert store.apply(SetSpecialUse("alice", "Junk", frozenset({"\\Trash"}))) == [
        SpecialUseChanged(box.id, frozenset({"\\Trash"}))]
    assert store.apply(SetSpecialUse("alice", "Junk", frozenset({"\\Trash"}))) == []
    with pytest.raises(NoSuchMailbox):
        store.apply(SetSpecialUse("alice", "Nope", frozenset()))


def test_bad_attributes_rejected() -> None:
    """Special-use attributes must look like \\Name."""
    with pytest.raises(ValueError):
        SetSpecialUse("alice", "x", frozenset({"Drafts"}))
    with pytest.raises(ValueError):
        CreateAccount("alice", (("Sent", "Sent"),))


def test_set_metadata_on_mailbox() -> None:
    """Private entries are keyed by the actor, shared ones not; NIL deletes; names
    compare case-insensitively (RFC 5464 §3)."""
    store = new_store()
    store.apply(CreateAccount("alice"))
    box = store.mailbox("alice", "INBOX")
    changes = store.apply(SetMetadata(
        "alice", "INBOX", (("/Private/Comment", b"mine"), ("/shared/comment", b"all")), "bob"))
    assert changes == [MetadataChanged("alice", box.id, ("/private/comment", "/shared/comment"))]
    assert box.metadata == {("bob", "/private/comment"): b"mine",
                            ("", "/shared/comment"): b"all"}
    assert store.apply(SetMetadata("alice", "INBOX", (("/shared/comment", b"all"),))) == []
    store.apply(SetMetadata("alice", "INBOX", (("/SHARED/COMMENT", None),)))
    assert box.metadata == {("bob", "/private/comment"): b"mine"}


def test_server_metadata_and_account_deletion() -> None:
    """Mailbox "" is the server; deleting an account drops its private server entries."""
    store = new_store()
    store.apply(CreateAccount("alice"))
    store.apply(SetMetadata("alice", "", (("/private/theme", b"dark"), ("/shared/admin", b"x"))))
    assert store.server_metadata() == {("alice", "/private/theme"): b"dark",
                                       ("", "/shared/admin"): b"x"}
    store.apply(DeleteAccount("alice"))
    assert store.server_metadata() == {("", "/shared/admin"): b"x"}


def test_metadata_goes_with_deleted_mailbox() -> None:
    """A re-created mailbox starts without the old one's entries."""
    store = new_store()
    store.apply(CreateAccount("alice"))
    store.apply(CreateMailbox.new("alice", "m"))
    store.apply(SetMetadata("alice", "m", (("/shared/comment", b"old"),)))
    store.apply(DeleteMailbox("alice", "m"))
    store.apply(CreateMailbox.new("alice", "m"))
    assert store.mailbox("alice", "m").metadata == {}


def test_metadata_entry_names_validated() -> None:
    """Entries must start with /private/ or /shared/."""
    with pytest.raises(ValueError):
        SetMetadata("alice", "INBOX", (("/other/x", b"v"),))


@pytest.mark.parametrize("op", [
    CreateAccount.standard("alice"),
    CreateMailbox("alice", "s", "e" * 32, frozenset({"\\Sent", "\\Drafts"})),
    SetSpecialUse("alice", "s", frozenset()),
    SetMetadata("alice", "INBOX", (("/private/c", b"\x00\xff"), ("/shared/c", None)), "bob"),
], ids=lambda op: type(op).__name__)
def test_json_roundtrip(op) -> None:
    """op_from_dict(json(op.to_dict())) == op for the new ops and fields."""
    assert op_from_dict(json.loads(json.dumps(op.to_dict()))) == op


def test_old_dicts_still_load() -> None:
    """Dicts without the new fields (older logs) load with the defaults."""
    assert op_from_dict({"op": "CreateAccount", "user": "a"}) == CreateAccount("a")
    old = {"op": "CreateMailbox", "user": "a", "name": "x", "mailbox_id": "i"}
    assert op_from_dict(old).special_use == frozenset()
