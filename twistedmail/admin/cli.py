"""The ``clustermail`` command line (console script; DESIGN.md §6).

    clustermail cluster up -n 3 [--base-port 1143] [--dir DIR] [--user alice:secret]...
    clustermail cluster down [--dir DIR]
    clustermail [--admin ENDPOINT | --node NAME [--config FILE]] [--all-nodes] COMMAND
        convert -e- MAILFILE | convert -e MAILFILE | status [--json] | set-root N
        users add NAME PASSWORD | users del NAME | users passwd NAME PASSWORD | users list
        load convert -e- mail\\alice.nsf | console

``cluster up`` writes DIR/cluster.toml (roots 1..n, IMAP ports base, base+1, ...,
cluster ports from --cluster-base-port, a random secret, the demo account made
on n1), starts one ``twistd -n clustermail --config DIR/cluster.toml --node nI``
process per node (pid file, log file and admin socket DIR/nI.admin per node in
DIR), waits until every node greets with ``* OK``, and prints a table of the
nodes.  ``cluster down`` stops the processes ``up`` recorded in DIR/nodes.json.

Invariants:
  * Only 127.0.0.1 is used; a port already in use stops ``up`` before any
    process starts.
  * Every wait is bounded (--timeout); a node that exits or never greets stops
    the whole ``up`` (the nodes already started are stopped) with its log tail.
  * ``down`` signals only pids it recorded whose command line is still that
    node's twistd (a recycled pid is left alone).
  * Errors are one line on stderr and exit status 1 (2 for bad arguments),
    never a traceback.

The admin subcommands (issue 4) live in twistedmail/admin/actions.py (one
command) and twistedmail/admin/console.py (the interactive console).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import twistedmail
from twistedmail import config as node_config
from twistedmail.admin import actions, console
from twistedmail.admin.client import AdminClientError

HOST = "127.0.0.1"
DEFAULT_DIR = "clustermail-local"
DEFAULT_BASE_PORT = 1143
CLUSTER_PORT_OFFSET = 5858  # default cluster ports: IMAP base + 5858 (7001 for 1143)
DEMO = ("demo", "demo")
TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"
STATE = "nodes.json"
CONFIG = "cluster.toml"


class CliError(Exception):
    """A problem to report in one line (exit status 1)."""


@dataclass
class LocalNode:
    """One node process of a local cluster, as recorded in DIR/nodes.json."""

    name: str
    root: int
    imap_port: int
    cluster_port: int
    log: str
    pidfile: str
    pid: int | None = None
    admin: str = ""  # the node's --admin endpoint (unix:DIR/nI.admin)

    @property
    def imap(self) -> str:
        """The IMAP address clients connect to."""
        return f"{HOST}:{self.imap_port}"


# --- command line ------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """``clustermail`` with its subcommands (argparse subparsers)."""
    parser = actions.Parser(
        prog="clustermail", description="Manage twistedmail clusters and their nodes.",
        epilog="Exit status: 0 success, 1 refused or unreachable, 2 bad arguments.")
    actions.add_target_options(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    actions.add_admin_commands(commands)
    repl = commands.add_parser("console", help="interactive admin console (history, help)")
    repl.set_defaults(run=console.run_console)
    from twistedmail.admin import secrets_cli

    secrets_cli.add_local_commands(commands)  # hash-password (issue 7)
    cluster = commands.add_parser("cluster", help="run a local cluster on 127.0.0.1")
    steps = cluster.add_subparsers(dest="action", required=True, metavar="ACTION")

    up = steps.add_parser(
        "up", help="start N nodes on 127.0.0.1 and wait until each serves",
        description="Write DIR/cluster.toml and start one twistd clustermail per node.")
    up.add_argument("-n", "--nodes", type=int, default=3, help="number of nodes (default 3)")
    up.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT,
                    help="IMAP port of n1; nI gets base+I-1 (default 1143)")
    up.add_argument("--cluster-base-port", type=int, default=None,
                    help=f"cluster port of n1 (default base port + {CLUSTER_PORT_OFFSET})")
    up.add_argument("--dir", default=DEFAULT_DIR,
                    help=f"config, pid and log files (default ./{DEFAULT_DIR})")
    up.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD",
                    help="an account on every node (repeatable), e.g. --user alice:secret")
    up.add_argument("--no-demo", action="store_true",
                    help="leave out the demo/demo account with sample mail")
    up.add_argument("--timeout", type=float, default=60.0,
                    help="seconds to wait for every node to serve (default 60)")
    up.set_defaults(run=cluster_up)

    down = steps.add_parser("down", help="stop the nodes `cluster up` started in DIR")
    down.add_argument("--dir", default=DEFAULT_DIR, help=f"(default ./{DEFAULT_DIR})")
    down.add_argument("--timeout", type=float, default=10.0,
                      help="seconds to wait for each node after SIGTERM before SIGKILL")
    down.set_defaults(run=cluster_down)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``clustermail`` console script."""
    try:
        args = build_parser().parse_args(argv)
        return int(args.run(args))
    except actions.UsageError as err:
        print(f"clustermail: error: {err}", file=sys.stderr)
        return 2
    except (CliError, AdminClientError) as err:
        print(f"clustermail: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


# --- cluster up --------------------------------------------------------------------------


def cluster_up(args: argparse.Namespace) -> int:
    """Write the config, start the nodes, wait for their greetings, print the table."""
    workdir = Path(args.dir).resolve()
    users = _users(args.user)
    nodes = _layout(args, workdir)
    _refuse_running(workdir)
    _check_ports_free(nodes)
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / CONFIG
    config.write_text(cluster_config(nodes, users, secrets.token_hex(16), not args.no_demo))
    started: list[tuple[LocalNode, subprocess.Popen[bytes]]] = []
    try:
        for node in nodes:
            extra = ["--user", ":".join(DEMO)] if not args.no_demo and node.root != 1 else []
            proc = _spawn(node, config, workdir, extra)
            node.pid = proc.pid
            started.append((node, proc))
        _save_state(workdir, nodes)
        _wait_serving(started, time.monotonic() + args.timeout)
    except BaseException:
        for _, proc in started:
            _stop_pid(proc.pid, 5.0)
        _save_state(workdir, [])
        raise
    print(_table(nodes, users, not args.no_demo, workdir))
    return 0


def _users(specs: Sequence[str]) -> dict[str, str]:
    users: dict[str, str] = {}
    for spec in specs:
        name, sep, password = spec.partition(":")
        if not sep or not name or not password or any(c.isspace() for c in name):
            raise CliError(f"--user: expected NAME:PASSWORD, got {spec!r}")
        users[name] = password
    return users


def _layout(args: argparse.Namespace, workdir: Path) -> list[LocalNode]:
    if not 1 <= args.nodes <= 255:
        raise CliError(f"-n: must be 1-255 nodes, got {args.nodes}")
    cluster_base = args.cluster_base_port
    if cluster_base is None:
        cluster_base = args.base_port + CLUSTER_PORT_OFFSET
    for option, base in (("--base-port", args.base_port), ("--cluster-base-port", cluster_base)):
        if not 1 <= base <= 65536 - args.nodes:
            raise CliError(f"{option}: {base} leaves no room for {args.nodes} ports")
    imap = set(range(args.base_port, args.base_port + args.nodes))
    if imap & set(range(cluster_base, cluster_base + args.nodes)):
        raise CliError("--cluster-base-port: the cluster ports overlap the IMAP ports")
    return [
        LocalNode(f"n{i}", i, args.base_port + i - 1, cluster_base + i - 1,
                  str(workdir / f"n{i}.log"), str(workdir / f"n{i}.pid"),
                  admin=f"unix:{workdir / f'n{i}.admin'}")
        for i in range(1, args.nodes + 1)
    ]


def cluster_config(nodes: Sequence[LocalNode], users: dict[str, str], secret: str,
                   demo: bool) -> str:
    """The TOML text of a local cluster (see twistedmail/cluster/spec.py)."""
    q = json.dumps  # a JSON string is a TOML basic string
    lines = [
        "# A local twistedmail cluster, written by `clustermail cluster up`.",
        "# Stop it with `clustermail cluster down`; see README.md for every key.",
        "",
        "[cluster]",
        f"secret = {q(secret)}",
        "",
    ]
    for node in nodes:
        lines += [
            "[[node]]",
            f"name = {q(node.name)}",
            f"uidvalidity_root = {node.root}",
            f"imap = [{q(f'tcp:{node.imap_port}:interface={HOST}')}]",
            f"cluster = {q(f'tcp:{node.cluster_port}:interface={HOST}')}",
        ]
        if node.admin and "admin" in node_config.NODE_KEYS:
            lines.append(f"admin = {q(node.admin)}")  # where `clustermail --node` finds it
        if demo and node.root == 1:
            lines.append("demo = true  # the demo account's sample mail is made here once")
        lines.append("")
    lines.append("[users]")
    lines += [f"{q(name)} = {q(password)}" for name, password in users.items()]
    return "\n".join(lines) + "\n"


def _refuse_running(workdir: Path) -> None:
    alive = [n.name for n in _load_state(workdir) if n.pid and _is_our_node(n, workdir)]
    if alive:
        raise CliError(f"nodes {', '.join(alive)} of {workdir} are still running; "
                       f"stop them with: clustermail cluster down --dir {workdir}")


def _check_ports_free(nodes: Sequence[LocalNode]) -> None:
    for node in nodes:
        for port in (node.imap_port, node.cluster_port):
            with socket.socket() as sock:
                # As Twisted listens: SO_REUSEADDR, so TIME_WAIT leftovers of a
                # cluster just stopped do not count as "in use".
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((HOST, port))
                except OSError:
                    raise CliError(f"port {port} on {HOST} is in use (choose other ports "
                                   "with --base-port / --cluster-base-port)") from None


def _spawn(node: LocalNode, config: Path, workdir: Path,
           extra: list[str]) -> subprocess.Popen[bytes]:
    """``twistd -n clustermail --config ... --node nI``, detached from this process."""
    argv = [sys.executable, "-c", TWISTD, "--nodaemon", f"--pidfile={node.pidfile}",
            f"--logfile={node.log}", "clustermail", "--config", str(config),
            "--node", node.name, *_admin_option(node), *extra]
    with open(node.log, "ab") as log:
        log.write(f"=== clustermail cluster up: {' '.join(argv[3:])}\n".encode())
        log.flush()
        return subprocess.Popen(argv, cwd=workdir, env=_env(workdir), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _admin_option(node: LocalNode) -> list[str]:
    """``--admin unix:DIR/nI.admin`` (when this twistedmail's node has the option)."""
    return ["--admin", node.admin] if node.admin and "admin" in node_config.CLI_KEYS else []


def _env(workdir: Path) -> dict[str, str]:
    """This twistedmail first on the path, and the twistd dropin (tap/) where twistd
    finds it even in a checkout whose dropin is not installed."""
    source = Path(twistedmail.__file__).resolve().parent.parent
    paths = [str(source)]
    dropin = source / "tap" / "clustermail.py"
    if dropin.exists():
        plugins = workdir / "plugins" / "twisted" / "plugins"
        plugins.mkdir(parents=True, exist_ok=True)
        (plugins / "clustermail.py").write_bytes(dropin.read_bytes())
        paths.append(str(workdir / "plugins"))
    env = dict(os.environ)
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _wait_serving(started: Sequence[tuple[LocalNode, subprocess.Popen[bytes]]],
                  deadline: float) -> None:
    """Until every node greets ``* OK`` (a node catching up says ``* BYE [UNAVAILABLE]``)."""
    waiting = list(started)
    last: dict[str, str] = {}
    while waiting:
        for node, proc in list(waiting):
            if proc.poll() is not None:
                raise CliError(f"node {node.name} exited with status {proc.returncode} while "
                               f"starting; {_log_tail(node.log)}")
            greeting = greet(node.imap_port)
            if greeting.startswith("* OK"):
                waiting.remove((node, proc))
            elif greeting:
                last[node.name] = greeting
        if waiting and time.monotonic() > deadline:
            node = waiting[0][0]
            said = last.get(node.name, "no greeting")
            raise CliError(f"node {node.name} does not serve yet ({said}); {_log_tail(node.log)}")
        if waiting:
            time.sleep(0.1)


def greet(port: int, timeout: float = 2.0) -> str:
    """The first line an IMAP server on 127.0.0.1:port sends, or "" if none."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            data = b""
            while b"\r\n" not in data and len(data) < 4096:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return ""
    return data.split(b"\r\n", 1)[0].decode("utf-8", "replace")


def _log_tail(path: str, lines: int = 1) -> str:
    try:
        text = Path(path).read_text("utf-8", "replace")
    except OSError:
        return f"no log at {path}"
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return f"see {path}: " + " | ".join(tail)


def _table(nodes: Sequence[LocalNode], users: dict[str, str], demo: bool,
           workdir: Path) -> str:
    rows = [("NODE", "ROOT", "IMAP", "PID", "LOG")]
    rows += [(n.name, str(n.root), n.imap, str(n.pid), n.log) for n in nodes]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    out = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[4]
           for r in rows]
    accounts = [f"{name}/{password}" for name, password in users.items()]
    if demo:
        accounts.insert(0, "demo/demo (sample mail)")
    out += [
        "",
        f"{len(nodes)} node(s) serving IMAP on {HOST}, config {workdir / CONFIG}",
        f"accounts: {', '.join(accounts) or 'none (add --user NAME:PASSWORD)'}",
        f"try:  python3 -c \"import imaplib; c = imaplib.IMAP4('{HOST}', {nodes[0].imap_port}); "
        f"print(c.login('demo', 'demo'))\"" if demo else "",
        *(f"admin {n.name}: {n.admin}" for n in nodes if n.admin),
        f"admin: clustermail --dir {workdir} --node n1 status "
        f"(or --all-nodes; the Domino form: --node n1 load convert -e- 'mail\\alice.nsf')",
        f"stop: clustermail cluster down --dir {workdir}",
    ]
    return "\n".join(line for line in out if line)


# --- cluster down ------------------------------------------------------------------------


def cluster_down(args: argparse.Namespace) -> int:
    """SIGTERM every node ``up`` recorded (SIGKILL after --timeout); forget them."""
    workdir = Path(args.dir).resolve()
    if not (workdir / STATE).exists():
        raise CliError(f"no cluster was started in {workdir} (no {STATE})")
    for node in _load_state(workdir):
        if node.pid is None or not _is_our_node(node, workdir):
            print(f"{node.name}: not running")
            continue
        how = _stop_pid(node.pid, args.timeout)
        print(f"{node.name}: stopped (pid {node.pid}, {how})")
    _save_state(workdir, [])
    return 0


def _stop_pid(pid: int, timeout: float) -> str:
    """SIGTERM, wait up to ``timeout``, then SIGKILL; how it ended."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return "already gone"
    if _wait_gone(pid, timeout):
        return "SIGTERM"
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return "SIGTERM"
    _wait_gone(pid, 5.0)
    return "SIGKILL"


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped yet counts as gone)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _is_our_node(node: LocalNode, workdir: Path) -> bool:
    """``node.pid`` still runs this node's twistd (not a recycled pid)."""
    if node.pid is None or not _alive(node.pid):
        return False
    try:
        argv = Path(f"/proc/{node.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc to tell: trust the record
    wanted = [b"clustermail", str(workdir / CONFIG).encode(), node.name.encode()]
    return all(w in argv for w in wanted)


def _save_state(workdir: Path, nodes: Sequence[LocalNode]) -> None:
    (workdir / STATE).write_text(json.dumps([asdict(n) for n in nodes], indent=1) + "\n")


def _load_state(workdir: Path) -> list[LocalNode]:
    try:
        records = json.loads((workdir / STATE).read_text())
        return [LocalNode(**r) for r in records]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, TypeError) as err:
        raise CliError(f"{workdir / STATE}: unreadable ({err})") from None


if __name__ == "__main__":
    sys.exit(main())
