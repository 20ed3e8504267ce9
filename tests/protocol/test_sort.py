"""SORT and UID SORT (RFC 5256 §3), with DISPLAYFROM / DISPLAYTO (RFC 5957)."""

from __future__ import annotations

import pytest


def _msg(subject: str, frm: str, to: str, date: str | None, cc: str | None = None,
         body: bytes = b"body\r\n") -> bytes:
    head = f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\n"
    if cc:
        head += f"Cc: {cc}\r\n"
    if date:
        head += f"Date: {date}\r\n"
    return head.encode() + b"\r\n" + body


# (message, INTERNALDATE)
MESSAGES = [
    (_msg("Re: lunch", "Zed Zulu <zed@z.example>", "bob@example.org",
          "Mon, 7 Feb 1994 21:52:25 -0800", cc="carol@example.org"),
     "10-Feb-1994 10:00:00 +0000"),
    (_msg("apples", '"Anna A" <yves@a.example>', "Alice <zoe@example.org>",
          "Mon, 7 Feb 1994 20:00:00 -0800", body=b"x" * 500),
     "09-Feb-1994 10:00:00 +0000"),
    (_msg("[list] Lunch (fwd)", "mike@m.example", "=?utf-8?q?=C3=89mile?= <emile@example.org>",
          None, cc="Aaron <aaron@example.org>", body=b"x" * 50),
     "08-Feb-1994 10:00:00 +0000"),
    (_msg("Bananas", "Bert <bert@b.example>", "dave@example.org",
          "Tue, 8 Feb 1994 05:00:00 +0100", body=b"x" * 510),  # same size as 2
     "11-Feb-1994 10:00:00 +0000"),
]


@pytest.fixture
def box(imap_script):
    """The four MESSAGES in INBOX, selected."""
    c = imap_script(login=True)
    for msg, date in MESSAGES:
        c.ok(f'APPEND INBOX "{date}" {{{len(msg)}}}', msg)
    c.ok("SELECT INBOX")
    return c


def _sort(c, command: str) -> list[int]:
    lines = c.ok(command).untagged
    assert len(lines) == 1 and lines[0].startswith(b"* SORT"), lines
    return [int(n) for n in lines[0][6:].split()]


def test_sort_advertised(imap_script):
    """CAPABILITY lists SORT and SORT=DISPLAY."""
    caps = imap_script(login=True).ok("CAPABILITY").untagged[0].split()
    assert b"SORT" in caps and b"SORT=DISPLAY" in caps


def test_sort_subject_uses_base_subject(box):
    """SUBJECT sorts by base subject (RFC 5256 §2.1), ties by sequence number."""
    # apples, bananas, lunch (1: "Re: lunch"), lunch (3: "[list] Lunch (fwd)")
    assert _sort(box, "SORT (SUBJECT) UTF-8 ALL") == [2, 4, 1, 3]


def test_rfc5256_example_subject_reverse_date(box):
    """RFC 5256 §3 example shape: SORT (SUBJECT REVERSE DATE) UTF-8 ALL."""
    # lunch: 1 sent 8-Feb 05:52Z, 3 has no Date: so its INTERNALDATE 8-Feb 10:00Z.
    assert _sort(box, "SORT (SUBJECT REVERSE DATE) UTF-8 ALL") == [2, 4, 3, 1]


def test_rfc5256_example_no_match(box):
    """RFC 5256 §3 example: no matching message gives a bare `* SORT`."""
    assert box.ok('SORT (SUBJECT) US-ASCII TEXT "not in mailbox"').untagged == [b"* SORT"]


def test_rfc5256_example_since(box):
    """RFC 5256 §3 example shape: search keys select what is sorted."""
    assert _sort(box, "SORT (SUBJECT) UTF-8 SINCE 10-Feb-1994") == [4, 1]


def test_sort_arrival_and_date(box):
    """ARRIVAL is INTERNALDATE; DATE is the Date: header in UTC (RFC 5256 §2.2)."""
    assert _sort(box, "SORT (ARRIVAL) US-ASCII ALL") == [3, 2, 1, 4]
    # 2: 8-Feb 04:00Z, 4: 8-Feb 04:00Z (tie: seq order), 1: 8-Feb 05:52Z, 3: 10:00Z
    assert _sort(box, "SORT (DATE) US-ASCII ALL") == [2, 4, 1, 3]


def test_sort_reverse_keeps_sequence_tiebreak(box):
    """REVERSE does not reverse the implicit sequence-number tie-break (RFC 5256 §3)."""
    assert _sort(box, "SORT (REVERSE DATE) US-ASCII ALL") == [3, 1, 2, 4]
    assert _sort(box, "SORT (REVERSE SIZE) US-ASCII ALL") == [2, 4, 3, 1]  # 2, 4 equal


def test_sort_size_then_subject(box):
    """Later criteria break ties of earlier ones (2 and 4 have the same size)."""
    assert _sort(box, "SORT (SIZE SUBJECT) US-ASCII ALL") == [1, 3, 2, 4]
    assert _sort(box, "SORT (SIZE REVERSE SUBJECT) US-ASCII ALL") == [1, 3, 4, 2]


def test_sort_address_keys(box):
    """FROM, TO and CC sort by the first address's mailbox part (RFC 5256 §3)."""
    assert _sort(box, "SORT (FROM) US-ASCII ALL") == [4, 3, 2, 1]  # bert mike yves zed
    assert _sort(box, "SORT (TO) US-ASCII ALL") == [1, 4, 3, 2]  # bob dave emile zoe
    assert _sort(box, "SORT (CC) US-ASCII ALL") == [2, 4, 3, 1]  # "" "" aaron carol


def test_sort_display_keys(box):
    """DISPLAYFROM/DISPLAYTO use the decoded display name, else the address (RFC 5957)."""
    # "Anna A", "Bert", "mike@m.example", "Zed Zulu"
    assert _sort(box, "SORT (DISPLAYFROM) UTF-8 ALL") == [2, 4, 3, 1]
    # "Alice", "bob@example.org", "dave@example.org", "Émile" (UTF-8 sorts after ASCII)
    assert _sort(box, "SORT (DISPLAYTO) UTF-8 ALL") == [2, 1, 4, 3]


def test_uid_sort(box):
    """UID SORT answers UIDs."""
    box.ok("STORE 1 +FLAGS (\\Deleted)")
    box.ok("EXPUNGE")
    assert _sort(box, "UID SORT (ARRIVAL) UTF-8 ALL") == [3, 2, 4]
    assert _sort(box, "SORT (ARRIVAL) UTF-8 ALL") == [2, 1, 3]


def test_sort_with_saved_result(box):
    """SORT accepts "$" (RFC 5182) and other search keys."""
    box.ok("SEARCH RETURN (SAVE) LARGER 400")
    assert _sort(box, "SORT (REVERSE ARRIVAL) UTF-8 $") == [4, 2]


def test_sort_errors(box):
    """Malformed SORT is BAD; an unknown charset is NO [BADCHARSET] (RFC 5256 §3)."""
    box.bad("SORT (SUBJECT) ALL")  # charset is mandatory
    box.bad("SORT () UTF-8 ALL")
    box.bad("SORT (BOGUS) UTF-8 ALL")
    box.bad("SORT (REVERSE) UTF-8 ALL")
    box.bad("SORT (REVERSE REVERSE DATE) UTF-8 ALL")
    box.bad("SORT SUBJECT UTF-8 ALL")
    box.bad("SORT (SUBJECT) UTF-8")
    box.bad("UID SORT (SUBJECT) UTF-8 BOGUS")
    assert b"[BADCHARSET" in box.no("SORT (SUBJECT) KOI8-R ALL").tagged


def test_sort_needs_selected_state(imap_script):
    """SORT outside the selected state is BAD."""
    c = imap_script(login=True)
    c.bad("SORT (DATE) UTF-8 ALL")
