"""Fault soak (issue 7 item 5): a real 3-node ``twistd clustermail`` cluster under client load
while a nemesis injects faults; at the end, nothing acknowledged may be lost or doubled.

    cd /work/main && .venv/bin/python -m bench.soak --duration 600 --clients 50
        [--users 5] [--pace 0.2] [--interval 1] [--seed 1] [--json FILE]

Load (``bench/soak_client.py``): ``--clients`` threads, spread over ``--users`` accounts
and the three nodes, APPEND (a unique Message-ID each, acknowledged only on the tagged OK),
flag, expunge their own messages (recorded before the command is sent), IDLE, scan (UID
FETCH, fed to the UID/UIDVALIDITY invariants), and fail over to the next node when their
session is lost or refused.

Nemesis: every ~``--interval`` seconds (after the cluster is ready again, bounded) one fault,
in rotation: ``kill -9`` of a node and its restart with an empty memory; a partition of two
nodes (the harness's link proxies, cut or silently paused); a node isolated from both
peers; ``clustermail convert -e-`` then ``convert -e`` of a user on one node.  Each fault
is held 0.5-2 s, then reverted.

End: heal, restart what is down, wait until every node serves and the replicas converge
(bounded), then read every folder of every user on every node by Message-ID and check:
every acknowledged, not expunged message exactly once on every node (``lost``), no
Message-ID twice anywhere (``duplicates``), flags equal on every node (``flag
divergence``), refused APPENDs absent, and the invariants of
``twistedmail/testing/invariants.py``.  Prints a report; exit status 1 on any loss,
duplicate, divergence, invariant violation, or a fault the nemesis could not inject or
undo (a node not serving again within 90 s); ``run_soak`` returns the report for tests.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.soak_client import Conn, Ledger, Lost, Refused, join_clients, parse_fetch, start_clients
from twistedmail.testing.cluster import Cluster, NotConverged, reserve_port
from twistedmail.testing.invariants import Invariants
from twistedmail.testing.process import ClusterMailError

READY_WAIT = 90.0  # seconds: the nemesis waits this long for every node to serve
CLI_TIMEOUT = 60.0
_LAG = re.compile(rb'^twistedmail_replication_lag_ops\{peer="([^"]+)"\} ([0-9.e+]+)', re.M)
_UP = re.compile(rb'^twistedmail_peer_(up|linked)\{peer="([^"]+)"\} ([0-9.e+]+)', re.M)


@dataclass
class Report:
    """The figures of one soak run."""

    duration: float = 0.0
    clients: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    fault_errors: list[str] = field(default_factory=list)
    ops: Counter[str] = field(default_factory=Counter)
    acked: int = 0
    expunged: int = 0
    unknown: int = 0
    refused: int = 0
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    flag_divergence: list[str] = field(default_factory=list)
    refused_present: list[str] = field(default_factory=list)
    unknown_present: int = 0
    not_converged: str = ""
    invariant_problems: list[str] = field(default_factory=list)
    client_errors: list[str] = field(default_factory=list)
    max_lag_ops: float = 0.0
    lag_samples: int = 0
    converge_seconds: float = 0.0
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    messages_at_end: int = 0

    @property
    def ok(self) -> bool:
        """No loss, duplicate, divergence, invariant violation, client or nemesis error."""
        return not (self.lost or self.duplicates or self.flag_divergence or self.not_converged
                    or self.invariant_problems or self.client_errors or self.refused_present
                    or self.fault_errors)

    def text(self) -> str:
        """The printed report."""
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items()))
        ops = ", ".join(f"{k} {v}" for k, v in sorted(self.ops.items()))
        rss = ", ".join(f"{k} {v:.0f} MB" for k, v in sorted(self.peak_rss_mb.items()))
        lines = [
            f"soak: {self.duration:.0f} s, {self.clients} clients, 3 nodes",
            f"faults injected: {sum(self.faults.values())} ({faults})",
            f"fault errors: {len(self.fault_errors)} {self.fault_errors[:5]}",
            f"ops: {ops}",
            f"APPENDs acknowledged {self.acked}, refused (NO) {self.refused}, unknown (lost "
            f"connection) {self.unknown} of which present {self.unknown_present}",
            f"expunged by clients: {self.expunged}; messages at the end: {self.messages_at_end}",
            f"lost = {len(self.lost)} {self.lost[:5]}",
            f"duplicates = {len(self.duplicates)} {self.duplicates[:5]}",
            f"flag divergence = {len(self.flag_divergence)} {self.flag_divergence[:5]}",
            f"refused but present = {len(self.refused_present)} {self.refused_present[:5]}",
            f"converged after heal in {self.converge_seconds:.1f} s"
            + (f"; NOT CONVERGED: {self.not_converged[:2000]}" if self.not_converged else ""),
            f"invariant violations = {len(self.invariant_problems)} "
            f"{self.invariant_problems[:5]}",
            f"client errors = {len(self.client_errors)} {self.client_errors[:5]}",
            f"max replication lag seen: {self.max_lag_ops:.0f} ops "
            f"({self.lag_samples} samples of linked, up peers)",
            f"peak RSS per node: {rss}",
            "RESULT: " + ("OK" if self.ok else "FAILED"),
        ]
        return "\n".join(lines)


# --- monitor: lag and memory ---------------------------------------------------------------


class Monitor:
    """Samples each node's RSS (/proc) and /metrics (replication lag of up, linked peers)
    every ``period`` seconds until stopped."""

    def __init__(self, c: Cluster, http: dict[str, int], report: Report, period: float = 1.0):
        self.c, self.http, self.report, self.period = c, http, report, period
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="soak-monitor", daemon=True)

    def _run(self) -> None:
        for _ in range(1_000_000):
            if self.stop.wait(self.period):
                return
            for name in self.c.names:
                self.sample(name)

    def sample(self, name: str) -> None:
        """One RSS and lag sample of node ``name`` (nothing when it is down)."""
        pid = self.c.node(name).pid
        if pid is not None:
            peak = _proc_kb(pid, "VmHWM") / 1024
            old = self.report.peak_rss_mb.get(name, 0.0)
            self.report.peak_rss_mb[name] = max(old, peak)
        try:
            url = f"http://127.0.0.1:{self.http[name]}/metrics"
            with urllib.request.urlopen(url, timeout=2.0) as answer:
                body = answer.read()
        except (OSError, ValueError):
            return
        state = {(kind, peer): float(v) for kind, peer, v in
                 ((k.decode(), p.decode(), v) for k, p, v in _UP.findall(body))}
        for peer, value in _LAG.findall(body):
            p = peer.decode()
            if state.get(("up", p)) == 1.0 and state.get(("linked", p)) == 1.0:
                self.report.lag_samples += 1
                self.report.max_lag_ops = max(self.report.max_lag_ops, float(value))


def _proc_kb(pid: int, key: str) -> float:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    m = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
    return float(m.group(1)) if m else 0.0


# --- nemesis -------------------------------------------------------------------------------


def clustermail_cli(c: Cluster, node: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``clustermail --admin unix:<node's admin socket> ARGS`` (bounded)."""
    sock = c.workdir / node / f"clustermail-{node}.admin"
    argv = [sys.executable, "-m", "twistedmail.admin.cli", "--admin", f"unix:{sock}", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=CLI_TIMEOUT,
                          stdin=subprocess.DEVNULL, errors="replace")


class Nemesis:
    """Injects one fault every ``interval`` seconds in rotation (see module doc)."""

    KINDS = ("kill9+restart-empty", "partition-cut", "convert -e-/-e", "partition-pause",
             "isolate", "kill9+restart-empty", "convert -e-/-e")

    def __init__(self, c: Cluster, users: list[str], report: Report, interval: float,
                 deadline: float, rng: random.Random, monitor: Monitor) -> None:
        self.c, self.users, self.report = c, users, report
        self.interval, self.deadline, self.rng, self.monitor = interval, deadline, rng, monitor
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="soak-nemesis", daemon=True)

    def _run(self) -> None:
        try:
            for i in range(1_000_000):
                if self.stop.wait(self.interval * self.rng.uniform(0.5, 1.5)):
                    return
                if time.monotonic() >= self.deadline or not self._wait_ready():
                    return
                kind = self.KINDS[i % len(self.KINDS)]
                self._inject(kind)
        except Exception as err:  # noqa: BLE001 - reported; the final phase heals
            self.report.fault_errors.append(f"nemesis: {type(err).__name__}: {err}")

    def _wait_ready(self) -> bool:
        """Wait (bounded) until every node serves; False when stopped or it never does."""
        deadline = time.monotonic() + READY_WAIT
        while not self.stop.is_set() and time.monotonic() < deadline:
            if all(self.c.node(n).greeting().startswith(b"* OK") for n in self.c.names):
                return True
            self.stop.wait(0.2)
        if not self.stop.is_set():
            self.report.fault_errors.append(f"cluster not serving {READY_WAIT} s after a fault")
        return False

    def _hold(self) -> None:
        self.stop.wait(self.rng.uniform(0.5, 2.0))

    def _inject(self, kind: str) -> None:
        names = self.c.names
        if kind.startswith("kill9"):
            victim = self.rng.choice(names)
            self.monitor.sample(victim)  # its peak RSS before it dies
            self.c.kill(victim)
            self._hold()
            self.c.restart(victim, ready=False)  # empty memory, same ports
        elif kind.startswith("partition"):
            a, b = self.rng.sample(names, 2)
            self.c.partition(a, b, mode=kind.removeprefix("partition-"))
            self._hold()
            self.c.heal()
        elif kind == "isolate":
            self.c.isolate(self.rng.choice(names))
            self._hold()
            self.c.heal()
        else:
            self._convert(self.rng.choice(self.users), self.rng.choice(names))
        self.report.faults[kind] += 1

    def _convert(self, user: str, node: str) -> None:
        for flag in ("-e-", "-e"):
            result = clustermail_cli(self.c, node, "convert", flag, user)
            if result.returncode != 0:
                self.report.fault_errors.append(
                    f"convert {flag} {user} on {node}: {result.stderr.strip()[:200]}")
            if flag == "-e-":
                self._hold()


# --- the final check -----------------------------------------------------------------------

NodeMessages = dict[str, dict[str, list[tuple[str, frozenset[str]]]]]  # user -> mid -> copies


def read_node(c: Cluster, node: str, users: dict[str, str]) -> NodeMessages:
    """Every message of every user on ``node``: Message-ID -> [(folder, flags)] (and the
    UIDs seen recorded in ``c.invariants``)."""
    out: NodeMessages = {}
    for user, password in users.items():
        conn = Conn(c.imap(node), timeout=60.0)
        try:
            if conn.command(f'LOGIN "{user}" "{password}"').status != "OK":
                raise Refused(f"LOGIN {user} on {node}")
            found: dict[str, list[tuple[str, frozenset[str]]]] = {}
            for folder in _folders(conn):
                _read_folder(c, conn, node, user, folder, found)
            out[user] = found
        finally:
            conn.close()
    return out


def _folders(conn: Conn) -> list[str]:
    reply = conn.command('LIST "" "*"')
    names = []
    for line in reply.untagged:
        m = re.match(rb'\* LIST \(([^)]*)\) (?:"[^"]*"|NIL) "?([^"\r\n]*)"?', line)
        if m and b"\\noselect" not in m.group(1).lower():
            names.append(m.group(2).decode())
    return names


def _read_folder(c: Cluster, conn: Conn, node: str, user: str, folder: str,
                 found: dict[str, list[tuple[str, frozenset[str]]]]) -> None:
    reply = conn.command(f'EXAMINE "{folder}"')
    uv = next((int(m.group(1)) for line in reply.untagged
               if (m := re.search(rb"\[UIDVALIDITY (\d+)\]", line))), 0)
    fetched = conn.command("UID FETCH 1:* (UID FLAGS EMAILID BODY.PEEK[HEADER.FIELDS "
                           "(MESSAGE-ID)])", limit=10_000_000)
    if fetched.status != "OK":
        raise Lost(f"UID FETCH on {node}: {fetched.status} {fetched.text!r}")
    emailids = {}
    for item in parse_fetch(fetched.untagged):
        flags = frozenset(f for f in item.get("flags", b"").decode().split()
                          if f.lower() != "\\recent")
        mid = item.get("mid", b"<no Message-ID>").decode()
        found.setdefault(mid, []).append((folder, flags))
        emailids[int(item["uid"])] = item["emailid"].decode()
    c.invariants.messages(node, user, folder, uv, emailids)


def check(c: Cluster, users: dict[str, str], ledger: Ledger, report: Report) -> None:
    """Compare every node's messages with the ledger (see module doc)."""
    views = {node: read_node(c, node, users) for node in c.names}
    must = {mid for mid in ledger.acked if mid not in ledger.expunged}
    report.messages_at_end = sum(len(v) for v in views[c.names[0]].values())
    for node, view in views.items():
        for user, found in view.items():
            for mid, copies in found.items():
                if len(copies) > 1:
                    report.duplicates.append(f"{node} {user} {mid} x{len(copies)}: {copies}")
            for mid in must:
                if ledger.acked[mid] == user and mid not in found:
                    report.lost.append(f"{node} {user} {mid}")
            report.refused_present += [f"{node} {mid}" for mid in ledger.refused & set(found)]
    first = views[c.names[0]]
    report.unknown_present = sum(1 for u in first.values() for mid in u if mid in ledger.unknown)
    for node in c.names[1:]:
        for user, found in views[node].items():
            for mid, copies in found.items():
                there = first.get(user, {}).get(mid)
                if there is not None and sorted(there, key=str) != sorted(copies, key=str):
                    report.flag_divergence.append(f"{user} {mid}: {c.names[0]} {there}, "
                                                  f"{node} {copies}")
    # The clients' shared record is fed by many threads, so the order of its UIDVALIDITY
    # observations is not the order they were seen in: rule 3 is checked per client.
    shared = [p for p in ledger.invariants.problems() if not p.startswith("UIDVALIDITY decr")]
    report.invariant_problems = c.invariants.problems() + shared + ledger.decreasing


# --- the run ------------------------------------------------------------------------------


def run_soak(duration: float, clients: int, n_users: int = 5, pace: float = 0.2,
             interval: float = 1.0, seed: int = 1, converge_timeout: float = 180.0,
             workdir: Path | None = None, log: Callable[[str], None] = print) -> Report:
    """One soak run (see module doc); every phase bounded."""
    rng = random.Random(seed)
    users = {f"u{i}": f"pw-{i}" for i in range(1, n_users + 1)}
    http = {}
    for name in ("n1", "n2", "n3"):
        sock = reserve_port()
        http[name] = sock.getsockname()[1]
        sock.close()
    node_options = {n: {"http": [f"tcp:{p}:interface=127.0.0.1"]} for n, p in http.items()}
    report = Report(clients=clients)
    ledger = Ledger(invariants=Invariants(roots={"n1": 1, "n2": 2, "n3": 3}))
    with Cluster(n=3, users=users, workdir=workdir, node_options=node_options,
                 startup_timeout=60.0) as c:
        c.start()
        log(f"soak: cluster up in {c.workdir}; {clients} clients for {duration:.0f} s")
        start = time.monotonic()
        deadline = start + duration
        stop = threading.Event()
        monitor = Monitor(c, http, report)
        nemesis = Nemesis(c, sorted(users), report, interval, deadline, rng, monitor)
        addresses = {name: c.imap(name) for name in c.names}
        run_id = f"s{seed}-{int(time.time())}"
        threads = start_clients(clients, users, addresses, ledger, run_id, stop, deadline,
                                pace, seed)
        monitor.thread.start()
        nemesis.thread.start()
        _progress(deadline, ledger, report, log)
        stop.set()
        nemesis.stop.set()
        nemesis.thread.join(120.0)
        join_clients(threads, 60.0, ledger.error)
        report.duration = time.monotonic() - start
        _recover(c, report, converge_timeout, log)
        monitor.stop.set()
        monitor.thread.join(10.0)
        report.ops = ledger.ops
        report.acked, report.expunged = len(ledger.acked), len(ledger.expunged)
        report.unknown, report.refused = len(ledger.unknown), len(ledger.refused)
        report.client_errors = list(ledger.errors)
        if not report.not_converged:
            check(c, users, ledger, report)
    return report


def _progress(deadline: float, ledger: Ledger, report: Report, log: Callable[[str], None]) -> None:
    for _ in range(1_000_000):
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(30.0, left))
        log(f"soak: {max(0.0, deadline - time.monotonic()):.0f} s left; acked "
            f"{len(ledger.acked)}; faults {sum(report.faults.values())}; "
            f"failovers {ledger.ops['failover']}; lag max {report.max_lag_ops:.0f} ops")


def _recover(c: Cluster, report: Report, timeout: float, log: Callable[[str], None]) -> None:
    """Heal, restart what is down, wait for every node and for convergence (bounded)."""
    c.heal()
    for name in c.names:
        if not c.node(name).running:
            c.node(name).start()
            c.node(name).wait_listening(60.0)
    start = time.monotonic()
    try:
        for name in c.names:
            c.wait_ready(name, timeout)
        c.wait_converged(timeout=timeout, nodes=c.names)
    except (NotConverged, ClusterMailError) as err:
        report.not_converged = str(err)
    report.converge_seconds = time.monotonic() - start
    log(f"soak: healed; converged in {report.converge_seconds:.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--pace", type=float, default=0.2, help="mean pause between ops (s)")
    parser.add_argument("--interval", type=float, default=1.0, help="mean pause between faults")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--converge-timeout", type=float, default=180.0)
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    args = parser.parse_args(argv)
    report = run_soak(args.duration, args.clients, args.users, args.pace, args.interval,
                      args.seed, args.converge_timeout)
    print(report.text())
    if args.json:
        args.json.write_text(json.dumps(_as_json(report), indent=2, sort_keys=True))
    return 0 if report.ok else 1


def _as_json(report: Report) -> dict[str, Any]:
    out = {k: v for k, v in vars(report).items()}
    out["ok"] = report.ok
    return json.loads(json.dumps(out, default=sorted))


if __name__ == "__main__":
    sys.exit(main())
