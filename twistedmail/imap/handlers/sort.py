"""SORT, UID SORT, THREAD, UID THREAD (RFC 5256 §3, §4)."""

from __future__ import annotations

from twistedmail.imap import commands as c
from twistedmail.imap.handlers.search import matching
from twistedmail.imap.session import Session
from twistedmail.imap.sort import sort_targets
from twistedmail.imap.thread import ordered_subject, references, render


def sort(session: Session, cmd: c.Sort) -> None:
    """RFC 5256 §3 SORT: the matching messages in criteria order (``* SORT n n``)."""
    hits = matching(session, cmd.key, cmd.charset)
    ordered = sort_targets(hits, cmd.criteria)
    numbers = [t.uid if cmd.uid else t.seq for t in ordered]
    session.out.raw(b"* SORT" + b"".join(b" %d" % n for n in numbers) + b"\r\n")


def thread(session: Session, cmd: c.Thread) -> None:
    """RFC 5256 §3 THREAD: ``* THREAD (1)(2 3 (4)(5))``, one thread-list per thread."""
    hits = matching(session, cmd.key, cmd.charset)
    build = references if cmd.algorithm == "REFERENCES" else ordered_subject
    roots = build(hits)
    if cmd.uid:
        lists = [render(node, lambda t: t.uid) for node in roots]
    else:
        lists = [render(node, lambda t: t.seq) for node in roots]
    session.out.raw(b"* THREAD" + (b" " + b"".join(lists) if lists else b"") + b"\r\n")
