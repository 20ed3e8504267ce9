"""Namespaces (RFC 2342): how a client-visible mailbox name maps to a store mailbox.

Only the personal namespace ("" with delimiter "/") exists so far; the ACL/NAMESPACE
work extends :func:`resolve` and :func:`visible` with "Other Users/" and "Public/".

Invariants:
  * Every handler turns a client name into (owner, local name) only through
    :func:`resolve`, and lists mailboxes only through :func:`visible`, so access
    rules live in one place.
  * Ops are always built from the owning account (``Mailbox.user``) and the local
    name (``Mailbox.name``), never from the client-visible name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twistedmail.imap.errors import No
from twistedmail.store import Mailbox, StoreError

if TYPE_CHECKING:
    from twistedmail.imap.session import Session

DELIM = "/"


def resolve(session: Session, name: str) -> tuple[str, str]:
    """(owner account, local name) for a client-visible mailbox name."""
    return session.username, name


def client_name(session: Session, mailbox: Mailbox) -> str:
    """The name the client sees for ``mailbox`` (inverse of :func:`resolve`)."""
    return mailbox.name


def lookup(session: Session, name: str) -> Mailbox:
    """The store mailbox a client name designates; NO [NONEXISTENT] if none."""
    owner, local = resolve(session, name)
    try:
        return session.store.mailbox(owner, local)
    except StoreError as err:
        raise No(str(err) or "No such mailbox", err.code) from None


def visible(session: Session) -> list[tuple[str, Mailbox]]:
    """(client name, mailbox) for every mailbox the user may see in LIST."""
    return [(m.name, m) for m in session.store.mailboxes(session.username)]
