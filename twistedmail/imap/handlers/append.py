"""APPEND (RFC 3501 §6.3.11)."""

from __future__ import annotations

from datetime import datetime

from twistedmail.imap import commands as c
from twistedmail.imap.errors import No
from twistedmail.imap.handlers.common import Reply, target_mailbox
from twistedmail.imap.session import Session
from twistedmail.store import Append, MessagesAdded


def append(session: Session, cmd: c.Append) -> Reply:
    """RFC 3501 §6.3.11, answering APPENDUID (RFC 4315 §3)."""
    mailbox = target_mailbox(session, cmd.mailbox)
    if not cmd.message:
        raise No("Empty messages are not accepted")
    date = cmd.date if isinstance(cmd.date, datetime) else None
    op = Append.new(session.store, mailbox.user, mailbox.name, cmd.message,
                    flags=frozenset(cmd.flags), internaldate=date)
    changes = session.apply(op)
    uid = next(ch.uids[-1] for ch in changes if isinstance(ch, MessagesAdded))
    return ("APPEND completed", "APPENDUID", (mailbox.uidvalidity, uid))
