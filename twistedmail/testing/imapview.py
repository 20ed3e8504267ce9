"""Reading and comparing what IMAP shows: folder lists, (EMAILID, flags) views, diffs.

Used by :class:`~twistedmail.testing.cluster.Cluster` to decide whether replicas converged:
two nodes agree on a user when they list the same selectable folders and each folder holds
the same multiset of (EMAILID, flags) -- EMAILID is the RFC 8474 content hash, so equal
contents on different nodes compare equal whatever UIDs the nodes gave them.  ``\\Recent``
is session state of one node (RFC 3501 §2.3.2) and is left out.
"""

from __future__ import annotations

import imaplib
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Flags = frozenset[str]
FolderView = Counter[tuple[str, Flags]]  # (EMAILID, flags) -> how many messages
NodeView = dict[str, dict[str, FolderView]]  # user -> folder -> view
_FETCH = re.compile(
    rb"UID (?P<uid>\d+)|EMAILID \((?P<emailid>[^)\s]+)\)|FLAGS \((?P<flags>[^)]*)\)",
    re.IGNORECASE,
)
_LIST = re.compile(rb"\((?P<flags>[^)]*)\) (?P<delim>\"(?:[^\"\\]|\\.)*\"|NIL) ?(?P<name>.*)\Z")
_NOT_SELECTABLE = {b"\\noselect", b"\\nonexistent"}


# --- parsing ---------------------------------------------------------------------------------


def quote(name: str) -> str:
    """An IMAP quoted string (RFC 3501 §4.3) for a folder name."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(raw: bytes) -> str:
    if raw.startswith(b'"') and raw.endswith(b'"') and len(raw) >= 2:
        raw = re.sub(rb"\\(.)", rb"\1", raw[1:-1])
    return raw.decode("utf-8", "replace")


def list_folders(client: imaplib.IMAP4) -> list[str]:
    """Names of the selectable folders (LIST "" "*"), in the order listed."""
    typ, data = client.list('""', "*")
    if typ != "OK":
        raise imaplib.IMAP4.error(f"LIST: {data!r}")
    names = []
    for item in data:
        if not item:  # None for no folders, b"" for a line's end after a literal
            continue
        line, literal = (item[0], item[1]) if isinstance(item, tuple) else (item, None)
        m = _LIST.match(line)
        if m is None:
            raise imaplib.IMAP4.error(f"LIST: cannot parse {item!r}")
        if {f.lower() for f in m.group("flags").split()} & _NOT_SELECTABLE:
            continue
        names.append(literal.decode("utf-8", "replace") if literal else _unquote(m["name"]))
    return names


def parse_fetch(lines: Iterable[Any]) -> dict[int, tuple[str, Flags]]:
    """UID -> (EMAILID, flags without \\Recent) from imaplib's UID FETCH answer."""
    out: dict[int, tuple[str, Flags]] = {}
    for item in lines:
        line = item[0] if isinstance(item, tuple) else item
        if not isinstance(line, bytes):
            continue
        found: dict[str, bytes] = {}
        for m in _FETCH.finditer(line):
            found.update({k: v for k, v in m.groupdict().items() if v is not None})
        if "uid" not in found or "emailid" not in found:
            continue
        flags = frozenset(
            f.decode() for f in found.get("flags", b"").split() if f.lower() != b"\\recent"
        )
        out[int(found["uid"])] = (found["emailid"].decode(), flags)
    return out


# --- comparing views ------------------------------------------------------------------------


def diff_views(
    views: Mapping[str, NodeView], holds: Callable[[str, str], bool] | None = None
) -> list[str]:
    """Readable differences between nodes' views (empty when they agree).  ``holds(node,
    user)`` says which nodes must have a user (default: every node)."""
    problems: list[str] = []
    users = sorted({u for view in views.values() for u in view})
    for user in users:
        names = [n for n in views if holds is None or holds(n, user)]
        missing = [n for n in names if user not in views[n]]
        if missing:
            problems.append(f"{user}: not readable on {', '.join(missing)}")
            continue
        problems.extend(_diff_user(user, {n: views[n][user] for n in names}))
    return problems


def _diff_user(user: str, folders_by_node: Mapping[str, Mapping[str, FolderView]]) -> list[str]:
    problems = []
    all_folders = sorted({f for folders in folders_by_node.values() for f in folders})
    for folder in all_folders:
        lacking = [n for n, folders in folders_by_node.items() if folder not in folders]
        if lacking:
            problems.append(f"{user}/{folder}: missing on {', '.join(lacking)}")
            continue
        problems.extend(_diff_folder(f"{user}/{folder}", {
            n: folders[folder] for n, folders in folders_by_node.items()}))
    return problems


def _diff_folder(label: str, by_node: Mapping[str, FolderView]) -> list[str]:
    names = list(by_node)
    first = by_node[names[0]]
    problems = []
    for other in names[1:]:
        view = by_node[other]
        if view == first:
            continue
        only_first = _show(first - view)
        only_other = _show(view - first)
        problems.append(
            f"{label}: {names[0]} has {sum(first.values())}, {other} has {sum(view.values())};"
            f" only on {names[0]}: {only_first}; only on {other}: {only_other}"
        )
    return problems


def _show(view: FolderView) -> str:
    items = sorted(view.items(), key=lambda kv: (kv[0][0], sorted(kv[0][1])))
    shown = [
        f"{emailid} ({' '.join(sorted(flags))})" + (f" x{count}" if count > 1 else "")
        for (emailid, flags), count in items[:10]
    ]
    more = f" ... {len(items) - 10} more" if len(items) > 10 else ""
    return ("[" + ", ".join(shown) + "]" + more) if shown else "[]"


