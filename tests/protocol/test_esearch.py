"""ESEARCH (RFC 4731): SEARCH RETURN (MIN MAX ALL COUNT) and the ESEARCH response."""

from __future__ import annotations

import pytest

from tests.protocol.conftest import SIMPLE


def _msg(n: int) -> bytes:
    return SIMPLE.replace(b"msg1@", b"m%d@" % n).replace(b"kumquat", b"number %d" % n)


@pytest.fixture
def box(imap_script):
    """INBOX with 12 messages; 2, 10, 11 are \\Flagged, 4 is \\Seen; INBOX selected."""
    c = imap_script(login=True)
    for n in range(1, 13):
        flags = "(\\Flagged) " if n in (2, 10, 11) else "(\\Seen) " if n == 4 else ""
        msg = _msg(n)
        c.ok(f"APPEND INBOX {flags}{{{len(msg)}}}", msg)
    c.ok("SELECT INBOX")
    return c


def test_esearch_advertised(imap_script):
    """CAPABILITY lists ESEARCH."""
    c = imap_script(login=True)
    assert b" ESEARCH" in c.ok("CAPABILITY").untagged[0]


def test_rfc4731_min_count(box):
    """RFC 4731 §3.1 example: RETURN (MIN COUNT) gives `MIN 2 COUNT 3`."""
    r = box.ok('SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"')
    assert r.untagged == [b'* ESEARCH (TAG "%s") MIN 2 COUNT 3' % r.tag.encode()]


def test_rfc4731_empty_return_is_all(box):
    """RFC 4731 §3.1: RETURN () means ALL, as a compressed sequence set."""
    r = box.ok('SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"')
    assert r.untagged == [b'* ESEARCH (TAG "%s") ALL 2,10:11' % r.tag.encode()]


def test_no_match_omits_min_max_all(box):
    """RFC 4731 §3.1: with no match MIN/MAX/ALL are left out, COUNT is 0."""
    r = box.ok("SEARCH RETURN (MIN MAX ALL COUNT) KEYWORD nothing")
    assert r.untagged == [b'* ESEARCH (TAG "%s") COUNT 0' % r.tag.encode()]
    r = box.ok("SEARCH RETURN (MIN) KEYWORD nothing")
    assert r.untagged == [b'* ESEARCH (TAG "%s")' % r.tag.encode()]


def test_uid_search_min_max(box):
    """UID SEARCH RETURN (MIN MAX): the UID indicator and UIDs (RFC 4731 §3.1)."""
    box.ok("STORE 1:12 -FLAGS (\\Flagged)")
    box.ok("STORE 3,7 +FLAGS (\\Flagged)")
    r = box.ok("UID SEARCH RETURN (MIN MAX) FLAGGED")
    assert r.untagged == [b'* ESEARCH (TAG "%s") UID MIN 3 MAX 7' % r.tag.encode()]


def test_all_options_together(box):
    """MIN MAX ALL COUNT in one response, in that order."""
    r = box.ok("SEARCH RETURN (COUNT ALL MAX MIN) 3:6 UNSEEN")
    assert r.untagged == [b'* ESEARCH (TAG "%s") MIN 3 MAX 6 ALL 3,5:6 COUNT 3'
                          % r.tag.encode()]


def test_uid_all_after_expunge(box):
    """ALL over UIDs compresses around holes left by EXPUNGE."""
    box.ok("STORE 5:6 +FLAGS (\\Deleted)")
    box.ok("EXPUNGE")
    r = box.ok("UID SEARCH RETURN (ALL COUNT) ALL")
    assert r.untagged == [b'* ESEARCH (TAG "%s") UID ALL 1:4,7:12 COUNT 10'
                          % r.tag.encode()]
    r = box.ok("SEARCH RETURN (ALL) ALL")
    assert r.untagged == [b'* ESEARCH (TAG "%s") ALL 1:10' % r.tag.encode()]


def test_plain_search_unchanged(box):
    """Without RETURN the answer is still the RFC 3501 `* SEARCH` response."""
    assert box.ok("SEARCH FLAGGED").untagged == [b"* SEARCH 2 10 11"]


def test_return_with_charset(box):
    """RETURN comes before CHARSET (RFC 4731 §3.1 grammar)."""
    r = box.ok("SEARCH RETURN (COUNT) CHARSET UTF-8 SUBJECT number")
    assert r.untagged == [b'* ESEARCH (TAG "%s") COUNT 12' % r.tag.encode()]


def test_bad_return_options(box):
    """Unknown or malformed RETURN options are BAD; a bad charset is NO [BADCHARSET]."""
    box.bad("SEARCH RETURN (FIRST) ALL")
    box.bad("SEARCH RETURN MIN ALL")
    box.bad("SEARCH RETURN (MIN")
    box.bad("SEARCH RETURN (MIN)")
    assert b"[BADCHARSET" in box.no("SEARCH RETURN (MIN) CHARSET KOI8-R ALL").tagged


def test_repeated_search_sees_other_sessions(box, imap_script):
    """Searches reuse per-view state, yet see other sessions' flags, appends and expunges."""
    assert box.ok("SEARCH RETURN (COUNT) ALL").untagged[0].endswith(b"COUNT 12")
    other = imap_script(login=True)
    other.ok("SELECT INBOX")
    other.ok("STORE 12 +FLAGS (\\Flagged)")
    assert box.ok("SEARCH FLAGGED").matching(rb"^\* SEARCH") == [b"* SEARCH 2 10 11 12"]
    other.ok("STORE 1 +FLAGS (\\Deleted)")
    other.ok("EXPUNGE")
    # SEARCH may not announce EXPUNGE (RFC 3501 §7.4.1): old numbers, message 1 gone.
    r = box.ok("SEARCH RETURN (ALL) ALL")
    assert r.matching(rb"ESEARCH") == [b'* ESEARCH (TAG "%s") ALL 2:12' % r.tag.encode()]
    msg = _msg(13)
    other.ok(f"APPEND INBOX {{{len(msg)}}}", msg)
    box.ok("NOOP")
    assert box.ok("SEARCH SUBJECT number").matching(rb"^\* SEARCH") == [
        b"* SEARCH " + b" ".join(b"%d" % n for n in range(1, 13))]
