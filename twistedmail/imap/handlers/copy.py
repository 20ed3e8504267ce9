"""COPY, UID COPY, MOVE, UID MOVE (RFC 3501 §6.4.7, RFC 6851).

Invariants:
  * Single-node mode: one store op (``Copy``, with ``move``) and the answer in
    the same reactor turn.
  * In a cluster (DESIGN.md §4) the answer waits until the copies are durable
    (handlers/durable.py).  MOVE is then done as copy, wait, expunge the
    sources: if the copies cannot be made durable they are expunged again and
    the answer is NO [UNAVAILABLE] with the sources untouched, so a failed MOVE
    never loses mail.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred

from twistedmail import limits
from twistedmail.imap import commands as c
from twistedmail.imap import referrals
from twistedmail.imap.errors import No
from twistedmail.imap.handlers import durable
from twistedmail.imap.handlers.common import Reply, target_mailbox
from twistedmail.imap.handlers.quota import check_copy
from twistedmail.imap.namespaces import require
from twistedmail.imap.responses import Atom
from twistedmail.imap.seqset import compress
from twistedmail.imap.session import Session
from twistedmail.store import Copied, Copy, Expunge, Mailbox


def copy(session: Session, cmd: c.Copy) -> Reply | None | Deferred[Reply | None]:
    """RFC 3501 §6.4.7 COPY, RFC 6851 MOVE, answering COPYUID (RFC 4315 §3)."""
    view = session.require_view()
    referrals.check_mailbox(session, cmd.mailbox)  # RFC 2193 §4: the destination
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
    if not cmd.move:  # a MOVE frees what it adds; COPY grows the node (limits.py)
        limits.of(session.node).check_memory(session)
    source = view.mailbox
    durable.check_writable(session, dest.user)  # DESIGN.md §4: refuse before storing
    if cmd.move and source.user != dest.user:
        durable.check_writable(session, source.user)
    in_one_step = cmd.move and durable.cluster_of(session) is None
    other = dest.user if dest.user != source.user else ""  # a shared folder's owner
    changes = session.apply(Copy(source.user, source.name, tuple(uids), dest.name,
                                 in_one_step, other))
    copied = next((ch for ch in changes if isinstance(ch, Copied)), None)
    if copied is None:
        return None
    added = durable.Added()
    added.note(dest, [b for _, b in copied.uid_map])
    expunge_later = cmd.move and not in_one_step
    return durable.when_durable(
        session, dest.user, added, "MOVE" if cmd.move else "COPY",
        lambda: _answer(session, cmd, source, dest, copied, expunge_later))


def _answer(session: Session, cmd: c.Copy, source: Mailbox, dest: Mailbox, copied: Copied,
            expunge_sources: bool) -> Reply | None:
    """COPYUID in the tagged OK (COPY) or an untagged OK (MOVE), RFC 4315 §3."""
    src = Atom(compress([a for a, _ in copied.uid_map]))
    dst = Atom(compress([b for _, b in copied.uid_map]))
    if cmd.move:
        # RFC 6851 §4.3: COPYUID goes in an untagged OK before the EXPUNGEs.
        session.out.untagged_status("OK", "Moved", "COPYUID", (dest.uidvalidity, src, dst))
        if expunge_sources:
            _expunge_sources(session, source, [a for a, _ in copied.uid_map])
        return None
    return ("COPY completed", "COPYUID", (dest.uidvalidity, src, dst))


def _expunge_sources(session: Session, source: Mailbox, uids: list[int]) -> None:
    """The second half of a cluster MOVE (RFC 6851 §3.3), once the copies are durable."""
    present = tuple(u for u in uids if source.get(u) is not None)
    if not present or session.store.mailbox_by_id(source.id) is not source:
        return  # expunged or deleted meanwhile
    session.apply(Expunge(source.user, source.name, present))
