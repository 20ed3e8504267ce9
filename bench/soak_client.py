"""The load side of the fault soak (``bench/soak.py``): a small raw-socket IMAP client and
the soak client threads that append, flag, expunge, IDLE and fail over.

Invariants (issue 7 item 5):
  * A Message-ID is *acknowledged* only when the tagged ``OK`` of its APPEND arrived; an
    APPEND answered ``NO`` is *refused*; one whose connection died before the tagged answer
    is *unknown* (never sent again: it may exist at most once).
  * A client expunges only messages it appended itself, and records a Message-ID as
    *expunged* before it sends the STORE \\Deleted / UID EXPUNGE (RFC 4315 §2.1), so a lost
    connection half-way never makes a removed message look lost.
  * Every socket read has a timeout, every loop a bound in count and time.
"""

from __future__ import annotations

import contextlib
import random
import re
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from twistedmail.testing.invariants import Invariants

Address = tuple[str, int]
_LITERAL = re.compile(rb"\{(\d+)\}\r\n\Z")
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]", re.IGNORECASE)
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]", re.IGNORECASE)
_FETCH_ITEM = re.compile(
    rb"UID (?P<uid>\d+)|EMAILID \((?P<emailid>[^)\s]+)\)|FLAGS \((?P<flags>[^)]*)\)",
    re.IGNORECASE,
)
_MESSAGE_ID = re.compile(rb"Message-ID:\s*(<[^>\r\n]*>)", re.IGNORECASE)
MAX_LINE = 16 << 20  # bytes: one response line with its literals


class Lost(ConnectionError):
    """The connection closed, failed or timed out (or the server said BYE)."""


class Refused(ConnectionError):
    """The greeting was not ``* OK`` (e.g. ``* BYE [UNAVAILABLE]`` while catching up)."""


@dataclass
class Reply:
    """A tagged answer: status OK/NO/BAD, its text, and the untagged lines before it."""

    status: str
    text: bytes
    untagged: list[bytes]


class Conn:
    """A blocking IMAP connection; every read waits at most ``timeout`` seconds."""

    def __init__(self, address: Address, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self.buf = b""
        self.tag = 0
        self.bye = False
        try:
            self.sock = socket.create_connection(address, timeout=timeout)
        except OSError as err:
            raise Lost(f"connect {address}: {err}") from err
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            greeting = self.line()
        except Lost:
            self.close()
            raise
        if not greeting.startswith(b"* OK"):
            self.close()
            raise Refused(greeting.decode("utf-8", "replace").strip())

    def close(self) -> None:
        """Close the socket (idempotent)."""
        with contextlib.suppress(OSError):
            self.sock.close()

    def _fill(self) -> None:
        try:
            chunk = self.sock.recv(1 << 16)
        except OSError as err:  # includes socket.timeout
            raise Lost(f"recv: {err}") from err
        if not chunk:
            raise Lost("connection closed by the server")
        self.buf += chunk

    def _read_line(self) -> bytes:
        for _ in range(MAX_LINE // 512 + 2):
            idx = self.buf.find(b"\r\n")
            if idx >= 0:
                out, self.buf = self.buf[: idx + 2], self.buf[idx + 2:]
                return out
            if len(self.buf) > MAX_LINE:
                raise Lost("response line too long")
            self._fill()
        raise Lost("response line too long")

    def line(self) -> bytes:
        """One response line with its literals inlined (bounded)."""
        parts: list[bytes] = []
        for _ in range(1000):
            piece = self._read_line()
            parts.append(piece)
            m = _LITERAL.search(piece)
            if m is None:
                return b"".join(parts)
            size = int(m.group(1))
            if size > MAX_LINE:
                raise Lost("literal too large")
            for _ in range(size // 512 + 2):
                if len(self.buf) >= size:
                    break
                self._fill()
            parts.append(self.buf[:size])
            self.buf = self.buf[size:]
        raise Lost("too many literals in one line")

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as err:
            raise Lost(f"send: {err}") from err

    def command(self, text: str, literal: bytes | None = None, limit: int = 1_000_000) -> Reply:
        """Send a command (a literal goes as LITERAL+, RFC 7888) and read to its tagged
        answer.  An untagged BYE marks the connection as going (``bye``)."""
        self.tag += 1
        tag = b"s%d" % self.tag
        data = tag + b" " + text.encode()
        if literal is not None:
            data += b" {%d+}\r\n" % len(literal) + literal
        self.send(data + b"\r\n")
        return self.answer(tag, limit)

    def answer(self, tag: bytes, limit: int = 1_000_000) -> Reply:
        """Read untagged lines (at most ``limit``) up to the line tagged ``tag``."""
        untagged: list[bytes] = []
        for _ in range(limit):
            line = self.line()
            if line.startswith(tag + b" "):
                status, _, rest = line[len(tag) + 1:].partition(b" ")
                return Reply(status.decode("ascii", "replace").upper(), rest.strip(), untagged)
            if line.startswith(b"* BYE"):
                self.bye = True
            untagged.append(line)
        raise Lost("too many untagged lines")

    def idle(self, seconds: float) -> int:
        """IDLE (RFC 2177) for ``seconds``; the number of untagged updates seen."""
        self.tag += 1
        tag = b"s%d" % self.tag
        self.send(tag + b" IDLE\r\n")
        seen = 0
        for _ in range(10_000):  # untagged updates may come before the continuation
            first = self.line()
            if first.startswith(b"+"):
                break
            if first.startswith(tag + b" ") or first.startswith(b"* BYE"):
                raise Lost(f"IDLE refused: {first[:80]!r}")
            seen += 1
        deadline = time.monotonic() + seconds
        for _ in range(100_000):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if b"\r\n" not in self.buf:
                ready, _, _ = select.select([self.sock], [], [], left)
                if not ready:
                    break
                self._fill()
                continue
            line = self.line()
            if line.startswith(b"* BYE"):
                raise Lost("BYE during IDLE: " + line.decode("utf-8", "replace").strip())
            seen += 1
        self.send(b"DONE\r\n")
        reply = self.answer(tag)
        if reply.status != "OK":
            raise Lost(f"IDLE ended {reply.status} {reply.text[:80]!r}")
        return seen + len(reply.untagged)


def parse_fetch(lines: list[bytes]) -> list[dict[str, bytes]]:
    """The items UID, EMAILID, FLAGS (and a Message-ID header) of each FETCH line."""
    out = []
    for line in lines:
        if b" FETCH (" not in line[:40]:
            continue
        found: dict[str, bytes] = {}
        for m in _FETCH_ITEM.finditer(line):
            found.update({k: v for k, v in m.groupdict().items() if v is not None})
        mid = _MESSAGE_ID.search(line)
        if mid is not None:
            found["mid"] = mid.group(1)
        out.append(found)
    return out


# --- the ledger ------------------------------------------------------------------------------


@dataclass
class Ledger:
    """What every client did, merged under a lock: the final check's ground truth."""

    acked: dict[str, str] = field(default_factory=dict)  # Message-ID -> user
    unknown: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    expunged: set[str] = field(default_factory=set)  # removal attempted (maybe done)
    ops: Counter[str] = field(default_factory=Counter)  # "append ok", "flag ok", ...
    errors: list[str] = field(default_factory=list)  # BAD answers, client bugs
    invariants: Invariants = field(default_factory=Invariants)
    decreasing: list[str] = field(default_factory=list)  # rule 3 as seen per client
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.ops[what] += n

    def error(self, text: str) -> None:
        with self.lock:
            if len(self.errors) < 200:
                self.errors.append(text)


def message(run: str, client: int, i: int, rng: random.Random) -> tuple[str, bytes]:
    """(Message-ID, message) -- mostly small, now and then > 64 KiB (chunked bodies)."""
    mid = f"<{run}.c{client}.{i}@soak.example>"
    size = 70_000 if rng.random() < 0.02 else rng.randrange(100, 2000)
    head = (f"From: c{client}@soak.example\r\nTo: soak@soak.example\r\n"
            f"Subject: soak {client}/{i}\r\nMessage-ID: {mid}\r\n"
            f"X-Soak-Client: c{client}\r\n\r\n").encode()
    line = (f"client {client} message {i} " * 4)[:76].encode() + b"\r\n"
    return mid, head + line * max(1, size // len(line))


# --- one soak client ------------------------------------------------------------------------

WEIGHTS = (("append", 45), ("flag", 20), ("expunge", 8), ("idle", 7), ("scan", 10),
           ("noop", 10))


@dataclass
class SoakClient:
    """One thread: a session on some node; on a lost or refused session it fails over to
    the next node.  Stops at ``deadline``, on ``stop``, or after ``max_ops`` operations."""

    index: int
    user: str
    password: str
    addresses: Mapping[str, Address]
    ledger: Ledger
    run: str
    stop: threading.Event
    deadline: float
    pace: float = 0.2
    max_ops: int = 100_000
    seed: int = 0
    conn: Conn | None = None
    node: str = ""
    uidvalidity: int = 0
    own: dict[int, str] = field(default_factory=dict)  # UID -> Message-ID (this session)
    seq: int = 0
    history: Invariants = field(default_factory=Invariants)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed * 1000 + self.index)
        names = sorted(self.addresses)
        self.node = names[self.index % len(names)]
        self.thread = threading.Thread(target=self._main, name=f"soak-c{self.index}",
                                       daemon=True)

    def _main(self) -> None:
        try:
            self._loop()
        except Exception as err:  # noqa: BLE001 - a client bug: reported, never hidden
            self.ledger.error(f"c{self.index}: {type(err).__name__}: {err}")
        finally:
            self._drop()
            with self.ledger.lock:
                self.ledger.decreasing += [
                    f"c{self.index}: {p}" for p in self.history.problems()]

    def _loop(self) -> None:
        ops, kinds = zip(*WEIGHTS, strict=True)
        for _ in range(self.max_ops):
            if self.stop.is_set() or time.monotonic() >= self.deadline:
                return
            if self.conn is None and not self._connect():
                self.stop.wait(self.rng.uniform(0.05, 0.3))
                continue
            op = self.rng.choices(ops, kinds)[0]
            try:
                getattr(self, "_" + op)()
            except Lost as err:
                self.ledger.count(f"lost during {op}")
                self._failover(str(err))
            if self.conn is not None and self.conn.bye:
                self._failover("BYE")
            self.stop.wait(self.rng.uniform(0, 2 * self.pace))

    # --- sessions -----------------------------------------------------------------------

    def _failover(self, why: str) -> None:
        self._drop()
        names = sorted(self.addresses)
        self.node = names[(names.index(self.node) + 1) % len(names)]
        self.ledger.count("failover")

    def _drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None
        self.own = {}

    def _connect(self) -> bool:
        """Connect, LOGIN, SELECT INBOX; False (and fail over) when refused or lost."""
        try:
            self.conn = Conn(self.addresses[self.node])
            login = self.conn.command(f'LOGIN "{self.user}" "{self.password}"')
            if login.status != "OK":
                raise Refused(f"LOGIN {login.status} {login.text[:100]!r}")
            self._select()
        except Refused:
            self.ledger.count("session refused")
            self._failover("refused")
            return False
        except Lost:
            self.ledger.count("session lost while opening")
            self._failover("lost")
            return False
        self.ledger.count("session opened")
        return True

    def _select(self) -> None:
        assert self.conn is not None
        reply = self.conn.command("SELECT INBOX")
        if reply.status != "OK":
            raise Refused(f"SELECT {reply.status} {reply.text[:100]!r}")
        uvs = [m for line in reply.untagged if (m := _UIDVALIDITY.search(line))]
        if not uvs:
            self.ledger.error(f"c{self.index}: SELECT without UIDVALIDITY on {self.node}")
            raise Refused("no UIDVALIDITY")
        self.uidvalidity = int(uvs[0].group(1))
        self.history.folder(self.node, self.user, "INBOX", self.uidvalidity)
        self.own = {}
        found = self.conn.command(f"UID SEARCH HEADER X-Soak-Client c{self.index}")
        uids = b" ".join(u for line in found.untagged if line.startswith(b"* SEARCH")
                         for u in line.split()[2:]).split()
        if found.status == "OK" and uids:
            self._learn(b",".join(uids[-30:]).decode())

    def _learn(self, uids: str) -> None:
        """Fetch UID, EMAILID, Message-ID of ``uids``: own map and invariants."""
        assert self.conn is not None
        reply = self.conn.command(
            f"UID FETCH {uids} (UID EMAILID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        self._check(reply, "UID FETCH")
        items = parse_fetch(reply.untagged)
        for item in items:
            if "uid" in item and "mid" in item:
                self.own[int(item["uid"])] = item["mid"].decode()
        self._record(items)

    def _record(self, items: list[dict[str, bytes]]) -> None:
        seen = {int(i["uid"]): i["emailid"].decode()
                for i in items if "uid" in i and "emailid" in i}
        if seen:
            self.ledger.invariants.messages(self.node, self.user, "INBOX", self.uidvalidity, seen)

    def _check(self, reply: Reply, what: str) -> bool:
        if reply.status == "BAD":
            self.ledger.error(f"c{self.index} on {self.node}: {what} BAD {reply.text[:120]!r}")
        return reply.status == "OK"

    # --- operations -----------------------------------------------------------------------

    def _append(self) -> None:
        assert self.conn is not None
        mid, data = message(self.run, self.index, self.seq, self.rng)
        self.seq += 1
        flags = "(\\Seen) " if self.rng.random() < 0.3 else ""
        try:
            reply = self.conn.command(f"APPEND INBOX {flags}".rstrip(), data)
        except Lost:
            with self.ledger.lock:
                self.ledger.unknown.add(mid)
            raise
        with self.ledger.lock:
            if reply.status == "OK":
                self.ledger.acked[mid] = self.user
                self.ledger.ops["append ok"] += 1
            else:
                self.ledger.refused.add(mid)
                self.ledger.ops[f"append {reply.status}"] += 1
        self._check(reply, "APPEND")
        m = _APPENDUID.search(reply.text)
        if reply.status == "OK" and m and int(m.group(1)) == self.uidvalidity:
            self.own[int(m.group(2))] = mid

    def _flag(self) -> None:
        if not self.own:
            return self._noop()
        assert self.conn is not None
        uid = self.rng.choice(sorted(self.own))
        sign = self.rng.choice("+-")
        flag = self.rng.choice(("\\Flagged", "$Soak", "\\Answered", "\\Seen"))
        reply = self.conn.command(f"UID STORE {uid} {sign}FLAGS ({flag})")
        self.ledger.count("flag ok" if self._check(reply, "STORE") else "flag refused")

    def _expunge(self) -> None:
        if not self.own:
            return self._noop()
        assert self.conn is not None
        uid = self.rng.choice(sorted(self.own))
        with self.ledger.lock:
            self.ledger.expunged.add(self.own.pop(uid))
        reply = self.conn.command(f"UID STORE {uid} +FLAGS.SILENT (\\Deleted)")
        if self._check(reply, "STORE \\Deleted"):
            reply = self.conn.command(f"UID EXPUNGE {uid}")
        self.ledger.count("expunge ok" if self._check(reply, "UID EXPUNGE") else "expunge refused")

    def _idle(self) -> None:
        assert self.conn is not None
        seen = self.conn.idle(self.rng.uniform(0.5, 2.0))
        self.ledger.count("idle ok")
        self.ledger.count("idle updates", seen)

    def _scan(self) -> None:
        """UID FETCH the newest ~40 messages (UID EMAILID FLAGS): UID invariants."""
        assert self.conn is not None
        top = max(self.own, default=0)
        reply = self.conn.command(f"UID FETCH {max(1, top - 40)}:* (UID EMAILID FLAGS)")
        if self._check(reply, "UID FETCH"):
            self._record(parse_fetch(reply.untagged))
            self.ledger.count("scan ok")

    def _noop(self) -> None:
        assert self.conn is not None
        self._check(self.conn.command("NOOP"), "NOOP")
        self.ledger.count("noop ok")


def start_clients(
    n: int,
    users: Mapping[str, str],
    addresses: Mapping[str, Address],
    ledger: Ledger,
    run: str,
    stop: threading.Event,
    deadline: float,
    pace: float,
    seed: int,
) -> list[SoakClient]:
    """``n`` started clients, spread round-robin over ``users`` and nodes."""
    names = sorted(users)
    clients = [SoakClient(i, names[i % len(names)], users[names[i % len(names)]], addresses,
                          ledger, run, stop, deadline, pace, seed=seed) for i in range(n)]
    for client in clients:
        client.thread.start()
    return clients


def join_clients(clients: list[SoakClient], timeout: float,
                 on_stuck: Callable[[str], None]) -> None:
    """Join every client thread within ``timeout`` in total; report the stuck ones."""
    deadline = time.monotonic() + timeout
    for client in clients:
        client.thread.join(max(0.0, deadline - time.monotonic()))
        if client.thread.is_alive():
            on_stuck(f"c{client.index} did not stop within {timeout} s")
