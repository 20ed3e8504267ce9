"""The management channel of a node: AMP on a local UNIX socket (default) or
TLS TCP with admin credentials (admin contract, issue 4).

Invariants:
  * Every command is authorised before it acts: on a UNIX socket the socket's
    file mode (0600, set when listening) is the authorisation; on any other
    transport the command must carry ``admin_user`` / ``admin_password`` of a
    user listed in ``admins`` whose password checks against the node's users.
  * ``Version`` with another major ``version`` is refused (VersionMismatch).
  * Every command is logged once with its outcome:
    ``admin: convert -e- alice by unix socket: ok``.
  * A failure reaches the client as one of ``commands.ERRORS`` with a one-line
    text; an unexpected exception is logged with its traceback and reported
    as ``AdminError("internal error ...")`` — never a traceback to the peer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from twisted.application import service
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols import amp
from twisted.python.failure import Failure

from twistedmail.admin import commands as c
from twistedmail.admin.fixtures import FixturesResponders
from twistedmail.admin.mailfiles import MailFiles
from twistedmail.admin.referrals import ReferralResponders
from twistedmail.admin.secrets_cli import TlsResponders
from twistedmail.observe.events import event

log = Logger()


def default_admin_endpoint(node_name: str) -> str:
    """``unix:clustermail-<node>.admin`` in the working directory, mode 0600."""
    return f"unix:clustermail-{node_name}.admin:mode=600:lockfile=1"


def admin_description(description: str | None, node_name: str) -> str:
    """The endpoint to listen on: the default, or ``description`` with mode 0600
    added to a UNIX socket that names no mode."""
    if description is None:
        return default_admin_endpoint(node_name)
    if description.startswith("unix:") and ":mode=" not in description:
        return description + ":mode=600"
    return description


class AdminProtocol(FixturesResponders, ReferralResponders, TlsResponders, amp.AMP):
    """One admin connection to a node."""

    def __init__(self, node: Any) -> None:
        super().__init__()
        self.node = node

    @property
    def mailfiles(self) -> MailFiles:
        return MailFiles.of(self.node)

    # --- authorisation and logging ----------------------------------------------------

    def _is_unix(self) -> bool:
        from twisted.internet.address import UNIXAddress

        host = self.transport.getHost() if self.transport is not None else None
        return isinstance(host, UNIXAddress)

    def _who(self, admin_user: str | None) -> str:
        if self._is_unix():
            return "unix socket"
        peer = self.transport.getPeer() if self.transport is not None else None
        where = getattr(peer, "host", "?")
        return f"{admin_user or '(no user)'}@{where}"

    def _authorise(self, admin_user: str | None, admin_password: str | None) -> Deferred[None]:
        if self._is_unix():
            return defer.succeed(None)
        denied = c.PermissionDenied("permission denied: wrong or missing admin credentials")
        if not admin_user or admin_password is None:
            return defer.fail(denied)
        if admin_user not in self.node.settings.admins:
            return defer.fail(denied)
        d = self.node.authenticate(admin_user, admin_password)

        def refused(_: Failure) -> None:
            raise denied

        return d.addCallbacks(lambda _: None, refused)

    def _run(self, what: str, admin_user: str | None, admin_password: str | None,
             action: Callable[[], dict[str, Any]],
             authorise: Callable[[str | None, str | None], Deferred[None]] | None = None,
             ) -> Deferred[dict[str, Any]]:
        """Authorise (default: ``admins`` only), act, log, and answer ``{"result_json": ...}``."""
        who = self._who(admin_user)
        d = (authorise or self._authorise)(admin_user, admin_password)
        d.addCallback(lambda _: action())

        def done(result: dict[str, Any]) -> dict[str, Any]:
            self._event(what, who, admin_user, "ok")
            return result

        def failed(f: Failure) -> Failure:
            if f.check(c.AdminError):
                self._event(what, who, admin_user, "error", str(f.value),
                            denied=bool(f.check(c.PermissionDenied)))
                return f
            log.failure("admin: {what} by {who}: internal error", f, what=what, who=who)
            text = str(f.value).splitlines()[0] if str(f.value) else type(f.value).__name__
            self._event(what, who, admin_user, "internal error", text)
            return Failure(c.AdminError(f"internal error on node: {text}"))

        return d.addCallbacks(done, failed)

    def _event(self, what: str, who: str, user: str | None, result: str,
               error: str | None = None, denied: bool = False) -> None:
        """The one ``admin.command`` event of a command (observe/events.py)."""
        if denied:
            role = "none"
        elif self._is_unix() or user in self.node.settings.admins:
            role = "cluster-admin"
        else:
            role = "folder-admin"  # admin/referrals.py: the 'a' right on a public folder
        event("admin.command", command=what, caller=who, role=role, result=result,
              error=error, node=self.node.settings.node_name)

    def _json(self, what: str, admin_user: str | None, admin_password: str | None,
              action: Callable[[], dict[str, Any]]) -> Deferred[dict[str, Any]]:
        return self._run(what, admin_user, admin_password,
                         lambda: {"result_json": json.dumps(action(), sort_keys=True)})

    # --- responders ---------------------------------------------------------------------

    @c.Version.responder
    def version(self, version: int | None = None, admin_user: str | None = None,
                admin_password: str | None = None) -> Deferred[dict[str, Any]]:
        def answer() -> dict[str, Any]:
            if version is not None and version != c.PROTOCOL_VERSION:
                raise c.VersionMismatch(
                    f"admin protocol version {version} is not supported by node "
                    f"{self.mailfiles.node_name} (it speaks version {c.PROTOCOL_VERSION})")
            return {"version": c.PROTOCOL_VERSION, "node": self.mailfiles.node_name,
                    "root": self.node.store.uidvalidity_root}

        # a folder administrator may say Version too (admin/referrals.py: roles)
        return self._run(f"version {version}", admin_user, admin_password, answer,
                         authorise=self._role_authorise)

    @c.Convert.responder
    def convert(self, mailfile: str, enable: bool, admin_user: str | None = None,
                admin_password: str | None = None) -> Deferred[dict[str, Any]]:
        flag = "-e" if enable else "-e-"
        mf = self.mailfiles
        action = (lambda: mf.enable(mailfile)) if enable else (lambda: mf.disable(mailfile))
        return self._json(f"convert {flag} {mailfile}", admin_user, admin_password, action)

    @c.Status.responder
    def status(self, admin_user: str | None = None,
               admin_password: str | None = None) -> Deferred[dict[str, Any]]:
        return self._json("status", admin_user, admin_password, self.mailfiles.status)

    @c.UsersAdd.responder
    def users_add(self, name: str, password: str, admin_user: str | None = None,
                  admin_password: str | None = None) -> Deferred[dict[str, Any]]:
        return self._json(f"users add {name}", admin_user, admin_password,
                          lambda: self.mailfiles.users_add(name, password))

    @c.UsersDel.responder
    def users_del(self, name: str, admin_user: str | None = None,
                  admin_password: str | None = None) -> Deferred[dict[str, Any]]:
        return self._json(f"users del {name}", admin_user, admin_password,
                          lambda: self.mailfiles.users_del(name))

    @c.UsersPasswd.responder
    def users_passwd(self, name: str, password: str, admin_user: str | None = None,
                     admin_password: str | None = None) -> Deferred[dict[str, Any]]:
        return self._json(f"users passwd {name}", admin_user, admin_password,
                          lambda: self.mailfiles.users_passwd(name, password))

    @c.UsersList.responder
    def users_list(self, admin_user: str | None = None,
                   admin_password: str | None = None) -> Deferred[dict[str, Any]]:
        return self._json("users list", admin_user, admin_password, self.mailfiles.users_list)

    @c.SetRoot.responder
    def set_root(self, root: int, admin_user: str | None = None,
                 admin_password: str | None = None) -> Deferred[dict[str, Any]]:
        return self._json(f"set-root {root}", admin_user, admin_password,
                          lambda: self.mailfiles.set_root(root))


class AdminFactory(Factory):
    """Builds one AdminProtocol per admin connection."""

    def __init__(self, node: Any) -> None:
        self.node = node

    def buildProtocol(self, addr: object) -> AdminProtocol:
        proto = AdminProtocol(self.node)
        proto.factory = self
        return proto


class AdminChannel(service.Service):
    """Listens for admin connections on one endpoint (``--admin`` / ``[node] admin``).

    A channel that cannot listen logs a critical error; the node keeps serving IMAP."""

    def __init__(self, node: Any, description: str | None, reactor: Any) -> None:
        self.node = node
        self.description = admin_description(description, node.settings.node_name)
        self.reactor = reactor
        self.factory = AdminFactory(node)
        self.port: IListeningPort | None = None
        self._listening: Deferred[Any] | None = None

    def startService(self) -> None:
        super().startService()
        from twistedmail.tls import server_endpoint

        endpoint, factory = server_endpoint(self.reactor, self.description,
                                            self.node.settings, self.factory)
        self._listening = endpoint.listen(factory)
        self._listening.addCallbacks(self._bound, self._cannot_listen)

    def _bound(self, port: IListeningPort) -> IListeningPort:
        self.port = port
        log.info("admin channel listening on {endpoint}", endpoint=self.description)
        if not self.description.startswith(("unix:", "ssl:")):
            log.warn("admin channel on {endpoint} is not TLS: credentials travel in clear",
                     endpoint=self.description)
        return port

    def _cannot_listen(self, reason: Failure) -> None:
        log.critical("admin channel: cannot listen on {endpoint}: {why}",
                     endpoint=self.description, why=reason.getErrorMessage())

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        port, self.port, self._listening = self.port, None, None
        if port is None:
            return None
        return port.stopListening()
