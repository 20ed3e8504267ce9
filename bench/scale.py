"""Scale benchmark (issue 7 item 6; prints figures, asserts nothing).

    cd /work/main && .venv/bin/python -m bench.scale              # 1M messages, 100k folder
    cd /work/main && .venv/bin/python -m bench.scale --small      # 20k messages, 5k folder

1. One node (in this process; the reactor runs in a thread) is loaded through the store API
   with ``--total`` small messages (~300-byte bodies, unique): ``--folder`` of them in
   ``scale``'s folder ``Big``, the rest in 10,000-message folders of ``bulk1``,
   ``bulk2``, ... accounts.  Memory per message = growth of the process's RSS over the
   load / messages (after a gc).
2. A separate client process (so that it does not share this interpreter's GIL with the
   node) times over IMAP: SELECT Big; the initial sync ``UID FETCH 1:* (UID FLAGS)``; then,
   after 1% of the messages got a flag and 0.1% were expunged, a CONDSTORE resync
   (``UID FETCH 1:* (FLAGS) (CHANGEDSINCE m)``, RFC 7162 §3.1.4) and a QRESYNC SELECT
   (``SELECT Big (QRESYNC (uv m))``, RFC 7162 §3.2.5).
3. A 2-node ``twistd clustermail`` cluster: ``--folder`` messages are imported into n1's
   Big (``clustermail import`` of an mbox) and replicated to n2; n2 is then killed -9 and
   restarted empty.  Catch-up = time from its restart to its ``* OK`` greeting (it serves
   only once in sync with a majority) and to its Big holding every message.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.soak_client import Conn, Lost
from twistedmail.testing.cluster import Cluster

USER, PASSWORD, FOLDER = "scale", "scale-pw", "Big"
BATCH = 5000  # messages per reactor call while loading
BULK_FOLDER = 10_000
STEP_LIMIT = 1800.0  # seconds: any one wait


def body(i: int) -> bytes:
    """A small unique message (~300 bytes)."""
    return (f"From: s{i % 97}@scale.example\r\nTo: scale@scale.example\r\n"
            f"Subject: scale message {i}\r\nMessage-ID: <scale.{i}@scale.example>\r\n"
            f"Date: Sat, 21 Nov 2026 10:00:00 +0000\r\n\r\n"
            f"body of message {i}: " + "lorem ipsum " * 12 + "\r\n").encode()


def rss_kb(pid: str = "self", key: str = "VmRSS") -> int:
    """VmRSS (or another /proc status key) of a process in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


# --- 1. one node, loaded in-process ---------------------------------------------------------


def _load(store: Any, user: str, folder: str, start: int, count: int) -> None:
    from twistedmail.store import Append, CreateMailbox

    if folder not in {b.name for b in store.mailboxes(user)}:
        store.apply(CreateMailbox.new(user, folder))
    when = datetime.datetime(2026, 11, 21, 10, tzinfo=datetime.UTC)
    for i in range(start, start + count):
        flags = ("\\Seen",) if i % 3 else ()
        store.apply(Append(user, folder, body(i), frozenset(flags), when,
                           store.next_instance_id()))


def _accounts(store: Any, users: list[str]) -> None:
    from twistedmail.store import CreateAccount

    for user in users:
        if not store.has_account(user):
            store.apply(CreateAccount.standard(user))


def load_node(total: int, folder: int) -> tuple[Any, dict[str, float]]:
    """Start the in-process node and load it; (server, figures)."""
    from twistedmail.config import NodeSettings
    from twistedmail.testing.inprocess import in_process_server

    bulk = max(0, total - folder)
    n_bulk_users = (bulk + 9 * BULK_FOLDER - 1) // (9 * BULK_FOLDER)
    users = [USER] + [f"bulk{k}" for k in range(1, n_bulk_users + 1)]
    server = in_process_server().start(NodeSettings(users={USER: PASSWORD}))
    store = server.node.store
    server.call(_accounts, store, users)
    gc.collect()
    before = rss_kb()
    start = time.perf_counter()
    for first in range(0, folder, BATCH):
        server.call(_load, store, USER, FOLDER, first, min(BATCH, folder - first))
    done = folder
    for first in range(0, bulk, BATCH):
        k = first // BULK_FOLDER
        user, box = users[1 + k // 9], f"Bulk{k % 9}"
        server.call(_load, store, user, box, done + first, min(BATCH, bulk - first))
    seconds = time.perf_counter() - start
    gc.collect()
    grown = rss_kb() - before
    figures = {"messages": float(total), "load_seconds": seconds, "load_per_s": total / seconds,
               "rss_growth_mb": grown / 1024, "bytes_per_message": grown * 1024 / total,
               "body_bytes": float(len(body(total // 2))), "rss_mb": rss_kb() / 1024}
    return server, figures


def _change(store: Any, folder: int) -> None:
    """1% of Big flagged, 0.1% expunged (what a resync must then bring)."""
    from twistedmail.store import Expunge, StoreFlags

    box = store.mailbox(USER, FOLDER)
    uids = sorted(box.uids())
    store.apply(StoreFlags(USER, FOLDER, tuple(uids[::100]), "add", frozenset({"$Changed"})))
    store.apply(Expunge(USER, FOLDER, tuple(uids[50::1000])))


# --- 2. the IMAP client (a child process) -----------------------------------------------------


def _timed(conn: Conn, command: str) -> tuple[float, int]:
    start = time.perf_counter()
    reply = conn.command(command, limit=10_000_000)
    seconds = time.perf_counter() - start
    if reply.status != "OK":
        raise Lost(f"{command}: {reply.status} {reply.text!r}")
    return seconds, len(reply.untagged)


def measure_sync(port: int) -> dict[str, Any]:
    """SELECT + initial sync over IMAP (child process): figures and the QRESYNC state."""
    conn = Conn(("127.0.0.1", port), timeout=STEP_LIMIT)
    conn.command(f'LOGIN "{USER}" "{PASSWORD}"')
    conn.command("ENABLE QRESYNC")
    select_s, _ = _timed(conn, f"SELECT {FOLDER}")
    select_again_s, _ = _timed(conn, f"SELECT {FOLDER}")
    fetch_s, lines = _timed(conn, "UID FETCH 1:* (UID FLAGS)")
    reply = conn.command(f"EXAMINE {FOLDER}")
    text = b" ".join(reply.untagged)
    uv = int(text.split(b"[UIDVALIDITY ")[1].split(b"]")[0])
    modseq = int(text.split(b"[HIGHESTMODSEQ ")[1].split(b"]")[0])
    conn.close()
    return {"select_s": select_s, "select_again_s": select_again_s,
            "initial_fetch_s": fetch_s, "fetched": lines, "uidvalidity": uv, "modseq": modseq}


def measure_resync(port: int, uv: int, modseq: int) -> dict[str, Any]:
    """CONDSTORE and QRESYNC resyncs after the changes (child process)."""
    conn = Conn(("127.0.0.1", port), timeout=STEP_LIMIT)
    conn.command(f'LOGIN "{USER}" "{PASSWORD}"')
    conn.command("ENABLE QRESYNC")
    qresync_s, q_lines = _timed(conn, f"SELECT {FOLDER} (QRESYNC ({uv} {modseq}))")
    condstore_s, c_lines = _timed(conn, f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq})")
    conn.close()
    return {"qresync_select_s": qresync_s, "qresync_lines": q_lines,
            "changedsince_fetch_s": condstore_s, "changedsince_lines": c_lines}


def child(args: list[str]) -> dict[str, Any]:
    """Run a measure_* in a fresh interpreter; its JSON answer."""
    argv = [sys.executable, "-m", "bench.scale", "--child", *args]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=STEP_LIMIT, check=True)
    answer: dict[str, Any] = json.loads(out.stdout)
    return answer


# --- 3. catch-up of a restarted node ----------------------------------------------------------


def write_mbox(path: Path, count: int) -> None:
    """An mbox of ``count`` messages (LF line ends, as files are)."""
    with path.open("wb") as out:
        for i in range(count):
            out.write(b"From scale@scale.example Sat Nov 21 10:00:00 2026\n")
            out.write(body(i).replace(b"\r\n", b"\n") + b"\n")


def messages_on(c: Cluster, node: str) -> int:
    """MESSAGES of Big on ``node`` (STATUS), -1 when it cannot say now."""
    try:
        conn = Conn(c.imap(node), timeout=30.0)
    except (Lost, ConnectionError):
        return -1
    try:
        if conn.command(f'LOGIN "{USER}" "{PASSWORD}"').status != "OK":
            return -1
        reply = conn.command(f"STATUS {FOLDER} (MESSAGES)")
        for line in reply.untagged:
            if b"MESSAGES" in line:
                return int(line.rsplit(b"MESSAGES", 1)[1].strip(b" )\r\n"))
        return -1
    except (Lost, ValueError):
        return -1
    finally:
        conn.close()


def wait_messages(c: Cluster, node: str, count: int, limit: float = STEP_LIMIT) -> float:
    """Seconds until ``node``'s Big holds ``count`` messages (bounded)."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if messages_on(c, node) == count:
            return time.monotonic() - start
        time.sleep(0.2)
    raise TimeoutError(f"{node} did not reach {count} messages within {limit} s")


def catch_up(folder: int) -> dict[str, float]:
    """Import ``folder`` messages into a 2-node cluster, then time a restarted node."""
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp, \
            Cluster(n=2, users={USER: PASSWORD}, startup_timeout=120.0) as c:
        c.start()
        mbox = Path(tmp) / "big.mbox"
        write_mbox(mbox, folder)
        sock = c.workdir / "n1" / "clustermail-n1.admin"
        start = time.monotonic()
        subprocess.run([sys.executable, "-m", "twistedmail.admin.cli", "--admin",
                        f"unix:{sock}", "import", USER, str(mbox), "--folder", FOLDER],
                       capture_output=True, text=True, timeout=STEP_LIMIT, check=True)
        import_s = time.monotonic() - start
        wait_messages(c, "n2", folder)
        replicated_s = time.monotonic() - start
        rss = {n: rss_kb(str(c.node(n).pid)) / 1024 for n in c.names}
        c.kill("n2")
        start = time.monotonic()
        c.restart("n2", ready=False)
        c.wait_ready("n2", STEP_LIMIT)
        ready_s = time.monotonic() - start
        wait_messages(c, "n2", folder)
        full_s = time.monotonic() - start
        return {"import_s": import_s, "import_per_s": folder / import_s,
                "replicated_s": replicated_s, "restart_to_ready_s": ready_s,
                "restart_to_all_messages_s": full_s,
                "rss_n1_mb": rss["n1"], "rss_n2_mb": rss["n2"]}


# --- main ------------------------------------------------------------------------------------


def run(total: int, folder: int, skip_cluster: bool = False) -> dict[str, Any]:
    """Every figure of the benchmark (see module doc)."""
    figures: dict[str, Any] = {"total": total, "folder": folder}
    server, load = load_node(total, folder)
    figures["load"] = load
    print(f"loaded {total:,} messages in {load['load_seconds']:.1f} s; RSS +"
          f"{load['rss_growth_mb']:.0f} MB = {load['bytes_per_message']:.0f} B/message",
          flush=True)
    sync = child(["sync", str(server.port)])
    figures["sync"] = sync
    server.call(_change, server.node.store, folder)
    figures["resync"] = child(["resync", str(server.port), str(sync["uidvalidity"]),
                               str(sync["modseq"])])
    print(json.dumps({"sync": sync, "resync": figures["resync"]}), flush=True)
    server.stop()
    if not skip_cluster:
        figures["catch_up"] = catch_up(folder)
    return figures


def report(f: dict[str, Any]) -> str:
    """The printed figures."""
    load, sync, resync = f["load"], f["sync"], f["resync"]
    lines = [
        f"one node, {f['total']:,} messages ({load['body_bytes']:.0f}-byte messages): loaded "
        f"in-process in {load['load_seconds']:.1f} s ({load['load_per_s']:,.0f}/s)",
        f"  RSS growth {load['rss_growth_mb']:.0f} MB = {load['bytes_per_message']:.0f} bytes "
        f"per message (process RSS {load['rss_mb']:.0f} MB)",
        f"folder of {f['folder']:,}: SELECT {sync['select_s'] * 1000:.1f} ms (again "
        f"{sync['select_again_s'] * 1000:.1f} ms); UID FETCH 1:* (UID FLAGS) "
        f"{sync['initial_fetch_s']:.2f} s for {sync['fetched']:,} lines",
        f"  after 1% flagged + 0.1% expunged: SELECT (QRESYNC) {resync['qresync_select_s']:.3f}"
        f" s ({resync['qresync_lines']} lines); UID FETCH (CHANGEDSINCE) "
        f"{resync['changedsince_fetch_s']:.3f} s ({resync['changedsince_lines']} lines)",
    ]
    if "catch_up" in f:
        cu = f["catch_up"]
        lines += [
            f"2-node cluster, {f['folder']:,}-message folder: import via n1 "
            f"{cu['import_s']:.1f} s ({cu['import_per_s']:,.0f}/s), on n2 after "
            f"{cu['replicated_s']:.1f} s; RSS n1 {cu['rss_n1_mb']:.0f} MB, n2 "
            f"{cu['rss_n2_mb']:.0f} MB",
            f"  n2 killed -9 and restarted empty: serving after {cu['restart_to_ready_s']:.2f}"
            f" s, every message there after {cu['restart_to_all_messages_s']:.2f} s",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="scale benchmark (prints figures)")
    parser.add_argument("--total", type=int, default=1_000_000)
    parser.add_argument("--folder", type=int, default=100_000)
    parser.add_argument("--small", action="store_true", help="20k messages, a 5k folder")
    parser.add_argument("--no-cluster", action="store_true", help="skip the catch-up part")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        what, *rest = args.child
        nums = [int(x) for x in rest]
        out = measure_sync(nums[0]) if what == "sync" else measure_resync(*nums)
        print(json.dumps(out))
        return 0
    total, folder = (20_000, 5_000) if args.small else (args.total, args.folder)
    figures = run(total, min(folder, total), args.no_cluster)
    print(report(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
