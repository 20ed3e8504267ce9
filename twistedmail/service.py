"""The twistd service maker behind ``twistd clustermail`` (see tap/clustermail.py)."""

from __future__ import annotations

import gc
import json
import sys
from datetime import UTC, datetime
from typing import Any

from twisted.application import service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IListeningPort
from twisted.logger import ILogObserver, Logger, formatEvent
from twisted.python import failure, logfile, usage
from zope.interface import implementer

from twistedmail.config import DEFAULT_IMAP, ConfigError, NodeSettings, settings_from

log = Logger()

# Where the JSON log observer writes; set by Options when --log-format json is chosen.
_json_log_target: str = "-"


class Options(usage.Options):
    """Command-line options of ``twistd clustermail``."""

    synopsis = "[options]"
    longdesc = (
        "Run one twistedmail IMAP4 node, mail kept in memory.\n"
        "Quick start: twistd -n clustermail --demo  (user demo, password demo, "
        f"listening on {DEFAULT_IMAP}).\n"
        "A TOML file (--config) can describe the node or a whole cluster; the options "
        "below override it. Example: twistd -n clustermail --config cluster.toml --node node2 "
        "--imap tcp:2143:interface=127.0.0.1"
    )
    optParameters = [
        ["config", "c", None, "TOML config file, e.g. --config examples/cluster.toml"],
        [
            "node",
            None,
            None,
            "Which [[node]] of the config to run (or the node's name), e.g. --node node2",
        ],
        [
            "uidvalidity-root",
            None,
            None,
            "UIDVALIDITY root byte 0-255, unique per cluster member (default 1), "
            "e.g. --uidvalidity-root 2",
        ],
        ["max-line", None, None, "Longest command line in bytes (default 65536), "
         "e.g. --max-line 131072"],
        ["max-literal", None, None, "Largest literal in bytes (default 67108864 = 64 MiB), "
         "also the advertised APPENDLIMIT, e.g. --max-literal 10485760"],
        ["max-connections-per-user", None, None, "IMAP sessions one user may have logged "
         "in (default 50, 0 = no limit), e.g. --max-connections-per-user 20"],
        ["max-connections-per-address", None, None, "IMAP connections from one client "
         "address (default 200, 0 = no limit), e.g. --max-connections-per-address 50"],
        ["max-mailboxes", None, None, "Mailboxes per account (default 1000, 0 = no limit), "
         "e.g. --max-mailboxes 500"],
        ["memory-limit", None, None, "Estimated store memory past which APPEND/COPY/delivery "
         "are refused (default: half the RAM; 0 = none), e.g. --memory-limit 4GiB"],
        ["literal-mode", None, None, "Non-synchronizing literals: 'plus' (LITERAL+, default) "
         "or 'minus' (LITERAL-, at most 4096 bytes), e.g. --literal-mode minus"],
        ["log-format", None, None, "Log as 'text' (default) or 'json' (one JSON object a line), "
         "e.g. --log-format json"],
        ["tls-cert", None, None, "PEM certificate for STARTTLS, e.g. --tls-cert cert.pem"],
        ["tls-key", None, None, "PEM private key for STARTTLS, e.g. --tls-key key.pem"],
        [
            "admin",
            None,
            None,
            "Management channel endpoint for the clustermail CLI (default "
            "unix:clustermail-<node>.admin in the working directory, mode 0600), "
            "e.g. --admin unix:/run/clustermail/n1.admin or --admin ssl:7443",
        ],
        ["http-token", None, None, "Bearer token the HTTP API requires, e.g. "
         "--http-token s3cret (the status page and /metrics need none)"],
        [
            "state-file",
            None,
            None,
            "Small file where the node reserves UIDVALIDITY counters, so any restart "
            "gets larger values, e.g. --state-file /var/lib/clustermail/node1.state",
        ],
    ]
    optFlags = [
        ["allow-plaintext", None, "Allow LOGIN / AUTHENTICATE PLAIN without TLS from any "
         "peer (default: loopback only; others get LOGINDISABLED until STARTTLS)"],
        ["demo", None, "Add account demo/demo with sample folders and messages, "
         "e.g. twistd -n clustermail --demo"],
        ["smtp-auth", None, "SMTP requires AUTH before MAIL FROM (default: optional)"],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["imap"] = []
        self["user"] = []
        for name in ("lmtp", "smtp", "http", "preload"):
            self[name] = []
        self.settings: NodeSettings | None = None

    def opt_imap(self, endpoint: str) -> None:
        """IMAP listener endpoint, repeatable (replaces the config's list), e.g. --imap tcp:1143:interface=127.0.0.1 or --imap ssl:1993:privateKey=key.pem"""  # noqa: E501
        self["imap"].append(endpoint)

    def opt_lmtp(self, endpoint: str) -> None:
        """LMTP listener endpoint (repeatable; off by default), e.g. --lmtp tcp:2424:interface=127.0.0.1 or --lmtp unix:/run/clustermail/lmtp"""  # noqa: E501
        self["lmtp"].append(endpoint)

    def opt_smtp(self, endpoint: str) -> None:
        """SMTP listener endpoint (repeatable; off by default), e.g. --smtp tcp:2525:interface=127.0.0.1"""  # noqa: E501
        self["smtp"].append(endpoint)

    def opt_http(self, endpoint: str) -> None:
        """HTTP endpoint for the API, /metrics and the status page (repeatable; off by default), e.g. --http tcp:8080:interface=127.0.0.1"""  # noqa: E501
        self["http"].append(endpoint)

    def opt_preload(self, directory: str) -> None:
        """Load .eml / mbox / Maildir fixtures from DIR at start (repeatable), e.g. --preload fixtures/"""  # noqa: E501
        self["preload"].append(directory)

    def opt_user(self, spec: str) -> None:
        """Add an account NAME:PASSWORD (repeatable), e.g. --user alice:secret"""
        self["user"].append(spec)

    def postOptions(self) -> None:
        try:
            self.settings = settings_from(self)
        except ConfigError as err:
            raise usage.UsageError(str(err)) from None
        if self.settings.log_format == "json":
            self._use_json_logging()

    def parseOptions(self, options: list[str] | None = None) -> None:
        """Parse; under twistd, a bad option ends the process with one line on stderr."""
        try:
            super().parseOptions(options)
        except usage.UsageError as err:
            if self.parent is None:
                raise
            sys.stderr.write(f"clustermail: error: {err} (see: twistd clustermail --help)\n")
            raise SystemExit(1) from None

    def _use_json_logging(self) -> None:
        """Ask twistd (the parent options) to log through our JSON observer."""
        global _json_log_target
        parent = self.parent
        if parent is None or "logger" not in parent or parent["logger"] is not None:
            return
        target = parent.get("logfile") or ("-" if parent.get("nodaemon") else "twistd.log")
        _json_log_target = target
        parent["logger"] = f"{__name__}.json_log_observer"


def json_log_observer() -> ILogObserver:
    """twistd ``--logger`` factory: one JSON object a line, to stdout or the logfile."""
    out: Any = sys.stdout
    if _json_log_target != "-":
        out = logfile.LogFile.fromFullPath(_json_log_target)
    return JSONLineObserver(out)


@implementer(ILogObserver)
class JSONLineObserver:
    """Writes each log event as ``{"time", "level", "namespace", "text"[, "traceback"]}``."""

    def __init__(self, out: Any) -> None:
        self.out = out

    def __call__(self, event: dict[str, Any]) -> None:
        level = event.get("log_level")
        record = {
            "time": datetime.fromtimestamp(event.get("log_time", 0), UTC).isoformat(),
            "level": getattr(level, "name", "info"),
            "namespace": event.get("log_namespace", "-"),
            "text": formatEvent(event),
        }
        if "log_failure" in event:
            record["traceback"] = event["log_failure"].getTraceback()
        if event.get("log_namespace") == "twistedmail.events":  # observe/events.py fields
            record.update((k, v) for k, v in event.items()
                          if not k.startswith("log_") and k not in record)
        self.out.write(json.dumps(record, default=str) + "\n")
        self.out.flush()


class IMAPListener(service.Service):
    """Listens on one endpoint string; logs the address actually bound."""

    def __init__(self, description: str, factory: Any, reactor: Any) -> None:
        self.description = description
        self.factory = factory
        self.reactor = reactor
        self.port: IListeningPort | None = None
        self._listening: Deferred[Any] | None = None
        self._error: str | None = None

    def privilegedStartService(self) -> None:
        self._listen()
        super().privilegedStartService()

    def startService(self) -> None:
        self._listen()
        super().startService()

    def _listen(self) -> None:
        if self._listening is not None:
            return
        from twistedmail.tls import server_endpoint

        settings = getattr(getattr(self.factory, "node", None), "settings", None)
        endpoint, factory = server_endpoint(self.reactor, self.description, settings,
                                            self.factory)
        self._listening = endpoint.listen(factory)
        self._listening.addCallbacks(self._bound, self._cannot_listen)
        if self._error is not None:  # most endpoints fail synchronously, e.g. port in use
            raise SystemExit(f"clustermail: error: {self._error}")

    def _cannot_listen(self, reason: failure.Failure) -> None:
        self._error = f"cannot listen on {self.description}: {reason.getErrorMessage()}"
        if self.running:
            log.critical("{error}", error=self._error)
            self.reactor.stop()

    def _bound(self, port: IListeningPort) -> IListeningPort:
        self.port = port
        address: Any = port.getHost()
        host = getattr(address, "host", None)
        where = f"{host}:{address.port}" if host is not None else str(address)
        log.info("IMAP listening on {where} ({endpoint})", where=where, endpoint=self.description)
        return port

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        port, self.port, self._listening = self.port, None, None
        if port is None:
            return None
        return port.stopListening()


# CPython's default (700, 10, 10) collects the young generation after every 700 new
# objects.  A cluster node keeps each write's Deferred, waiter and cop alive until
# replicas acknowledge it, so at thousands of APPENDs a second those collections, and
# the full ones they cascade into over a heap of stored mail, took 10-15% of its CPU.
GC_THRESHOLDS = (10_000, 10, 10)


def tune_gc() -> None:
    """Garbage-collector settings for a long-running server with a large, long-lived
    heap: collect the start-up garbage, move what start-up built (modules, config,
    fixtures read so far) out of the collector's sight (``gc.freeze``), and collect
    the young generation after GC_THRESHOLDS[0] new objects instead of 700."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def makeService(options: Options | dict[str, Any]) -> service.MultiService:
    """Build the node and one IMAP listener per configured endpoint."""
    from twisted.internet import reactor

    from twistedmail.imap.protocol import IMAPFactory
    from twistedmail.node import Node
    from twistedmail.statefile import StateFileError

    settings = getattr(options, "settings", None) or settings_from(options)
    try:
        node = Node(settings, reactor=reactor)
    except StateFileError as err:
        raise SystemExit(f"clustermail: error: {err}") from None
    if settings.preload:  # read now; loaded once the accounts exist (twistedmail/fixtures)
        from twistedmail.fixtures.preload import FixtureError, preload_service

        try:
            preload_service(node, settings)
        except FixtureError as err:
            raise SystemExit(f"clustermail: error: {err}") from None
    top = service.MultiService()
    if settings.cluster is not None:  # listens on spec.me.cluster_endpoint, dials every peer
        from twistedmail.cluster.service import ClusterNode

        ClusterNode(node, settings.cluster, reactor).setServiceParent(top)
    from twistedmail.admin.channel import AdminChannel

    AdminChannel(node, settings.admin_endpoint, reactor).setServiceParent(top)
    from twistedmail.tls import CertificateReloader

    CertificateReloader(settings, reactor).setServiceParent(top)  # SIGHUP: new certificate
    factory = IMAPFactory(node)
    for description in settings.imap_endpoints:
        IMAPListener(description, factory, reactor).setServiceParent(top)
    if settings.lmtp_endpoints or settings.smtp_endpoints:  # issue 6: mail in
        from twistedmail.delivery.service import delivery_service

        delivery_service(node, settings, reactor).setServiceParent(top)
    if settings.http_endpoints:  # issue 6: API, /metrics, status page
        from twistedmail.web.service import web_service

        web_service(node, settings, reactor).setServiceParent(top)
    log.info(
        "clustermail node {name} (uidvalidity root {root}) with {n} account(s)",
        name=settings.node_name,
        root=settings.uidvalidity_root,
        n=len(node.usernames()),
    )
    if not node.usernames():
        log.warn("no accounts: nobody can log in; add --user NAME:PASSWORD or --demo")
    tune_gc()
    return top
