"""Time SEARCH over 10k synthetic ~4 KB messages (prints figures, asserts nothing).

Run:  cd /work/main && .venv/bin/python -m bench.search_bench [N]

"cold" is the first search (it builds the per-message indexes); "warm" is the
best of several later runs.  Keys run as the server runs them: wrapped in the
top-level AND, over a :class:`TargetSet` (so header keys use its columns).
Then SORT and THREAD over the whole mailbox.  The last block compares raw
case-insensitive byte-search strategies, which is how TEXT/BODY's strategy
was chosen.
"""

from __future__ import annotations

import base64
import datetime
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twistedmail.imap.commands import SearchKey
from twistedmail.imap.search import SearchContext, TargetSet, search
from twistedmail.imap.sort import sort_targets
from twistedmail.imap.thread import ordered_subject, references

_VOCABULARY = (
    "the of and to in is it you that he was for on are with as his they be at one have "
    "this from or had by hot word but what some we can out other were all there when up "
    "use your how said an each she which do their time if will way about many then them "
    "write would like so these her long make thing see him two has look more day could go "
    "come did number sound no most people my over know water than call first who may down "
    "side been now find any new work part take get place made live where after back little "
    "only round man year came show every good me give our under name very through just form "
    "sentence great think say help low line differ turn cause much mean before move right boy"
)
WORDS = _VOCABULARY.split()
TZ = datetime.timezone(datetime.timedelta(hours=-5))


@dataclass(slots=True)
class Msg:
    """A Target for benchmarking."""

    seq: int
    uid: int
    data: bytes
    flags: frozenset[str] = frozenset()
    recent: bool = False
    modseq: int = 1
    internaldate: datetime.datetime = datetime.datetime(2024, 1, 1, tzinfo=TZ)
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.data)


def _body(rng: random.Random, size: int) -> str:
    lines, n = [], 0
    while n < size:
        line = " ".join(rng.choice(WORDS) for _ in range(12)).capitalize() + "."
        lines.append(line)
        n += len(line) + 2
    return "\r\n".join(lines) + "\r\n"


def make_message(i: int, rng: random.Random) -> bytes:
    """One ~4 KB message; some have encoded subjects or base64 text parts."""
    subject = f"Report {i} about " + " ".join(rng.choice(WORDS) for _ in range(4))
    if i % 10 == 0:
        subject = "=?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?= " + subject
    head = (
        f"Return-Path: <sender{i % 97}@example.com>\r\n"
        f"Received: from mx{i % 7}.example.net by mail.example.org; "
        f"Mon, 1 Jan 2024 10:00:{i % 60:02d} -0500\r\n"
        f"From: Sender {i % 97} <sender{i % 97}@example.com>\r\n"
        f"To: Rcpt {i % 13} <rcpt{i % 13}@example.org>\r\n"
        f"Subject: {subject}\r\n"
        f"Date: Mon, {1 + i % 28} Jan 2024 10:00:00 -0500\r\n"
        f"Message-ID: <{i}.{rng.getrandbits(48):x}@example.com>\r\n"
        "MIME-Version: 1.0\r\n"
    )
    text = _body(rng, 3600)
    if i % 20 == 0:
        b64 = base64.encodebytes(text.encode()).decode().replace("\n", "\r\n")
        head += "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n"
        return (head + "\r\n" + b64).encode()
    head += "Content-Type: text/plain; charset=us-ascii\r\n"
    return (head + "\r\n" + text).encode()


def make_mailbox(n: int) -> list[Msg]:
    """``n`` messages, reproducibly."""
    rng = random.Random(42)
    msgs = [Msg(seq=i, uid=i, data=make_message(i, rng)) for i in range(1, n + 1)]
    for m in msgs[::3]:
        m.flags = frozenset({"\\Seen", "\\Flagged"})
    return msgs


def _time(fn: Callable[[], object]) -> float:
    """Wall-clock milliseconds of one call."""
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def _cpu(fn: Callable[[], object]) -> float:
    """CPU milliseconds of one call (steadier than wall time on a busy machine)."""
    t0 = time.process_time()
    fn()
    return (time.process_time() - t0) * 1000


def run_case(name: str, key: SearchKey, msgs: TargetSet, ctx: SearchContext) -> None:
    """Print cold and warm (best of 7) timings of one search."""
    key = SearchKey("AND", (key,))  # the parser's top-level shape
    hits: list[int] = []
    cold = _time(lambda: hits.append(len(search(key, msgs, ctx))))
    warm = min(_time(lambda: search(key, msgs, ctx)) for _ in range(7))
    cpu = min(_cpu(lambda: search(key, msgs, ctx)) for _ in range(7))
    print(
        f"  {name:28s} cold {cold:7.1f} ms  warm {warm:6.1f} ms  "
        f"(cpu {cpu:6.1f} ms)  hits {hits[0]}"
    )


def compare_raw_strategies(msgs: list[Msg]) -> None:
    """Case-insensitive raw byte search: re.IGNORECASE vs bytes.lower().find."""
    needle = b"NoSuchTokenAnywhere"
    low = needle.lower()
    pat = re.compile(re.escape(needle), re.IGNORECASE)
    datas = [m.data for m in msgs]
    t_re = min(_cpu(lambda: [pat.search(d) for d in datas]) for _ in range(3))
    t_low = min(_cpu(lambda: [d.lower().find(low) for d in datas]) for _ in range(7))
    print(f"  raw re.IGNORECASE search      cpu {t_re:7.1f} ms")
    print(f"  raw bytes.lower().find        cpu {t_low:7.1f} ms")


def main(argv: list[str]) -> None:
    n = int(argv[1]) if len(argv) > 1 else 10_000
    msgs = make_mailbox(n)
    total = sum(len(m.data) for m in msgs)
    print(f"{n} messages, {total / n:.0f} bytes average, {total / 1e6:.1f} MB")
    ctx = SearchContext(max_seq=n, max_uid=n, now=time.time())
    cases = [
        ("SUBJECT hit (report 4242)", SearchKey("SUBJECT", (b"report 4242",))),
        ("SUBJECT miss", SearchKey("SUBJECT", (b"nosuchsubject",))),
        ("SUBJECT utf-8 (Gruesse)", SearchKey("SUBJECT", ("grüße".encode(),))),
        ("FROM hit (sender42@)", SearchKey("FROM", (b"sender42@",))),
        ("TO miss", SearchKey("TO", (b"nobody@",))),
        ("HEADER Message-ID", SearchKey("HEADER", ("Message-ID", b"<4242."))),
        ("TEXT header-only token", SearchKey("TEXT", (b"mx3.example.net",))),
        ("TEXT miss", SearchKey("TEXT", (b"NoSuchTokenAnywhere",))),
        ("TEXT non-ASCII miss", SearchKey("TEXT", ("Grüße-nirgends".encode(),))),
        ("BODY miss", SearchKey("BODY", (b"NoSuchTokenAnywhere",))),
        ("SENTON 5-Jan-2024", SearchKey("SENTON", (datetime.date(2024, 1, 5),))),
        (
            "FLAGGED SINCE NOT FROM",
            SearchKey(
                "AND",
                (
                    SearchKey("FLAGGED"),
                    SearchKey("SINCE", (datetime.date(1994, 2, 1),)),
                    SearchKey("NOT", (SearchKey("FROM", (b"Smith",)),)),
                ),
            ),
        ),
    ]
    targets = TargetSet(list(msgs))
    for name, key in cases:
        run_case(name, key, targets, ctx)
    run_sort_thread(msgs)
    compare_raw_strategies(msgs)


def run_sort_thread(msgs: list[Msg]) -> None:
    """SORT and THREAD of every message: first run (facts cached) and best of 3."""
    jobs: list[tuple[str, Callable[[], object]]] = [
        ("SORT (SUBJECT)", lambda: sort_targets(msgs, [("SUBJECT", False)])),
        ("SORT (REVERSE DATE)", lambda: sort_targets(msgs, [("DATE", True)])),
        ("SORT (FROM ARRIVAL)", lambda: sort_targets(msgs, [("FROM", False), ("ARRIVAL", False)])),
        ("THREAD ORDEREDSUBJECT", lambda: ordered_subject(msgs)),
        ("THREAD REFERENCES", lambda: references(msgs)),
    ]
    for name, job in jobs:
        cold = _time(job)
        warm = min(_time(job) for _ in range(3))
        print(f"  {name:28s} cold {cold:7.1f} ms  warm {warm:6.1f} ms")


if __name__ == "__main__":
    main(sys.argv)
