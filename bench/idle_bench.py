"""IDLE push latency (prints figures, asserts nothing).

    cd /work/main && .venv/bin/python -m bench.idle_bench [--reps 200] [--compress]

Client A SELECTs INBOX and IDLEs on a real ``twistd clustermail`` node; client B
APPENDs a small message (LITERAL+, one write).  Latency = from just before B's
write until A has read ``* n EXISTS``.  Prints p50/p90/p99/max in ms; the goal is
p50 <= 5 ms.  ``--compress`` runs A's session under COMPRESS=DEFLATE.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.compress_bench import Client

MSG = (b"From: a@example.org\r\nTo: b@example.org\r\nSubject: idle bench\r\n\r\n"
       + b"short body\r\n")


def measure(port: int, reps: int, compress: bool) -> list[float]:
    a, b = Client(port), Client(port)
    a.cmd("LOGIN bench benchpw")
    b.cmd("LOGIN bench benchpw")
    if compress:
        a.compress()
    a.cmd("SELECT INBOX")
    a.send(b"idle IDLE\r\n")
    a.read_until(b"\r\n")  # "+ idling"
    out = []
    for i in range(1, reps + 1):
        start = time.perf_counter()
        b.cmd("APPEND INBOX", MSG)
        a.read_until(b"* %d EXISTS\r\n" % i)
        out.append((time.perf_counter() - start) * 1000)
    a.send(b"DONE\r\n")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--compress", action="store_true")
    args = ap.parse_args()

    from twistedmail.testing import ClusterMailProcess

    with tempfile.TemporaryDirectory() as tmp:
        node = ClusterMailProcess(Path(tmp), users=["bench:benchpw"]).start()
        try:
            assert node.port is not None
            ms = sorted(measure(node.port, args.reps, args.compress))
        finally:
            node.stop()
    q = statistics.quantiles(ms, n=100)
    label = "IDLE push latency" + (" (COMPRESS)" if args.compress else "")
    print(f"{label}: n={len(ms)} p50={q[49]:.2f} ms p90={q[89]:.2f} ms "
          f"p99={q[98]:.2f} ms max={ms[-1]:.2f} ms")


if __name__ == "__main__":
    main()
