"""CREATE DELETE RENAME SUBSCRIBE UNSUBSCRIBE LIST LSUB STATUS (RFC 3501 §6.3)."""

from __future__ import annotations

import re
from functools import lru_cache

from twistedmail.imap import commands as c
from twistedmail.imap.errors import Bad, No
from twistedmail.imap.mutf7 import encode as mutf7_encode
from twistedmail.imap.namespaces import client_name, resolve, visible
from twistedmail.imap.responses import Atom
from twistedmail.imap.session import Session
from twistedmail.store import (
    CreateMailbox,
    DeleteMailbox,
    Mailbox,
    RenameMailbox,
    Subscribe,
    Unsubscribe,
)

DELIM = "/"


def wire_name(name: str) -> bytes:
    """A mailbox name as sent to the client: modified UTF-7 (RFC 3501 §5.1.3)."""
    return mutf7_encode(name)


def create(session: Session, cmd: c.MailboxCommand) -> None:
    """RFC 3501 §6.3.3; missing parents are created too."""
    name = cmd.mailbox.rstrip(DELIM)
    if name.upper() == "INBOX":
        raise No("INBOX already exists", "ALREADYEXISTS")
    owner, local = resolve(session, name)
    session.apply(CreateMailbox.new(owner, local))


def delete(session: Session, cmd: c.MailboxCommand) -> None:
    """RFC 3501 §6.3.4."""
    if cmd.mailbox.upper() == "INBOX":
        raise No("INBOX cannot be deleted", "CANNOT")
    mailbox = session.mailbox(cmd.mailbox)
    view = session.view
    if view is not None and view.mailbox is mailbox:
        session.unselect()
    session.apply(DeleteMailbox(mailbox.user, mailbox.name))


def rename(session: Session, cmd: c.Rename) -> None:
    """RFC 3501 §6.3.5, including the INBOX special case."""
    mailbox = session.mailbox(cmd.old)
    owner, local = resolve(session, cmd.new.rstrip(DELIM))
    if owner != mailbox.user:
        raise No("Cannot rename a mailbox into another namespace", "CANNOT")
    session.apply(RenameMailbox(mailbox.user, mailbox.name, local))


def subscribe(session: Session, cmd: c.MailboxCommand) -> None:
    """RFC 3501 §6.3.6: only existing mailboxes may be subscribed."""
    session.mailbox(cmd.mailbox)
    session.apply(Subscribe(session.username, cmd.mailbox))


def unsubscribe(session: Session, cmd: c.MailboxCommand) -> None:
    """RFC 3501 §6.3.7: a name may be unsubscribed even if it no longer exists."""
    assert session.user is not None
    if cmd.mailbox not in session.store.subscriptions(session.user):
        raise No(f"Not subscribed to {cmd.mailbox}", "NONEXISTENT")
    session.apply(Unsubscribe(session.username, cmd.mailbox))


# --- LIST / LSUB -------------------------------------------------------------


@lru_cache(maxsize=256)
def pattern_regex(pattern: str) -> re.Pattern[str]:
    """RFC 3501 §6.3.8: ``*`` matches anything, ``%`` anything but the delimiter.

    INBOX is matched case-insensitively (RFC 3501 §5.1)."""
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append("[^/]*")
        else:
            out.append(re.escape(ch))
    body = "".join(out)
    if re.fullmatch(r"(?i)inbox", pattern[:5]) and (len(pattern) == 5 or pattern[5] == DELIM):
        body = "INBOX" + "".join(out[5:])
    return re.compile(body, re.DOTALL)


def _ancestors(name: str) -> list[str]:
    parts = name.split(DELIM)
    return [DELIM.join(parts[:i]) for i in range(1, len(parts))]


def list_(session: Session, cmd: c.ListCmd) -> None:
    """LIST (RFC 3501 §6.3.8) and LSUB (§6.3.9)."""
    assert session.user is not None
    verb = Atom("LSUB" if cmd.lsub else "LIST")
    if not cmd.pattern and not cmd.lsub:
        # The hierarchy delimiter and root name (RFC 3501 §6.3.8).
        session.out.untagged(verb, [Atom("\\Noselect")], DELIM, b"")
        return
    full = _join(cmd.reference, cmd.pattern)
    regex = pattern_regex(full)
    mailboxes = dict(visible(session))
    rows = _lsub_rows(session, regex, mailboxes) if cmd.lsub else _list_rows(regex, mailboxes)
    for name, attrs in rows:
        session.out.untagged(verb, [Atom(a) for a in attrs], DELIM, wire_name(name))


def _join(reference: str, pattern: str) -> str:
    if not reference or pattern.startswith(DELIM):
        return pattern
    if reference.endswith(DELIM):
        return reference + pattern
    return reference + DELIM + pattern if pattern else reference


def _children_attr(name: str, names: set[str]) -> str:
    prefix = name + DELIM
    has = any(n.startswith(prefix) for n in names)
    return "\\HasChildren" if has else "\\HasNoChildren"  # RFC 3348


def _list_rows(regex: re.Pattern[str], mailboxes: dict[str, Mailbox]) -> list[tuple[str, list]]:
    names = set(mailboxes)
    virtual = {a for n in names for a in _ancestors(n)} - names
    rows = []
    for name in sorted(names | virtual, key=_sort_key):
        if not regex.fullmatch(name):
            continue
        attrs = ["\\Noselect"] if name in virtual else []
        attrs.append(_children_attr(name, names))
        rows.append((name, attrs))
    return rows


def _lsub_rows(session: Session, regex: re.Pattern[str],
               mailboxes: dict[str, Mailbox]) -> list[tuple[str, list]]:
    assert session.user is not None
    subscribed = session.store.subscriptions(session.user)
    rows: dict[str, list[str]] = {}
    for name in subscribed:
        if regex.fullmatch(name):
            rows[name] = []
            continue
        for parent in _ancestors(name):  # RFC 3501 §6.3.9: "%" reaching a parent
            if regex.fullmatch(parent) and parent not in subscribed:
                rows.setdefault(parent, ["\\Noselect"])
    return sorted(rows.items(), key=lambda kv: _sort_key(kv[0]))


def _sort_key(name: str) -> tuple[int, str]:
    return (0 if name == "INBOX" else 1, name)


# --- STATUS -------------------------------------------------------------------

STATUS_ITEMS = ("MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN")


def status(session: Session, cmd: c.Status) -> None:
    """RFC 3501 §6.3.10."""
    unknown = [i for i in cmd.items if i not in STATUS_ITEMS]
    if unknown:
        raise Bad(f"Unknown STATUS item {unknown[0]}")
    mailbox = session.mailbox(cmd.mailbox)
    values = {
        "MESSAGES": lambda: len(mailbox),
        "RECENT": lambda: len(mailbox.recent_uids),
        "UIDNEXT": lambda: mailbox.uidnext,
        "UIDVALIDITY": lambda: mailbox.uidvalidity,
        "UNSEEN": lambda: mailbox.unseen_count(),
    }
    items: list[object] = []
    for item in cmd.items:
        items.extend([Atom(item), values[item]()])
    if not items and not cmd.items:
        raise No("STATUS needs at least one item")
    session.out.untagged(Atom("STATUS"), wire_name(client_name(session, mailbox)), items)
