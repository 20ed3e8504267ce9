"""A small synchronous client of the management channel (admin contract, issue 4).

    with AdminClient(timeout=10) as client:
        answer = client.call("unix:/srv/n1.admin", "convert", mailfile="alice", enable=False)

Each ``call`` opens one AMP connection to the node's admin endpoint, sends
``Version`` (with this client's major version) and checks the node's, runs one
command and closes the connection.  The reactor runs in a daemon thread, started
on the first call, so the CLI and the console stay plain blocking code.

Invariants:
  * Every failure is an :class:`AdminClientError` whose text is one line: the
    node's own refusal (``AdminError`` of twistedmail/admin/commands.py) or a
    connection problem ("node unreachable: ...", "permission denied: ...").
  * Every call is bounded by ``timeout`` seconds (connect, Version and command
    together); the connection is closed whatever happens.
  * Endpoints are client-side forms of what ``--admin`` accepts on the node:
    ``unix:PATH`` (relative to ``base``), ``tcp:PORT[:interface=HOST]`` or
    ``tcp:HOST:PORT``, ``ssl:...`` likewise (TLS, verified against ``cacert``
    or the platform trust store).  Credentials travel only when given.
"""

from __future__ import annotations

import errno
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.internet import defer, error
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    UNIXClientEndpoint,
    connectProtocol,
    wrapClientTLS,
)
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.protocols import amp
from twisted.python.failure import Failure

from twistedmail.admin import commands, fixtures, secrets_cli

PROTOCOL_VERSION = commands.PROTOCOL_VERSION
COMMANDS: dict[str, type[amp.Command]] = {
    "convert": commands.Convert,
    "status": commands.Status,
    "users-add": commands.UsersAdd,
    "users-del": commands.UsersDel,
    "users-passwd": commands.UsersPasswd,
    "users-list": commands.UsersList,
    "set-root": commands.SetRoot,
    "referrals-show": commands.ReferralsShow,
    "referrals-set": commands.ReferralsSet,
    "referrals-unset": commands.ReferralsUnset,
    "referrals-refresh": commands.ReferralsRefresh,
    "sites-link": commands.SitesLink,
    "sites-unlink": commands.SitesUnlink,
    "sites-show": commands.SitesShow,
    **fixtures.COMMANDS,  # import / export (issue 6)
    **secrets_cli.COMMANDS,  # tls reload (issue 7)
}
_WILDCARD = ("", "0.0.0.0", "::")


class AdminClientError(Exception):
    """A command that did not succeed; ``str(err)`` is the one-line reason."""


@dataclass(frozen=True)
class Answer:
    """What a node answered: its Version reply and the command's JSON result."""

    node: str
    root: int
    result: Any


@dataclass(frozen=True)
class Credentials:
    """Admin credentials for TCP/TLS endpoints (ignored by nodes on a UNIX socket)."""

    user: str | None = None
    password: str | None = None

    def arguments(self) -> dict[str, str]:
        """The optional ``admin_user`` / ``admin_password`` AMP arguments."""
        out = {}
        if self.user is not None:
            out["admin_user"] = self.user
        if self.password is not None:
            out["admin_password"] = self.password
        return out


# --- endpoints ------------------------------------------------------------------------


def _fields(text: str) -> tuple[str, list[str], dict[str, str]]:
    """``kind:a:b:k=v`` -> (kind, positional, keywords); ``\\:`` escapes a colon."""
    kind, sep, rest = text.partition(":")
    if not sep or not rest:
        raise AdminClientError(f"--admin: expected unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT, "
                               f"got {text!r}")
    parts = [p.replace("\0", ":") for p in rest.replace("\\:", "\0").split(":")]
    positional = [p for p in parts if "=" not in p]
    keywords = dict(p.split("=", 1) for p in parts if "=" in p)
    return kind.lower(), positional, keywords


def describe(endpoint: str, base: Path | None = None) -> str:
    """A short human form of an endpoint (a UNIX socket path resolved against ``base``)."""
    kind, positional, keywords = _fields(endpoint)
    if kind == "unix":
        return str(_unix_path(positional, keywords, endpoint, base))
    host, port = _host_port(positional, keywords, endpoint)
    return f"{kind}:{host}:{port}"


def _unix_path(positional: list[str], keywords: dict[str, str], text: str,
               base: Path | None) -> Path:
    raw = keywords.get("path") or keywords.get("address") or (positional[0] if positional else "")
    if not raw:
        raise AdminClientError(f"--admin: no socket path in {text!r}")
    path = Path(raw).expanduser()
    return path if path.is_absolute() or base is None else base / path


def _host_port(positional: list[str], keywords: dict[str, str], text: str) -> tuple[str, int]:
    """Client form (``HOST:PORT``, ``host=..:port=..``) or server form (``PORT:interface=H``)."""
    if "host" in keywords or (len(positional) >= 2 and not positional[0].isdigit()):
        host = keywords.get("host") or positional[0]
        port_text = keywords.get("port") or (positional[1] if len(positional) > 1 else "")
    else:
        host = keywords.get("interface", "127.0.0.1")
        port_text = keywords.get("port") or (positional[0] if positional else "")
    if host in _WILDCARD:
        host = "127.0.0.1"
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise AdminClientError(f"--admin: no valid port in {text!r}")
    return host, int(port_text)


def client_endpoint(reactor: Any, endpoint: str, base: Path | None, timeout: float,
                    cacert: str | None = None) -> IStreamClientEndpoint:
    """The client endpoint that reaches a node's ``--admin`` endpoint."""
    kind, positional, keywords = _fields(endpoint)
    if kind == "unix":
        path = _unix_path(positional, keywords, endpoint, base)
        return UNIXClientEndpoint(reactor, str(path), timeout=timeout)
    if kind not in ("tcp", "ssl"):
        raise AdminClientError(f"--admin: unsupported endpoint type {kind!r} "
                               "(use unix:, tcp: or ssl:)")
    host, port = _host_port(positional, keywords, endpoint)
    tcp = TCP4ClientEndpoint(reactor, host, port, timeout=timeout)
    if kind == "tcp":
        return tcp
    from twisted.internet import ssl

    trust = None
    if cacert:
        try:
            trust = ssl.Certificate.loadPEM(Path(cacert).read_bytes())
        except (OSError, ValueError) as err:
            raise AdminClientError(f"--cacert: cannot read {cacert} ({err})") from None
    return wrapClientTLS(ssl.optionsForClientTLS(host, trustRoot=trust), tcp)


# --- calls ------------------------------------------------------------------------------


class AdminClient:
    """Blocking admin calls over a reactor running in a daemon thread."""

    _lock = threading.Lock()
    _thread: threading.Thread | None = None

    def __init__(self, timeout: float = 10.0, credentials: Credentials | None = None,
                 base: Path | None = None, cacert: str | None = None) -> None:
        self.timeout = timeout
        self.credentials = credentials or Credentials()
        self.base = base
        self.cacert = cacert

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @classmethod
    def _reactor(cls) -> Any:
        from twisted.internet import reactor

        with cls._lock:
            if cls._thread is None:
                _quiet_twisted_log()
                cls._thread = threading.Thread(
                    target=reactor.run, kwargs={"installSignalHandlers": False},
                    name="clustermail-reactor", daemon=True)
                cls._thread.start()
        return reactor

    def call(self, endpoint: str, command: str | None, **arguments: Any) -> Answer:
        """Version, then ``command`` (a key of COMMANDS; None: Version only) on one node."""
        from twisted.internet.threads import blockingCallFromThread

        reactor = self._reactor()
        if command is not None and command not in COMMANDS:
            raise AdminClientError(f"unknown admin command {command!r}")
        where = describe(endpoint, self.base)
        try:
            exchange: Any = self._exchange
            answer: Answer = blockingCallFromThread(
                reactor, exchange, reactor, endpoint, command, arguments)
        except AdminClientError:
            raise
        except Exception as err:  # every other failure becomes one line
            raise AdminClientError(explain(err, where, self.timeout)) from None
        return answer

    def _exchange(self, reactor: Any, endpoint: str, command: str | None,
                  arguments: dict[str, Any]) -> defer.Deferred[Answer]:
        ep = client_endpoint(reactor, endpoint, self.base, self.timeout, self.cacert)
        d = defer.Deferred.fromCoroutine(self._session(ep, command, arguments))
        return d.addTimeout(self.timeout, reactor)

    async def _session(self, ep: IStreamClientEndpoint, command: str | None,
                       arguments: dict[str, Any]) -> Answer:
        proto = await connectProtocol(ep, amp.AMP())
        creds = self.credentials.arguments()
        try:
            info = await proto.callRemote(commands.Version, version=PROTOCOL_VERSION, **creds)
            if info["version"] != PROTOCOL_VERSION:
                raise AdminClientError(
                    f"node {info['node']} speaks admin protocol version {info['version']}, "
                    f"this clustermail speaks {PROTOCOL_VERSION}")
            result: Any = info
            if command is not None:
                reply = await proto.callRemote(COMMANDS[command], **arguments, **creds)
                result = json.loads(reply["result_json"])
            return Answer(str(info["node"]), int(info["root"]), result)
        finally:
            if proto.transport is not None:
                proto.transport.loseConnection()


def _quiet_twisted_log() -> None:
    """Twisted's own log (e.g. a peer's malformed box) stays out of the CLI's
    stderr, whose failures are one line; $CLUSTERMAIL_CLIENT_LOG keeps it in a file."""
    from twisted.logger import globalLogBeginner, textFileLogObserver

    path = os.environ.get("CLUSTERMAIL_CLIENT_LOG")
    observer: Any = lambda event: None  # noqa: E731
    if path:
        observer = textFileLogObserver(open(path, "a", encoding="utf-8"))  # noqa: SIM115
    globalLogBeginner.beginLoggingTo([observer], discardBuffer=True, redirectStandardIO=False)


def explain(err: BaseException, where: str, timeout: float) -> str:
    """One line for a failed call to the node at ``where``."""
    if isinstance(err, Failure) and err.value is not None:
        err = err.value  # blockingCallFromThread raises the value; kept for callers
    if isinstance(err, commands.AdminError | amp.UnknownRemoteError):
        return _text(err.args[0] if err.args else err)
    if isinstance(err, amp.RemoteAmpError):
        return _text(err.description)
    if isinstance(err, defer.TimeoutError | defer.CancelledError):
        return f"node unreachable: no answer from {where} within {timeout:g} s"
    if isinstance(err, error.ConnectionRefusedError):
        return f"node unreachable: nothing listens at {where} (is the node running?)"
    if isinstance(err, error.ConnectError):
        os_err = err.osError if isinstance(getattr(err, "osError", None), int) else None
        reason = str(err.args[0]) if err.args else ""
        if os_err == errno.ENOENT or "No such file" in reason:
            return f"node unreachable: no admin socket at {where} (is the node running?)"
        if os_err == errno.EACCES or "Permission denied" in reason:
            return f"permission denied: {where}"
        return f"node unreachable: {where}: {reason or type(err).__name__}"
    if type(err).__module__.startswith(("OpenSSL", "service_identity")):
        return (f"TLS with {where} failed: the node's certificate is not trusted or does "
                f"not name the host (give --cacert PEM) ({_text(err)[:200]})")
    if isinstance(err, error.ConnectionDone | error.ConnectionLost):
        return f"node unreachable: {where} closed the connection"
    return f"{where}: not an admin channel, or a protocol error ({type(err).__name__}: " \
           f"{_text(err)})"


def _text(value: object) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.split()) or "refused (no reason given)"
