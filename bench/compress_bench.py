"""Bulk body FETCH throughput with COMPRESS=DEFLATE (prints figures, asserts nothing).

    cd /work/main && .venv/bin/python -m bench.compress_bench [--n 1000] [--reps 5] [--no-dovecot]

Loads N ~4 KB messages into a fresh mailbox, then times
``UID FETCH 1:N BODY.PEEK[]`` (best and median of --reps runs) on:
  * twistedmail (a real ``twistd clustermail`` process) with COMPRESS DEFLATE,
  * twistedmail without COMPRESS (for reference),
  * Dovecot without COMPRESS (``bash /work/shared/bench/peers/dovecot.sh start``,
    user bench/benchpw, port 21143; started and stopped by this script).
MB/s counts message bytes delivered to the client (after inflating), so the
figures compare what a client gets per second; "first" is the first run alone
(with COMPRESS, the run that deflates and caches each body).  The goal: twistedmail with
COMPRESS >= Dovecot without it.
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


def run(port: int, user: str, password: str, n: int, reps: int, compress: bool,
        label: str) -> dict[str, float]:
    rng = random.Random(1)
    msgs = [message(i, rng) for i in range(n)]
    total = sum(map(len, msgs))
    box = f"cbench{int(time.time() * 1000) % 10**8}"
    c = Client(port)
    c.cmd(f"LOGIN {user} {password}")
    if compress:
        c.compress()
    c.cmd(f"CREATE {box}")
    for m in msgs:
        c.cmd(f"APPEND {box}", m)
    c.cmd(f"SELECT {box}")
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        data = c.cmd(f"UID FETCH 1:{n} BODY.PEEK[]")
        times.append(time.perf_counter() - start)
        assert len(data) > total, (len(data), total)
    c.cmd("CLOSE")
    c.cmd(f"DELETE {box}")
    best, median = min(times), statistics.median(times)
    result = {"mb_s_best": total / best / 1e6, "mb_s_median": total / median / 1e6,
              "ms_median": median * 1000, "bytes": total}
    result["mb_s_first"] = total / times[0] / 1e6  # cold: bodies not yet cached
    print(f"{label:32s} {result['mb_s_best']:7.1f} MB/s best  {result['mb_s_median']:7.1f} MB/s "
          f"median  {result['mb_s_first']:7.1f} first  ({median * 1000:.1f} ms median for {n} "
          f"msgs, {total / 1e6:.2f} MB)", flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--no-dovecot", action="store_true")
    args = ap.parse_args()

    from twistedmail.testing import ClusterMailProcess

    with tempfile.TemporaryDirectory() as tmp:
        node = ClusterMailProcess(Path(tmp), users=["bench:benchpw"]).start()
        try:
            assert node.port is not None
            run(node.port, "bench", "benchpw", args.n, args.reps, True,
                "twistedmail + COMPRESS")
            run(node.port, "bench", "benchpw", args.n, args.reps, False,
                "twistedmail, no COMPRESS")
        finally:
            node.stop()
    if args.no_dovecot:
        return
    subprocess.run(["bash", DOVECOT, "start"], check=True)
    try:
        run(DOVECOT_PORT, "bench", "benchpw", args.n, args.reps, False,
            "dovecot, no COMPRESS")
    finally:
        subprocess.run(["bash", DOVECOT, "stop"], check=False)


if __name__ == "__main__":
    main()
