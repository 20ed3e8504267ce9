"""THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256 §3, §4)."""

from __future__ import annotations

import pytest


def _msg(n: int, subject: str, msgid: str | None = None, refs: str | None = None,
         reply_to: str | None = None, minute: int | None = None) -> bytes:
    minute = n if minute is None else minute
    head = (f"From: a{n}@example.org\r\nSubject: {subject}\r\n"
            f"Date: Mon, 1 Jan 2024 10:{minute:02d}:00 +0000\r\n")
    if msgid:
        head += f"Message-ID: <{msgid}>\r\n"
    if refs:
        head += f"References: {refs}\r\n"
    if reply_to:
        head += f"In-Reply-To: {reply_to}\r\n"
    return head.encode() + b"\r\nbody\r\n"


PARTY = [
    _msg(1, "Party", "a@x"),
    _msg(2, "Re: Party", "b@x", refs="<a@x>"),
    _msg(3, "Re: Party", "c@x", reply_to="<a@x> (sent by someone)"),
    _msg(4, "Other", "d@x", refs="<missing@x>"),
    _msg(5, "Re: Other", "e@x", refs="<missing@x>"),
    _msg(6, "Re: Party", "f@x"),  # no references: joins by subject
    _msg(7, "RE: [fwd: Party]", "g@x", refs="<a@x>\r\n <b@x>"),
    _msg(8, "Lonely", "h@x", minute=0),
]


def _load(c, messages: list[bytes]) -> None:
    for msg in messages:
        c.ok(f"APPEND INBOX {{{len(msg)}}}", msg)
    c.ok("SELECT INBOX")


@pytest.fixture
def party(imap_script):
    """INBOX holding PARTY, selected."""
    c = imap_script(login=True)
    _load(c, PARTY)
    return c


def _thread(c, command: str) -> bytes:
    lines = c.ok(command).untagged
    assert len(lines) == 1 and lines[0].startswith(b"* THREAD"), lines
    return lines[0]


def test_thread_advertised(imap_script):
    """CAPABILITY lists THREAD=ORDEREDSUBJECT and THREAD=REFERENCES."""
    caps = imap_script(login=True).ok("CAPABILITY").untagged[0].split()
    assert b"THREAD=ORDEREDSUBJECT" in caps and b"THREAD=REFERENCES" in caps


def test_references(party):
    """REFERENCES: parent links, a dummy for a missing parent, subject gathering."""
    assert _thread(party, "THREAD REFERENCES UTF-8 ALL") == (
        b"* THREAD (8)(1 (2 7)(3)(6))((4)(5))")


def test_ordered_subject(party):
    """ORDEREDSUBJECT: one thread per base subject, children in date order (RFC 5256 §3)."""
    assert _thread(party, "THREAD ORDEREDSUBJECT UTF-8 ALL") == (
        b"* THREAD (8)(1 (2)(3)(6)(7))(4 5)")


def test_thread_search_keys_and_uid(party):
    """The search program picks the messages; UID THREAD answers UIDs."""
    party.ok("STORE 8 +FLAGS (\\Deleted)")
    party.ok("EXPUNGE")
    assert _thread(party, "THREAD REFERENCES US-ASCII NOT SUBJECT other") == (
        b"* THREAD (1 (2 7)(3)(6))")
    assert _thread(party, "UID THREAD ORDEREDSUBJECT US-ASCII 4:*") == (
        b"* THREAD (4 5)(6 7)")
    assert _thread(party, "THREAD ORDEREDSUBJECT US-ASCII 4:*") == b"* THREAD (4 5)(6 7)"


def test_rfc5256_example_empty(party):
    """RFC 5256 §4 example: no match gives a bare `* THREAD`."""
    assert _thread(party, 'THREAD ORDEREDSUBJECT US-ASCII TEXT "gewp"') == b"* THREAD"
    assert _thread(party, 'UID THREAD REFERENCES US-ASCII TEXT "gewp"') == b"* THREAD"


def test_same_subject_siblings_get_dummy(imap_script):
    """REFERENCES (5C): two unrelated non-replies with one subject share a dummy parent."""
    c = imap_script(login=True)
    _load(c, [_msg(1, "Meeting", "m1@x"), _msg(2, "Lunch", "l@x"), _msg(3, "meeting", "m2@x")])
    assert _thread(c, "THREAD REFERENCES UTF-8 ALL") == b"* THREAD ((1)(3))(2)"


def test_reference_loops_and_duplicates(imap_script):
    """Looping References and duplicate Message-IDs never lose or repeat a message."""
    c = imap_script(login=True)
    _load(c, [
        _msg(1, "p", "p@x", refs="<q@x>"),
        _msg(2, "q", "q@x", refs="<p@x>"),
        _msg(3, "self", "s@x", refs="<s@x>"),
        _msg(4, "dup one", "d@x"),
        _msg(5, "dup two", "d@x", refs="<d@x>"),
        _msg(6, "no id"),
    ])
    line = _thread(c, "THREAD REFERENCES UTF-8 ALL")
    numbers = sorted(int(n) for n in line[9:].replace(b"(", b" ").replace(b")", b" ").split())
    assert numbers == [1, 2, 3, 4, 5, 6]
    assert line == b"* THREAD (2 1)(3)(4 5)(6)"  # 2 became 1's parent first


def test_missing_date_uses_internaldate(imap_script):
    """Threads sort by sent date; no Date: header means INTERNALDATE (RFC 5256 §2.2)."""
    c = imap_script(login=True)
    late = b"Subject: late\r\nMessage-ID: <l@x>\r\n\r\nbody\r\n"
    c.ok(f'APPEND INBOX "01-Jan-2030 00:00:00 +0000" {{{len(late)}}}', late)
    early = b"Subject: early\r\nMessage-ID: <e@x>\r\n\r\nbody\r\n"
    c.ok(f'APPEND INBOX "01-Jan-2001 00:00:00 +0000" {{{len(early)}}}', early)
    c.ok(f"APPEND INBOX {{{len(PARTY[0])}}}", PARTY[0])  # Date: 2024
    c.ok("SELECT INBOX")
    assert _thread(c, "THREAD REFERENCES UTF-8 ALL") == b"* THREAD (2)(3)(1)"
    assert _thread(c, "THREAD ORDEREDSUBJECT UTF-8 ALL") == b"* THREAD (2)(3)(1)"


def test_thread_errors(party):
    """Unknown algorithm or malformed THREAD is BAD; a bad charset is NO [BADCHARSET]."""
    party.bad("THREAD BOGUS UTF-8 ALL")
    party.bad("THREAD REFERENCES UTF-8")
    party.bad("THREAD REFERENCES ALL")
    party.bad("THREAD (REFERENCES) UTF-8 ALL")
    party.bad("UID THREAD")
    assert b"[BADCHARSET" in party.no("THREAD REFERENCES KOI8-R ALL").tagged
