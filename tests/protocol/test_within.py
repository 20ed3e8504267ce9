"""WITHIN (RFC 5032): the OLDER and YOUNGER search keys."""

from __future__ import annotations

import datetime

import pytest

from tests.protocol.conftest import SIMPLE


def _imap_date(when: datetime.datetime) -> str:
    return when.strftime("%d-%b-%Y %H:%M:%S +0000")


@pytest.fixture
def box(imap_script):
    """Three messages: INTERNALDATE in 1994, two days ago, and now."""
    c = imap_script(login=True)
    now = datetime.datetime.now(datetime.UTC)
    for date in ("07-Feb-1994 21:52:25 -0800", _imap_date(now - datetime.timedelta(days=2))):
        c.ok(f'APPEND INBOX "{date}" {{{len(SIMPLE)}}}', SIMPLE)
    c.ok(f"APPEND INBOX {{{len(SIMPLE)}}}", SIMPLE)
    c.ok("SELECT INBOX")
    return c


def test_within_advertised(imap_script):
    """CAPABILITY lists WITHIN."""
    assert b" WITHIN" in imap_script(login=True).ok("CAPABILITY").untagged[0]


def test_younger_and_older(box):
    """RFC 5032 §3: YOUNGER n is INTERNALDATE within n seconds, OLDER n before that."""
    assert box.ok("SEARCH YOUNGER 3600").untagged == [b"* SEARCH 3"]
    assert box.ok("SEARCH OLDER 3600").untagged == [b"* SEARCH 1 2"]
    assert box.ok("SEARCH YOUNGER 259200").untagged == [b"* SEARCH 2 3"]  # 3 days
    assert box.ok("UID SEARCH OLDER 259200").untagged == [b"* SEARCH 1"]


def test_rfc5032_example_combination(box):
    """RFC 5032 §3 style: OLDER/YOUNGER combine with other keys and with ESEARCH."""
    assert box.ok("SEARCH UNSEEN YOUNGER 259200 OLDER 3600").untagged == [b"* SEARCH 2"]
    r = box.ok("SEARCH RETURN (COUNT) NOT YOUNGER 3600")
    assert r.untagged == [b'* ESEARCH (TAG "%s") COUNT 2' % r.tag.encode()]
    assert box.ok("SEARCH OR OLDER 999999999 YOUNGER 60").untagged == [b"* SEARCH 1 3"]


def test_within_errors(box):
    """The interval is an nz-number (RFC 5032 §4): 0, negatives and words are BAD."""
    box.bad("SEARCH OLDER 0")
    box.bad("SEARCH YOUNGER -5")
    box.bad("SEARCH YOUNGER soon")
    box.bad("SEARCH OLDER")
    box.bad("SEARCH YOUNGER 99999999999")
