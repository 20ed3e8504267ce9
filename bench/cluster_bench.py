"""Cluster benchmark (prints figures, asserts nothing): issue 3's performance items.

    cd /work/main && .venv/bin/python -m bench.cluster_bench [--clients 8,32,48]
                       [--messages 2400] [--rounds 5] [--reps 200] [--folder 10000]

1. APPEND throughput: for each count in ``--clients``, that many connections APPEND
   ``--messages`` 2 KiB messages in all (LITERAL+, each connection one at a time, waiting
   for the tagged OK), on a single node and on node n1 of a 3-node cluster with
   ack_replicas = 2 (an OK means a second node holds it).  Both run side by side and
   ``--rounds`` rounds alternate between them (the order flipping each round), so both
   are measured at the same moments of a machine whose speed drifts.  Per client count
   it prints both medians and the median of the rounds' ratios.  Throughput is each
   target's best median over the client counts: a single node is saturated by 8
   connections, while the cluster needs more in flight to cover the replica round trip
   each OK waits for (Little's law).  Goal: cluster throughput >= 0.5x single.
   The load generator drives every connection from one thread through a selector, with
   the messages built beforehand: on a 2-vCPU machine it shares the CPUs with the servers.
2. Replication lag / cross-node IDLE: a client IDLEs on n2; another APPENDs on n1; the
   latency is from just before the APPEND is written until n2's client reads EXISTS.
   Goal: p50 <= 20 ms.
3. Failover resync: a 10k-message INBOX synced by a client on n1 (UID FETCH 1:* (UID
   FLAGS EMAILID)); n1 is killed with SIGKILL; the time from the kill to the client
   having reconnected to n2, LOGIN, SELECT (new UIDVALIDITY seen) and refetched
   UID FLAGS EMAILID for every message.  Goal: <= 2 s.
"""

from __future__ import annotations

import argparse
import os
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.compress_bench import Client

BODY = b"x" * 60 + b"\r\n"


def message(i: int) -> bytes:
    head = (f"From: a@example.org\r\nTo: b@example.org\r\nSubject: cluster bench {i}\r\n"
            f"Message-ID: <bench-{i}-{time.monotonic_ns()}@example.org>\r\n\r\n").encode()
    return head + BODY * 33  # ~2 KiB


def append_load(port: int, user: str, password: str, clients: int, per_client: int) -> float:
    """Messages per second over ``clients`` parallel connections, each sending its next
    APPEND when the last one's tagged OK came.  One thread drives every connection
    through a selector, with the messages built beforehand: on a 2-vCPU machine the
    load generator shares the CPUs with the servers, so it must cost them little."""
    conns = [Client(port) for _ in range(clients)]
    for conn in conns:
        conn.cmd(f"LOGIN {user} {password}")
    todo = {conn: [_append_cmd(k * per_client + i, i) for i in range(per_client)]
            for k, conn in enumerate(conns)}
    selector = selectors.DefaultSelector()
    for conn in conns:  # the sockets keep their timeout: sendall never half-sends
        selector.register(conn.sock, selectors.EVENT_READ, conn)
    start = time.perf_counter()
    try:
        _drive(selector, todo)
    finally:
        selector.close()
        for conn in conns:
            conn.sock.close()
    return clients * per_client / (time.perf_counter() - start)


def _append_cmd(number: int, tag: int) -> bytes:
    """One APPEND command with its message as a LITERAL+ literal, tagged ``a<tag>``."""
    data = message(number)
    return b"a%d APPEND INBOX {%d+}\r\n%s\r\n" % (tag, len(data), data)


def _drive(selector: selectors.BaseSelector, todo: dict[Client, list[bytes]]) -> None:
    """Send each connection's commands one at a time until all are answered OK."""
    sent = dict.fromkeys(todo, 0)
    for conn, commands in todo.items():
        conn.sock.sendall(commands[0])
    waiting = len(todo)
    deadline = time.monotonic() + 600  # bounded: a stuck server ends the run
    while waiting:
        events = selector.select(timeout=max(0.0, deadline - time.monotonic()))
        if not events:
            raise TimeoutError("APPEND load: no answer for 600 s")
        for key, _ in events:
            conn = key.data
            chunk = conn.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            conn.buf += chunk
            tag = b"a%d " % sent[conn]
            while b"\r\n" in conn.buf:
                line, conn.buf = conn.buf.split(b"\r\n", 1)
                if not line.startswith(tag):
                    continue  # untagged data (EXISTS ...)
                if not line.startswith(tag + b"OK"):
                    raise RuntimeError(f"APPEND: {line[:200]!r}")
                sent[conn] += 1
                if sent[conn] == len(todo[conn]):
                    waiting -= 1
                    break
                conn.sock.sendall(todo[conn][sent[conn]])
                tag = b"a%d " % sent[conn]


def idle_latency(port_a: int, port_b: int, user: str, password: str, reps: int) -> list[float]:
    """ms from APPEND on A until the IDLE client on B reads EXISTS."""
    watcher, writer = Client(port_b), Client(port_a)
    watcher.cmd(f"LOGIN {user} {password}")
    writer.cmd(f"LOGIN {user} {password}")
    reply = watcher.cmd("SELECT INBOX")
    exists = next(int(line.split()[1]) for line in reply.splitlines()
                  if line.endswith(b" EXISTS"))
    watcher.send(b"idle IDLE\r\n")
    watcher.read_until(b"\r\n")
    out = []
    for i in range(reps):
        start = time.perf_counter()
        writer.cmd("APPEND INBOX", message(10_000_000 + i))
        watcher.read_until(b"* %d EXISTS\r\n" % (exists + i + 1))
        out.append((time.perf_counter() - start) * 1000)
    watcher.send(b"DONE\r\n")
    return out


def resync(port: int, user: str, password: str) -> tuple[int, bytes]:
    """Connect, LOGIN, SELECT INBOX, UID FETCH every message's FLAGS and EMAILID."""
    client = Client(port)
    client.cmd(f"LOGIN {user} {password}")
    selected = client.cmd("SELECT INBOX")
    fetched = client.cmd("UID FETCH 1:* (UID FLAGS EMAILID)")
    return fetched.count(b" FETCH ("), selected


class LocalCluster:
    """``clustermail cluster up -n 3`` in a temporary directory: real processes, no
    proxies between them (the test harness's proxies would share this process's GIL)."""

    def __init__(self, base_port: int, user: str, password: str) -> None:
        self.dir = tempfile.mkdtemp(prefix="cluster-bench-")
        self.base = base_port
        self._cli("up", "-n", "3", "--base-port", str(base_port), "--cluster-base-port",
                  str(base_port + 100), "--no-demo", "--user", f"{user}:{password}")

    def _cli(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "twistedmail.admin.cli", "cluster", *args,
                        "--dir", self.dir], check=True, stdout=subprocess.DEVNULL, timeout=120)

    def port(self, name: str) -> int:
        return self.base + int(name[1:]) - 1

    def kill(self, name: str) -> None:
        os.kill(int(Path(self.dir, f"{name}.pid").read_text().strip()), signal.SIGKILL)

    def down(self) -> None:
        self._cli("down")
        shutil.rmtree(self.dir, ignore_errors=True)


def failover(cluster: LocalCluster, folder: int, user: str,
             password: str) -> tuple[float, int, int]:
    """(seconds from kill to resynced on n2, messages seen, messages expected)."""
    port1, port2 = cluster.port("n1"), cluster.port("n2")
    append_load(port1, user, password, 8, folder // 8)
    total = (folder // 8) * 8
    seen, _ = resync(port1, user, password)  # the client's initial sync on n1
    deadline = time.monotonic() + 60
    while resync(port2, user, password)[0] < seen and time.monotonic() < deadline:
        time.sleep(0.2)  # every acknowledged message is on n2 already; wait for all
    start = time.perf_counter()
    cluster.kill("n1")
    count, _ = resync(port2, user, password)
    return time.perf_counter() - start, count, total


def interleaved(single_port: int, cluster_port: int, user: str, password: str,
                args: argparse.Namespace) -> dict[int, tuple[list[float], list[float]]]:
    """For each client count, (single node's, cluster's) APPEND msg/s per round; in each
    round both targets run back to back (the order flipping each round)."""
    targets = [single_port, cluster_port]
    for port in targets:  # warm up: logins, first folder use
        append_load(port, user, password, 8, 10)
    rates: dict[tuple[int, int], list[float]] = {}
    for k in range(args.rounds):
        for clients in args.clients:
            per_client = max(1, args.messages // clients)
            for port in targets if k % 2 == 0 else targets[::-1]:
                rate = append_load(port, user, password, clients, per_client)
                rates.setdefault((port, clients), []).append(rate)
    return {n: (rates[single_port, n], rates[cluster_port, n]) for n in args.clients}


def rounded(rates: list[float]) -> str:
    return " / ".join(f"{r:,.0f}" for r in rates)


def quantiles(ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=100)
    return f"p50={q[49]:.2f} ms p90={q[89]:.2f} ms p99={q[98]:.2f} ms max={max(ms):.2f} ms"


def throughput_and_lag(single_port: int, cluster: LocalCluster, user: str, password: str,
                       args: argparse.Namespace) -> None:
    """Print the interleaved APPEND figures, then the cross-node IDLE latency."""
    runs = interleaved(single_port, cluster.port("n1"), user, password, args)
    print(f"APPEND msg/s, median of {args.rounds} rounds (each round runs both targets "
          f"back to back; {args.messages} APPENDs of 2 KiB per run)")
    print("clients   single node   3-node cluster (ack=2)   cluster/single, median of "
          "the rounds' ratios")
    best: dict[str, tuple[float, int]] = {"single": (0.0, 0), "cluster": (0.0, 0)}
    for clients, (single, triple) in runs.items():
        ratios = [t / s for s, t in zip(single, triple, strict=True)]
        s_med, t_med = statistics.median(single), statistics.median(triple)
        print(f"{clients:7d}   {s_med:11,.0f}   {t_med:22,.0f}   {statistics.median(ratios):.2f} "
              f"(rounds: single {rounded(single)}; cluster {rounded(triple)})")
        best["single"] = max(best["single"], (s_med, clients))
        best["cluster"] = max(best["cluster"], (t_med, clients))
    (s_best, s_at), (t_best, t_at) = best["single"], best["cluster"]
    print(f"throughput (the best median over the client counts): single node {s_best:,.0f} "
          f"msg/s ({s_at} clients), cluster {t_best:,.0f} msg/s ({t_at} clients): "
          f"{t_best / s_best:.2f}x (goal >= 0.5x)")
    for node, how in (("n2", "n1's head"), ("n3", "forwarded by n2 under the relay chain")):
        lag = idle_latency(cluster.port("n1"), cluster.port(node), user, password, args.reps)
        print(f"replication lag, APPEND on n1 -> IDLE EXISTS on {node} ({how}; n={len(lag)}): "
              f"{quantiles(lag)} (goal p50 <= 20 ms)")


def client_counts(text: str) -> list[int]:
    """``--clients``: comma-separated counts, each 1..50 (the per-user connection limit)."""
    try:
        counts = [int(n) for n in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not comma-separated numbers: {text!r}") from None
    if not counts or any(not 1 <= n <= 50 for n in counts):
        raise argparse.ArgumentTypeError(f"each count must be 1..50: {text!r}")
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=client_counts, default=[8, 32, 48],
                    help="client counts, comma-separated, each 1..50 (50: the per-user "
                    "connection limit)")
    ap.add_argument("--messages", type=int, default=2400,
                    help="APPENDs per run, split evenly over the clients")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--folder", type=int, default=10_000)
    ap.add_argument("--base-port", type=int, default=23143,
                    help="IMAP ports base..base+2, cluster ports base+100..")
    args = ap.parse_args()

    from twistedmail.testing import ClusterMailProcess

    user, password = "bench", "benchpw"
    with tempfile.TemporaryDirectory() as tmp:
        node = ClusterMailProcess(Path(tmp), users=[f"{user}:{password}"]).start()
        try:
            assert node.port is not None
            cluster = LocalCluster(args.base_port, user, password)
            try:
                throughput_and_lag(node.port, cluster, user, password, args)
            finally:
                cluster.down()
        finally:
            node.stop()
    cluster = LocalCluster(args.base_port, user, password)
    try:
        seconds, seen, total = failover(cluster, args.folder, user, password)
        print(f"failover: kill -9 n1 -> resynced {seen}/{total} messages on n2 in "
              f"{seconds:.2f} s (goal <= 2 s)")
    finally:
        cluster.down()


if __name__ == "__main__":
    main()
