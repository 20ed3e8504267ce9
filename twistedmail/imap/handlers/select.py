"""SELECT EXAMINE CHECK CLOSE UNSELECT EXPUNGE UID EXPUNGE."""

from __future__ import annotations

from twistedmail.imap import commands as c
from twistedmail.imap import modseq, referrals, rev2
from twistedmail.imap.errors import Bad, No
from twistedmail.imap.fetchrender import flags_bytes
from twistedmail.imap.handlers.common import Reply
from twistedmail.imap.handlers.durable import check_enabled
from twistedmail.imap.namespaces import has_right, require, writable
from twistedmail.imap.responses import Atom
from twistedmail.imap.selected import SelectedView
from twistedmail.imap.session import Session
from twistedmail.store import Expunge, Mailbox

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


def mailbox_keywords(mailbox: Mailbox) -> list[str]:
    """Keywords in use in ``mailbox`` (for the FLAGS response)."""
    seen: dict[str, str] = {}
    for rec in mailbox.records():
        for flag in rec.flags:
            if not flag.startswith("\\"):
                seen.setdefault(flag.lower(), flag)
    return sorted(seen.values())


def select(session: Session, cmd: c.Select) -> tuple[str, str, tuple[object, ...]]:
    """RFC 3501 §6.3.1 SELECT / §6.3.2 EXAMINE, with RFC 7162 CONDSTORE and QRESYNC."""
    qresync = cmd.qresync
    if qresync is not None and "QRESYNC" not in session.enabled:
        raise Bad("QRESYNC must be enabled first", "CLIENTBUG")  # RFC 7162 §3.2.3
    if session.view is not None:
        # RFC 7162 §3.2.11: the boundary between the old mailbox's responses and these.
        session.out.untagged_status("OK", "Previous mailbox closed", "CLOSED")
    session.unselect()  # RFC 3501 §6.3.1: a failed SELECT leaves no mailbox selected
    referrals.check_mailbox(session, cmd.mailbox)  # RFC 2193 §4: NO [REFERRAL]
    mailbox = session.mailbox(cmd.mailbox)
    require(session, mailbox, "r")  # RFC 4314 §4; without s/w/t/e rights: READ-ONLY
    check_enabled(session, mailbox.user)  # convert -e- of the folder's mail file
    readonly = cmd.readonly or not writable(session, mailbox)
    if cmd.condstore:
        modseq.activate(session)  # RFC 7162 §3.1.8
    view = session.select(mailbox, readonly, session.condstore)
    view.qresync = "QRESYNC" in session.enabled
    out = session.out
    flags = [*SYSTEM_FLAGS, *mailbox_keywords(mailbox)]
    out.untagged(Atom("FLAGS"), [Atom(f) for f in flags])
    permanent = [] if readonly else [*flags, "\\*"]
    out.untagged_status("OK", "Flags permitted", "PERMANENTFLAGS",
                        ([Atom(f) for f in permanent],))
    if not rev2.select_responses(session, out, view):  # RFC 9051 §6.3.2
        out.raw(b"* %d EXISTS\r\n* %d RECENT\r\n" % (view.exists, len(view.recent)))
    first_unseen = None if session.rev2 else mailbox.first_unseen_uid()  # rev2: no [UNSEEN]
    if first_unseen is not None:
        seq = view.seq_of(first_unseen)
        if seq is not None:
            out.untagged_status("OK", f"Message {seq} is first unseen", "UNSEEN", (seq,))
    out.untagged_status("OK", "UIDs valid", "UIDVALIDITY", (mailbox.uidvalidity,))
    out.untagged_status("OK", "Predicted next UID", "UIDNEXT", (mailbox.uidnext,))
    out.untagged_status("OK", "Ok", "MAILBOXID", ([Atom(mailbox.id)],))  # RFC 8474 §4.1
    # RFC 7162 §3.1.2.1: sent on every SELECT/EXAMINE (we always keep mod-sequences).
    out.untagged_status("OK", "Highest", "HIGHESTMODSEQ", (modseq.highest(mailbox),))
    if qresync is not None and qresync.uidvalidity == mailbox.uidvalidity:
        _resync(session, view, qresync)
    mode = "READ-ONLY" if readonly else "READ-WRITE"
    verb = "EXAMINE" if cmd.readonly else "SELECT"
    return (f"{verb} completed", mode, ())


def _resync(session: Session, view: SelectedView, params: c.Qresync) -> None:
    """RFC 7162 §3.2.5.1: VANISHED (EARLIER) for what was expunged since the client's
    mod-sequence, then FETCH (UID FLAGS MODSEQ) for every message changed since."""
    mailbox = view.mailbox
    after = _matched_uid(view, params.seq_match) if params.seq_match is not None else 0
    gone = modseq.vanished(mailbox, params.modseq, params.known_uids, after)
    chunks = [modseq.vanished_earlier(gone)]
    threshold = modseq.since(params.modseq)
    get, recent = mailbox.get, view.recent
    for seq, uid in view.pairs():
        rec = get(uid)
        if rec is not None and rec.modseq > threshold:
            chunks.append(b"* %d FETCH (UID %d %s MODSEQ (%d))\r\n" % (
                seq, uid, flags_bytes(rec.flags, uid in recent), rec.modseq))
    session.out.raw(b"".join(chunks))


def _matched_uid(view: SelectedView, seq_match: tuple[c.SequenceSet, c.SequenceSet]) -> int:
    """RFC 7162 §3.2.5.2: the largest UID up to which the client's (seq, UID) pairs
    all still hold, so nothing at or below it was expunged (used only when
    tombstones that old are gone; the pairs are a hint, extra ones are ignored)."""
    seqs = _upto(seq_match[0], view.exists)
    uids = _upto(seq_match[1], view.mailbox.uidnext - 1)
    matched = 0
    for seq, uid in zip(seqs, uids, strict=False):
        if view.uids[seq - 1] != uid:
            break
        matched = uid
    return matched


def _upto(seqset: c.SequenceSet, largest: int) -> list[int]:
    """The numbers of ``seqset`` up to ``largest``, ascending (never more than that)."""
    out: set[int] = set()
    for r in seqset.ranges:
        lo = largest if r.start == c.STAR else r.start
        hi = largest if r.end == c.STAR else r.end
        lo, hi = min(lo, hi), max(lo, hi)
        out.update(range(lo, min(hi, largest) + 1))
    return sorted(out)


def check(session: Session, cmd: c.Simple) -> None:
    """RFC 3501 §6.4.1: nothing to checkpoint in memory."""


def close(session: Session, cmd: c.Simple) -> None:
    """RFC 3501 §6.4.2: silently expunge (if read-write) and unselect."""
    view = session.require_view()
    if not view.readonly and has_right(session, view.mailbox, "e"):  # RFC 4314 §4
        doomed = _deleted_uids(session, [u for _, u in view.pairs()])
        if doomed:
            session.apply(Expunge(view.mailbox.user, view.mailbox.name, tuple(doomed)))
    session.unselect()


def unselect(session: Session, cmd: c.Simple) -> None:
    """RFC 3691: unselect without expunging."""
    session.unselect()


def expunge(session: Session, cmd: c.Simple) -> Reply | None:
    """RFC 3501 §6.4.3: remove \\Deleted messages; EXPUNGE (or VANISHED) responses follow."""
    return _expunge(session, [u for _, u in session.require_view().pairs()])


def uid_expunge(session: Session, cmd: c.UidExpunge) -> Reply | None:
    """RFC 4315 §2.1: expunge only the named UIDs that are \\Deleted."""
    view = session.require_view()
    pairs = view.resolve(cmd.sequence, by_uid=True, saved=session.saved_search)  # RFC 5182
    return _expunge(session, [u for _, u in pairs])


def _expunge(session: Session, uids: list[int]) -> Reply | None:
    view = session.require_view()
    if view.readonly:
        raise No("Mailbox is read-only", "READ-ONLY")
    require(session, view.mailbox, "e")  # RFC 4314 §4
    doomed = _deleted_uids(session, uids)
    if doomed:
        session.apply(Expunge(view.mailbox.user, view.mailbox.name, tuple(doomed)))
        if view.condstore:
            # RFC 7162 §3.2.7, §3.2.9: the new per-mailbox mod-sequence in the tagged OK.
            return ("EXPUNGE completed", "HIGHESTMODSEQ", (modseq.highest(view.mailbox),))
    return None


def _deleted_uids(session: Session, uids: list[int]) -> list[int]:
    view = session.require_view()
    out = []
    for uid in uids:
        rec = view.record(uid)
        if rec is not None and "\\Deleted" in rec.flags:
            out.append(uid)
    return out
