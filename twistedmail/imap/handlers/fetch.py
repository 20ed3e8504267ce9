"""FETCH and UID FETCH (RFC 3501 §6.4.5, §6.4.8)."""

from __future__ import annotations

from twistedmail.imap import commands as c
from twistedmail.imap.errors import Bad, No
from twistedmail.imap.fetchrender import UnsupportedItem, compile_items, sets_seen
from twistedmail.imap.session import Session
from twistedmail.store import StoreFlags

UID_ATT = c.FetchAtt("UID")


def fetch(session: Session, cmd: c.Fetch) -> None:
    """Render the requested items for each message named by the set."""
    view = session.require_view()
    atts = cmd.atts
    if cmd.uid and not any(a.name == "UID" and a.section is None for a in atts):
        atts = (UID_ATT, *atts)  # RFC 3501 §6.4.8: UID FETCH always returns UID
    flags_att = c.FetchAtt("FLAGS")
    try:
        items = compile_items(atts)
    except UnsupportedItem as err:
        raise Bad(f"Unsupported FETCH item {err}") from None
    pairs = view.resolve(cmd.sequence, cmd.uid, session.saved_search)
    seen_items: tuple = ()
    if not view.readonly and any(sets_seen(a) for a in atts):
        newly_seen = _mark_seen(session, [u for _, u in pairs])
        if newly_seen and flags_att not in atts:
            seen_items = compile_items((flags_att,))
    else:
        newly_seen = set()
    missing = _render(session, pairs, items, seen_items, newly_seen)
    if missing and not cmd.uid:
        # RFC 2180 §4.1.2: messages expunged by another session cannot be fetched.
        raise No("Some of the requested messages no longer exist", "EXPUNGEISSUED")


def _mark_seen(session: Session, uids: list[int]) -> set[int]:
    """Set \\Seen on the messages a non-PEEK body fetch reads (RFC 3501 §6.4.5)."""
    view = session.require_view()
    unseen = []
    for uid in uids:
        rec = view.record(uid)
        if rec is not None and "\\Seen" not in rec.flags:
            unseen.append(uid)
    if unseen:
        session.apply(StoreFlags(view.mailbox.user, view.mailbox.name, tuple(unseen), "add",
                                 frozenset({"\\Seen"})), own_flags=True)
    return set(unseen)


def _render(session: Session, pairs: list[tuple[int, int]], items: tuple, seen_items: tuple,
            newly_seen: set[int]) -> int:
    """Queue the FETCH responses; return how many messages had been expunged."""
    view = session.require_view()
    get = view.mailbox.get
    recent = view.recent
    chunks = []
    missing = 0
    for seq, uid in pairs:
        rec = get(uid)
        if rec is None:
            missing += 1
            continue
        is_recent = uid in recent
        parts = [fn(rec, seq, is_recent) for fn in items]
        if seen_items and uid in newly_seen:
            parts.extend(fn(rec, seq, is_recent) for fn in seen_items)
        chunks.append(b"* %d FETCH (%s)\r\n" % (seq, b" ".join(parts)))
    session.out.raw(b"".join(chunks))
    return missing
