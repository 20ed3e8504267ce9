"""Scripted conversations: SAVEDATE (RFC 8514) -- FETCH SAVEDATE and the SAVED* search keys."""

from __future__ import annotations

import datetime as dt
import re

from tests.protocol.conftest import SIMPLE, append

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
OLD_DATE = b'"01-Jan-2001 10:00:00 +0000"'


def _imap_date(day: dt.date) -> str:
    """RFC 3501 §9 date, e.g. 7-Feb-1994."""
    return f"{day.day}-{MONTHS[day.month - 1]}-{day.year}"


def _append_dated(c, msg: bytes = SIMPLE, mailbox: str = "INBOX") -> None:
    """APPEND ``msg`` with an INTERNALDATE in 2001."""
    c.send(b"ap APPEND %s %s {%d}" % (mailbox.encode(), OLD_DATE, len(msg)))
    assert c.read_line().startswith(b"+")
    c.send(msg)
    assert c.read_line().startswith(b"ap OK")


def _savedate(line: bytes) -> dt.datetime:
    """The SAVEDATE in a FETCH response line."""
    m = re.search(rb'SAVEDATE "([ 0-9]{2}-[A-Za-z]{3}-\d{4} \d\d:\d\d:\d\d [+-]\d{4})"', line)
    assert m, line
    return dt.datetime.strptime(m.group(1).decode().strip(), "%d-%b-%Y %H:%M:%S %z")


def test_capability_advertises_savedate(imap_script):
    """SAVEDATE is in CAPABILITY (RFC 8514 §2)."""
    c = imap_script(login=True)
    assert b" SAVEDATE" in c.ok("CAPABILITY").untagged[0]


def test_fetch_savedate_is_time_of_append(imap_script):
    """SAVEDATE is when APPEND saved the message, not the client's INTERNALDATE (§4)."""
    c = imap_script(login=True)
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    _append_dated(c)
    c.ok("SELECT INBOX")
    line = c.ok("FETCH 1 (INTERNALDATE SAVEDATE)").untagged[0]
    assert b'INTERNALDATE " 1-Jan-2001 10:00:00 +0000"' in line
    saved = _savedate(line)
    assert before - dt.timedelta(seconds=1) <= saved <= dt.datetime.now(dt.UTC)


def test_savedate_without_client_date_equals_internaldate(imap_script):
    """APPEND without a date: INTERNALDATE and SAVEDATE are the same instant."""
    c = imap_script(login=True)
    append(c, SIMPLE)
    c.ok("SELECT INBOX")
    line = c.ok("FETCH 1 (INTERNALDATE SAVEDATE)").untagged[0]
    internal = re.search(rb'INTERNALDATE ("[^"]+")', line).group(1)
    assert b"SAVEDATE " + internal in line


def test_copy_and_move_set_a_new_savedate(imap_script):
    """COPY and MOVE save the message anew: the copy's SAVEDATE is the copy time,
    while INTERNALDATE is kept (RFC 8514 §4, RFC 3501 §6.4.7)."""
    c = imap_script(login=True)
    c.ok("CREATE Copies")
    c.ok("CREATE Moved")
    _append_dated(c)
    _append_dated(c)
    c.ok("SELECT INBOX")
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=1)
    c.ok("COPY 1 Copies")
    c.ok("MOVE 2 Moved")
    for box in ("Copies", "Moved"):
        c.ok(f"SELECT {box}")
        line = c.ok("FETCH 1 (INTERNALDATE SAVEDATE)").untagged[0]
        assert b'INTERNALDATE " 1-Jan-2001 10:00:00 +0000"' in line
        assert start <= _savedate(line) <= dt.datetime.now(dt.UTC)


def test_search_saved_keys(imap_script):
    """SAVEDBEFORE / SAVEDON / SAVEDSINCE compare the save date's day (RFC 8514 §3),
    independently of INTERNALDATE."""
    c = imap_script(login=True)
    _append_dated(c)
    append(c, SIMPLE)
    c.ok("SELECT INBOX")
    today = _savedate(c.ok("FETCH 1 SAVEDATE").untagged[0]).date()
    tomorrow = _imap_date(today + dt.timedelta(days=1))
    yesterday = _imap_date(today - dt.timedelta(days=1))
    assert c.ok(f"SEARCH SAVEDON {_imap_date(today)}").untagged == [b"* SEARCH 1 2"]
    assert c.ok(f"SEARCH SAVEDSINCE {_imap_date(today)}").untagged == [b"* SEARCH 1 2"]
    assert c.ok(f"SEARCH SAVEDSINCE {tomorrow}").untagged == [b"* SEARCH"]
    assert c.ok(f"SEARCH SAVEDBEFORE {tomorrow}").untagged == [b"* SEARCH 1 2"]
    assert c.ok(f"SEARCH SAVEDBEFORE {_imap_date(today)}").untagged == [b"* SEARCH"]
    assert c.ok(f"SEARCH SAVEDON {yesterday}").untagged == [b"* SEARCH"]
    assert c.ok("SEARCH BEFORE 2-Jan-2001").untagged == [b"* SEARCH 1"]  # INTERNALDATE
    assert c.ok(f'UID SEARCH NOT SAVEDON "{_imap_date(today)}"').untagged == [b"* SEARCH"]
    assert c.ok(f"SEARCH OR SAVEDBEFORE 1-Jan-2000 SAVEDON {_imap_date(today)} UID 2"
                ).untagged == [b"* SEARCH 2"]


def test_search_savedatesupported(imap_script):
    """SAVEDATESUPPORTED matches every message: every mailbox keeps save dates (§3)."""
    c = imap_script(login=True)
    c.ok("SELECT INBOX")
    assert c.ok("SEARCH SAVEDATESUPPORTED").untagged == [b"* SEARCH"]
    append(c, SIMPLE)
    append(c, SIMPLE)
    c.ok("NOOP")
    assert c.ok("SEARCH SAVEDATESUPPORTED").untagged == [b"* SEARCH 1 2"]
    assert c.ok("SEARCH NOT SAVEDATESUPPORTED").untagged == [b"* SEARCH"]


def test_saved_keys_malformed_are_bad(imap_script):
    """A missing or invalid date, or an argument to SAVEDATESUPPORTED, is BAD."""
    c = imap_script(login=True)
    c.ok("SELECT INBOX")
    for bad in ("SEARCH SAVEDON", "SEARCH SAVEDBEFORE 32-Jan-2020", "SEARCH SAVEDSINCE 1-Foo-2020",
                "SEARCH SAVEDON 2020-01-01", "SEARCH SAVEDATESUPPORTED 1-Jan-2020",
                "SEARCH SAVEDAT 1-Jan-2020"):
        c.bad(bad)
    c.ok("NOOP")


def test_fetch_savedate_all_messages_format(imap_script):
    """SAVEDATE is a quoted date-time like INTERNALDATE (RFC 8514 §4, RFC 3501 §9)."""
    c = imap_script(login=True)
    append(c, SIMPLE)
    c.ok("SELECT INBOX")
    line = c.ok("UID FETCH 1:* SAVEDATE").untagged[0]
    date_time = rb'"[ 0-9]\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d \+0000"'
    assert re.fullmatch(rb"\* 1 FETCH \(UID 1 SAVEDATE " + date_time + rb"\)", line)
