"""Node-side administration of mail files: ``convert -e-`` / ``convert -e``,
``set-root``, users and status (admin contract, issue 4; DESIGN.md §3).

A "mail file" is an account (Domino: ``mail\\alice.nsf``).  ``MailFiles.of(node)``
is the node's one instance; the IMAP side asks it before LOGIN / AUTHENTICATE /
SELECT / EXAMINE (``twistedmail/imap/handlers/durable.py: check_enabled``) and
registers every logged-in session with it (``track``).

Invariants:
  * A disabled mail file has no IMAP session on this node that is logged in as
    its owner or has one of its folders selected: ``disable`` sends those
    ``* BYE [UNAVAILABLE]`` (RFC 5530 §3) and closes them, and new logins /
    selections are refused while it stays disabled.  The store itself is not
    touched: deliveries, replication and APPENDs by other users go on.
  * ``enable`` (convert -e) gives every folder of the mail file on THIS node a
    fresh UIDVALIDITY from the current root with a larger counter and UIDs
    1..n (store op ``Regenerate``, never replicated: UIDs are per replica),
    after closing the sessions that have one of its folders selected (their
    UID maps die with the old UIDVALIDITY, RFC 3501 §2.3.1.1).
  * ``set_root`` changes the root the allocator uses from now on; folders keep
    their UIDVALIDITY (older root) until their next ``Regenerate`` — or a
    restart, which starts again from the configured root.
"""

from __future__ import annotations

import re
import weakref
from typing import Any

from twisted.logger import Logger

from twistedmail.admin.commands import (
    AlreadyDisabled,
    BadArguments,
    UnknownMailFile,
)
from twistedmail.store import CreateAccount, Regenerate
from twistedmail.store.uidvalidity import MAX_ROOT, split

log = Logger()

_NSF = re.compile(r"\.nsf\Z", re.IGNORECASE)


def mailfile_name(mailfile: str) -> str:
    """The account a Domino mail file name designates: ``mail\\alice.nsf``,
    ``mail/alice.nsf``, ``alice.nsf`` and ``alice`` all give ``alice``."""
    base = re.split(r"[\\/]", mailfile.strip())[-1]
    return _NSF.sub("", base)


class MailFiles:
    """The admin state of one node: disabled mail files and live IMAP sessions."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.disabled: dict[str, str] = {}  # account -> the BYE / NO text
        self.sessions: weakref.WeakSet[Any] = weakref.WeakSet()

    @classmethod
    def of(cls, node: Any) -> MailFiles:
        """The one MailFiles of ``node`` (created on first use)."""
        existing = getattr(node, "_admin_mailfiles", None)
        if existing is None:
            existing = cls(node)
            node._admin_mailfiles = existing
        return existing

    @property
    def node_name(self) -> str:
        return str(self.node.settings.node_name)

    # --- the IMAP side ------------------------------------------------------------

    def track(self, session: Any) -> None:
        """Remember a logged-in session (so ``disable`` can reach it)."""
        self.sessions.add(session)

    def refusal(self, user: str) -> str | None:
        """The reason ``user``'s mail file is not served here now, or None."""
        return self.disabled.get(user)

    # --- convert ----------------------------------------------------------------

    def resolve(self, mailfile: str) -> str:
        """The account of ``mailfile`` on this node, or UnknownMailFile."""
        name = mailfile_name(mailfile)
        store = self.node.store
        if not name or not (store.has_account(name) or name in self.node.usernames()):
            raise UnknownMailFile(f"unknown mail file {mailfile!r} on node {self.node_name}")
        return name

    def disable(self, mailfile: str) -> dict[str, Any]:
        """convert -e-: IMAP off for the mail file here; its sessions get BYE."""
        user = self.resolve(mailfile)
        if user in self.disabled:
            raise AlreadyDisabled(f"mail file {user} is already disabled on {self.node_name}")
        text = f"IMAP is disabled for mail file {user} on {self.node_name} (convert -e-)"
        self.disabled[user] = text
        closed = self._close_sessions(user, text, logged_in_too=True)
        return {"node": self.node_name, "mailfile": user, "enabled": False,
                "sessions_closed": closed}

    def enable(self, mailfile: str) -> dict[str, Any]:
        """convert -e: regenerate every folder of the mail file here, then IMAP on.
        Allowed when not disabled too (the Domino console accepts it)."""
        user = self.resolve(mailfile)
        store = self.node.store
        was_disabled = user in self.disabled
        text = (f"mail file {user} on {self.node_name} was regenerated (convert -e): "
                "UIDVALIDITY changed, select again")
        closed = self._close_sessions(user, text, logged_in_too=False)
        if not store.has_account(user):  # a user with a login but no folders yet
            store.apply(CreateAccount.standard(user))
        folders = []
        for box in store.mailboxes(user):
            store.apply(Regenerate(user, box.name))
            root, counter = split(box.uidvalidity)
            folders.append({"name": box.name, "uidvalidity": box.uidvalidity,
                            "root": root, "counter": counter, "messages": len(box.uids())})
        self.disabled.pop(user, None)
        return {"node": self.node_name, "mailfile": user, "enabled": True,
                "was_disabled": was_disabled, "sessions_closed": closed, "folders": folders}

    def _close_sessions(self, user: str, text: str, logged_in_too: bool) -> int:
        """BYE [UNAVAILABLE] to the sessions with one of ``user``'s folders selected
        (and, with ``logged_in_too``, those logged in as ``user``)."""
        closed = 0
        for session in list(self.sessions):
            view = getattr(session, "view", None)
            selected = view is not None and view.mailbox.user == user
            if not (selected or (logged_in_too and session.user == user)):
                continue
            if getattr(session.conn, "closing", False):
                continue
            session.out.untagged_status("BYE", text, "UNAVAILABLE")  # RFC 5530 §3
            session.conn.close()
            session.conn.push()
            self.sessions.discard(session)
            closed += 1
        return closed

    # --- roots --------------------------------------------------------------------

    def set_root(self, root: int) -> dict[str, Any]:
        """Use ``root`` for every UIDVALIDITY allocated from now on (DESIGN.md §3)."""
        if isinstance(root, bool) or not 0 <= root <= MAX_ROOT:
            raise BadArguments(f"root must be an integer 0-{MAX_ROOT}, got {root}")
        owner = self._root_owner(root)
        if owner is not None:
            raise BadArguments(f"root {root} is node {owner}'s; every node needs its own root")
        store = self.node.store
        previous = store.uidvalidity_root
        store.set_root(root)
        return {"node": self.node_name, "root": root, "previous": previous,
                "pending": self.pending()}

    def _root_owner(self, root: int) -> str | None:
        """Another cluster member using ``root`` (configured or announced), or None."""
        spec = self.node.settings.cluster
        if spec is None:
            return None
        cluster = self.node.cluster
        for other in spec.nodes:
            if other.name == spec.me.name:
                continue
            live = cluster.membership.info(other.name).root if cluster is not None else None
            if root in (other.root, live):
                return str(other.name)
        return None

    def pending(self) -> list[str]:
        """Accounts with a folder whose UIDVALIDITY root is not the current root."""
        store = self.node.store
        return [user for user in store.users()
                if any(split(b.uidvalidity)[0] != store.uidvalidity_root
                       for b in store.mailboxes(user))]

    # --- users ----------------------------------------------------------------------

    def users_add(self, name: str, password: str) -> dict[str, Any]:
        """A login on this node, and the account (its folders replicate to the
        other holders of the mail file in a cluster)."""
        _check_user(name, password)
        spec = self.node.settings.cluster
        existed = name in self.node.usernames()
        if spec is None or spec.holds(name):
            self.node.add_user(name, password)
        else:
            raise BadArguments(f"mail file {name} is not held on node {self.node_name} "
                               f"(held on {', '.join(spec.holders(name))})")
        return {"node": self.node_name, "user": name, "created": not existed}

    def users_del(self, name: str) -> dict[str, Any]:
        """Remove the login on this node; the mail file stays (and replicates)."""
        if name not in self.node.usernames():
            raise UnknownMailFile(f"unknown user {name!r} on node {self.node_name}")
        self.node.remove_user(name)
        self._close_sessions(name, f"user {name} was removed on {self.node_name}", True)
        return {"node": self.node_name, "user": name, "deleted": True}

    def users_passwd(self, name: str, password: str) -> dict[str, Any]:
        """A new password for an existing login."""
        _check_user(name, password)
        if name not in self.node.usernames():
            raise UnknownMailFile(f"unknown user {name!r} on node {self.node_name}")
        self.node.add_user(name, password)
        return {"node": self.node_name, "user": name, "changed": True}

    def users_list(self) -> dict[str, Any]:
        """Logins and accounts on this node, with their IMAP state."""
        store = self.node.store
        names = sorted(set(self.node.usernames()) | {u for u in store.users()
                                                      if not u.startswith("#")})
        return {"node": self.node_name, "users": [
            {"name": u, "login": u in self.node.usernames(), "account": store.has_account(u),
             "enabled": u not in self.disabled} for u in names]}

    # --- status -----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Node, state, roots, members and every folder's UIDVALIDITY decoded."""
        store = self.node.store
        cluster = self.node.cluster
        info: dict[str, Any] = cluster.status() if cluster is not None else {}
        accounts = {}
        for user in store.users():
            accounts[user] = {"disabled": user in self.disabled, "folders": [
                _folder(box) for box in store.mailboxes(user)]}
        return {
            "node": self.node_name,
            "state": info.get("state", "ready"),
            "reason": info.get("reason", ""),
            "root": store.uidvalidity_root,
            "configured_root": self.node.settings.uidvalidity_root,
            "pending": self.pending(),
            "members": info.get("members", {}),
            "relay": info.get("relay"),
            "accounts": accounts,
        }


def _folder(box: Any) -> dict[str, Any]:
    root, counter = split(box.uidvalidity)
    return {"name": box.name, "uidvalidity": box.uidvalidity, "root": root,
            "counter": counter, "messages": len(box.uids()),
            "uidnext": box.uidnext}


def _check_user(name: str, password: str) -> None:
    if not name or not re.fullmatch(r"[^\s\\/#\"]+", name):
        raise BadArguments(f"bad user name {name!r}")
    if not password:
        raise BadArguments("the password must not be empty")
