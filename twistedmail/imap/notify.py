"""RFC 5465 NOTIFY: which store events a session hears about, and when.

Model:
  * ``NOTIFY SET`` / ``NOTIFY NONE`` install a :class:`Notifier` as
    ``session.notifier``.  It subscribes to the store itself (``Watchers`` in
    selected.py keeps routing changes of the selected mailbox to its view).
  * Events of the selected mailbox still go through the session's
    ``SelectedView``; the notifier only filters what the view accepts
    (``view.accept``, RFC 5465 §6.1) and, for SELECTED / SELECTED-DELAYED,
    pushes what it accepted at once instead of waiting for the next command.
  * Events of other mailboxes become untagged ``STATUS`` (message events) and
    ``LIST`` (MailboxName, SubscriptionChange) responses.  They are queued and
    pushed on the next reactor turn, i.e. between commands or during IDLE
    (RFC 5465 §1: the client listens all the time; §4 IDLE sends the same).
  * Events this session caused are not reported for other mailboxes (RFC 5465
    §5 SHOULD); its selected view still sees them, they are command replies.

Invariants:
  * Nothing here ever sends EXPUNGE while a command that uses sequence
    numbers runs: pushes happen only between commands (a reactor turn later)
    or through ``SelectedView.flush`` with the dispatch table's permission;
    SELECTED-DELAYED never pushes expunges (RFC 5465 §6.1.2).
  * A notifier that was stopped (NOTIFY again, logout, connection lost) holds
    no store subscription and sends nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twistedmail.imap.commands import Command, FetchAtt
from twistedmail.imap.responses import Atom, Responder
from twistedmail.store import (
    FlagsChanged,
    MailboxCreated,
    MailboxDeleted,
    MailboxRegenerated,
    MailboxRenamed,
    MessagesAdded,
    MessagesExpunged,
    Subscribed,
    Unsubscribed,
)

if TYPE_CHECKING:
    from twistedmail.imap.parser import Reader
    from twistedmail.imap.selected import SelectedView
    from twistedmail.imap.session import Session

DELIM = "/"

# RFC 5465 §8 event names, as the RFC spells them.
MESSAGE_EVENTS = ("MessageNew", "MessageExpunge", "FlagChange", "AnnotationChange")
MAILBOX_EVENTS = ("MailboxName", "SubscriptionChange", "MailboxMetadataChange",
                  "ServerMetadataChange")
# What this server delivers (RFC 5465 §3.1: BADEVENT lists exactly these).
SUPPORTED = ("MessageNew", "MessageExpunge", "FlagChange", "MailboxName", "SubscriptionChange")
_CANON = {name.upper(): name for name in MESSAGE_EVENTS + MAILBOX_EVENTS}

SELECTED_SPECS = ("SELECTED", "SELECTED-DELAYED")  # RFC 5465 §6.1
OTHER_SPECS = ("INBOXES", "PERSONAL", "SUBSCRIBED")  # §6.2-§6.4 (no argument)
NAMED_SPECS = ("SUBTREE", "MAILBOXES")  # §6.5, §6.6 (one or more mailboxes)


# --- the command -------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One requested event; ``atts`` are MessageNew's fetch attributes."""

    name: str  # canonical spelling, or the client's word upper-cased if unknown
    atts: tuple[FetchAtt, ...] = ()


@dataclass(frozen=True)
class Group:
    """One event group: a mailbox specifier and its events (() for NONE)."""

    spec: str
    names: tuple[str, ...] = ()
    events: tuple[Event, ...] = ()

    def event(self, name: str) -> Event | None:
        """The requested event called ``name``, if any."""
        return next((e for e in self.events if e.name == name), None)


@dataclass(frozen=True)
class Notify(Command):
    """NOTIFY NONE (``groups`` empty, ``none``) or NOTIFY SET [STATUS] groups."""

    groups: tuple[Group, ...] = ()
    status: bool = False
    none: bool = False


def parse_notify(r: Reader, tag: str) -> Notify:
    """RFC 5465 §8: notify = "NOTIFY" SP (notify-set / notify-none)."""
    r.sp()
    if r.try_word(b"NONE"):
        return Notify(tag, none=True)
    if not r.try_word(b"SET"):
        r.fail("Expected SET or NONE")
    r.sp()
    status = r.try_word(b"STATUS")  # status-indicator = SP "STATUS"
    if status:
        r.sp()
    groups = [_group(r)]
    while r.skip(b" "):
        groups.append(_group(r))
    return Notify(tag, tuple(groups), status)


def _group(r: Reader) -> Group:
    """event-group = "(" filter-mailboxes SP events ")"."""
    r.expect(b"(", "( before event group")
    spec = r.word("mailbox specifier")
    names: tuple[str, ...] = ()
    if spec in NAMED_SPECS:
        r.sp()
        # one-or-more-mailbox = mailbox / "(" mailbox *(SP mailbox) ")"
        many = r.peek() == 0x28
        names = tuple(r.plist(r.mailbox, "mailbox")) if many else (r.mailbox(),)
    elif spec not in SELECTED_SPECS + OTHER_SPECS:
        r.fail(f"Unknown mailbox specifier {spec[:30]}")
    r.sp()
    if r.try_word(b"NONE"):
        events: tuple[Event, ...] = ()
    else:
        events = tuple(r.plist(lambda: _event(r), "event"))
    r.expect(b")", ") after event group")
    return Group(spec, names, events)


def _event(r: Reader) -> Event:
    """event = message-event / mailbox-event / user-event / event-ext."""
    from twistedmail.imap.parse_fetch import fetch_att

    word = r.word("event")
    name = _CANON.get(word, word)
    if name == "MessageNew" and r.data.startswith(b" (", r.pos):
        r.sp()  # "MessageNew" [SP "(" fetch-att *(SP fetch-att) ")"]
        return Event(name, tuple(r.plist(lambda: fetch_att(r), "fetch attribute")))
    return Event(name)


# --- what a change is ----------------------------------------------------------------


def message_kind(change: object) -> str | None:
    """The RFC 5465 message event a store change is, or None."""
    if isinstance(change, MessagesAdded):
        return "MessageNew"
    if isinstance(change, MessagesExpunged):
        return "MessageExpunge"
    if isinstance(change, FlagsChanged):
        return "FlagChange"
    return None


def covers(session: Session, group: Group, name: str) -> bool:
    """True if the non-selected ``group`` names the mailbox ``name`` (RFC 5465 §6)."""
    spec = group.spec
    if spec == "PERSONAL":  # §6.2: every mailbox in the personal namespace
        return True
    if spec == "INBOXES":  # §6.3: mail is only ever delivered to INBOX here
        return name == "INBOX"
    if spec == "SUBSCRIBED":  # §6.4: re-evaluated whenever it is used
        return name in session.store.subscriptions(session.username)
    if spec == "SUBTREE":  # §6.5: the mailboxes and all their inferiors
        return any(name == n or name.startswith(n + DELIM) for n in group.names)
    if spec == "MAILBOXES":  # §6.6: exactly these, no wildcards
        return name in group.names
    return False


# --- the per-session notifier ------------------------------------------------------


class Notifier:
    """The NOTIFY state of one session (``session.notifier``)."""

    def __init__(self, session: Session, groups: tuple[Group, ...]) -> None:
        self.session = session
        self.groups = groups
        self.selected = next((g for g in groups if g.spec in SELECTED_SPECS), None)
        self.pending: dict[tuple[str, object], Any] = {}  # ordered: STATUS / LIST
        self.own_added: set[int] = set()
        self.scheduled = False
        self.stopped = False
        self._lists = 0
        self._unsubscribe: Callable[[], None] | None = None
        if groups:
            self._unsubscribe = session.store.subscribe(self._on_apply)

    def stop(self) -> None:
        """Drop the store subscription and every queued notification."""
        self.stopped = True
        self.pending.clear()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    # --- matching ------------------------------------------------------------------

    def selected_event(self, kind: str) -> Event | None:
        """The requested message event ``kind`` for the selected mailbox (§6.1)."""
        return self.selected.event(kind) if self.selected is not None else None

    def match(self, name: str, kind: str) -> Event | None:
        """The event ``kind`` requested for the non-selected mailbox ``name``.

        Groups are tried in order; a matching group with NONE ends the search
        (RFC 5465 §5: NONE means no events for those mailboxes)."""
        for group in self.groups:
            if group.spec in SELECTED_SPECS or not covers(self.session, group, name):
                continue
            if not group.events:
                return None
            event = group.event(kind)
            if event is not None:
                return event
        return None

    # --- the selected mailbox (through its view) ---------------------------------------

    def attach(self, view: SelectedView) -> None:
        """Filter and speed up what ``view`` hears (called on SELECT and NOTIFY)."""
        view.accept = self.accept
        view.on_added = self.render_new

    def accept(self, change: object) -> bool:
        """Whether the selected view queues ``change`` (RFC 5465 §6.1, §3.1).

        The session's own changes always pass (they are command replies); other
        sessions' message events only when the selected group asks for them."""
        if self.stopped:
            return True
        kind = message_kind(change)
        if self.session.applying:
            if isinstance(change, MessagesAdded):
                self.own_added.update(change.uids)  # §5.2: no FETCH for own APPEND/COPY
            return True
        if kind is None:
            return True
        if self.selected_event(kind) is None:
            return False
        self.schedule()
        return True

    def render_new(self, out: Responder, view: SelectedView, uids: list[int]) -> None:
        """RFC 5465 §5.2: after EXISTS, a FETCH with the requested attributes."""
        from twistedmail.imap.fetchrender import compile_items

        own, self.own_added = self.own_added, set()
        event = self.selected_event("MessageNew")
        if event is None or not event.atts:
            return
        items = compile_items((FetchAtt("UID"), *[a for a in event.atts if a.name != "UID"]))
        for uid in uids:
            seq, rec = view.seq_of(uid), view.mailbox.get(uid)
            if uid in own or seq is None or rec is None:
                continue
            body = b" ".join(fn(rec, seq, uid in view.recent) for fn in items)
            out.raw(b"* %d FETCH (%s)\r\n" % (seq, body))

    # --- other mailboxes ---------------------------------------------------------------

    def _on_apply(self, op: object, changes: list[Any]) -> None:
        if self.stopped or self.session.applying:
            return  # RFC 5465 §5: the server SHOULD omit the client's own events
        for change in changes:
            self._queue(change)
        if self.pending:
            self.schedule()

    def _queue(self, change: object) -> None:
        kind = message_kind(change)
        if kind is not None or isinstance(change, MailboxRegenerated):
            self._queue_status(change, kind or "MessageNew")
        elif isinstance(change, (MailboxCreated, MailboxDeleted, MailboxRenamed)):
            self._queue_name(change)
        elif (isinstance(change, (Subscribed, Unsubscribed))
              and change.user == self.session.user
              and self.match(change.name, "SubscriptionChange")):
            self._queue_list(change.name)  # RFC 5465 §5.5

    def _queue_status(self, change: Any, kind: str) -> None:
        box = self.session.store.mailbox_by_id(change.mailbox_id)
        view = self.session.view
        if box is None or box.user != self.session.user:
            return
        if view is not None and view.mailbox.id == box.id:
            return  # the selected mailbox speaks through its view (§6.1)
        if self.match(box.name, kind) is not None:
            self.pending.setdefault(("STATUS", box.id), None)

    def _queue_name(self, change: Any) -> None:
        """RFC 5465 §5.4: a LIST for each mailbox name created, deleted or renamed."""
        if change.user != self.session.user:
            return
        if isinstance(change, MailboxRenamed):
            if self.match(change.new, "MailboxName") or self.match(change.old, "MailboxName"):
                self._queue_list(change.new, change.old)
        elif self.match(change.name, "MailboxName"):
            self._queue_list(change.name)

    def _queue_list(self, name: str, oldname: str | None = None) -> None:
        self._lists += 1
        self.pending[("LIST", self._lists)] = (name, oldname)

    # --- sending ---------------------------------------------------------------------

    def schedule(self) -> None:
        """Push queued notifications on the next reactor turn (between commands)."""
        if self.scheduled or self.stopped:
            return
        from twisted.internet import reactor

        self.scheduled = True
        reactor.callLater(0, self._push)

    def _push(self) -> None:
        self.scheduled = False
        if self.stopped or self.session.streaming:
            return  # a FETCH going out in slices reschedules this when it ends
        out = self.session.out
        self.write_pending(out)
        view = self.session.view
        selected = self.selected
        if view is not None and not view.deleted and selected is not None and view.has_pending():
            # RFC 5465 §6.1.1 SELECTED: at once; §6.1.2 SELECTED-DELAYED: expunges wait.
            view.flush(out, allow_expunge=selected.spec == "SELECTED", with_uid=True)
        self.session.conn.push()

    def write_pending(self, out: Responder) -> None:
        """Queue the pending STATUS / LIST responses (also before a tagged reply)."""
        pending, self.pending = self.pending, {}
        for (what, key), value in pending.items():
            if what == "STATUS":
                self._write_status(out, str(key))
            else:
                name, oldname = value
                self._write_list(out, name, oldname)

    def _write_status(self, out: Responder, box_id: str) -> None:
        """RFC 5465 §5.1-§5.3: STATUS of a non-selected mailbox (current values)."""
        box = self.session.store.mailbox_by_id(box_id)
        if box is None:
            return
        out.untagged(Atom("STATUS"), _wire(self.session, box.name),
                     status_items(self.session, box))

    def _write_list(self, out: Responder, name: str, oldname: str | None) -> None:
        attrs = [Atom(a) for a in list_attributes(self.session, name)]
        values: list[object] = [Atom("LIST"), attrs, DELIM, _wire(self.session, name)]
        if oldname is not None:  # RFC 5465 §5.4: extended LIST with OLDNAME
            values.append(["OLDNAME", [_wire(self.session, oldname)]])
        out.untagged(*values)


def status_items(session: Session, box: Any) -> list[object]:
    """The STATUS items NOTIFY sends: MESSAGES UIDNEXT UIDVALIDITY UNSEEN, plus
    HIGHESTMODSEQ once CONDSTORE/QRESYNC is enabled (RFC 5465 §5.2, §5.3)."""
    items: list[object] = [
        Atom("MESSAGES"), len(box), Atom("UIDNEXT"), box.uidnext,
        Atom("UIDVALIDITY"), box.uidvalidity, Atom("UNSEEN"), box.unseen_count(),
    ]
    if getattr(session, "condstore", False) or session.enabled & {"CONDSTORE", "QRESYNC"}:
        items += [Atom("HIGHESTMODSEQ"), box.highestmodseq]
    return items


def list_attributes(session: Session, name: str) -> list[str]:
    """Accurate LIST attributes for an unsolicited LIST (RFC 5465 §5.4, §5.5)."""
    user = session.username
    boxes = {m.name: m for m in session.store.mailboxes(user)}
    attrs: list[str] = []
    box = boxes.get(name)
    if box is None:
        attrs.append("\\NonExistent")  # RFC 5258 §3.4 / RFC 9051 §7.3.1
    else:
        prefix = name + DELIM
        attrs.append("\\HasChildren" if any(n.startswith(prefix) for n in boxes)
                     else "\\HasNoChildren")
    if name in session.store.subscriptions(user):
        attrs.append("\\Subscribed")
    if box is not None:
        attrs.extend(sorted(getattr(box, "special_use", ())))  # RFC 6154 §2
    return attrs


def _wire(session: Session, name: str) -> bytes:
    """A mailbox name as LIST sends it (modified UTF-7, or UTF-8 once enabled)."""
    from twistedmail.imap.handlers.mailbox import wire_name

    return wire_name(name)


# --- hooks called from shared modules -------------------------------------------------


def configure_view(session: Session, view: SelectedView) -> None:
    """session.select: a new view obeys the session's NOTIFY settings."""
    notifier = session.notifier
    if notifier is not None and not notifier.stopped:
        notifier.attach(view)


def before_tagged(session: Session) -> None:
    """dispatch: queued STATUS / LIST go out before the tagged reply too."""
    notifier = session.notifier
    if notifier is not None and notifier.pending:
        notifier.write_pending(session.out)
