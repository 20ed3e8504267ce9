"""Units of twistedmail.imap.thread: RFC 5256 REFERENCES / ORDEREDSUBJECT and rendering."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from twistedmail.imap.thread import Node, ordered_subject, references, render

UTC = datetime.UTC


@dataclass
class Msg:
    """A minimal search Target."""

    seq: int
    data: bytes
    internaldate: datetime.datetime = datetime.datetime(2020, 1, 1, tzinfo=UTC)
    cache: dict[str, Any] = field(default_factory=dict)


def msgs(*specs: tuple[str, str, str]) -> list[Msg]:
    """(message-id, references, subject) triples; Date: minute = position."""
    out = []
    for i, (mid, refs, subject) in enumerate(specs, 1):
        head = f"Subject: {subject}\r\nDate: Mon, 1 Jan 2024 10:{i:02d}:00 +0000\r\n"
        head += f"Message-ID: <{mid}>\r\n" if mid else ""
        head += f"References: {refs}\r\n" if refs else ""
        out.append(Msg(i, head.encode() + b"\r\nbody"))
    return out


def show(roots: list[Node]) -> bytes:
    return b"".join(render(r, lambda t: t.seq) for r in roots)


def test_render_shapes() -> None:
    """RFC 5256 §4: chains are runs of numbers, branches nested lists."""
    a, b, c, d = (Node(m) for m in msgs(("1", "", "s"), ("2", "", "s"), ("3", "", "s"),
                                        ("4", "", "s")))
    a.add(b)
    b.add(c)
    b.add(d)
    assert render(a, lambda t: t.seq) == b"(1 2 (3)(4))"
    dummy = Node()
    dummy.add(a)
    dummy.add(Node(msgs(("9", "", "s"))[0]))
    assert render(dummy, lambda t: t.seq) == b"((1 2 (3)(4))(1))"


def test_truncated_references_reparent() -> None:
    """(1B): a message's own last reference wins over a parent guessed earlier."""
    roots = references(msgs(
        ("c", "<a> <b>", "x"),  # b gets parent a (dummy), c under b
        ("b", "<z>", "x"),  # b's own References says its parent is z, not a
    ))
    # dummies a and z each end with at most one child and are pruned away
    assert show(roots) == b"(2 1)"


def test_dummy_pruning_promotes_children() -> None:
    """(3): a non-root dummy's children move up; a root dummy stays only with 2+ children."""
    roots = references(msgs(
        ("a", "", "t"),
        ("c", "<a> <b>", "t"),  # b is missing: c is promoted under a
        ("d", "<a> <b>", "t"),
        ("e", "<x>", "u"),  # x missing and root with one child: e promoted
    ))
    assert show(roots) == b"(1 (2)(3))(4)"


def test_subject_merge_rules() -> None:
    """(5C): a reply joins the non-reply thread; two non-replies get a dummy."""
    roots = references(msgs(
        ("a", "", "Topic"),
        ("b", "", "Re: Topic"),
        ("c", "", "Topic"),
        ("d", "", "Fwd: Other"),
        ("e", "", "Other"),
    ))
    # Topic: a is in the table; b (a reply) becomes a's child; c (not a reply)
    # makes a dummy holding a and c.  Other: e (not a reply) represents the
    # subject in the table, so d (a reply) becomes e's child.
    assert show(roots) == b"((1 2)(3))(5 4)"


def test_deep_chain_no_recursion_limit() -> None:
    """A 3000-message reply chain threads and renders without recursion errors."""
    specs = [("m0", "", "deep")]
    specs += [(f"m{i}", f"<m{i - 1}>", "Re: deep") for i in range(1, 3000)]
    items = msgs(*specs[:59])  # Date: minutes run 1..59; the rest share a date
    items += [Msg(i + 1, f"Message-ID: <m{i}>\r\nReferences: <m{i - 1}>\r\n\r\nb".encode())
              for i in range(59, 3000)]
    roots = references(items)
    assert len(roots) == 1
    out = render(roots[0], lambda t: t.seq)
    assert out.startswith(b"(1 2 3 ") and out.endswith(b" 3000)")


def test_ordered_subject_groups() -> None:
    """ORDEREDSUBJECT: base-subject groups, first by date is the parent, no grandchildren."""
    roots = ordered_subject(msgs(("", "", "b"), ("", "", "a"), ("", "", "Re: b"),
                                 ("", "", "B (fwd)"), ("", "", "[x] A")))
    assert show(roots) == b"(1 (3)(4))(2 5)"
