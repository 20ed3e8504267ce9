"""Bulk body FETCH throughput with COMPRESS=DEFLATE (prints figures, asserts nothing).

    cd /work/main && .venv/bin/python -m bench.compress_bench [--n 1000] [--reps 15]
                       [--no-dovecot] [--cold]

Loads N ~4 KB messages into a fresh mailbox on each target, then times
``UID FETCH 1:N BODY.PEEK[]`` --reps times on each, in rounds that visit every target
in turn (so a change in the machine's load hits all of them alike), on:
  * twistedmail (a real ``twistd clustermail`` process) with COMPRESS DEFLATE,
  * twistedmail without COMPRESS (for reference),
  * Dovecot without COMPRESS (``bash /work/shared/bench/peers/dovecot.sh start``,
    user bench/benchpw, port 21143; started and stopped by this script).
MB/s counts message bytes delivered to the client (after inflating), so the
figures compare what a client gets per second; "first" is the first FETCH alone,
right after loading (with COMPRESS: bodies deflated in the background since they
were stored, imap/predeflate.py, or on this FETCH).  The goal: twistedmail with
COMPRESS >= Dovecot without it; the last line gives the ratios.  ``--cold`` instead
times the first compressed FETCH of mail stored before any session used COMPRESS
(3 fresh nodes), the case the background deflating does not cover.
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import subprocess
import tempfile
import time
import zlib
from pathlib import Path

DOVECOT = "/work/shared/bench/peers/dovecot.sh"
DOVECOT_PORT = 21143
_TEXT = (
    "meeting report budget review project schedule team customer invoice quarter "
    "update please find attached regards thanks question answer server release "
    "deadline draft version change request approval status issue ticket support "
    "the of and to in is it that for on are with as be at this from or by we can"
)
WORDS = _TEXT.split()


def message(i: int, rng: random.Random, size: int = 4096) -> bytes:
    """A plausible ~4 KB text mail (headers + prose), deterministic per seed."""
    head = (f"From: Sender {i % 50:02d} <sender{i % 50:02d}@example.org>\r\n"
            f"To: bench@example.org\r\nSubject: {' '.join(rng.choices(WORDS, k=5))}\r\n"
            f"Date: Mon, 7 Feb 2026 10:{i % 60:02d}:00 +0000\r\n"
            f"Message-ID: <{i}.{rng.randrange(10**9)}@example.org>\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n").encode()
    body = bytearray()
    while len(head) + len(body) < size:
        body += (" ".join(rng.choices(WORDS, k=rng.randint(8, 14))) + ".\r\n").encode()
    return head + bytes(body[: size - len(head)]) + b"\r\n"


class Client:
    """A blocking IMAP client that can switch on DEFLATE (RFC 4978)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.deflate: zlib._Compress | None = None
        self.inflate: zlib._Decompress | None = None
        self.buf = b""
        self.tag = 0
        self.read_until(b"\r\n")

    def send(self, data: bytes) -> None:
        if self.deflate is not None:
            data = self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def read_until(self, marker: bytes) -> bytes:
        """Read up to ``marker``: chunks are collected in a list and only the newly
        arrived bytes are searched, so a large response costs O(size), the same for
        every server and for compressed and plain streams."""
        parts = [self.buf]
        size = len(self.buf)
        idx = self.buf.find(marker)
        while idx < 0:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed")
            data = self.inflate.decompress(chunk) if self.inflate else chunk
            tail = parts[-1][-(len(marker) - 1):] if len(marker) > 1 else b""
            found = (tail + data).find(marker)
            if found >= 0:
                idx = size - len(tail) + found
            parts.append(data)
            size += len(data)
        buf = b"".join(parts)
        out, self.buf = buf[: idx + len(marker)], buf[idx + len(marker):]
        return out

    def cmd(self, line: str, literal: bytes | None = None) -> bytes:
        self.tag += 1
        tag = f"t{self.tag}".encode()
        if literal is None:
            self.send(tag + b" " + line.encode() + b"\r\n")
        else:  # LITERAL+ (both servers advertise it)
            self.send(tag + b" " + line.encode() + b" {%d+}\r\n" % len(literal) + literal
                      + b"\r\n")
        self.buf = b"\r\n" + self.buf  # so a tagged first line matches too
        data = self.read_until(b"\r\n" + tag + b" ")[2:]
        status = self.read_until(b"\r\n")
        if not status.startswith(b"OK"):
            raise RuntimeError(f"{line[:40]}: {status!r}")
        return data

    def compress(self) -> None:
        self.cmd("COMPRESS DEFLATE")
        self.deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inflate = zlib.decompressobj(-15)


class Target:
    """One server and session under test: a loaded mailbox and its FETCH timings."""

    def __init__(self, label: str, port: int, user: str, password: str, n: int,
                 compress: bool) -> None:
        self.label, self.n = label, n
        rng = random.Random(1)
        msgs = [message(i, rng) for i in range(n)]
        self.total = sum(map(len, msgs))
        self.box = f"cbench{int(time.time() * 1000) % 10**8}"
        self.client = c = Client(port)
        c.cmd(f"LOGIN {user} {password}")
        if compress:
            c.compress()
        c.cmd(f"CREATE {self.box}")
        for m in msgs:
            c.cmd(f"APPEND {self.box}", m)
        c.cmd(f"SELECT {self.box}")
        self.times: list[float] = []

    def fetch(self) -> None:
        start = time.perf_counter()
        data = self.client.cmd(f"UID FETCH 1:{self.n} BODY.PEEK[]")
        self.times.append(time.perf_counter() - start)
        assert len(data) > self.total, (len(data), self.total)

    def close(self) -> None:
        self.client.cmd("CLOSE")
        self.client.cmd(f"DELETE {self.box}")

    def report(self) -> dict[str, float]:
        times = self.times
        best, median = min(times), statistics.median(times)
        mb = self.total / 1e6
        result = {"best": mb / best, "median": mb / median, "first": mb / times[0]}
        print(f"{self.label:32s} {result['best']:7.1f} MB/s best  {result['median']:7.1f} MB/s "
              f"median  {result['first']:7.1f} first  ({median * 1000:.1f} ms median of "
              f"{len(times)} for {self.n} msgs, {mb:.2f} MB)", flush=True)
        return result


def rounds(targets: list[Target], reps: int) -> None:
    """``reps`` rounds, each fetching once from every target (the order alternates),
    so every target is timed at the same moments of the machine's load."""
    for i in range(reps):
        for target in targets if i % 2 == 0 else targets[::-1]:
            target.fetch()


def cold(n: int, reps: int) -> None:
    """Mail stored before any session of the node used COMPRESS: nothing is deflated
    ahead (imap/predeflate.py starts with the first COMPRESS), so the first compressed
    FETCH deflates every body; a fresh node per run."""
    from twistedmail.testing import ClusterMailProcess

    rng = random.Random(1)
    msgs = [message(i, rng) for i in range(n)]
    mb = sum(map(len, msgs)) / 1e6
    for run in range(reps):
        with tempfile.TemporaryDirectory() as tmp:
            node = ClusterMailProcess(Path(tmp), users=["bench:benchpw"]).start()
            try:
                assert node.port is not None
                plain = Client(node.port)
                plain.cmd("LOGIN bench benchpw")
                for m in msgs:
                    plain.cmd("APPEND INBOX", m)
                c = Client(node.port)
                c.cmd("LOGIN bench benchpw")
                c.compress()
                c.cmd("SELECT INBOX")
                times = []
                for _ in range(2):
                    start = time.perf_counter()
                    c.cmd(f"UID FETCH 1:{n} BODY.PEEK[]")
                    times.append(time.perf_counter() - start)
                print(f"cold run {run + 1}: first compressed FETCH {mb / times[0]:.1f} MB/s, "
                      f"second {mb / times[1]:.1f} MB/s ({n} msgs, {mb:.2f} MB)", flush=True)
            finally:
                node.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--no-dovecot", action="store_true")
    ap.add_argument("--cold", action="store_true",
                    help="only: first compressed FETCH of mail stored before any COMPRESS")
    args = ap.parse_args()
    if args.cold:
        cold(args.n, 3)
        return

    from twistedmail.testing import ClusterMailProcess

    user, password = "bench", "benchpw"
    with tempfile.TemporaryDirectory() as tmp:
        node = ClusterMailProcess(Path(tmp), users=[f"{user}:{password}"]).start()
        if not args.no_dovecot:
            subprocess.run(["bash", DOVECOT, "start"], check=True)
        try:
            assert node.port is not None
            targets = [Target("twistedmail + COMPRESS", node.port, user, password, args.n, True),
                       Target("twistedmail, no COMPRESS", node.port, user, password, args.n,
                              False)]
            if not args.no_dovecot:
                targets.append(Target("dovecot, no COMPRESS", DOVECOT_PORT, user, password,
                                      args.n, False))
            rounds(targets, args.reps)
            results = [t.report() for t in targets]
            for t in targets:
                t.close()
            if not args.no_dovecot:
                ours, theirs = results[0], results[2]
                print("ratio twistedmail + COMPRESS / dovecot, no COMPRESS: "
                      + "  ".join(f"{k} {ours[k] / theirs[k]:.2f}x"
                                  for k in ("best", "median", "first")) + "  (goal >= 1)")
        finally:
            node.stop()
            if not args.no_dovecot:
                subprocess.run(["bash", DOVECOT, "stop"], check=False)


if __name__ == "__main__":
    main()
