"""SEARCHRES (RFC 5182): SEARCH RETURN (SAVE) and the "$" sequence set."""

from __future__ import annotations

import pytest

from tests.protocol.conftest import SIMPLE


def _put(c, n: int, flags: str = "") -> None:
    msg = SIMPLE.replace(b"msg1@", b"m%d@" % n) + b"x" * (n * 100)
    c.ok(f"APPEND INBOX {flags}{{{len(msg)}}}", msg)


@pytest.fixture
def box(imap_script):
    """Six messages; 2, 4 and 5 are \\Flagged; INBOX selected."""
    c = imap_script(login=True)
    for n in range(1, 7):
        _put(c, n, "(\\Flagged) " if n in (2, 4, 5) else "")
    c.ok("SELECT INBOX")
    return c


def _fetched(c, command: str = "FETCH $ (UID)") -> list[bytes]:
    return c.ok(command).untagged


def test_searchres_advertised(imap_script):
    """CAPABILITY lists SEARCHRES."""
    c = imap_script(login=True)
    assert b" SEARCHRES" in c.ok("CAPABILITY").untagged[0]


def test_save_alone_sends_nothing(box):
    """RFC 5182 §2.4: RETURN (SAVE) alone gives no ESEARCH; FETCH $ uses the result."""
    assert box.ok("SEARCH RETURN (SAVE) FLAGGED").untagged == []
    assert _fetched(box) == [b"* 2 FETCH (UID 2)", b"* 4 FETCH (UID 4)", b"* 5 FETCH (UID 5)"]
    assert len(_fetched(box, "UID FETCH $ (FLAGS)")) == 3


def test_rfc5182_example_fetch_after_save(box):
    """RFC 5182 §4 example: SAVE with FLAGGED SINCE ... NOT FROM, then FETCH $."""
    assert box.ok('SEARCH RETURN (SAVE) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"').untagged == []
    r = box.ok("FETCH $ (UID INTERNALDATE FLAGS RFC822.SIZE)")
    assert [line.split(b" ")[1] for line in r.untagged] == [b"2", b"4", b"5"]


def test_save_with_other_options(box):
    """SAVE with COUNT still answers ESEARCH (without SAVE in it) and saves everything."""
    r = box.ok("SEARCH RETURN (COUNT SAVE) FLAGGED")
    assert r.untagged == [b'* ESEARCH (TAG "%s") COUNT 3' % r.tag.encode()]
    assert len(_fetched(box)) == 3


@pytest.mark.parametrize(("options", "saved"), [
    ("MIN SAVE", [2]), ("MAX SAVE", [5]), ("MIN MAX SAVE", [2, 5]),
    ("MIN ALL SAVE", [2, 4, 5]), ("MAX COUNT SAVE", [2, 4, 5]),
])
def test_min_max_save_rules(box, options, saved):
    """RFC 5182 §2.4: with MIN/MAX but no ALL/COUNT only min/max are saved."""
    box.ok(f"SEARCH RETURN ({options}) FLAGGED")
    assert [int(line.split(b" ")[1]) for line in _fetched(box)] == saved


def test_min_max_same_message(box):
    """MIN and MAX naming one message save it once."""
    box.ok("SEARCH RETURN (MIN MAX SAVE) 3")
    assert _fetched(box) == [b"* 3 FETCH (UID 3)"]


def test_saved_as_uids_by_seq_search(box):
    """A SEARCH by sequence number saves messages: UID SEARCH UID $ names the same ones."""
    box.ok("SEARCH RETURN (SAVE) 1:2")
    r = box.ok("UID SEARCH UID $")
    assert r.untagged == [b"* SEARCH 1 2"]


def test_dollar_in_search_combined(box):
    """RFC 5182 example: `UID SEARCH UID $ SMALLER n`, and `$` as a plain search key."""
    box.ok("SEARCH RETURN (SAVE) FLAGGED")
    assert box.ok("UID SEARCH UID $ SMALLER 700").untagged == [b"* SEARCH 2 4"]
    assert box.ok("SEARCH NOT $").untagged == [b"* SEARCH 1 3 6"]
    assert box.ok("SEARCH OR $ 1").untagged == [b"* SEARCH 1 2 4 5"]


def test_save_reads_old_value_first(box):
    """`SEARCH RETURN (SAVE) $ ...` evaluates "$" before replacing it."""
    box.ok("SEARCH RETURN (SAVE) FLAGGED")
    box.ok("SEARCH RETURN (SAVE) $ LARGER 500")
    assert [int(x.split(b" ")[1]) for x in _fetched(box)] == [4, 5]


def test_other_searches_keep_saved(box):
    """A SEARCH without SAVE (plain or ESEARCH) leaves $ alone."""
    box.ok("SEARCH RETURN (SAVE) FLAGGED")
    box.ok("SEARCH ALL")
    box.ok("SEARCH RETURN (ALL) 1")
    assert len(_fetched(box)) == 3


def test_dollar_in_store_copy_move(box):
    """"$" works for STORE, COPY and MOVE (RFC 5182 §2.1)."""
    box.ok("CREATE Saved")
    box.ok("SEARCH RETURN (SAVE) FLAGGED")
    r = box.ok("STORE $ +FLAGS.SILENT (\\Seen)")
    assert r.untagged == []
    assert box.ok("SEARCH SEEN").untagged == [b"* SEARCH 2 4 5"]
    assert b"[COPYUID" in box.ok("UID COPY $ Saved").tagged
    assert b"MESSAGES 3" in box.ok("STATUS Saved (MESSAGES)").untagged[0]
    r = box.ok("MOVE $ Saved")
    assert r.untagged[1:] == [b"* 5 EXPUNGE", b"* 4 EXPUNGE", b"* 2 EXPUNGE"]
    assert _fetched(box) == []  # moved away: $ names nothing here any more


def test_dollar_in_uid_expunge(box):
    """UID EXPUNGE $ removes the saved, \\Deleted messages (RFC 4315 + RFC 5182)."""
    box.ok("STORE 1:6 +FLAGS.SILENT (\\Deleted)")
    box.ok("SEARCH RETURN (SAVE) 5:6")
    r = box.ok("UID EXPUNGE $")
    assert r.untagged == [b"* 6 EXPUNGE", b"* 5 EXPUNGE"]
    assert box.ok("SEARCH ALL").untagged == [b"* SEARCH 1 2 3 4"]


def test_expunged_messages_leave_saved(box, imap_script):
    """Messages expunged (by any session) are no longer in $ (RFC 5182 §2.1)."""
    box.ok("SEARCH RETURN (SAVE) FLAGGED")
    other = imap_script(login=True)
    other.ok("SELECT INBOX")
    other.ok("STORE 4 +FLAGS (\\Deleted)")
    other.ok("EXPUNGE")
    box.ok("NOOP")
    assert _fetched(box) == [b"* 2 FETCH (UID 2)", b"* 4 FETCH (UID 5)"]


@pytest.mark.parametrize("reset", ["SELECT INBOX", "EXAMINE INBOX", "UNSELECT", "CLOSE"])
def test_reset_on_selection_change(box, reset):
    """RFC 5182 §2.1: SELECT, EXAMINE, CLOSE and UNSELECT empty $."""
    box.ok("SEARCH RETURN (SAVE) FLAGGED")
    box.ok(reset)
    box.ok("SELECT INBOX")
    assert _fetched(box) == []
    assert box.ok("SEARCH $").untagged == [b"* SEARCH"]


def test_failed_save_empties_result(box):
    """RFC 5182 §2.1: a SEARCH with SAVE that fails (NO [BADCHARSET]) empties $."""
    box.ok("SEARCH RETURN (SAVE) FLAGGED")
    assert b"[BADCHARSET" in box.no("SEARCH RETURN (SAVE) CHARSET KOI8-R FLAGGED").tagged
    assert _fetched(box) == []


def test_empty_saved_result_is_ok(box):
    """Using $ before any SAVE names no messages and is not an error."""
    assert _fetched(box) == []
    assert box.ok("STORE $ +FLAGS (\\Seen)").untagged == []
    assert box.ok("UID SEARCH $").untagged == [b"* SEARCH"]


def test_dollar_syntax_errors(box):
    """"$" is one whole sequence set: `$,1` and `$:2` are BAD."""
    box.bad("FETCH $,1 (UID)")
    box.bad("FETCH $:2 (UID)")
    box.bad("SEARCH RETURN (SAVE SAVE SAVE")
