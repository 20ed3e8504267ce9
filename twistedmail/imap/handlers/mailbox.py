"""CREATE DELETE RENAME SUBSCRIBE UNSUBSCRIBE LIST LSUB STATUS (RFC 3501 §6.3).

Configured public folders ([public] folders) are made by the config: RENAME of one
(or of a superior of one), RENAME across public pseudo-accounts ("#public" <->
"#public:F", namespaces.py) and DELETE of one answer NO [CANNOT]; folders below
them follow the normal rules (contract A)."""

from __future__ import annotations

from twistedmail.imap import commands as c
from twistedmail.imap import listing, referrals, rev2
from twistedmail.imap.errors import Bad, No
from twistedmail.imap.namespaces import (
    CONFIGURED,
    NOT_FOUND,
    PUBLIC_OWNER,
    check_mailbox_limit,
    client_name,
    configured_conflict,
    configured_folders,
    create_mailbox,
    directory,
    hidden_public,
    is_public_owner,
    require,
    require_create,
    resolve,
)
from twistedmail.imap.responses import Atom, MailboxName
from twistedmail.imap.session import Session
from twistedmail.limits import new_mailboxes
from twistedmail.store import (
    DeleteMailbox,
    Mailbox,
    RenameMailbox,
    SetSpecialUse,
    Subscribe,
    Unsubscribe,
)

DELIM = "/"


def wire_name(name: str) -> bytes:
    """A mailbox name as sent to the client: modified UTF-7 (RFC 3501 §5.1.3), or
    UTF-8 once the session enabled UTF8=ACCEPT (RFC 6855 §3; see MailboxName)."""
    return MailboxName.of(name)


def create(session: Session, cmd: c.MailboxCommand) -> tuple[str, str, tuple[object, ...]]:
    """RFC 3501 §6.3.3; missing parents are created too.  RFC 6154 §3 USE
    attributes; the tagged OK carries RFC 8474 §4.1 [MAILBOXID (id)]."""
    name = cmd.mailbox.rstrip(DELIM)
    if name.upper() == "INBOX":
        raise No("INBOX already exists", "ALREADYEXISTS")
    referrals.check_mailbox(session, name)  # RFC 2193 §4
    owner, local = resolve(session, name)
    special = listing.check_use(cmd.special_use)  # NO [USEATTR] before creating
    create_mailbox(session, owner, local)  # RFC 4314 §4: "k" on the parent
    box = session.store.mailbox(owner, local)
    if special:
        session.apply(SetSpecialUse(owner, box.name, special))
    return ("CREATE completed", "MAILBOXID", ([Atom(box.id)],))


def delete(session: Session, cmd: c.MailboxCommand) -> None:
    """RFC 3501 §6.3.4."""
    if cmd.mailbox.upper() == "INBOX":
        raise No("INBOX cannot be deleted", "CANNOT")
    referrals.check_mailbox(session, cmd.mailbox)  # RFC 2193 §4
    owner, local = resolve(session, cmd.mailbox)
    if hidden_public(session, owner):
        raise No(NOT_FOUND, "NONEXISTENT")  # RFC 4314 §4: as for a missing mailbox
    if is_public_owner(owner) and local in configured_folders(session):
        raise No(CONFIGURED, "CANNOT")
    mailbox = session.mailbox(cmd.mailbox)
    require(session, mailbox, "x")  # RFC 4314 §4
    view = session.view
    if view is not None and view.mailbox is mailbox:
        session.unselect()
    session.apply(DeleteMailbox(mailbox.user, mailbox.name))


def rename(session: Session, cmd: c.Rename) -> None:
    """RFC 3501 §6.3.5, including the INBOX special case."""
    referrals.check_mailbox(session, cmd.old)  # RFC 2193 §4
    referrals.check_mailbox(session, cmd.new)
    owner, local = resolve(session, cmd.new.rstrip(DELIM))
    _check_public_rename(session, cmd.old, owner)
    mailbox = session.mailbox(cmd.old)
    require(session, mailbox, "x")  # RFC 4314 §4: "x" on the old name, "k" on the new parent
    if owner != mailbox.user:
        raise No("Cannot rename a mailbox into another namespace", "CANNOT")
    require_create(session, owner, local)
    adding = new_mailboxes(session.store, owner, local) - (mailbox.name.upper() != "INBOX")
    check_mailbox_limit(session, owner, adding)  # RENAME INBOX leaves INBOX (RFC 3501)
    session.apply(RenameMailbox(mailbox.user, mailbox.name, local))


def _check_public_rename(session: Session, old: str, new_owner: str) -> None:
    """NO [CANNOT] for a RENAME of a configured public folder (or of a superior of
    one), or into / out of one: "#public:F" and "#public" are different accounts."""
    owner, local = resolve(session, old)
    if hidden_public(session, owner):
        raise No(NOT_FOUND, "NONEXISTENT")  # RFC 4314 §4: as for a missing mailbox
    if configured_conflict(session, owner, local):
        raise No(CONFIGURED, "CANNOT")
    if hidden_public(session, new_owner):
        return  # the new name's checks answer as for a missing superior
    configured = {o for o in (owner, new_owner) if is_public_owner(o) and o != PUBLIC_OWNER}
    if configured and owner != new_owner:
        raise No(CONFIGURED, "CANNOT")


def subscribe(session: Session, cmd: c.MailboxCommand) -> None:
    """RFC 3501 §6.3.6: only existing mailboxes may be subscribed, and the directory
    entries of public folders held on other nodes (namespaces.directory)."""
    referrals.check_mailbox(session, cmd.mailbox)  # RFC 2193 §4
    if cmd.mailbox not in directory(session):
        session.mailbox(cmd.mailbox)
    session.apply(Subscribe(session.username, cmd.mailbox))


def unsubscribe(session: Session, cmd: c.MailboxCommand) -> None:
    """RFC 3501 §6.3.7: a name may be unsubscribed even if it no longer exists."""
    referrals.check_mailbox(session, cmd.mailbox)  # RFC 2193 §4
    assert session.user is not None
    if cmd.mailbox not in session.store.subscriptions(session.user):
        raise No(f"Not subscribed to {cmd.mailbox}", "NONEXISTENT")
    session.apply(Unsubscribe(session.username, cmd.mailbox))


# --- LIST / LSUB (listing.py) ------------------------------------------------


def list_(session: Session, cmd: c.ListCmd) -> None:
    """LIST (RFC 3501 §6.3.8, RFC 5258, RFC 5819, RFC 6154) and LSUB (§6.3.9)."""
    listing.list_mailboxes(session, cmd, write_status, STATUS_ITEMS)


# --- STATUS -------------------------------------------------------------------

STATUS_ITEMS = ("MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "APPENDLIMIT",
                "HIGHESTMODSEQ", "SIZE", "MAILBOXID",  # RFC 8438, RFC 8474 §4.2
                "DELETED")  # RFC 9051 §6.3.11


def status(session: Session, cmd: c.Status) -> None:
    """RFC 3501 §6.3.10."""
    unknown = [i for i in cmd.items if i not in STATUS_ITEMS
               or not rev2.status_item_allowed(session, i)]  # rev2: no RECENT
    if unknown:
        raise Bad(f"Unknown STATUS item {unknown[0]}")
    referrals.check_mailbox(session, cmd.mailbox)  # RFC 2193 §4
    write_status(session, session.mailbox(cmd.mailbox), cmd.items)


def write_status(session: Session, mailbox: Mailbox, wanted: tuple[str, ...]) -> None:
    """One ``* STATUS`` response: for STATUS and for LIST-STATUS (RFC 5819)."""
    require(session, mailbox, "r")  # RFC 4314 §4
    values = {
        "MESSAGES": lambda: len(mailbox),
        "RECENT": lambda: len(mailbox.recent_uids),
        "UIDNEXT": lambda: mailbox.uidnext,
        "UIDVALIDITY": lambda: mailbox.uidvalidity,
        "UNSEEN": lambda: mailbox.unseen_count(),
        "SIZE": lambda: mailbox.total_size,  # RFC 8438 §3
        "DELETED": lambda: rev2.status_value(session, "DELETED", mailbox),  # RFC 9051
        "MAILBOXID": lambda: [Atom(mailbox.id)],  # RFC 8474 §4.2
        "APPENDLIMIT": lambda: session.node.settings.max_literal,  # RFC 7889 §4
        "HIGHESTMODSEQ": lambda: mailbox.highestmodseq or 1,  # RFC 7162 §3.1.7 (modseq.py)
    }
    items: list[object] = []
    for item in wanted:
        items.extend([Atom(item), values[item]()])
    if not items and not wanted:
        raise No("STATUS needs at least one item")
    session.out.untagged(Atom("STATUS"), wire_name(client_name(session, mailbox)), items)
