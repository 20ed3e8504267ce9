"""NOTIFY (RFC 5465 §3.1): check the request, install the session's notifier."""

from __future__ import annotations

from twistedmail.imap.errors import Bad, No
from twistedmail.imap.fetchrender import UnsupportedItem, compile_items
from twistedmail.imap.handlers.mailbox import wire_name
from twistedmail.imap.namespaces import visible
from twistedmail.imap.notify import (
    MESSAGE_EVENTS,
    SELECTED_SPECS,
    SUPPORTED,
    Group,
    Notifier,
    Notify,
    status_items,
)
from twistedmail.imap.responses import Atom
from twistedmail.imap.session import Session


def notify(session: Session, cmd: Notify) -> None:
    """NOTIFY NONE / NOTIFY SET [STATUS] event-groups.

    The tagged OK follows any changes of the selected mailbox that were still
    queued: dispatch flushes them, which is the implicit NOOP of §3.1."""
    if not cmd.none:
        _check(cmd.groups)
    old = session.notifier
    if old is not None:
        old.stop()  # §3.1: NOTIFY SET replaces the previous settings
    notifier = Notifier(session, cmd.groups)
    session.notifier = notifier
    if session.view is not None:
        notifier.attach(session.view)
    if cmd.status:
        _initial_status(session, notifier)


def _check(groups: tuple[Group, ...]) -> None:
    """Refuse what RFC 5465 forbids (BAD) or this server does not deliver (NO)."""
    unsupported = [e.name for g in groups for e in g.events if e.name not in SUPPORTED]
    if unsupported:
        # §3.1: NO (not BAD) with BADEVENT listing every supported event.
        raise No(f"Unsupported event {unsupported[0][:40]}", "BADEVENT",
                 ([Atom(name) for name in SUPPORTED],))
    if sum(g.spec in SELECTED_SPECS for g in groups) > 1:
        raise Bad("Only one of SELECTED and SELECTED-DELAYED may be given")  # §6.1
    for group in groups:
        names = {e.name for e in group.events}
        if group.spec in SELECTED_SPECS and names - set(MESSAGE_EVENTS):
            raise Bad("Only message events may follow SELECTED")  # §6.1
        if ("MessageNew" in names) != ("MessageExpunge" in names):
            raise Bad("MessageNew and MessageExpunge must be given together")  # §5
        if "FlagChange" in names and "MessageNew" not in names:
            raise Bad("FlagChange needs MessageNew and MessageExpunge")  # §5
        for event in group.events:
            _check_atts(event.atts)  # only used for the selected mailbox (§5.2)


def _check_atts(atts: tuple) -> None:
    if not atts:
        return
    try:
        compile_items(atts)
    except UnsupportedItem as err:
        raise Bad(f"Unsupported fetch attribute {err}") from None


def _initial_status(session: Session, notifier: Notifier) -> None:
    """§3.1: with STATUS, one STATUS per watched non-selected mailbox before the OK."""
    selected = session.view.mailbox.id if session.view is not None else None
    for name, box in visible(session):
        if box.id == selected or box.user != session.user:
            continue
        if any(notifier.match(name, kind) for kind in ("MessageNew", "FlagChange")):
            session.out.untagged(Atom("STATUS"), wire_name(name),
                                 status_items(session, box))
