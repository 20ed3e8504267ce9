"""Initial sync of a large account by real clients: our node against Dovecot, one run.

    .venv/bin/python -m bench.client_sync_bench [--messages 5000]

Loads the same generated account (INBOX 60 %, Archive 30 %, Work 10 %, ~4 KB messages
from ../shared/bench/imapbench.py) into a fresh `twistd clustermail` node and into a
standalone Dovecot 2.3 (../shared/bench/peers/dovecot.sh, user test/test), then times,
against each: mbsync's first full sync into an empty Maildir, and Thunderbird's (headless,
fresh profile) from launch until every message of every folder is stored offline.
Prints the figures; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import imaplib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.clients.test_thunderbird import OFFLINE, launch

ROOT = Path(__file__).resolve().parent.parent
SHARED_BENCH = ROOT.parent / "shared" / "bench"
USER = PASSWORD = "test"  # the password tests/clients/thunderbird/logins.json holds
FOLDERS = (("INBOX", 0.6), ("Archive", 0.3), ("Work", 0.1))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(100).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing answers on 127.0.0.1:{port}")


def load(port: int, total: int) -> None:
    """Create, subscribe and fill the folders (Thunderbird shows only subscribed ones)."""
    sys.path.insert(0, str(SHARED_BENCH))
    import imapbench  # type: ignore[import-not-found]

    imap = imaplib.IMAP4("127.0.0.1", port, timeout=60)
    imap.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    imap.login(USER, PASSWORD)
    i = 0
    for folder, share in FOLDERS:
        if folder != "INBOX":
            imap.create(folder)
        imap.subscribe(folder)
        for _ in range(int(total * share)):
            raw = imapbench.make_message(i)[0]
            typ, data = imap.append(folder, None, None, raw)
            if typ != "OK":
                raise SystemExit(f"APPEND failed on port {port}: {data}")
            i += 1
    imap.logout()


def time_mbsync(port: int, work: Path) -> float:
    mail = work / "mail"
    mail.mkdir()
    rc = work / "mbsyncrc"
    rc.write_text(f"""IMAPAccount a
Host 127.0.0.1
Port {port}
User {USER}
Pass {PASSWORD}
SSLType None
AuthMechs LOGIN
Timeout 120

IMAPStore remote
Account a

MaildirStore local
Path {mail}/
Inbox {mail}/INBOX
SubFolders Verbatim

Channel a
Far :remote:
Near :local:
Patterns *
Create Near
Sync Pull
SyncState *
""")
    start = time.perf_counter()
    subprocess.run(["mbsync", "-q", "-c", str(rc), "-a"], check=True, timeout=600)
    return time.perf_counter() - start


def time_thunderbird(port: int, work: Path, total: int) -> float:
    expected = {folder: int(total * share) for folder, share in FOLDERS}
    start = time.perf_counter()
    tb = launch(work / "profile", port)
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            folders = tb.folders()
            if all(len(folders.get(f, {}).get("msgs", ())) >= n and all(
                    fl & OFFLINE for _m, _u, fl in folders[f]["msgs"])
                   for f, n in expected.items()):
                return time.perf_counter() - start
            time.sleep(0.5)
        raise SystemExit(f"thunderbird did not finish on port {port}: {tb.summary()}")
    finally:
        tb.stop()


def start_ours() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n",
         "--pidfile=", "clustermail", "--imap", f"tcp:{port}:interface=127.0.0.1",
         "--user", f"{USER}:{PASSWORD}"], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


def dovecot(action: str) -> None:
    env = dict(os.environ, BENCH_USER=USER, BENCH_PASS=PASSWORD)
    # dovecot's daemon inherits stdout: never capture it, or run() waits for it to exit
    subprocess.run(["bash", str(SHARED_BENCH / "peers" / "dovecot.sh"), action], env=env,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=600, check=action != "stop")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    proc, port = start_ours()
    try:
        load(port, args.messages)
        results["twistedmail"] = run_clients(port, args.messages)
    finally:
        proc.terminate()
        proc.wait(30)
    dovecot("stop")
    dovecot("reset")
    dovecot("setup")
    dovecot("start")
    try:
        wait_port(21143)
        load(21143, args.messages)
        results["dovecot"] = run_clients(21143, args.messages)
    finally:
        dovecot("stop")
    print(f"initial sync of {args.messages} messages (~4 KB), seconds")
    print(f"{'client':<12} {'twistedmail':>12} {'dovecot':>10} {'ratio':>7}")
    for client in ("mbsync", "thunderbird"):
        ours, theirs = results["twistedmail"][client], results["dovecot"][client]
        print(f"{client:<12} {ours:>12.2f} {theirs:>10.2f} {ours / theirs:>7.2f}")


def run_clients(port: int, total: int) -> dict[str, float]:
    figures = {}
    for client in ("mbsync", "thunderbird"):
        work = Path(tempfile.mkdtemp(prefix=f"syncbench-{client}-"))
        try:
            if client == "mbsync":
                figures[client] = time_mbsync(port, work)
            else:
                figures[client] = time_thunderbird(port, work, total)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(f"  port {port}: {client} {figures[client]:.2f} s", flush=True)
    return figures


if __name__ == "__main__":
    main()
