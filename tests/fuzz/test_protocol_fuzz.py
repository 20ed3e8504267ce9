"""End to end: hostile bytes through a real IMAPProtocol (tests/fuzz/harness.py).

Properties: whatever arrives, every byte out parses as IMAP responses, no
``[SERVERBUG]``, nothing logged as a failure, tagged responses only carry tags the
client sent, and the connection ends either closed or back in command state
(a NOOP gets its tagged OK).
"""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.harness import COMMANDS, MESSAGES, FuzzPeer, capture_failures, examples, mutate

_SEEDS = st.integers(0, 2**32 - 1)


def run_case(chunks: list[bytes], login: bool = True) -> FuzzPeer:
    """Send ``chunks``, settle, probe with NOOP; assert the oracle; return the peer."""
    with capture_failures() as failures:
        peer = FuzzPeer(login=login)
        for chunk in chunks:
            peer.send(chunk)
        peer.settle()
        closed = peer.done
        if not closed:
            probe = peer.send(b"zz9 NOOP\r\n")
        responses = peer.check()
    assert not failures, [f.get("log_format") for f in failures]
    sent = b"".join(chunks)
    for r in responses:
        if r.kind == "tagged" and r.tag and not r.tag.startswith(("s", "zz9")):
            assert r.tag.encode() in sent, r.raw
    if not closed:
        assert not peer.proto.busy and peer.proto.receiver.buffered == 0
        assert probe.endswith(b"zz9 OK NOOP completed\r\n") or b"zz9 OK" in probe, probe
    return peer


@examples(150)
@given(st.lists(st.tuples(st.sampled_from(COMMANDS), _SEEDS), min_size=1, max_size=6),
       st.booleans())
def test_mutated_real_commands(cases: list[tuple[bytes, int]], login: bool) -> None:
    """Real commands with random edits, before or after login, are answered with
    well-formed responses only."""
    chunks = [mutate(random.Random(seed), cmd) + b"\r\n" for cmd, seed in cases]
    run_case(chunks, login=login)


def test_badurl_echo_stays_one_response() -> None:
    """A CATENATE URL with controls, "(" and "]" is echoed in [BADURL] as url-resp-text
    (RFC 4469 §6), never breaking the response (a literal URL with CRLF included)."""
    peer = run_case([b'i3 APPEND INBOX CATENATE (URL "/IN\x02X/;UID=1]((" TEXT {1+}\r\na)\r\n',
                     b"i4 APPEND INBOX CATENATE (URL {17+}\r\n/INBOX/;UID=1\r\n*]"
                     b" TEXT {1+}\r\na)\r\n"])
    assert peer.out.count(b"[BADURL ") == 2, peer.out


def test_oversized_non_sync_literal_is_skipped() -> None:
    """A {n+} over the limit is answered NO [TOOBIG] at once; its bytes are then skipped."""
    peer = run_case([b"a1 APPEND INBOX {99999999999+}\r\n"])
    assert b"a1 NO [TOOBIG]" in peer.out and peer.swallowing


@examples(100)
@given(st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=6), st.booleans())
def test_random_bytes(chunks: list[bytes], login: bool) -> None:
    """Arbitrary bytes, before or after login, never break the response stream."""
    run_case(chunks, login=login)


@examples(60)
@given(st.lists(st.sampled_from(COMMANDS), min_size=1, max_size=8),
       st.lists(st.integers(0, 4000), max_size=8))
def test_pipelined_real_commands_any_split(cmds: list[bytes], cuts: list[int]) -> None:
    """A pipelined batch of real commands, cut anywhere, keeps the stream well-formed."""
    stream = b"".join(c + b"\r\n" for c in cmds)
    points = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    run_case([stream[a:b] for a, b in zip(points, points[1:], strict=False)])


@examples(60)
@given(st.sampled_from(MESSAGES), _SEEDS, st.sampled_from([
    b"BODYSTRUCTURE", b"ENVELOPE", b"BODY", b"BODY[]", b"BODY[1]", b"BODY[1.MIME]",
    b"BODY[2.1.HEADER]", b"BODY[HEADER.FIELDS (FROM SUBJECT)]", b"BINARY[1]", b"BINARY.SIZE[1]",
    b"PREVIEW", b"RFC822.TEXT", b"BODY[1.2]<3.5>", b"BINARY[3]",
]))
def test_mutated_messages_fetch(message: bytes, seed: int, item: bytes) -> None:
    """A mutated real message, appended then fetched, renders as valid IMAP."""
    body = mutate(random.Random(seed), message, rounds=6)
    run_case([b"m1 APPEND INBOX {%d+}\r\n%s\r\n" % (len(body), body),
              b"m2 FETCH * (" + item + b")\r\n", b"m3 UID FETCH 1:* (FLAGS " + item + b")\r\n"])


def test_compress_then_garbage() -> None:
    """After COMPRESS, deflated garbage commands still get well-formed answers."""
    peer = run_case([b"c1 COMPRESS DEFLATE\r\n", b"c2 FETCH (\r\n", b"c3 NOOP\r\n"])
    assert b"c2 BAD" in peer.out and b"c3 OK" in peer.out


def test_huge_sequence_number_set_regression() -> None:
    """FETCH/STORE/COPY/MOVE 1:4294967295 (non-UID) answer at once with bounded memory.

    Fuzz finding: the sequence set was materialised (4G ints: MemoryError, or the
    node swapped and was killed); twistedmail/imap/selected.py now clamps it.  Run in
    a child with a 1 GiB address-space cap so the old behaviour fails quickly."""
    script = textwrap.dedent("""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from tests.fuzz.harness import FuzzPeer
        p = FuzzPeer()
        for cmd in (b"a FETCH 1:4294967295 FLAGS", b"b STORE 4294967295:2 +FLAGS (x)",
                    b"c COPY 3:4294967295 Archive", b"d MOVE 2:4294967295 Archive"):
            out = p.send(cmd + b"\\r\\n")
            assert cmd[:2] + b"OK" in out, out
        p.check()
        print("fine")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120,
                          check=False, text=True, cwd=Path(__file__).resolve().parents[2])
    assert done.stdout.strip() == "fine", done.stderr[-2000:]
