"""COPY, UID COPY, MOVE, UID MOVE (RFC 3501 §6.4.7, RFC 6851)."""

from __future__ import annotations

from twistedmail.imap import commands as c
from twistedmail.imap.errors import No
from twistedmail.imap.handlers.common import Reply, target_mailbox
from twistedmail.imap.handlers.quota import check_copy
from twistedmail.imap.namespaces import require
from twistedmail.imap.responses import Atom
from twistedmail.imap.seqset import compress
from twistedmail.imap.session import Session
from twistedmail.store import Copied, Copy


def copy(session: Session, cmd: c.Copy) -> Reply | None:
    """RFC 3501 §6.4.7 COPY, RFC 6851 MOVE, answering COPYUID (RFC 4315 §3)."""
    view = session.require_view()
    dest = target_mailbox(session, cmd.mailbox)
    if cmd.move and view.readonly:
        raise No("Mailbox is read-only", "READ-ONLY")
    if cmd.move:
        require(session, view.mailbox, "te")  # RFC 4314 §4, RFC 6851 §3.3: MOVE expunges
    uids = [u for _, u in view.resolve(cmd.sequence, cmd.uid, session.saved_search)
            if view.record(u) is not None]
    if not uids:
        if cmd.move or cmd.uid:
            return None
        raise No("No messages to copy")
    check_copy(session, view.mailbox, dest, uids, cmd.move)  # RFC 9208 §4.3
    other = dest.user if dest.user != view.mailbox.user else ""  # a shared folder's owner
    changes = session.apply(Copy(view.mailbox.user, view.mailbox.name, tuple(uids), dest.name,
                                 cmd.move, other))
    copied = next((ch for ch in changes if isinstance(ch, Copied)), None)
    if copied is None:
        return None
    src = Atom(compress([a for a, _ in copied.uid_map]))
    dst = Atom(compress([b for _, b in copied.uid_map]))
    if cmd.move:
        # RFC 6851 §4.3: COPYUID goes in an untagged OK before the EXPUNGEs.
        session.out.untagged_status("OK", "Moved", "COPYUID", (dest.uidvalidity, src, dst))
        return None
    return ("COPY completed", "COPYUID", (dest.uidvalidity, src, dst))
