"""STORE and UID STORE (RFC 3501 §6.4.6)."""

from __future__ import annotations

from twistedmail.imap import commands as c
from twistedmail.imap import modseq
from twistedmail.imap.errors import No
from twistedmail.imap.handlers.common import Reply
from twistedmail.imap.namespaces import flag_rights, require
from twistedmail.imap.responses import Atom
from twistedmail.imap.seqset import compress
from twistedmail.imap.session import Session
from twistedmail.store import FlagsChanged, StoreFailed, StoreFlags

_MODES = {"+": "add", "-": "remove", "": "replace"}


def store(session: Session, cmd: c.Store) -> Reply | None:
    """RFC 3501 §6.4.6 STORE; UNCHANGEDSINCE per RFC 7162 §3.1.3."""
    view = session.require_view()
    if view.readonly:
        raise No("Mailbox is read-only", "READ-ONLY")
    require(session, view.mailbox, flag_rights(cmd.flags, cmd.mode == ""))  # RFC 4314 §4
    if cmd.unchangedsince is not None:
        modseq.activate(session)  # RFC 7162 §3.1: a CONDSTORE-enabling command
    pairs = [(s, u) for s, u in view.resolve(cmd.sequence, cmd.uid, session.saved_search)
             if view.record(u) is not None]
    if not pairs:
        return None
    op = StoreFlags(view.mailbox.user, view.mailbox.name, tuple(u for _, u in pairs),
                    _MODES[cmd.mode], frozenset(cmd.flags), cmd.unchangedsince)
    changes = session.apply(op, own_flags=True)
    failed = {u for ch in changes if isinstance(ch, StoreFailed) for u in ch.uids}
    if not cmd.silent:
        for seq, uid in pairs:
            rec = view.record(uid)
            if rec is not None and uid not in failed:
                item = view.flags_item(rec, cmd.uid)
                session.out.raw(b"* %d FETCH (%s)\r\n" % (seq, item))
    elif view.condstore:
        # RFC 7162 §3.1.3: even .SILENT reports each changed message's new MODSEQ.
        changed = {ch.uid for ch in changes if isinstance(ch, FlagsChanged)}
        for seq, uid in pairs:
            rec = view.record(uid)
            if rec is not None and uid in changed:
                session.out.raw(b"* %d FETCH (UID %d MODSEQ (%d))\r\n" % (seq, uid, rec.modseq))
    if failed:
        # RFC 7162 §3.1.3: MODIFIED names sequence numbers, or UIDs for UID STORE.
        nums = sorted(u if cmd.uid else view.seq_of(u) or 0 for u in failed)
        return ("Some messages were modified", "MODIFIED", (Atom(compress(nums)),))
    return None
