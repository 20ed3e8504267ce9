"""Namespaces (RFC 2342) and access rights (RFC 4314): client names ↔ store mailboxes.

Three namespaces, all with delimiter "/":
  * personal ``""``: the user's own mailboxes, named as in the store;
  * other users ``"Other Users/"``: ``Other Users/bob/Work`` is bob's ``Work``;
  * shared ``"Public/"``: ``Public/News`` is ``News`` of the pseudo-account
    ``#public`` (its INBOX is never visible).  Admins (``NodeSettings.admins``)
    own the public namespace; other users get what its ACLs grant.

Public folder placement (issue 5, contract A): in cluster mode each configured
public folder F (``[public] folders``) and everything below it lives in its own
pseudo-account ``#public:F``, held by F's replicas only (``[public.replicas]``,
ClusterSpec.holders); other public folders stay in ``#public``, held by every
node.  A node without a replica of F keeps only its directory entry: LIST shows
``Public/F`` (:func:`directory`) but nothing there is a local mailbox.
Single-node mode keeps everything in ``#public``.

Invariants:
  * Every handler turns a client name into (owner, local name) only through
    :func:`resolve`, finds mailboxes only through :func:`lookup`, and lists them
    only through :func:`visible`, so access rules live in this one module.
  * Ops are always built from the owning account (``Mailbox.user``) and the local
    name (``Mailbox.name``), never from the client-visible name.
  * ``resolve`` maps ``Public/F...`` to ``#public:F`` for the longest configured F
    that is the name or a superior of it, so every mailbox of ``#public:F`` is F
    or below F; ``client_name`` is its inverse for every public owner.
  * A mailbox the user holds no right on is answered exactly like one that does
    not exist (same code, same text), and so is one needing a right the user lacks
    when the user lacks "l" too; otherwise a missing right is ``NO [NOPERM]``
    (RFC 4314 §4, §6: never leak the existence of a mailbox).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from twistedmail import limits
from twistedmail.cluster.spec import PUBLIC_ACCOUNT  # "#public:" + folder
from twistedmail.imap.errors import No
from twistedmail.observe.events import peer_of
from twistedmail.store import CreateMailbox, Mailbox, MailboxCreated, SetAcl, StoreError, names
from twistedmail.store.acl import ALL, ALL_RIGHTS, WRITE_RIGHTS, canonical, effective

if TYPE_CHECKING:
    from twistedmail.imap.session import Session

DELIM = "/"
OTHER_USERS = "Other Users"
PUBLIC = "Public"
PUBLIC_OWNER = "#public"  # pseudo-account owning the shared namespace
NAMESPACES = ((("", DELIM),), ((OTHER_USERS + DELIM, DELIM),), ((PUBLIC + DELIM, DELIM),))
NOT_FOUND = "No such mailbox"
CONFIGURED = "configured public folder; change [public] in the config"


# --- names ---------------------------------------------------------------------------


def is_public_owner(owner: str) -> bool:
    """True for the pseudo-accounts of the shared namespace: "#public", "#public:F"."""
    return owner == PUBLIC_OWNER or owner.startswith(PUBLIC_ACCOUNT)


def public_account(folder: str) -> str:
    """The pseudo-account of configured public folder ``folder`` (cluster mode)."""
    return PUBLIC_ACCOUNT + folder


def _spec(session: Session) -> Any | None:
    """The node's ClusterSpec, or None in single-node mode."""
    return getattr(getattr(session.node, "settings", None), "cluster", None)


def configured_folders(session: Session) -> tuple[str, ...]:
    """The configured public folders ([public] folders), as local names."""
    spec = _spec(session)
    if spec is not None:
        return tuple(spec.public_replicas)
    return tuple(getattr(session.node.settings, "public_folders", ()))


def configured_folder(folders: Iterable[str], local: str) -> str | None:
    """The longest of ``folders`` that is ``local`` or a superior of it."""
    hits = [f for f in folders if local == f or local.startswith(f + DELIM)]
    return max(hits, key=len) if hits else None


def public_owner(session: Session, local: str) -> str:
    """The pseudo-account holding public folder ``local``: "#public:F" in cluster
    mode when ``local`` is configured folder F or below it, else "#public"."""
    spec = _spec(session)
    folder = configured_folder(spec.public_replicas, local) if spec is not None else None
    return PUBLIC_OWNER if folder is None else public_account(folder)


def resolve(session: Session, name: str) -> tuple[str, str]:
    """(owner account, local name) for a client-visible mailbox name.

    The local name is "" for a namespace root ("Public", "Other Users",
    "Other Users/bob"), which is never a mailbox, and for any
    "Other Users/#..." (pseudo-accounts are reached through "Public/" only)."""
    head, _, rest = name.partition(DELIM)
    if head == PUBLIC:
        return public_owner(session, rest), rest
    if head == OTHER_USERS:
        user, _, local = rest.partition(DELIM)
        if not user or user.startswith("#"):
            return PUBLIC_OWNER, ""
        return user, local
    return session.username, name


def client_name(session: Session, mailbox: Mailbox) -> str:
    """The name the client sees for ``mailbox`` (inverse of :func:`resolve`)."""
    if mailbox.user == session.user:
        return mailbox.name
    if is_public_owner(mailbox.user):
        return f"{PUBLIC}{DELIM}{mailbox.name}"
    return f"{OTHER_USERS}{DELIM}{mailbox.user}{DELIM}{mailbox.name}"


def _hidden(owner: str, local: str) -> bool:
    """True for names that are never mailboxes: namespace roots, a public INBOX."""
    if not local:
        return True
    return is_public_owner(owner) and local.partition(DELIM)[0].upper() == names.INBOX


# --- rights ----------------------------------------------------------------------------


def is_admin(session: Session) -> bool:
    """True if the user is listed in ``NodeSettings.admins``."""
    return session.user in getattr(session.node.settings, "admins", ())


def owns(session: Session, owner: str) -> bool:
    """True if the user holds every right on ``owner``'s mailboxes implicitly."""
    return owner == session.user or (is_public_owner(owner) and is_admin(session))


def rights_of(session: Session, mailbox: Mailbox) -> frozenset[str]:
    """The RFC 4314 rights the user holds on ``mailbox`` (owners: all of them)."""
    if owns(session, mailbox.user):
        return ALL
    return effective(mailbox.acl, session.username)


def has_right(session: Session, mailbox: Mailbox, right: str) -> bool:
    """True if the user holds every right in ``right`` on ``mailbox``."""
    have = rights_of(session, mailbox)
    return all(r in have for r in right)


def require(session: Session, mailbox: Mailbox, need: str) -> None:
    """Fail unless the user holds every right in ``need`` on ``mailbox``.

    RFC 4314 §4: without "l" the answer is the one for a missing mailbox
    (NO [NONEXISTENT]), else NO [NOPERM] naming the missing rights."""
    have = rights_of(session, mailbox)
    missing = canonical(set(need) - have)
    if not missing:
        return
    if "l" not in have:
        raise No(NOT_FOUND, "NONEXISTENT")
    raise No(f"Permission denied: right(s) {missing} needed", "NOPERM")


def writable(session: Session, mailbox: Mailbox) -> bool:
    """False when a SELECT must be read-only: none of "s w t e" held (RFC 4314 §4)."""
    return bool(rights_of(session, mailbox) & WRITE_RIGHTS)


def flag_rights(flags: Iterable[str], replace: bool) -> str:
    """Rights a STORE of ``flags`` needs: \\Seen "s", \\Deleted "t", others "w"
    (RFC 4314 §4); replacing all flags (``FLAGS``) may change any, so needs all three."""
    if replace:
        return "stw"
    need = set()
    for flag in flags:
        low = flag.lower()
        need.add("s" if low == "\\seen" else "t" if low == "\\deleted" else "w")
    return canonical(need)


def permitted_flags(session: Session, mailbox: Mailbox, flags: Iterable[str]) -> tuple[str, ...]:
    """Those of ``flags`` the user may set (APPEND drops the others, RFC 4314 §4)."""
    have = rights_of(session, mailbox)
    return tuple(f for f in flags if set(flag_rights((f,), False)) <= have)


# --- finding and listing ---------------------------------------------------------------


def lookup(session: Session, name: str) -> Mailbox:
    """The store mailbox a client name designates; NO [NONEXISTENT] if none, or if
    it belongs to someone else and the user holds no right on it."""
    owner, local = resolve(session, name)
    own = owner == session.username
    if _hidden(owner, local):
        raise No(NOT_FOUND, "NONEXISTENT")
    try:
        box = session.store.mailbox(owner, local)
    except StoreError as err:
        if own:
            raise No(str(err) or NOT_FOUND, err.code) from None
        raise No(NOT_FOUND, "NONEXISTENT") from None
    if not own and not rights_of(session, box):
        raise No(NOT_FOUND, "NONEXISTENT")
    return box


def visible(session: Session) -> list[tuple[str, Mailbox]]:
    """(client name, mailbox) for every mailbox the user may see in LIST ("l" right)."""
    store = session.store
    user = session.username
    out = [(m.name, m) for m in store.mailboxes(user)]
    for owner in store.users():
        if owner == user:
            continue
        owner_like = owns(session, owner)
        public = is_public_owner(owner)
        for box in store.mailboxes(owner):
            if not (owner_like or box.acl) or _hidden(owner, box.name):
                continue
            if public and public_owner(session, box.name) != owner:
                continue  # e.g. superior "Lists" made in "#public:Lists/Announce"
            if owner_like or "l" in effective(box.acl, user):
                out.append((client_name(session, box), box))
    return out


def directory(session: Session) -> list[str]:
    """Client names ("Public/F") of the configured public folders with no replica on
    this node, for LIST: only their directory entry is known here (contract A).

    Shown to admins, and to everyone when ``public_rights`` grants "l" (the
    right every configured folder gives "anyone", RFC 4314 §4); empty in
    single-node mode, where every public folder is local."""
    spec = _spec(session)
    if spec is None:
        return []
    rights = getattr(session.node.settings, "public_rights", "")
    if not (is_admin(session) or "l" in rights):
        return []
    return sorted(f"{PUBLIC}{DELIM}{f}" for f in spec.public_replicas
                  if not spec.holds(public_account(f)))


def configured_conflict(session: Session, owner: str, local: str) -> bool:
    """True when public ``local`` is a configured folder or a superior of one:
    such a folder is made by the config, not by RENAME / DELETE (contract A)."""
    if not is_public_owner(owner) or not local:
        return False
    return any(f == local or f.startswith(local + DELIM) for f in configured_folders(session))


def hidden_public(session: Session, owner: str) -> bool:
    """True when configured public folder ``owner`` ("#public:F") must look like a
    missing mailbox to this user (RFC 4314 §4: never leak existence): held here and
    the user holds no right on F, or held elsewhere and its directory entry is not
    shown to the user (:func:`directory`).  Admins see everything."""
    if owner == PUBLIC_OWNER or not is_public_owner(owner) or is_admin(session):
        return False
    folder = owner[len(PUBLIC_ACCOUNT):]
    if session.store.has_account(owner):
        try:
            return not rights_of(session, session.store.mailbox(owner, folder))
        except StoreError:
            return False
    return f"{PUBLIC}{DELIM}{folder}" not in directory(session)


def _check_held(session: Session, owner: str) -> None:
    """NO [CANNOT] for a configured folder this node holds no replica of (a hidden one
    falls through to the answer for a missing superior)."""
    if owner == PUBLIC_OWNER or not is_public_owner(owner) or session.store.has_account(owner):
        return
    if hidden_public(session, owner):
        return
    spec = _spec(session)
    where = f" (held on {', '.join(spec.holders(owner))})" if spec is not None else ""
    folder = owner[len(PUBLIC_ACCOUNT):]
    raise No(f"{PUBLIC}{DELIM}{folder} is not on this node{where}", "CANNOT")


# --- creating ----------------------------------------------------------------------------


def _decider(session: Session, owner: str, local: str) -> Mailbox | None:
    """The nearest existing superior of ``local``, whose ACL governs a CREATE."""
    for parent in reversed(names.parents(local)):
        try:
            return session.store.mailbox(owner, parent)
        except StoreError:
            continue
    return None


def require_create(session: Session, owner: str, local: str) -> Mailbox | None:
    """Fail unless the user may create ``local`` in ``owner``'s namespace: owners
    always, others with "k" on the nearest existing superior (RFC 4314 §4).

    Returns that superior (None if there is none).  Every refusal outside the
    user's own namespace is the same NO [NOPERM], so nothing leaks."""
    if _hidden(owner, local):
        raise No("Cannot create a mailbox with that name", "CANNOT")
    _check_held(session, owner)
    parent = _decider(session, owner, local) if session.store.has_account(owner) else None
    if owns(session, owner):
        return parent
    if parent is None or "k" not in rights_of(session, parent):
        raise No("Permission denied: right k needed on the parent", "NOPERM")
    return parent


def check_mailbox_limit(session: Session, owner: str, adding: int) -> None:
    """NO [LIMIT] past ``max_mailboxes`` per account (twistedmail/limits.py)."""
    peer = peer_of(getattr(session.conn, "transport", None))
    limits.of(session.node).check_mailboxes(owner, adding, peer, session.user)


def create_mailbox(session: Session, owner: str, local: str) -> None:
    """CREATE with rights checked; new mailboxes inherit the ACL of the superior
    that allowed them, and a creator who is not the owner gets every right."""
    parent = require_create(session, owner, local)
    check_mailbox_limit(session, owner, limits.new_mailboxes(session.store, owner, local))
    changes = session.apply(CreateMailbox.new(owner, local))
    inherited = dict(parent.acl) if parent is not None else {}
    if not owns(session, owner):
        inherited[session.username] = ALL_RIGHTS
    for change in changes:
        if isinstance(change, MailboxCreated):
            for identifier, rights in sorted(inherited.items()):
                session.apply(SetAcl(owner, change.name, identifier, rights))
