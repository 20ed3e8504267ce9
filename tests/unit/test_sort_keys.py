"""Units of twistedmail.imap.sort: RFC 5256 base subject, sent date, sort order."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

import pytest

from twistedmail.imap.sort import base_subject, facts, sent_date, sort_targets

UTC = datetime.UTC


@dataclass
class Msg:
    """A minimal search Target."""

    seq: int
    data: bytes
    internaldate: datetime.datetime = datetime.datetime(2020, 1, 1, tzinfo=UTC)
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def uid(self) -> int:
        return self.seq * 10

    @property
    def size(self) -> int:
        return len(self.data)


@pytest.mark.parametrize(("subject", "base", "reply"), [
    ("Hello World", "Hello World", False),
    ("  Hello \t  World  ", "Hello World", False),
    ("Re: Hello", "Hello", True),
    ("RE:Hello", "Hello", True),
    ("re : Hello", "Hello", True),
    ("Fw: Hello", "Hello", True),
    ("FWD: Hello", "Hello", True),
    ("Re[2]: Hello", "Hello", True),
    ("Re [list]: Hello", "Hello", True),
    ("Re: Re: Re: Hello", "Hello", True),
    ("[list] Re: Hello", "Hello", True),
    ("[list] Hello", "Hello", False),  # (4): a blob goes when a base remains
    ("[list]", "[list]", False),  # ... and stays when it is all there is
    ("[a][b] Hello", "Hello", False),
    ("Hello (fwd)", "Hello", True),
    ("Hello (FWD) (fwd)  ", "Hello", True),
    ("[fwd: Hello]", "Hello", True),
    ("[Fwd: Re: Hello (fwd)]", "Hello", True),
    ("[fwd: [fwd: Hello]]", "Hello", True),
    ("Re: [fwd: Hello]", "Hello", True),
    ("Reply: Hello", "Reply: Hello", False),  # "re" must be followed by ":"
    ("Fwdx: Hello", "Fwdx: Hello", False),
    ("", "", False),
    ("Re:", "", True),
    ("[fwd:]", "", True),
])
def test_base_subject(subject: str, base: str, reply: bool) -> None:
    """RFC 5256 §2.1 steps (1)-(7), and the reply/forward flag REFERENCES (5) needs."""
    assert base_subject(subject) == (base, reply)


def test_subject_facts_decode_and_casemap() -> None:
    """Encoded words are decoded to UTF-8 and ASCII letters upper-cased (i;ascii-casemap)."""
    m = Msg(1, b"Subject: Re: =?utf-8?q?gr=C3=BC=C3=9Fe?= aus\r\n Koeln\r\n\r\nx")
    assert facts(m).subject == ("GRüßE AUS KOELN".encode(), True)


def test_sent_date_uses_utc_and_falls_back() -> None:
    """RFC 5256 §2.2: Date: in UTC; missing or broken Date: means INTERNALDATE."""
    m = Msg(1, b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\r\nx")
    assert sent_date(m) == datetime.datetime(1994, 2, 8, 5, 52, 25, tzinfo=UTC).timestamp()
    for data in (b"Subject: x\r\n\r\nx", b"Date: yesterday-ish\r\n\r\nx"):
        m = Msg(1, data)
        assert sent_date(m) == m.internaldate.timestamp()


def test_address_keys() -> None:
    """FROM is the first address's mailbox; DISPLAYFROM the display name or addr-spec."""
    m = Msg(1, b'From: "Zed" <alice@example.org>, bob@example.org\r\n'
               b"To: undisclosed:;, carol@example.net\r\n\r\nx")
    f = facts(m)
    assert f.address("from", False) == b"ALICE"
    assert f.address("from", True) == b"ZED"
    assert f.address("to", False) == b"CAROL"  # the group marker is skipped
    assert f.address("to", True) == b"CAROL@EXAMPLE.NET"
    assert f.address("cc", False) == b""


def test_sort_targets_multiple_criteria_and_ties() -> None:
    """Criteria apply in order; equal messages keep sequence order, even under REVERSE."""
    msgs = [Msg(1, b"Subject: b\r\n\r\n12345"), Msg(2, b"Subject: a\r\n\r\n1"),
            Msg(3, b"Subject: B\r\n\r\n123"), Msg(4, b"Subject: a\r\n\r\n1")]
    order = lambda crit: [m.seq for m in sort_targets(msgs, crit)]  # noqa: E731
    assert order([("SUBJECT", False)]) == [2, 4, 1, 3]
    assert order([("SUBJECT", True)]) == [1, 3, 2, 4]
    assert order([("SUBJECT", False), ("SIZE", True)]) == [2, 4, 1, 3]
    assert order([("SIZE", False)]) == [2, 4, 3, 1]
    assert order([("SIZE", True)]) == [1, 3, 2, 4]


def test_facts_survive_hostile_headers() -> None:
    """Garbage headers give empty keys, never exceptions."""
    m = Msg(1, b"From: <<<@@@>>>\r\nTo: ,,,\r\nSubject: =?x?q?\xff?=\r\n"
               b"Date: 99 Foo 99999 99:99:99\r\nReferences: <<<>>\r\n\r\nx")
    f = facts(m)
    f.address("from", True), f.address("to", False), f.subject, f.references, f.message_id
    assert sent_date(m) == m.internaldate.timestamp()
