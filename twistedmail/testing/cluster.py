"""A real cluster of ``twistd -n clustermail`` processes, with controllable links.

    with Cluster(n=3, users={"alice": "secret"}, workdir=tmp_path) as c:
        c.start()                              # spawns n1..n3, waits until each greets "* OK"
        assert c.append("n1", "alice", "INBOX", b"Subject: one\\r\\n\\r\\nunique body 1\\r\\n")
        c.wait_converged(timeout=30)           # same (EMAILID, flags) multisets everywhere
        c.kill("n2")                           # kill -9
        c.restart("n2")                        # same IMAP and cluster ports, empty memory
        c.partition("n1", "n3"); ...; c.heal()
        c.invariants.check()

Layout (issue 3 item 8, contract §5): node X's config file lists every node; for each other
node Y its ``cluster_address`` is a :class:`~twistedmail.testing.tcpproxy.TcpProxy` owned by
the harness for the ordered pair (X -> Y), which forwards to Y's own cluster port.  A node
dials its peers only through these proxies, so ``partition(a, b)`` cuts the two proxies
between a and b for real.  IMAP listens on ``tcp:0`` (the harness reads the logged port;
restarts reuse it).  Cluster ports are reserved for the cluster's lifetime: the harness keeps
a socket bound (SO_REUSEADDR, never listening) on each, so no other bind(0) gets it while the
node itself (Twisted listens with SO_REUSEADDR) can still listen there, also after a restart.

Every wait is bounded; a failed wait raises :class:`ClusterMailError` (or
:class:`NotConverged`) with the reason and the log tail of the node at fault.
"""

from __future__ import annotations

import contextlib
import imaplib
import json
import random
import re
import secrets
import shutil
import signal
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from twistedmail.testing.imapview import (
    Flags,
    NodeView,
    diff_views,
    list_folders,
    parse_fetch,
    quote,
)
from twistedmail.testing.invariants import Invariants
from twistedmail.testing.process import ClusterMailError, ClusterMailProcess, imap_greeting
from twistedmail.testing.tcpproxy import TcpProxy

HOST = "127.0.0.1"
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")


class NotConverged(AssertionError):
    """wait_converged timed out; the message shows how the nodes differ."""


# --- config files -------------------------------------------------------------------------


def toml_value(value: object) -> str:
    """A TOML literal for a str, bool, int, float or list of them (JSON strings are TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML literal for {value!r}")


def toml_table(header: str, table: Mapping[str, object]) -> str:
    """``[header]`` (or ``[[header]]`` when given so) followed by ``key = value`` lines."""
    lines = [header]
    for key, value in table.items():
        name = key if _BARE_KEY.match(key) else json.dumps(key)
        lines.append(f"{name} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def reserve_port(host: str = HOST) -> socket.socket:
    """A socket bound to a free port of ``host`` (SO_REUSEADDR, not listening): the port
    stays out of every other bind(0) until closed, yet a SO_REUSEADDR listener can take it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


def free_run(n: int, rng: random.Random, avoid: frozenset[int] = frozenset()) -> int:
    """A first port of ``n`` consecutive ports free on 127.0.0.1 now (bounded search):
    for tools such as ``clustermail cluster up`` that take a base port."""
    for _ in range(200):
        base = rng.randrange(20000, 60000)
        ports = range(base, base + n)
        if avoid & set(ports):
            continue
        socks: list[socket.socket] = []
        try:
            for port in ports:
                sock = socket.socket()
                socks.append(sock)
                sock.bind((HOST, port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise AssertionError(f"no {n} consecutive free ports found")


def node_names(n: int) -> list[str]:
    """``["n1", ..., "nN"]``; node ``nI`` has UIDVALIDITY root I."""
    return [f"n{i}" for i in range(1, n + 1)]


# --- one node -----------------------------------------------------------------------------


class ClusterNodeProcess(ClusterMailProcess):
    """A cluster node: ``start()`` only spawns, since peers become ready together;
    :meth:`wait_listening` then :meth:`wait_ready` do the waiting."""

    def _wait_ready(self) -> None:
        """Nothing here: a node alone may not be ready (it needs a majority)."""

    def wait_listening(self, timeout: float) -> int:
        """Wait until the node logged its IMAP port and accepts connections there."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive("while starting")
            port = self._logged_port()
            if port is not None and self._accepts(port):
                self.port = port
                return port
            time.sleep(0.05)
        raise self._error(f"no IMAP listener within {timeout} s")

    def greeting(self) -> bytes:
        """The first line the node sends now (b"" when it cannot be reached)."""
        if self.port is None:
            return b""
        try:
            return imap_greeting(self.host, self.port)
        except OSError:
            return b""

    def wait_ready(self, timeout: float) -> None:
        """Wait until the node greets ``* OK`` (not ``* BYE [UNAVAILABLE]``)."""
        deadline = time.monotonic() + timeout
        last = b""
        while time.monotonic() < deadline:
            self._check_alive("before it was ready")
            last = self.greeting()
            if last.startswith(b"* OK"):
                return
            time.sleep(0.05)
        raise self._error(f"not ready within {timeout} s (last greeting {last!r})")

    def _check_alive(self, when: str) -> None:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise self._error(f"twistd clustermail exited with status {code} {when}")

    def _accepts(self, port: int) -> bool:
        try:
            socket.create_connection((self.host, port), timeout=1.0).close()
        except OSError:
            return False
        return True


# --- the cluster ----------------------------------------------------------------------------


class Cluster:
    """``n`` real nodes n1..nN (roots 1..N) behind per-link TCP proxies; see module doc."""

    def __init__(
        self,
        n: int = 3,
        users: Mapping[str, str] | None = None,
        accounts: Mapping[str, Sequence[str]] | None = None,
        extra_config: str = "",
        cluster_options: Mapping[str, object] | None = None,
        workdir: Path | str | None = None,
        startup_timeout: float = 30.0,
        node_options: Mapping[str, Mapping[str, object]] | None = None,
    ) -> None:
        if n < 1:
            raise ValueError("a cluster needs at least one node")
        self.names = node_names(n)
        self.users = dict(users if users is not None else {"alice": "secret"})
        self.accounts = {u: list(ns) for u, ns in (accounts or {}).items()}
        self.extra_config = extra_config
        self.cluster_options = dict(cluster_options or {})
        # extra keys of a node's [[node]] table, e.g. {"n1": {"site": "site1"}}
        self.node_options = {n: dict(o) for n, o in (node_options or {}).items()}
        self.secret = secrets.token_hex(16)
        self.startup_timeout = startup_timeout
        self.roots = {name: i for i, name in enumerate(self.names, start=1)}
        self.invariants = Invariants(roots=self.roots)
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="twistedmail-cluster-"))
        self._reservations: dict[str, socket.socket] = {}
        self.proxies: dict[tuple[str, str], TcpProxy] = {}
        self.nodes: dict[str, ClusterNodeProcess] = {}
        self._frozen: set[str] = set()
        self._clients: list[imaplib.IMAP4] = []
        try:
            self._setup()
        except BaseException:
            self.stop()
            raise

    def _setup(self) -> None:
        for name in self.names:
            self._reservations[name] = reserve_port()
        for a, b in iter_pairs(self.names):
            self.proxies[a, b] = TcpProxy((HOST, self.cluster_port(b)), name=f"{a}->{b}")
        for name in self.names:
            workdir = self.workdir / name
            workdir.mkdir(parents=True, exist_ok=True)
            self.config_path(name).write_text(self.config_text(name))
            args = ["--config", str(self.config_path(name)), "--node", name]
            self.nodes[name] = ClusterNodeProcess(
                workdir, extra_args=args, startup_timeout=self.startup_timeout, host=HOST
            )

    # --- config ---------------------------------------------------------------------------

    def cluster_port(self, name: str) -> int:
        """The port node ``name`` listens on for cluster links."""
        return int(self._reservations[name].getsockname()[1])

    def link_address(self, src: str, dst: str) -> tuple[str, int]:
        """Where ``src`` dials ``dst``: the proxy of that ordered pair."""
        return self.proxies[src, dst].address

    def config_path(self, name: str) -> Path:
        """Node ``name``'s config file."""
        return self.workdir / name / "clustermail.toml"

    def config_text(self, name: str) -> str:
        """Node ``name``'s config file (contract §1): every node, peers behind proxies."""
        parts = [toml_table("[cluster]", {"secret": self.secret, **self.cluster_options})]
        for other in self.names:
            own = (HOST, self.cluster_port(other))
            host, port = own if other == name else self.link_address(name, other)
            node = {
                "name": other,
                "uidvalidity_root": self.roots[other],
                "imap": [f"tcp:0:interface={HOST}"],
                "cluster": f"tcp:{self.cluster_port(other)}:interface={HOST}",
                "cluster_address": f"{host}:{port}",
                **self.node_options.get(other, {}),
            }
            parts.append(toml_table("[[node]]", node))
        if self.accounts:
            parts.append(toml_table("[accounts]", self.accounts))
        parts.append(toml_table("[users]", self.users))
        if self.extra_config:
            parts.append(self.extra_config.rstrip("\n") + "\n")
        return "\n".join(parts)

    def holds(self, name: str, user: str) -> bool:
        """Whether node ``name`` holds ``user``'s mail file ([accounts]; default every node)."""
        return user not in self.accounts or name in self.accounts[user]

    # --- life cycle -------------------------------------------------------------------------

    def start(self, ready: bool = True) -> Cluster:
        """Spawn every node not running, wait until each listens, then (``ready``) greets OK."""
        started = [name for name in self.names if not self.nodes[name].running]
        for name in started:
            self.nodes[name].start()
        for name in started:
            self.nodes[name].wait_listening(self.startup_timeout)
        if ready:
            for name in started:
                self.wait_ready(name)
        return self

    def node(self, name: str) -> ClusterNodeProcess:
        """The process of node ``name``."""
        return self.nodes[name]

    def imap(self, name: str) -> tuple[str, int]:
        """(host, port) of node ``name``'s IMAP listener."""
        node = self.nodes[name]
        if node.port is None:
            raise ClusterMailError(f"{name} has not listened yet")
        return node.host, node.port

    def wait_ready(self, name: str, timeout: float | None = None) -> None:
        """Wait until ``name`` greets ``* OK`` (catching-up nodes answer ``* BYE``)."""
        self.nodes[name].wait_ready(self.startup_timeout if timeout is None else timeout)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int | None:
        """Send ``sig``: SIGKILL/SIGTERM wait for the exit (status returned); SIGSTOP freezes
        the node (it counts as not live) until ``kill(name, SIGCONT)``."""
        node = self.nodes[name]
        if sig == signal.SIGKILL:
            self._frozen.discard(name)
            return node.kill()
        if sig == signal.SIGTERM:
            self._thaw(name)
            return node.stop()
        if node.proc is not None and node.running:
            node.proc.send_signal(sig)
        if sig == signal.SIGSTOP:
            self._frozen.add(name)
        elif sig == signal.SIGCONT:
            self._frozen.discard(name)
        return None

    def restart(self, name: str, ready: bool = True) -> ClusterNodeProcess:
        """Stop ``name`` if running, start it empty on the same IMAP and cluster ports."""
        node = self.nodes[name]
        self._thaw(name)
        node.stop()
        node.start()
        node.wait_listening(self.startup_timeout)
        if ready:
            self.wait_ready(name)
        return node

    def live(self) -> list[str]:
        """Nodes whose process runs and is not frozen."""
        return [n for n in self.names if self.nodes[n].running and n not in self._frozen]

    def partition(self, a: str, b: str, mode: str = "cut") -> None:
        """Cut both links between ``a`` and ``b`` (``mode="pause"``: silently stall them)."""
        for pair in ((a, b), (b, a)):
            proxy = self.proxies[pair]
            proxy.pause() if mode == "pause" else proxy.cut()

    def isolate(self, name: str, mode: str = "cut") -> None:
        """Partition ``name`` from every other node."""
        for other in self.names:
            if other != name:
                self.partition(name, other, mode)

    def heal(self) -> None:
        """Restore every link."""
        for proxy in self.proxies.values():
            proxy.restore()

    def stop(self) -> None:
        """Close clients, stop every node (SIGTERM together, then wait), close the proxies,
        release the ports.  Safe to call twice, also after a failed start."""
        for client in self._clients:
            _quietly_close(client)
        self._clients.clear()
        for name, node in self.nodes.items():
            self._thaw(name)
            if node.proc is not None and node.running:
                node.proc.send_signal(signal.SIGTERM)
        for node in self.nodes.values():
            node.stop()
        for proxy in self.proxies.values():
            proxy.close()
        for sock in self._reservations.values():
            sock.close()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _thaw(self, name: str) -> None:
        node = self.nodes.get(name)
        if name in self._frozen and node is not None and node.proc is not None and node.running:
            node.proc.send_signal(signal.SIGCONT)
        self._frozen.discard(name)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = ", ".join(f"{n}:{'up' if n in self.live() else 'down'}" for n in self.names)
        return f"<Cluster {state}>"

    # --- IMAP helpers -----------------------------------------------------------------------

    def client(self, name: str, user: str, timeout: float = 10.0) -> imaplib.IMAP4:
        """A logged-in imaplib client on node ``name`` (closed by stop())."""
        client = self._connect(name, user, timeout)
        self._clients.append(client)
        return client

    def _connect(self, name: str, user: str, timeout: float = 10.0) -> imaplib.IMAP4:
        host, port = self.imap(name)
        client = imaplib.IMAP4(host, port, timeout=timeout)
        try:
            client.login(user, self.users[user])
        except BaseException:
            _quietly_close(client)
            raise
        return client

    @contextlib.contextmanager
    def session(self, name: str, user: str, timeout: float = 10.0) -> Iterator[imaplib.IMAP4]:
        """``with c.session("n1", "alice") as imap:`` a logged-in client, closed after."""
        client = self._connect(name, user, timeout)
        try:
            yield client
        finally:
            _quietly_close(client)

    def append(
        self, name: str, user: str, folder: str, message: bytes, flags: Iterable[str] = ()
    ) -> bool:
        """APPEND on ``name``: True when answered OK (acknowledged), False on NO or a lost
        connection (not acknowledged).  BAD raises: that is a harness or test bug."""
        return self.append_reply(name, user, folder, message, flags)[0] == "OK"

    def append_reply(
        self, name: str, user: str, folder: str, message: bytes, flags: Iterable[str] = ()
    ) -> tuple[str, str]:
        """APPEND on ``name``: ("OK" | "NO" | "LOST", server text or error), e.g.
        ``("NO", "[UNAVAILABLE] only 1 of 3 replicas ...")``; a refused greeting or LOGIN
        is "NO", a connection lost before the answer is "LOST"; BAD raises."""
        flag_list = "(" + " ".join(flags) + ")" if flags else None
        try:
            with self.session(name, user) as client:
                typ, data = client.append(quote(folder), flag_list, None, message)
        except (imaplib.IMAP4.abort, OSError) as err:
            return "LOST", str(err)
        except imaplib.IMAP4.error as err:
            if "command error: BAD" in str(err):
                raise
            return "NO", str(err)  # e.g. a BYE [UNAVAILABLE] greeting or LOGIN refused
        text = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
        return typ, text

    def messages(
        self, name: str, user: str, folder: str
    ) -> dict[int, tuple[str, Flags]]:
        """UID -> (EMAILID, flags) of ``folder`` on ``name`` (recorded in ``invariants``)."""
        return self.folder_state(name, user, folder)[1]

    def folder_state(
        self, name: str, user: str, folder: str
    ) -> tuple[int, dict[int, tuple[str, Flags]]]:
        """(UIDVALIDITY, UID -> (EMAILID, flags)) of ``folder`` on ``name`` (recorded)."""
        with self.session(name, user) as client:
            return self._examine(client, name, user, folder)

    def view(self, name: str, timeout: float = 10.0) -> NodeView:
        """Every folder of every user held on ``name``: (EMAILID, flags) multisets."""
        result: NodeView = {}
        for user in self.users:
            if not self.holds(name, user):
                continue
            with self.session(name, user, timeout) as client:
                result[user] = {}
                for folder in list_folders(client):
                    _uv, msgs = self._examine(client, name, user, folder)
                    result[user][folder] = Counter(msgs.values())
        return result

    def wait_converged(
        self, timeout: float = 30.0, nodes: Sequence[str] | None = None
    ) -> dict[str, NodeView]:
        """Poll ``nodes`` (default: every live node) over IMAP until every user's folders hold
        the same (EMAILID, flags) multisets on every node holding the user; return the views.
        On timeout raise NotConverged with a readable diff."""
        deadline = time.monotonic() + timeout
        names = list(nodes) if nodes is not None else self.live()
        problems = ["no node to compare"]
        while time.monotonic() < deadline:
            views, errors = self._views(names, max(0.5, deadline - time.monotonic()))
            problems = errors + (diff_views(views, self.holds) if not errors else [])
            if not problems:
                return views
            time.sleep(0.1)
        raise NotConverged(
            f"nodes {', '.join(names)} not converged within {timeout} s:\n" + "\n".join(problems)
        )

    def _views(
        self, names: Sequence[str], timeout: float
    ) -> tuple[dict[str, NodeView], list[str]]:
        views: dict[str, NodeView] = {}
        errors = []
        for name in names:
            try:
                views[name] = self.view(name, min(10.0, timeout))
            except (imaplib.IMAP4.error, OSError) as err:
                errors.append(f"{name}: not readable over IMAP: {err}")
        return views, errors

    def _examine(
        self, client: imaplib.IMAP4, name: str, user: str, folder: str
    ) -> tuple[int, dict[int, tuple[str, Flags]]]:
        """EXAMINE ``folder`` and UID FETCH its (EMAILID FLAGS); record what was seen."""
        typ, data = client.select(quote(folder), readonly=True)
        if typ != "OK":
            raise imaplib.IMAP4.error(f"EXAMINE {folder!r} on {name}: {data!r}")
        exists = int(data[0] or b"0")
        _typ, uvs = client.response("UIDVALIDITY")
        if not uvs or uvs[0] is None:
            raise imaplib.IMAP4.error(f"EXAMINE {folder!r} on {name}: no UIDVALIDITY")
        uidvalidity = int(uvs[0])
        msgs: dict[int, tuple[str, Flags]] = {}
        if exists:
            typ, lines = client.uid("FETCH", "1:*", "(EMAILID FLAGS)")
            if typ != "OK":
                raise imaplib.IMAP4.error(f"UID FETCH in {folder!r} on {name}: {lines!r}")
            msgs = parse_fetch(lines)
        self.invariants.messages(
            name, user, folder, uidvalidity, {uid: e for uid, (e, _f) in msgs.items()}
        )
        return uidvalidity, msgs


def _quietly_close(client: imaplib.IMAP4) -> None:
    with contextlib.suppress(OSError):
        client.shutdown()


def iter_pairs(names: Sequence[str]) -> Iterator[tuple[str, str]]:
    """Every ordered pair of distinct names (one proxy each)."""
    return ((a, b) for a in names for b in names if a != b)
