"""GETMETADATA and SETMETADATA (RFC 5464 METADATA and METADATA-SERVER).

Entries live in the store (``SetMetadata`` ops, ``store/metadata.py``); this
module checks names, rights and limits and renders ``* METADATA``.

Choices where RFC 5464 leaves room:
  * /private entries are per user, /shared entries per mailbox (§3).
  * Server /shared entries are read-only for clients (NO [NOPERM]): any user
    could otherwise change what every other user reads; server /private
    entries work as on mailboxes.
  * Rights (RFC 4314): reading needs "r"; setting /private needs "r", setting
    /shared needs "w" (as Cyrus does).
  * Limits: values up to ``MAX_VALUE`` octets (NO [METADATA MAXSIZE n]) and
    ``MAX_ENTRIES`` entries per mailbox and user (NO [METADATA TOOMANY]).
  * "/private/specialuse" (RFC 6154 §4) reads and sets the mailbox's
    special-use attributes.
"""

from __future__ import annotations

import re

from twistedmail.imap import commands as c
from twistedmail.imap import listing
from twistedmail.imap.errors import No
from twistedmail.imap.namespaces import client_name, require
from twistedmail.imap.responses import Atom, Literal8, MailboxName
from twistedmail.imap.session import Session
from twistedmail.store import Mailbox, SetMetadata, SetSpecialUse
from twistedmail.store.metadata import key

MAX_VALUE = 64 * 1024  # octets per value
MAX_ENTRIES = 128  # entries per mailbox (or the server) per user, /shared included
SPECIALUSE = "/private/specialuse"  # RFC 6154 §4
_ATOM = re.compile(r'[!#$&\'+,\-./0-9:;<=>?@A-Z\[^_`a-z|}~]+')  # RFC 3501 §9 ATOM-CHAR


def _target(session: Session, name: str) -> Mailbox | None:
    """The mailbox ``name`` designates, or None for the server ("")."""
    return None if name == "" else session.mailbox(name)


def _table(session: Session, box: Mailbox | None) -> dict[tuple[str, str], bytes]:
    return session.store.server_metadata() if box is None else box.metadata


def _visible(session: Session, box: Mailbox | None) -> dict[str, bytes]:
    """Every entry the user sees here: lower-case name -> value."""
    user = session.username
    out = {name: value for (scope, name), value in _table(session, box).items()
           if scope in ("", user)}
    if box is not None and box.special_use:
        out[SPECIALUSE] = " ".join(sorted(box.special_use)).encode("ascii")
    return out


def getmetadata(session: Session, cmd: c.GetMetadataCmd) -> tuple[str, str, tuple] | None:
    """RFC 5464 §4.2: the requested entries (and their children down to DEPTH);
    entries that do not exist are left out, values over MAXSIZE too (§4.2.1)."""
    box = _target(session, cmd.mailbox)
    if box is not None:
        require(session, box, "r")
    entries = _visible(session, box)
    found: dict[str, tuple[str, bytes]] = {}  # lower-case name -> (name sent, value)
    for wanted in cmd.entries:
        low = wanted.lower()
        if low in entries:
            found.setdefault(low, (wanted, entries[low]))
        if cmd.depth == 0:
            continue
        for name in sorted(entries):  # §4.2.2 DEPTH 1 / infinity
            rest = name[len(low) + 1:] if name.startswith(low + "/") else ""
            if rest and (cmd.depth == -1 or "/" not in rest):
                found.setdefault(name, (name, entries[name]))
    longest = 0
    pairs: list[object] = []
    for name, value in found.values():
        if cmd.maxsize is not None and len(value) > cmd.maxsize:
            longest = max(longest, len(value))  # §4.2.1 LONGENTRIES
            continue
        if b"\0" in value:
            value = Literal8(value)  # RFC 5464 §5 value = nstring / literal8
        pairs.extend([Atom(name) if _ATOM.fullmatch(name) else name, value])
    if pairs:
        session.out.untagged(Atom("METADATA"), _name(session, box), pairs)
    if longest:
        return ("GETMETADATA completed", "METADATA", (Atom("LONGENTRIES"), longest))
    return None


def setmetadata(session: Session, cmd: c.SetMetadataCmd) -> None:
    """RFC 5464 §4.3: all entries are set, or none (NO with the reason)."""
    box = _target(session, cmd.mailbox)
    entries = [(name, value) for name, value in cmd.entries if name.lower() != SPECIALUSE]
    special = [value for name, value in cmd.entries if name.lower() == SPECIALUSE]
    _check_rights(session, box, cmd.entries)
    for _, value in entries:
        if value is not None and len(value) > MAX_VALUE:
            raise No("Metadata value too large", "METADATA", (Atom("MAXSIZE"), MAX_VALUE))
    _check_count(session, box, entries)
    use = None
    if special:
        if box is None:
            raise No("Only mailboxes have special uses", "CANNOT")
        text = (special[-1] or b"").decode("ascii", "replace")
        use = listing.check_use(listing.canonical_use(text.split()))
    user = session.username
    if entries:
        owner, name = ("", "") if box is None else (box.user, box.name)
        session.apply(SetMetadata(owner or user, name, tuple(entries), user))
    if use is not None and box is not None:
        session.apply(SetSpecialUse(box.user, box.name, use))


def _check_rights(session: Session, box: Mailbox | None,
                  entries: tuple[tuple[str, bytes | None], ...]) -> None:
    shared = any(name.lower().startswith("/shared/") for name, _ in entries)
    if box is None:
        if shared:
            raise No("Server /shared entries are read-only", "NOPERM")
        return
    require(session, box, "rw" if shared else "r")  # RFC 4314


def _check_count(session: Session, box: Mailbox | None,
                 entries: list[tuple[str, bytes | None]]) -> None:
    """NO [METADATA TOOMANY] if the user would hold more than MAX_ENTRIES here."""
    user = session.username
    table = _table(session, box)
    mine = {k for k in table if k[0] in ("", user)}
    for name, value in entries:
        k = key(name, user)
        if value is None:
            mine.discard(k)
        else:
            mine.add(k)
    if len(mine) > MAX_ENTRIES:
        raise No("Too many metadata entries", "METADATA", (Atom("TOOMANY"),))


def _name(session: Session, box: Mailbox | None) -> bytes:
    return b"" if box is None else MailboxName.of(client_name(session, box))
