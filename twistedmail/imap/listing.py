"""LIST and LSUB: RFC 3501 §6.3.8-9 with LIST-EXTENDED (RFC 5258), LIST-STATUS
(RFC 5819), SPECIAL-USE (RFC 6154) and CHILDREN (RFC 3348).

Mailboxes are enumerated only through ``namespaces.visible`` (client name ->
store mailbox), so access rules stay in namespaces.py.

Choices where the RFCs leave room (README "Behaviour worth knowing"):
  * Special-use attributes and \\HasChildren / \\HasNoChildren are sent on every
    LIST, requested or not (RFC 6154 §2 and RFC 5258 §4 allow it); LSUB stays
    RFC 3501 plain.
  * A name that does not exist but has inferiors is \\Noselect in a plain LIST
    and \\NonExistent (which implies \\Noselect, RFC 5258 §3) in an extended one.
  * Directory entries (``namespaces.directory``): in a cluster, a configured
    public folder with no replica on this node is listed by every LIST (the
    transparent proxy serves it; contract A), with no \\NonExistent / \\Noselect
    and no child attribute unless children are known here.  REMOTE selects
    nothing more.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from functools import lru_cache

from twistedmail.imap import commands as c
from twistedmail.imap.errors import Bad, No
from twistedmail.imap.namespaces import directory, visible
from twistedmail.imap.responses import Atom, MailboxName
from twistedmail.imap.session import Session
from twistedmail.store import Mailbox

DELIM = "/"
# RFC 6154 §2 attributes a real mailbox may carry; \All and \Flagged name virtual
# mailboxes, which this server does not have.
SUPPORTED_USE = frozenset(("\\Archive", "\\Drafts", "\\Junk", "\\Sent", "\\Trash"))

StatusWriter = Callable[[Session, Mailbox, tuple[str, ...]], None]


def canonical_use(attrs: Iterable[str]) -> list[str]:
    """Special-use attributes spelt as in RFC 6154 §2 (they are case-insensitive)."""
    known = {a.upper(): a for a in (*SUPPORTED_USE, "\\All", "\\Flagged")}
    return [known.get(a.upper(), a) for a in attrs]


def check_use(attrs: Iterable[str]) -> frozenset[str]:
    """The special-use attributes of a CREATE (USE (...)) or /private/specialuse;
    NO [USEATTR] for any this server does not support (RFC 6154 §3)."""
    out = frozenset(attrs)
    bad = sorted(out - SUPPORTED_USE)
    if bad:
        raise No(f"Special use {' '.join(bad)} is not supported", "USEATTR")
    return out


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


def ancestors(name: str) -> list[str]:
    """Every superior of ``name``, outermost first."""
    parts = name.split(DELIM)
    return [DELIM.join(parts[:i]) for i in range(1, len(parts))]


def join(reference: str, pattern: str) -> str:
    """The reference name and a pattern as one canonical pattern (RFC 3501 §6.3.8)."""
    if not reference or pattern.startswith(DELIM):
        return pattern
    if reference.endswith(DELIM):
        return reference + pattern
    return reference + DELIM + pattern if pattern else reference


def sort_key(name: str) -> tuple[int, str]:
    """INBOX first, then by name."""
    return (0 if name == "INBOX" else 1, name)


@dataclass(frozen=True)
class Query:
    """What one LIST asks for (RFC 5258 §3)."""

    match: Callable[[str], bool]
    user: str = ""
    sel_subscribed: bool = False
    sel_special: bool = False
    recursive: bool = False
    ret_subscribed: bool = False
    status: tuple[str, ...] = ()
    extended: bool = False

    @property
    def criteria(self) -> tuple[str, ...]:
        """Selection criteria named in CHILDINFO (RFC 5258 §3.5)."""
        return tuple(n for n, on in (("SUBSCRIBED", self.sel_subscribed),
                                     ("SPECIAL-USE", self.sel_special)) if on)


def list_mailboxes(session: Session, cmd: c.ListCmd, write_status: StatusWriter,
                   status_items: Iterable[str]) -> None:
    """Answer LIST / LSUB; ``write_status`` sends LIST-STATUS's ``* STATUS``."""
    verb = Atom("LSUB" if cmd.lsub else "LIST")
    patterns = [p for p in (cmd.patterns or (cmd.pattern,)) if p]
    if not patterns:
        if not cmd.lsub:  # the hierarchy delimiter and root name (RFC 3501 §6.3.8)
            session.out.untagged(verb, [Atom("\\Noselect")], DELIM, b"")
        return
    regexes = [pattern_regex(join(cmd.reference, p)) for p in patterns]

    def match(name: str) -> bool:
        return any(rx.fullmatch(name) for rx in regexes)

    mailboxes = dict(visible(session))
    remote = frozenset(directory(session)) - mailboxes.keys()
    subscribed = session.store.subscriptions(session.username)
    if cmd.lsub:
        for name, attrs in _lsub_rows(match, subscribed):
            session.out.untagged(verb, [Atom(a) for a in attrs], DELIM, MailboxName.of(name))
        return
    unknown = [i for i in cmd.status_items if i not in status_items]
    if unknown:
        raise Bad(f"Unknown STATUS item {unknown[0]}")
    sel = cmd.select_opts
    query = Query(match, session.username, "SUBSCRIBED" in sel, "SPECIAL-USE" in sel,
                  "RECURSIVEMATCH" in sel, "SUBSCRIBED" in sel or "SUBSCRIBED" in cmd.return_opts,
                  cmd.status_items if "STATUS" in cmd.return_opts else (), cmd.extended)
    for name, attrs, extra in _list_rows(query, mailboxes, subscribed, remote):
        session.out.untagged(verb, [Atom(a) for a in attrs], DELIM, MailboxName.of(name), *extra)
        box = mailboxes.get(name)
        if query.status and box is not None:
            with suppress(No):  # RFC 5819 §2: STATUS follows its LIST line
                write_status(session, box, query.status)


def _list_rows(q: Query, mailboxes: dict[str, Mailbox], subscribed: set[str],
               remote: frozenset[str] = frozenset()
               ) -> list[tuple[str, list[str], list[object]]]:
    """(name, attributes, extended data) for every LIST response line; ``remote``:
    directory entries of mailboxes held on other nodes."""
    names = set(mailboxes) | remote

    def meets(name: str) -> bool:  # RFC 5258 §3.1 selection criteria
        if q.sel_subscribed and name not in subscribed:
            return False
        if q.sel_special:
            box = mailboxes.get(name)
            return box is not None and bool(_special(q, box))
        return q.sel_subscribed or name in names

    universe = names | {a for n in names for a in ancestors(n)}
    if q.sel_subscribed:
        universe |= subscribed
    hits = sorted(n for n in universe if meets(n))
    if q.recursive:  # parents of hits may be returned for CHILDINFO
        universe |= {a for n in hits for a in ancestors(n)}
    hidden_hits = [n for n in hits if not q.match(n)] if q.recursive else []
    has_selection = q.sel_subscribed or q.sel_special
    rows: list[tuple[str, list[str], list[object]]] = []
    for name in sorted(universe, key=sort_key):
        if not q.match(name):
            continue
        prefix = name + DELIM
        childinfo = bool(hidden_hits) and any(h.startswith(prefix) for h in hidden_hits)
        if has_selection and not meets(name) and not childinfo:
            continue
        attrs = (_remote_attrs(q, name, names, subscribed) if name in remote
                 else _attrs(q, name, mailboxes, names, subscribed))
        rows.append((name, attrs,
                     [["CHILDINFO", list(q.criteria)]] if childinfo else []))
    return rows


def _attrs(q: Query, name: str, mailboxes: dict[str, Mailbox], names: set[str],
           subscribed: set[str]) -> list[str]:
    prefix = name + DELIM
    children = any(n.startswith(prefix) for n in names)
    box = mailboxes.get(name)
    attrs: list[str] = []
    if box is None:
        # RFC 5258 §3: \NonExistent implies \Noselect; plain LIST keeps RFC 3501's.
        attrs.append("\\NonExistent" if q.extended or not children else "\\Noselect")
    if q.ret_subscribed and name in subscribed:
        attrs.append("\\Subscribed")  # RFC 5258 §3.4
    attrs.append("\\HasChildren" if children else "\\HasNoChildren")  # RFC 3348
    if box is not None:
        attrs.extend(sorted(_special(q, box)))  # RFC 6154 §2
    return attrs


def _remote_attrs(q: Query, name: str, names: set[str], subscribed: set[str]) -> list[str]:
    """A directory entry: it exists elsewhere (no \\NonExistent); \\HasChildren only
    when a child is known here, since its own children are not (RFC 3348 §4)."""
    attrs = ["\\Subscribed"] if q.ret_subscribed and name in subscribed else []
    if any(n.startswith(name + DELIM) for n in names):
        attrs.append("\\HasChildren")
    return attrs


def _special(q: Query, box: Mailbox) -> frozenset[str]:
    """Special uses shown to this user: only on their own mailboxes, so a client
    never files its sent mail into another user's shared "Sent"."""
    return box.special_use if box.user == q.user else frozenset()


def _lsub_rows(match: Callable[[str], bool], subscribed: set[str]) -> list[tuple[str, list]]:
    rows: dict[str, list[str]] = {}
    for name in subscribed:
        if match(name):
            rows[name] = []
            continue
        for parent in ancestors(name):  # RFC 3501 §6.3.9: "%" reaching a parent
            if match(parent) and parent not in subscribed:
                rows.setdefault(parent, ["\\Noselect"])
    return sorted(rows.items(), key=lambda kv: sort_key(kv[0]))
