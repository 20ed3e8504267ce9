"""Store-side ACL and quota rules (RFC 4314, RFC 9208): rights algebra and the ops."""

from __future__ import annotations

import pytest

from twistedmail.store import (
    AclChanged,
    Append,
    Copy,
    CreateAccount,
    CreateMailbox,
    DeleteAcl,
    MailStore,
    QuotaChanged,
    RenameMailbox,
    SetAcl,
    SetQuota,
    op_from_dict,
)
from twistedmail.store import quota as q
from twistedmail.store.acl import (
    BadRights,
    effective,
    format_rights,
    modify,
    parse_rights,
    valid_identifier,
)


@pytest.fixture
def store():
    """A store with accounts alice and bob; bob has Work."""
    s = MailStore("n1", 1, clock=lambda: 1_700_000_000.0)
    s.apply(CreateAccount("alice"))
    s.apply(CreateAccount("bob"))
    s.apply(CreateMailbox("bob", "Work", "w1"))
    return s


def test_parse_rights_expands_obsolete():
    """"c" is "kx" and "d" is "et" (RFC 4314 §2.1.1); unknown letters raise."""
    assert parse_rights("lrcd") == frozenset("lrkxet")
    with pytest.raises(BadRights):
        parse_rights("lrz")


def test_format_rights_adds_c_and_d():
    """Responses list rights in RFC order plus "c" for k/x and "d" for e/t."""
    assert format_rights("rl") == "lr"
    assert format_rights("k") == "kc"
    assert format_rights("lrswipkxtea") == "lrswipkxteacd"


def test_modify():
    """SETACL mod-rights: "+" adds, "-" removes, bare replaces (RFC 4314 §3.1)."""
    assert modify("lr", "+w") == "lrw"
    assert modify("lrw", "-rw") == "l"
    assert modify("lrw", "s") == "s"
    assert modify("lr", "-lr") == ""


def test_effective_rights():
    """User + anyone rights minus "-user" and "-anyone" rights (RFC 4314 §2)."""
    acl = {"alice": "lr", "anyone": "ls", "-alice": "s", "-anyone": "r"}
    assert effective(acl, "alice") == frozenset("l")
    assert effective(acl, "carol") == frozenset("ls")
    assert effective({}, "alice") == frozenset()


def test_valid_identifier():
    """Empty, bare "-" and control characters are not identifiers."""
    assert valid_identifier("alice") and valid_identifier("-anyone")
    assert not valid_identifier("") and not valid_identifier("-")
    assert not valid_identifier("a\x01")


def test_setacl_deleteacl_ops(store):
    """SetAcl stores canonical rights; "" or DeleteAcl removes; no-ops change nothing."""
    changes = store.apply(SetAcl("bob", "Work", "alice", "rlc"))
    box = store.mailbox("bob", "Work")
    assert changes == [AclChanged(box.id, "alice", "lrkx")]
    assert box.acl == {"alice": "lrkx"}
    assert store.apply(SetAcl("bob", "Work", "alice", "lrkx")) == []
    store.apply(SetAcl("bob", "Work", "alice", ""))
    assert box.acl == {}
    store.apply(SetAcl("bob", "Work", "carol", "l"))
    assert store.apply(DeleteAcl("bob", "Work", "carol")) == [AclChanged(box.id, "carol", "")]
    assert store.apply(DeleteAcl("bob", "Work", "carol")) == []


def test_setacl_rejects_bad_rights():
    """An op with unknown rights or an empty identifier cannot be built."""
    with pytest.raises(ValueError):
        SetAcl("bob", "Work", "alice", "lrz")
    with pytest.raises(ValueError):
        SetAcl("bob", "Work", "", "lr")


def test_acl_survives_rename(store):
    """RENAME keeps the mailbox, so its ACL moves with it."""
    store.apply(SetAcl("bob", "Work", "alice", "lr"))
    store.apply(RenameMailbox("bob", "Work", "Job"))
    assert store.mailbox("bob", "Job").acl == {"alice": "lr"}


def test_ops_roundtrip():
    """SetAcl, DeleteAcl, SetQuota and Copy with dst_user survive to_dict/op_from_dict."""
    ops = [SetAcl("bob", "Work", "alice", "lr"), DeleteAcl("bob", "Work", "alice"),
           SetQuota("bob", (("message", 3), ("STORAGE", 10))),
           Copy("alice", "INBOX", (1, 2), "Work", True, "bob"), Copy("a", "INBOX", (1,), "X")]
    for op in ops:
        assert op_from_dict(op.to_dict()) == op
    assert SetQuota("r", (("message", 3),)).limits == (("MESSAGE", 3),)
    assert op_from_dict({"op": "Copy", "user": "a", "src": "INBOX", "uids": [1],
                         "dst": "X"}).dst_user == ""


def test_setquota_rejects_bad_limits():
    """Negative or non-integer limits are refused."""
    with pytest.raises(ValueError):
        SetQuota("bob", (("STORAGE", -1),))
    with pytest.raises(ValueError):
        SetQuota("bob", (("STORAGE", "1"),))


def test_cross_account_copy(store):
    """Copy with dst_user puts the messages into the other account's mailbox."""
    store.apply(Append.new(store, "alice", "INBOX", b"Subject: x\r\n\r\nhi\r\n"))
    store.apply(Copy("alice", "INBOX", (1,), "Work", False, "bob"))
    assert len(store.mailbox("bob", "Work")) == 1
    store.check_invariants()


def test_quota_limits_and_usage(store):
    """Defaults apply until SetQuota replaces them; usage is KiB rounded up + count."""
    store.apply(Append.new(store, "bob", "Work", b"x" * 1500))
    assert q.usage(store, "bob") == {"STORAGE": 2, "MESSAGE": 1}
    defaults = {"STORAGE": 0, "MESSAGE": 5}
    assert q.limits(store, "bob", defaults) == {"MESSAGE": 5}
    assert q.exceeded(store, "bob", 10, 4, defaults) is None
    assert q.exceeded(store, "bob", 10, 5, defaults) == "MESSAGE"
    assert store.apply(SetQuota("bob", (("STORAGE", 2),))) == [
        QuotaChanged("bob", (("STORAGE", 2),))]
    assert q.limits(store, "bob", defaults) == {"STORAGE": 2}
    assert q.exceeded(store, "bob", 548, 100, defaults) is None
    assert q.exceeded(store, "bob", 549, 1, defaults) == "STORAGE"


def test_config_sections():
    """[quota], [public] and [node] admins reach NodeSettings; bad values are refused."""
    from twistedmail.config import ConfigError, NodeSettings, settings_from_toml

    raw = settings_from_toml({"node": {"admins": ["root"]},
                              "quota": {"storage": 100, "messages": 5},
                              "public": {"folders": ["News"], "rights": "lrc"}})
    settings = NodeSettings(**{k: v for k, (v, _) in raw.items()})
    assert settings.admins == ["root"] and settings.quota_storage == 100
    assert settings.public_folders == ["News"] and settings.public_rights == "lrkx"
    for bad in ({"public_rights": "lrz"}, {"public_folders": ["INBOX"]},
                {"public_folders": ["a//b"]}, {"quota_messages": -1}, {"admins": "root"}):
        with pytest.raises(ConfigError):
            NodeSettings(**bad)
