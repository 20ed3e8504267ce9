"""Helpers shared by message handlers."""

from __future__ import annotations

from typing import Any

from twistedmail.imap.errors import No
from twistedmail.imap.namespaces import lookup, require
from twistedmail.imap.session import Session

Reply = tuple[str, str | None, tuple[object, ...]]


def target_mailbox(session: Session, name: str) -> Any:
    """The destination of APPEND/COPY: NO [TRYCREATE] if missing (RFC 3501 §6.3.11)."""
    try:
        box = lookup(session, name)
        require(session, box, "i")  # RFC 4314 §4: APPEND, COPY, MOVE into need "i"
        return box
    except No as err:
        if err.code != "NONEXISTENT":
            raise
        raise No(f"Mailbox does not exist: {name}", "TRYCREATE") from None
