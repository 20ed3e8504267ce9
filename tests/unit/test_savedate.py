"""Store side of RFC 8514 SAVEDATE: when a message was saved into its mailbox."""

from __future__ import annotations

import datetime as dt

from twistedmail.store import (
    Append,
    Copy,
    CreateAccount,
    CreateMailbox,
    MailStore,
    RenameMailbox,
    op_from_dict,
)

T0 = 1_700_000_000
OLD = dt.datetime(2001, 1, 1, 10, 0, tzinfo=dt.UTC)


class Clock:
    """A settable clock for MailStore."""

    def __init__(self) -> None:
        self.now = float(T0)

    def __call__(self) -> float:
        return self.now


def _store() -> tuple[MailStore, Clock]:
    clock = Clock()
    store = MailStore("n1", 1, clock=clock)
    store.apply(CreateAccount("alice"))
    store.apply(CreateMailbox("alice", "Other", "id-other"))
    return store, clock


def _at(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def test_append_savedate_is_store_now_even_with_client_date():
    """Append.new with a client INTERNALDATE still records the save time (RFC 8514 §4)."""
    store, _ = _store()
    store.apply(Append.new(store, "alice", "INBOX", b"m", internaldate=OLD))
    rec = next(iter(store.mailbox("alice", "INBOX").records()))
    assert rec.internaldate == OLD and rec.savedate == _at(T0)


def test_append_without_date_shares_the_internaldate_object():
    """Without a client date the save date IS the internaldate (no extra object)."""
    store, _ = _store()
    store.apply(Append.new(store, "alice", "INBOX", b"m"))
    rec = next(iter(store.mailbox("alice", "INBOX").records()))
    assert rec.savedate is rec.internaldate


def test_copy_savedate_from_op_or_clock():
    """Copy carries its savedate; without one the applying store's clock is used."""
    store, clock = _store()
    store.apply(Append.new(store, "alice", "INBOX", b"m", internaldate=OLD))
    clock.now += 60
    store.apply(Copy("alice", "INBOX", (1,), "Other"))
    store.apply(Copy("alice", "INBOX", (1,), "Other", savedate=_at(T0 + 5)))
    recs = list(store.mailbox("alice", "Other").records())
    assert [r.savedate for r in recs] == [_at(T0 + 60), _at(T0 + 5)]
    assert all(r.internaldate == OLD for r in recs)  # RFC 3501 §6.4.7


def test_move_sets_new_savedate():
    """MOVE saves the message into the destination now."""
    store, clock = _store()
    store.apply(Append.new(store, "alice", "INBOX", b"m"))
    clock.now += 3600
    store.apply(Copy("alice", "INBOX", (1,), "Other", move=True))
    (rec,) = store.mailbox("alice", "Other").records()
    assert rec.savedate == _at(T0 + 3600)


def test_rename_inbox_keeps_savedate():
    """RENAME INBOX moves messages without re-saving them: save dates are kept."""
    store, clock = _store()
    store.apply(Append.new(store, "alice", "INBOX", b"m"))
    clock.now += 99
    store.apply(RenameMailbox("alice", "INBOX", "Old"))
    (rec,) = store.mailbox("alice", "Old").records()
    assert rec.savedate == _at(T0)


def test_ops_with_savedate_roundtrip():
    """savedate survives to_dict / op_from_dict; old dicts without it still load."""
    op = Append("alice", "INBOX", b"m", frozenset(), OLD, ("n1", 1), _at(T0))
    assert op_from_dict(op.to_dict()) == op
    copy = Copy("alice", "INBOX", (1,), "Other", True, savedate=_at(T0))
    assert op_from_dict(copy.to_dict()) == copy
    legacy = op.to_dict()
    del legacy["savedate"]
    assert op_from_dict(legacy).savedate is None


def test_replayed_ops_give_equal_savedates():
    """Two stores applying the same ops (with savedates) agree, whatever their clocks."""
    ops = [Append("alice", "INBOX", b"m", frozenset(), OLD, ("n1", 1), _at(T0)),
           Copy("alice", "INBOX", (1,), "Other", savedate=_at(T0 + 7))]
    dates = []
    for offset in (0, 5000):
        store, clock = _store()
        clock.now += offset
        for op in ops:
            store.apply(op)
        dates.append([r.savedate for b in ("INBOX", "Other")
                      for r in store.mailbox("alice", b).records()])
    assert dates[0] == dates[1] == [_at(T0), _at(T0 + 7)]
