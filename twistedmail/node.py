"""One mail node: its settings, its in-memory store, and how users log in."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from twisted.cred.credentials import UsernamePassword
from twisted.cred.portal import Portal
from twisted.internet.defer import Deferred

from twistedmail import demo
from twistedmail.auth import IMailUser, PasswordChecker, Realm, scrub_users
from twistedmail.config import NodeSettings
from twistedmail.statefile import StateFile
from twistedmail.store import CreateAccount, CreateMailbox, MailStore

DEMO_USER = "demo"
DEMO_PASSWORD = "demo"
PUBLIC_FOLDER_NAMESPACE = uuid.UUID("0c5b1f4e-8d2a-4e57-9a61-3f0d2b7c9e14")


def _avatar_name(login: tuple[Any, ...]) -> str:
    """The user name of the avatar in a Portal.login result (interface, avatar, logout)."""
    return str(login[1].name)


class Node:
    """A node: ``settings``, ``store`` (MailStore), ``portal`` (twisted.cred), ``reactor``.

    The IMAP protocol reaches everything through the node it is given, and
    schedules its timers on ``node.reactor`` (tests pass a ``task.Clock``).
    """

    def __init__(self, settings: NodeSettings | None = None, reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.settings = settings if settings is not None else NodeSettings()
        self.reactor = reactor
        # node.cluster: the ClusterNode (cluster/service.py) in cluster mode, else None.
        self.cluster: Any = None
        spec = self.settings.cluster
        # In cluster mode the store names message instances by this process's
        # incarnation ("n1~<hex>"), so ids never repeat across restarts (DESIGN.md §4).
        self.store = MailStore(self._store_name(), self.settings.uidvalidity_root)
        self._install_uidvalidity_floor()
        self._checker = PasswordChecker()
        self.portal = Portal(Realm(), [self._checker])
        # called with the node after create_accounts (--preload: twistedmail/fixtures)
        self.after_accounts: list[Callable[[Node], object]] = []
        if spec is None:
            self.create_accounts()
        else:  # accounts wait for the cluster's UIDVALIDITY floor: ClusterNode calls
            for name, password in self.settings.users.items():  # create_accounts()
                self._checker.add_user(name, password)
        # keep no plaintext: the settings now hold the checker's stored forms (auth.py)
        self.settings.users = scrub_users(self._checker, self.settings.users)

    def _store_name(self) -> str:
        if self.settings.cluster is None:
            return self.settings.node_name
        from twistedmail.cluster.runtime import new_incarnation

        return new_incarnation(self.settings.node_name)

    def create_accounts(self) -> None:
        """The configured accounts (in cluster mode only the mail files this node
        holds), the public folders and the demo account."""
        spec = self.settings.cluster
        for name, password in self.settings.users.items():
            if spec is None:
                self.add_user(name, password)
            elif spec.holds(name):
                self.store.apply(CreateAccount.standard(name))  # idempotent
        self._create_public_folders()
        if self.settings.demo:
            self.add_demo_account()
        for hook in self.after_accounts:
            hook(self)

    def _install_uidvalidity_floor(self) -> None:
        """An in-memory node that (re)starts has lost its UID maps, so every folder
        must get a UIDVALIDITY above any this node showed before (RFC 3501 §2.3.1.1).

        With a state file the guarantee is exact; without one the allocator's
        wall-clock floor (minutes since 2025) holds for restarts a minute apart."""
        if self.settings.state_file is None:
            return
        state = StateFile(self.settings.state_file)
        allocator = self.store.allocator
        allocator.floor_provider = lambda: state.boot_floor
        allocator.on_issue = state.reserve

    def _create_public_folders(self) -> None:
        """The "#public" pseudo-account owns "Public/..." (RFC 2342 shared namespace);
        configured folders get ``public_rights`` for "anyone" (RFC 4314).  In a
        cluster configured folder F lives in "#public:F", made only on F's replicas
        (namespaces.py, contract A)."""
        from twistedmail.imap.namespaces import PUBLIC_OWNER, public_account
        from twistedmail.store import SetAcl

        spec = self.settings.cluster
        self.store.apply(CreateAccount(PUBLIC_OWNER))
        for folder in self.settings.public_folders:
            owner = PUBLIC_OWNER if spec is None else public_account(folder)
            if spec is not None and not spec.holds(owner):
                continue  # a non-replica knows only the directory entry
            self.store.apply(CreateAccount(owner))  # idempotent
            if not any(m.name == folder for m in self.store.mailboxes(owner)):
                self.store.apply(self._public_folder_op(owner, folder))
            self.store.apply(SetAcl(owner, folder, "anyone", self.settings.public_rights))

    def _public_folder_op(self, owner: str, folder: str) -> CreateMailbox:
        """CREATE of a public folder; in a cluster its id is derived from the name,
        so nodes creating it concurrently make one folder, not two (DESIGN.md §4)."""
        if self.settings.cluster is None:
            return CreateMailbox.new(owner, folder)
        return CreateMailbox(owner, folder, uuid.uuid5(PUBLIC_FOLDER_NAMESPACE, folder).hex)

    def add_user(self, name: str, password: str) -> None:
        """Create an account (with its INBOX) that can log in with ``password``."""
        if name not in self._checker.usernames():
            # RFC 6154: INBOX plus Drafts, Sent, Trash, Junk, Archive with special uses.
            self.store.apply(CreateAccount.standard(name))
        self._checker.add_user(name, password)

    def remove_user(self, name: str) -> None:
        """Remove ``name``'s login; its mail stays in the store."""
        self._checker.remove_user(name)

    def add_demo_account(self) -> None:
        """Account demo/demo with sample folders and messages."""
        fresh = DEMO_USER not in self._checker.usernames()
        if self.settings.cluster is not None:  # a peer may have made (and replicated) it
            fresh = not self.store.has_account(DEMO_USER)
        self.add_user(DEMO_USER, DEMO_PASSWORD)
        if fresh:
            demo.populate(self.store, DEMO_USER)

    def usernames(self) -> list[str]:
        """The user names that can log in, sorted."""
        return self._checker.usernames()

    def authenticate(self, user: str, password: str) -> Deferred[str]:
        """Fire with the canonical user name, or fail with UnauthorizedLogin."""
        credentials = UsernamePassword(user.encode(), password.encode())
        d = self.portal.login(credentials, None, IMailUser)
        return d.addCallback(_avatar_name)
