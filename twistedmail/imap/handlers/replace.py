"""REPLACE and UID REPLACE (RFC 8508).

The new message is appended to the named mailbox (which may differ from the
selected one, RFC 8508 §3.1), then the old message is expunged from the
selected mailbox, in one reactor turn: no session sees one without the other.
If anything fails before the append, nothing changes (§3.2).  Responses
(§3.3, §3.4): ``* OK [APPENDUID v uid]``, then the EXPUNGE (or whatever the
selected view announces for an expunge, e.g. VANISHED) and EXISTS updates.
"""

from __future__ import annotations

from twistedmail.imap import commands as c
from twistedmail.imap.errors import Bad, No
from twistedmail.imap.handlers.append import message_data, store_all
from twistedmail.imap.handlers.common import target_mailbox
from twistedmail.imap.namespaces import require
from twistedmail.imap.selected import SelectedView
from twistedmail.imap.session import Session
from twistedmail.store import Expunge


def replace(session: Session, cmd: c.Replace) -> None:
    """RFC 8508 §3: append ``cmd.message`` to ``cmd.mailbox``, expunge the old message."""
    view = session.require_view()
    if view.readonly:
        raise No("Mailbox is read-only", "READ-ONLY")
    require(session, view.mailbox, "te")  # RFC 4314 §4: the old message is expunged
    old_uid = _old_uid(view, cmd)
    dest = target_mailbox(session, cmd.mailbox)  # NO [TRYCREATE] (RFC 3501 §6.3.11)
    data = message_data(session, cmd.message)
    uid = store_all(session, dest, (cmd.message,), [data])[0]
    # RFC 8508 §3.4: APPENDUID goes in an untagged OK, before the EXPUNGE.
    session.out.untagged_status("OK", "Replacement Message ID", "APPENDUID",
                                (dest.uidvalidity, uid))
    session.apply(Expunge(view.mailbox.user, view.mailbox.name, (old_uid,)))


def _old_uid(view: SelectedView, cmd: c.Replace) -> int:
    """The UID of the message to replace; BAD for a bad sequence number, NO if gone."""
    if not view.uids:
        raise (No if cmd.uid else Bad)("The mailbox is empty")
    if cmd.uid:
        uid = view.uids[-1] if cmd.target == c.STAR else cmd.target
        if view.seq_of(uid) is None:
            raise No(f"No message with UID {uid}", "NONEXISTENT")
    else:
        seq = view.exists if cmd.target == c.STAR else cmd.target
        if seq > view.exists:  # RFC 3501 §9: an invalid sequence number is BAD
            raise Bad(f"No message {seq}")
        uid = view.uids[seq - 1]
    if view.record(uid) is None:
        raise No("The message to replace has been expunged", "EXPUNGEISSUED")  # RFC 5530
    return uid
