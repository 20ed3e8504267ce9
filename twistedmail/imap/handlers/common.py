"""Helpers shared by message handlers."""

from __future__ import annotations

from typing import Any

from twistedmail.imap.errors import No
from twistedmail.imap.session import Session
from twistedmail.store import NoSuchMailbox

Reply = tuple[str, str | None, tuple[object, ...]]


def target_mailbox(session: Session, name: str) -> Any:
    """The destination of APPEND/COPY: NO [TRYCREATE] if missing (RFC 3501 §6.3.11)."""
    assert session.user is not None
    try:
        return session.store.mailbox(session.user, name)
    except NoSuchMailbox:
        raise No(f"Mailbox does not exist: {name}", "TRYCREATE") from None
