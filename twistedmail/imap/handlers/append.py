"""APPEND (RFC 3501 §6.3.11) with MULTIAPPEND (RFC 3502), CATENATE (RFC 4469),
APPENDLIMIT (RFC 7889) and UTF8 data (RFC 6855 §4).

Invariants:
  * All or nothing (RFC 3502 §6.3.11): every message is built and checked
    before the first one is stored; if the store still refuses one midway
    (e.g. a quota), the ones already added are expunged again before the NO,
    in the same reactor turn, so no session ever sees them.
  * A message is never empty and never larger than the APPENDLIMIT (the
    node's ``max_literal``): NO, with [TOOBIG] for the size.
  * In a cluster (DESIGN.md §4) the OK waits until the messages are durable
    (handlers/durable.py); if they cannot be, they are expunged again and the
    answer is NO [UNAVAILABLE] (RFC 5530).
"""

from __future__ import annotations

from datetime import datetime

from twisted.internet.defer import Deferred

from twistedmail import limits
from twistedmail.imap import catenate, referrals
from twistedmail.imap import commands as c
from twistedmail.imap.errors import No
from twistedmail.imap.handlers import durable
from twistedmail.imap.handlers.common import Reply, target_mailbox
from twistedmail.imap.handlers.quota import check as check_quota
from twistedmail.imap.namespaces import permitted_flags
from twistedmail.imap.responses import Atom
from twistedmail.imap.seqset import compress
from twistedmail.imap.session import Session
from twistedmail.store import Append, Expunge, Mailbox, MessagesAdded


def append(session: Session, cmd: c.Append) -> Reply | Deferred[Reply]:
    """RFC 3501 §6.3.11 / RFC 3502, answering APPENDUID with a UID set (RFC 4315 §3)."""
    referrals.check_mailbox(session, cmd.mailbox)  # RFC 2193 §4
    mailbox = target_mailbox(session, cmd.mailbox)
    first = c.AppendMessage(cmd.flags, cmd.date, cmd.message, cmd.catenate, cmd.utf8)
    messages = (first, *cmd.more)
    datas = [message_data(session, m) for m in messages]
    check_quota(session, mailbox.user, sum(map(len, datas)), len(datas))  # RFC 9208 §4.3
    durable.check_writable(session, mailbox.user)  # DESIGN.md §4: refuse before storing
    uids = store_all(session, mailbox, messages, datas)
    added = durable.Added()
    added.note(mailbox, uids)
    # The UIDVALIDITY of now: APPENDUID names the UIDs these messages got (RFC 4315 §3).
    reply: Reply = ("APPEND completed", "APPENDUID",
                    (mailbox.uidvalidity, Atom(compress(uids))))
    return durable.when_durable(session, mailbox.user, added, "APPEND", lambda: reply)


def message_data(session: Session, message: c.AppendMessage) -> bytes:
    """The octets to store for one append-message (CATENATE resolved)."""
    if message.catenate is not None:
        data = catenate.build(session, message.catenate)
    else:
        data = message.message
    if not data:
        raise No("Empty messages are not accepted")
    limit = session.node.settings.max_literal
    if len(data) > limit:  # RFC 7889 §3: APPENDLIMIT
        raise No(f"Message is over the {limit} byte APPENDLIMIT", "TOOBIG")
    return data


def store_all(session: Session, mailbox: Mailbox, messages: tuple[c.AppendMessage, ...],
              datas: list[bytes]) -> list[int]:
    """Append every message, or none of them (RFC 3502 §6.3.11); their new UIDs."""
    limits.of(session.node).check_memory(session, sum(map(len, datas)))  # limits.py
    uids: list[int] = []
    try:
        for message, data in zip(messages, datas, strict=True):
            date = message.date if isinstance(message.date, datetime) else None
            op = Append.new(session.store, mailbox.user, mailbox.name, data,
                            flags=frozenset(permitted_flags(session, mailbox, message.flags)),
                            internaldate=date)  # RFC 4314 §4: flags need s/t/w
            changes = session.apply(op)
            uids.append(next(ch.uids[-1] for ch in changes if isinstance(ch, MessagesAdded)))
    except No:
        if uids:
            session.apply(Expunge(mailbox.user, mailbox.name, tuple(uids)))
        raise
    return uids
