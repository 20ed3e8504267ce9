"""THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256 §3, §4).

Both take the messages a search matched (in sequence order) and return the
threads as a list of :class:`Node` trees under an implicit root; a node with
``msg`` None is a dummy (a message that is referenced but not in the set).
:func:`render` gives the RFC 5256 §4 ``thread-list`` text of each tree.

Sent dates are RFC 5256 §2.2 (:func:`twistedmail.imap.sort.sent_date`); equal
dates fall back to sequence order, since targets arrive in that order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from twistedmail.imap.search import Target
from twistedmail.imap.sort import facts, sent_date

__all__ = ["ALGORITHMS", "Node", "ordered_subject", "references", "render"]

ALGORITHMS = ("ORDEREDSUBJECT", "REFERENCES")


class Node:
    """One thread node (a JWZ "container"): a message or a dummy."""

    __slots__ = ("msg", "parent", "children", "order")

    def __init__(self, msg: Target | None = None, order: int = 0) -> None:
        self.msg = msg
        self.parent: Node | None = None
        self.children: list[Node] = []
        self.order = order  # position in sequence order: the tie-breaker

    def add(self, child: Node) -> None:
        """Make ``child`` the last child of this node."""
        child.parent = self
        self.children.append(child)

    def unlink(self) -> None:
        """Detach from the parent, if any."""
        if self.parent is not None:
            self.parent.children.remove(self)
            self.parent = None

    def has_ancestor(self, other: Node) -> bool:
        """True if ``other`` is this node or one of its ancestors."""
        node: Node | None = self
        while node is not None:
            if node is other:
                return True
            node = node.parent
        return False

    def first_msg(self) -> Target:
        """This node's message, or a dummy's first child's (after sorting)."""
        node = self
        while node.msg is None:
            node = node.children[0]
        return node.msg


def _date_key(node: Node) -> tuple[float, int]:
    """Sort key: sent date, then sequence order (dummies: first child's)."""
    while node.msg is None:
        node = node.children[0]
    return sent_date(node.msg), node.order


def _sort_tree(nodes: list[Node]) -> None:
    """RFC 5256 REFERENCES (6): sort every sibling set by sent date, depth first;
    a dummy's children are sorted first and its first child stands for it.
    Iterative (reply chains can be deeper than Python's recursion limit)."""
    for node in reversed(_preorder(nodes)):
        if len(node.children) > 1:
            node.children.sort(key=_date_key)
    nodes.sort(key=_date_key)


def _preorder(nodes: list[Node]) -> list[Node]:
    """Every node below (and including) ``nodes``, parents before children."""
    out: list[Node] = []
    stack = list(reversed(nodes))
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(reversed(node.children))
    return out


# --- ORDEREDSUBJECT ---------------------------------------------------------------


def ordered_subject(targets: Sequence[Target]) -> list[Node]:
    """RFC 5256 §3 ORDEREDSUBJECT: group by base subject, sort by sent date.

    The first message of a group is the thread's root, the later ones are
    its children (no grandchildren); threads sort by their root's date."""
    nodes = [Node(t, i) for i, t in enumerate(targets)]
    nodes.sort(key=lambda n: (facts(n.msg).subject[0], *_date_key(n)))  # type: ignore[arg-type]
    threads: list[Node] = []
    last: bytes | None = None
    for node in nodes:
        subject = facts(node.msg).subject[0]  # type: ignore[arg-type]
        if threads and subject == last:
            threads[-1].add(node)
        else:
            threads.append(node)
            last = subject
    threads.sort(key=_date_key)
    return threads


# --- REFERENCES ------------------------------------------------------------------------


def references(targets: Sequence[Target]) -> list[Node]:
    """RFC 5256 §3 REFERENCES (the JWZ algorithm, steps (1)-(6))."""
    roots = _link(targets)  # (1), (2)
    roots = _prune(roots)  # (3)
    for node in roots:  # (4) sort the top level; a dummy by its sorted children
        if node.msg is None:
            node.children.sort(key=_date_key)
    roots.sort(key=_date_key)
    roots = _merge_subjects(roots)  # (5)
    _sort_tree(roots)  # (6)
    return roots


def _link(targets: Sequence[Target]) -> list[Node]:
    """Steps (1) and (2): containers by Message-ID, parent/child links, the root set."""
    by_id: dict[str, Node] = {}
    order: list[Node] = []

    def container(msg_id: str) -> Node:
        node = by_id.get(msg_id)
        if node is None:
            node = by_id[msg_id] = Node()
            order.append(node)
        return node

    for i, t in enumerate(targets):
        f = facts(t)
        msg_id = f.message_id
        # (1) a missing or duplicate Message-ID gets a unique one of its own.
        node = by_id.get(msg_id) if msg_id is not None else None
        if node is None or node.msg is not None:
            node = Node()
            order.append(node)
            if msg_id is not None and msg_id not in by_id:
                by_id[msg_id] = node
        node.msg, node.order = t, i
        refs = [container(r) for r in f.references]
        # (1A) link the references in order; never re-parent, never loop.
        for parent, child in zip(refs, refs[1:], strict=False):
            if child.parent is None and parent is not child and not parent.has_ancestor(child):
                parent.add(child)
        # (1B) the last reference is this message's parent (replacing a parent
        # set from a truncated References: header), unless that makes a loop.
        node.unlink()
        if refs and not refs[-1].has_ancestor(node):
            refs[-1].add(node)
    return [node for node in order if node.parent is None]  # (2)


def _prune(roots: list[Node]) -> list[Node]:
    """Step (3): drop childless dummies; splice a dummy's children into its
    place, except at the root where only a single child is promoted.
    Children are pruned before their parents, so splices see final lists."""
    for node in reversed(_preorder(roots)):
        kept: list[Node] = []
        for child in node.children:
            if child.msg is None:
                kept.extend(child.children)  # empty for a childless dummy
            else:
                kept.append(child)
        for child in kept:
            child.parent = node
        node.children = kept
    out: list[Node] = []
    for node in roots:
        if node.msg is None and len(node.children) < 2:
            out.extend(node.children)
        else:
            out.append(node)
    for node in out:
        node.parent = None
    return out


def _merge_subjects(roots: list[Node]) -> list[Node]:
    """Step (5): gather top-level threads with the same base subject."""
    table: dict[bytes, Node] = {}
    for node in roots:  # (5B) pick each subject's representative
        subject, reply = facts(node.first_msg()).subject
        if not subject:
            continue
        old = table.get(subject)
        if (old is None or (node.msg is None and old.msg is not None)
                or (_is_reply(old) and not reply)):
            table[subject] = node
    gone: set[int] = set()
    replaced: dict[int, Node] = {}
    for node in roots:  # (5C) merge the others into it
        subject, reply = facts(node.first_msg()).subject
        old = table.get(subject) if subject else None
        if old is None or old is node:
            continue
        gone.add(id(node))
        if old.msg is None and node.msg is None:
            for child in node.children:
                old.add(child)
        elif old.msg is None or (reply and not _is_reply(old)):
            old.add(node)
        else:
            dummy = Node()
            replaced[id(old)] = dummy
            dummy.add(old)
            dummy.add(node)
            table[subject] = dummy
    return [replaced.get(id(n), n) for n in roots if id(n) not in gone]


def _is_reply(node: Node) -> bool:
    return facts(node.first_msg()).subject[1]


# --- output ----------------------------------------------------------------------------


def render(root: Node, number: Callable[[Target], int]) -> bytes:
    """RFC 5256 §4 thread-list: ``(1 2 (3)(4 5))``; a chain of single children
    is a run of numbers, two or more children are nested thread-lists."""
    out = bytearray()
    stack: list[Node | bytes] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, bytes):
            out += item
            continue
        node = item
        nums: list[bytes] = []
        while True:
            if node.msg is not None:
                nums.append(b"%d" % number(node.msg))
            if len(node.children) != 1:
                break
            node = node.children[0]
        out += b"(" + b" ".join(nums)
        if len(node.children) > 1:
            out += b" " if nums else b""
            stack.append(b")")
            stack.extend(reversed(node.children))
        else:
            out += b")"
    return bytes(out)
