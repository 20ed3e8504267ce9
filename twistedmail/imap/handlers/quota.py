"""GETQUOTA GETQUOTAROOT SETQUOTA and the over-quota check (RFC 9208).

Decisions (see also ``store/quota.py``):
  * One quota root per account, named like the account ("#public" for the
    public namespace, "#public:F" for configured public folder F in a cluster,
    namespaces.py); resources STORAGE (KiB) and MESSAGE.
  * GETQUOTA is allowed on the user's own root and the public ones; admins
    (``NodeSettings.admins``) may read and SETQUOTA every root.  Anyone else gets
    NO [NOPERM], whether the root exists or not (no leak of account names).
  * GETQUOTAROOT names the root of any mailbox the user can see, but sends its
    QUOTA only where GETQUOTA would be allowed.
"""

from __future__ import annotations

from twistedmail.imap import commands as c
from twistedmail.imap.errors import No
from twistedmail.imap.handlers.mailbox import wire_name
from twistedmail.imap.namespaces import client_name, is_admin, is_public_owner, lookup
from twistedmail.imap.responses import Atom
from twistedmail.imap.session import Session
from twistedmail.store import Mailbox, SetQuota
from twistedmail.store import quota as q


def defaults(session: Session) -> dict[str, int]:
    """The node's default limits (0 = unlimited) from NodeSettings."""
    settings = session.node.settings
    return {q.STORAGE: getattr(settings, "quota_storage", 0),
            q.MESSAGE: getattr(settings, "quota_messages", 0)}


def check(session: Session, owner: str, add_bytes: int, add_messages: int) -> None:
    """NO [OVERQUOTA] if adding this much to ``owner``'s account passes a limit
    (RFC 9208 §4.3: APPEND, COPY and MOVE fail, nothing is stored)."""
    resource = q.exceeded(session.store, owner, add_bytes, add_messages, defaults(session))
    if resource is not None:
        raise No(f"Quota exceeded ({resource})", "OVERQUOTA")


def _may_read(session: Session, root: str) -> bool:
    return (root == q.root_of(session.username) or is_public_owner(root)
            or is_admin(session))


def _send_quota(session: Session, root: str) -> None:
    """``* QUOTA root (resource usage limit ...)`` for the limited resources (§5.1)."""
    limits = q.limits(session.store, root, defaults(session))
    used = q.usage(session.store, root)
    items: list[object] = []
    for resource in q.RESOURCES:
        if resource in limits:
            items += [Atom(resource), used[resource], limits[resource]]
    session.out.untagged(Atom("QUOTA"), root, items)


def getquota(session: Session, cmd: c.QuotaCommand) -> None:
    """RFC 9208 §4.1.1."""
    if not _may_read(session, cmd.root):
        raise No("Permission denied", "NOPERM")
    if not session.store.has_account(cmd.root):
        raise No("No such quota root", "NONEXISTENT")
    _send_quota(session, cmd.root)


def getquotaroot(session: Session, cmd: c.QuotaCommand) -> None:
    """RFC 9208 §4.1.2: ``* QUOTAROOT mailbox root`` then the root's QUOTA."""
    mailbox = lookup(session, cmd.mailbox)
    root = q.root_of(mailbox.user)
    session.out.untagged(Atom("QUOTAROOT"), wire_name(client_name(session, mailbox)), root)
    if _may_read(session, root):
        _send_quota(session, root)


def setquota(session: Session, cmd: c.QuotaCommand) -> None:
    """RFC 9208 §4.1.3: admins only; the listed limits replace the root's limits."""
    if not is_admin(session):
        raise No("Only administrators may set quotas", "NOPERM")
    if not session.store.has_account(cmd.root):
        raise No("No such quota root", "NONEXISTENT")
    unknown = [name for name, _ in cmd.limits if name not in q.RESOURCES]
    if unknown:
        raise No(f"Unsupported resource {unknown[0]}", "CANNOT")
    session.apply(SetQuota(cmd.root, cmd.limits))
    _send_quota(session, cmd.root)


def check_copy(session: Session, src: Mailbox, dest: Mailbox, uids: list[int],
               move: bool) -> None:
    """COPY / MOVE into ``dest``: a MOVE within one account adds nothing (RFC 9208 §4.3)."""
    if move and dest.user == src.user:
        return
    size = sum(rec.size for uid in uids if (rec := src.get(uid)) is not None)
    check(session, dest.user, size, len(uids))
