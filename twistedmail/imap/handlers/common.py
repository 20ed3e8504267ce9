"""Helpers shared by message handlers."""

from __future__ import annotations

from typing import Any

from twistedmail.imap.errors import No
from twistedmail.imap.namespaces import lookup
from twistedmail.imap.session import Session

Reply = tuple[str, str | None, tuple[object, ...]]


def target_mailbox(session: Session, name: str) -> Any:
    """The destination of APPEND/COPY: NO [TRYCREATE] if missing (RFC 3501 §6.3.11)."""
    try:
        return lookup(session, name)
    except No as err:
        if err.code != "NONEXISTENT":
            raise
        raise No(f"Mailbox does not exist: {name}", "TRYCREATE") from None
