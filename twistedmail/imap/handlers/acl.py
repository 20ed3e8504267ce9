"""SETACL DELETEACL GETACL LISTRIGHTS MYRIGHTS (RFC 4314 §3).

The rules (who holds what) are in ``namespaces.py`` and ``store/acl.py``; this
module only speaks the commands.  Every command but MYRIGHTS needs the "a" right
on the mailbox (RFC 4314 §4); MYRIGHTS needs any right at all (§3.5).
"""

from __future__ import annotations

import re

from twistedmail.imap import commands as c
from twistedmail.imap.errors import Bad, No
from twistedmail.imap.handlers.mailbox import wire_name
from twistedmail.imap.namespaces import (
    client_name,
    is_public_owner,
    lookup,
    require,
    rights_of,
)
from twistedmail.imap.responses import Atom
from twistedmail.imap.session import Session
from twistedmail.store import DeleteAcl, Mailbox, SetAcl
from twistedmail.store.acl import (
    ALL_RIGHTS,
    OBSOLETE,
    BadRights,
    format_rights,
    modify,
    valid_identifier,
)

_ATOM_SAFE = re.compile(r"[A-Za-z0-9_.@+#$&'-]+\Z")


def _astring(text: str) -> object:
    """An identifier or rights string: an atom when it can be one, else quoted."""
    return Atom(text) if _ATOM_SAFE.match(text) else text


def _identifier(cmd: c.AclCommand) -> str:
    if not valid_identifier(cmd.identifier):
        raise Bad(f"Invalid identifier {cmd.identifier!r}")
    return cmd.identifier


def _not_owner(mailbox: Mailbox, identifier: str) -> None:
    """The owner's rights are implicit and fixed (decided; RFC 4314 §2 allows it)."""
    if identifier.lstrip("-") == mailbox.user:
        raise No("The owner's rights cannot be changed", "CANNOT")


def setacl(session: Session, cmd: c.AclCommand) -> None:
    """RFC 4314 §3.1: replace, add ("+") or remove ("-") an identifier's rights."""
    identifier = _identifier(cmd)
    try:
        modify("", cmd.rights)  # RFC 4314 §3.1: unknown rights are BAD
    except BadRights as err:
        raise Bad(f"Invalid rights: {err}") from None
    mailbox = lookup(session, cmd.mailbox)
    require(session, mailbox, "a")
    _not_owner(mailbox, identifier)
    rights = modify(mailbox.acl.get(identifier, ""), cmd.rights)
    session.apply(SetAcl(mailbox.user, mailbox.name, identifier, rights))


def deleteacl(session: Session, cmd: c.AclCommand) -> None:
    """RFC 4314 §3.2: remove an identifier's entry."""
    identifier = _identifier(cmd)
    mailbox = lookup(session, cmd.mailbox)
    require(session, mailbox, "a")
    _not_owner(mailbox, identifier)
    session.apply(DeleteAcl(mailbox.user, mailbox.name, identifier))


def getacl(session: Session, cmd: c.AclCommand) -> None:
    """RFC 4314 §3.3: ``* ACL mailbox (identifier rights)*``, the owner first."""
    mailbox = lookup(session, cmd.mailbox)
    require(session, mailbox, "a")
    pairs: list[object] = []
    if not is_public_owner(mailbox.user):  # pseudo-accounts have no owner to show
        pairs += [_astring(mailbox.user), Atom(format_rights(ALL_RIGHTS))]
    for identifier, rights in sorted(mailbox.acl.items()):
        pairs += [_astring(identifier), Atom(format_rights(rights))]
    session.out.untagged(Atom("ACL"), wire_name(client_name(session, mailbox)), *pairs)


def listrights(session: Session, cmd: c.AclCommand) -> None:
    """RFC 4314 §3.4: the owner always holds everything; anyone else may be granted
    each right on its own (no tied rights here)."""
    identifier = _identifier(cmd)
    mailbox = lookup(session, cmd.mailbox)
    require(session, mailbox, "a")
    name = wire_name(client_name(session, mailbox))
    if identifier == mailbox.user:
        groups: list[object] = [Atom(format_rights(ALL_RIGHTS))]
    else:
        groups = ["", *(Atom(r) for r in ALL_RIGHTS + "".join(OBSOLETE))]
    session.out.untagged(Atom("LISTRIGHTS"), name, _astring(identifier), *groups)


def myrights(session: Session, cmd: c.AclCommand) -> None:
    """RFC 4314 §3.5: the rights the user holds; any right allows asking."""
    mailbox = lookup(session, cmd.mailbox)  # no right at all: NONEXISTENT
    rights = format_rights(rights_of(session, mailbox))
    name = wire_name(client_name(session, mailbox))
    session.out.untagged(Atom("MYRIGHTS"), name, Atom(rights) if rights else "")
