"""Coverage-guided fuzzing of twistedmail with atheris (issue 7 item 1).

    nice -n 19 .venv/bin/python fuzz/atheris_imap.py --target wire -atheris_runs=200000

Targets (``--target``):
  wire   the receiver + parser: fragmentation-independent outcome, ParseError only,
         bounded buffering
  imap   receiver + parser + dispatch on an in-process node (a real IMAPProtocol on a
         StringTransport, tests/fuzz/harness.py): every output byte parses as IMAP
         responses, no [SERVERBUG], nothing logged as a failure, NOOP answered after
  mime   ENVELOPE / BODY / BODYSTRUCTURE / BODY[section] / BINARY of any message bytes
  cops   the replication op decoder and the cluster wire helpers
  mutf7  modified UTF-7 decode/encode (RFC 3501 §5.1.3)

``--structured`` mixes in the IMAP-aware mutator of tests/fuzz/harness.py.
It stops by itself after ``-atheris_runs`` inputs (any libFuzzer flag may follow,
e.g. ``-max_len=4096 -timeout=10``).  A failing input does not stop the run: it is
saved to ``<workdir>/crashes/<target>-<sha1>`` with its traceback beside it, and
counted.  A hang (-timeout) or a memory blow-up (-rss_limit_mb) stops libFuzzer, which
saves the input itself (artifact prefix ``<workdir>/crashes/``).  At exit it prints
inputs run, inputs/s and crashes; the exit status is 1 if anything failed.
Replay one saved input: ``fuzz/atheris_imap.py --target imap <file>``.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import hashlib
import os
import random
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import atheris

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

with atheris.instrument_imports(include=["twistedmail"]):
    from tests.fuzz.harness import COMMANDS, MESSAGES, FuzzPeer, capture_failures, mutate
    from tests.fuzz.imapsyntax import check_stream
    from tests.fuzz.shapes import check_message
    from twistedmail.cluster import cops, wire
    from twistedmail.imap import mutf7
    from twistedmail.imap.mime import NotLeaf, ParsedMessage
    from twistedmail.imap.parser import ParseError, parse_request
    from twistedmail.imap.wire import Receiver, Request

STATS: dict[str, Any] = {"runs": 0, "crashes": 0, "start": time.monotonic(), "target": ""}
CRASH_DIR = Path("/tmp/twm-fuzz/crashes")


# --- targets -------------------------------------------------------------------------------

def _wire_outcome(chunks: list[bytes], plus: bool) -> list[object]:
    receiver = Receiver(max_line=512, max_literal=256, literal_plus=plus)
    out: list[object] = []
    for chunk in chunks:
        for event in receiver.feed(chunk):
            if isinstance(event, Request):
                try:
                    out.append(parse_request(event, plus))
                except ParseError as err:
                    out.append(("BAD", err.tag, err.message))
            else:
                out.append(event)
        assert receiver.buffered <= 512 + 256 + len(chunk) + 1, receiver.buffered
    return out


def target_wire(data: bytes) -> None:
    """Same outcome whole and cut at a data-chosen stride; only ParseError."""
    if not data:
        return
    plus, stride = bool(data[0] & 1), 1 + data[0] % 17
    body = data[1:]
    whole = _wire_outcome([body], plus)
    parts = [body[i:i + stride] for i in range(0, len(body), stride)]
    assert _wire_outcome(parts, plus) == whole, "fragmentation changed the outcome"


class _ImapState:
    peer: FuzzPeer | None = None
    uses = 0


def target_imap(data: bytes) -> None:
    """Bytes into a live session; the oracle of tests/fuzz/harness.py."""
    state = _ImapState
    if state.peer is None or state.uses >= 300 or state.peer.done:
        state.peer, state.uses = FuzzPeer(), 0
    state.uses += 1
    peer = state.peer
    with capture_failures() as failures:
        out = peer.send(data) + peer.settle()
        if not peer.done:
            probe = peer.send(b"zz9 NOOP\r\n")
            out += probe
            assert b"zz9 OK" in probe, probe
            assert not peer.proto.busy
    if failures:
        state.peer = None
        raise AssertionError(f"logged failure: {failures[0].get('log_format')}")
    assert b"Traceback" not in out
    for response in check_stream(out):
        assert b"[SERVERBUG]" not in response.raw, response.raw


def target_mime(data: bytes) -> None:
    """Every structure item and section of any message renders valid IMAP."""
    check_message(data)
    msg = ParsedMessage(data)
    for path in ((), (1,), (2,), (1, 1), (1, 2), (2, 1, 1), (3,)):
        for spec in (None, "MIME", "HEADER", "TEXT", "HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            if path or spec != "MIME":
                msg.section(path, spec, ("SUBJECT", "FROM"))
        with contextlib.suppress(NotLeaf):
            msg.binary(path)


def target_cops(data: bytes) -> None:
    """decode: ValueError only, accepted batches re-encode; wire helpers: BadRequest only."""
    try:
        batch = cops.decode(data)
    except ValueError:
        batch = None
    if batch is not None:
        assert cops.decode(cops.encode(list(batch))) == batch
    text = data.decode("utf-8", "surrogateescape")
    for parse in (wire.parse_vv, wire.digests_of):
        with contextlib.suppress(wire.BadRequest):
            parse(text)
    with contextlib.suppress(wire.BadRequest):
        wire.unpack_inline(data)


def target_mutf7(data: bytes) -> None:
    """decode: ValueError or the canonical form; encode(decode(x)) == x."""
    try:
        text = mutf7.decode(data)
    except ValueError:
        text = None
    if text is not None:
        assert mutf7.encode(text) == data
    name = data.decode("utf-8", "replace")
    assert mutf7.decode(mutf7.encode(name)) == name


TARGETS = {"wire": target_wire, "imap": target_imap, "mime": target_mime,
           "cops": target_cops, "mutf7": target_mutf7}
SEEDS: dict[str, list[bytes]] = {
    "wire": [b"\x00" + c + b"\r\n" for c in COMMANDS],
    "imap": [c + b"\r\n" for c in COMMANDS],
    "mime": list(MESSAGES),
    "cops": [cops.encode([])],
    "mutf7": [b"INBOX", b"&AMk-t&AOk-", b"&-", b"~peter/mail/&U,BTFw-/&ZeVnLIqe-"],
}


# --- driver --------------------------------------------------------------------------------

def _one_input(data: bytes) -> None:
    STATS["runs"] += 1
    try:
        TARGETS[STATS["target"]](data)
    except Exception:  # noqa: BLE001 - every failure is a finding: save it, keep going
        STATS["crashes"] += 1
        name = f"{STATS['target']}-{hashlib.sha1(data).hexdigest()}"
        CRASH_DIR.mkdir(parents=True, exist_ok=True)
        (CRASH_DIR / name).write_bytes(data)
        (CRASH_DIR / (name + ".txt")).write_text(traceback.format_exc())
        if STATS["crashes"] <= 20:
            print(f"CRASH saved {CRASH_DIR / name}", file=sys.stderr, flush=True)


def _structured(data: bytes, max_size: int, seed: int) -> bytes:
    """``--structured``: half the time the IMAP-aware mutator of tests/fuzz/harness.py
    (dictionary splices, command splicing), else libFuzzer's own."""
    rng = random.Random(seed)
    if rng.random() < 0.5:
        return bytes(atheris.Mutate(data, max_size))
    return mutate(rng, data or rng.choice(COMMANDS), rounds=4)[:max_size]


def _report() -> None:
    elapsed = time.monotonic() - STATS["start"]
    rate = STATS["runs"] / elapsed if elapsed else 0.0
    print(f"\n[atheris_imap] target={STATS['target']} inputs={STATS['runs']} "
          f"seconds={elapsed:.1f} rate={rate:.0f}/s crashes={STATS['crashes']} "
          f"(saved in {CRASH_DIR})", flush=True)
    if STATS["crashes"]:
        os._exit(1)


def _seed_corpus(workdir: Path, target: str) -> Path:
    corpus = workdir / "corpus" / target
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in SEEDS[target]:
        (corpus / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    return corpus


def main() -> None:
    """Parse our options, seed the corpus, hand the rest of argv to libFuzzer."""
    global CRASH_DIR
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", choices=sorted(TARGETS), default="wire")
    parser.add_argument("--structured", action="store_true",
                        help="mix in the IMAP-aware mutator (best with --target imap/wire)")
    parser.add_argument("--workdir", default="/tmp/twm-fuzz",
                        help="corpus/ and crashes/ go here (default %(default)s)")
    ours, rest = parser.parse_known_args()
    workdir = Path(ours.workdir)
    CRASH_DIR = workdir / "crashes"
    CRASH_DIR.mkdir(parents=True, exist_ok=True)
    STATS["target"] = ours.target
    replay = [a for a in rest if not a.startswith("-")]
    flags = [a for a in rest if a.startswith("-")]
    if not any(f.startswith(("-atheris_runs", "-runs")) for f in flags) and not replay:
        flags.append("-atheris_runs=100000")  # always stop by itself
    if not any(f.startswith("-timeout") for f in flags):
        flags.append("-timeout=20")
    if not any(f.startswith("-rss_limit_mb") for f in flags):
        flags.append("-rss_limit_mb=1024")
    flags.append(f"-artifact_prefix={CRASH_DIR}/")
    corpus = [] if replay else [str(_seed_corpus(workdir, ours.target))]
    atexit.register(_report)
    mutator = _structured if ours.structured else None
    atheris.Setup([sys.argv[0], *flags, *corpus, *replay], _one_input, custom_mutator=mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
