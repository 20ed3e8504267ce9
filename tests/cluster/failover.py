"""Helpers for the real-client failover tests (issue 3 item 9): test messages, a tiny
failover wrapper for client libraries (try n1, then n2, ...; no failback, DESIGN.md §4),
loading a folder set onto a node, and a read of what a node shows by Message-ID.
imaplib2 goes through :mod:`twistedmail.client` (:class:`ClientFailover`, issue 5 item 6),
which does the node order, failover and no-retry itself; other libraries use the ad-hoc
:class:`FailoverClient`.

Invariants: every wait is bounded; the wrapper never retries an APPEND by itself (a lost
APPEND is reported as "LOST", so tests can pin "no OK, present at most once").
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import imaplib2
from imapclient import IMAPClient

from twistedmail.client import (
    Client,
    CommandFailed,
    OutcomeUnknown,
    UidValidityChanged,
)
from twistedmail.testing.cluster import Cluster
from twistedmail.testing.imapview import quote

# cluster options used by the failover tests: quick failure detection, a long enough
# ack_timeout that an APPEND waiting for its ack is still waiting when the test kills n1
FAST = {"heartbeat": 0.1, "suspect_after": 0.3, "down_after": 0.6, "ack_timeout": 5.0}
MID = re.compile(rb"(?mi)^Message-ID:\s*(<[^>\s]+>)")
Messages = dict[str, list[tuple[int, frozenset[str]]]]  # Message-ID -> [(UID, flags)]


def message(tag: str, n: int, size: int = 0) -> bytes:
    """A small unique RFC 5322 message; its Message-ID is ``<tag.n@failover.test>``."""
    filler = b"".join(b"line %d of filler text for the body\r\n" % i for i in range(size))
    return (f"From: Sender <s@example.org>\r\nTo: tester@example.org\r\n"
            f"Subject: {tag} {n}\r\nDate: Sun, 01 Mar 2026 10:{n % 60:02d}:00 +0000\r\n"
            f"Message-ID: {mid(tag, n)}\r\n\r\nbody of {tag} {n}\r\n").encode() + filler


def mid(tag: str, n: int) -> str:
    """The Message-ID of ``message(tag, n)``."""
    return f"<{tag}.{n}@failover.test>"


def message_id(data: bytes) -> str:
    """The Message-ID header of a message (or header block)."""
    found = MID.search(data)
    return found.group(1).decode() if found else "<none>"


def wait_for(what: str, probe: Callable[[], Any], timeout: float, every: float = 0.1) -> Any:
    """Poll ``probe`` until it returns something truthy; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timeout ({timeout} s) waiting for {what}; last: {last!r}")


# --- server side reads (plain imaplib through the harness, recorded in the invariants) --------

FETCH_UID_FLAGS = re.compile(rb"UID (\d+)|FLAGS \(([^)]*)\)")
FETCH_EMAILID = re.compile(rb"EMAILID \(([^)\s]+)\)")
FETCH_ITEMS = "(UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"


def by_message_id(
    c: Cluster, node: str, user: str, folder: str
) -> tuple[int, dict[str, list[tuple[int, frozenset[str]]]]]:
    """(UIDVALIDITY, Message-ID -> [(UID, flags)]) of ``folder`` on ``node``: every copy.
    What was seen (UID -> EMAILID) is recorded in ``c.invariants``."""
    out: dict[str, list[tuple[int, frozenset[str]]]] = {}
    emailids: dict[int, str] = {}
    with c.session(node, user) as imap:
        typ, data = imap.select(quote(folder), readonly=True)
        assert typ == "OK", (node, folder, data)
        uv = int(imap.response("UIDVALIDITY")[1][-1])
        if int(data[0] or b"0"):
            typ, data = imap.uid("FETCH", "1:*", "(EMAILID " + FETCH_ITEMS[1:])
            assert typ == "OK", data
            for item in data:
                if isinstance(item, tuple):
                    uid, flags = _uid_flags(item[0])
                    out.setdefault(message_id(item[1]), []).append((uid, flags))
                    found = FETCH_EMAILID.search(item[0])
                    assert found, item[0]
                    emailids[uid] = found.group(1).decode()
    c.invariants.messages(node, user, folder, uv, emailids)
    return uv, out


def fetched(data: Sequence[Any]) -> Messages:
    """Message-ID -> [(UID, flags)] of imaplib2 ``UID FETCH FETCH_ITEMS`` response data."""
    out: Messages = {}
    for item in data:
        if isinstance(item, tuple):
            uid, flags = _uid_flags(item[0])
            out.setdefault(message_id(item[1]), []).append((uid, flags))
    return out


def _uid_flags(meta: bytes) -> tuple[int, frozenset[str]]:
    uid, flags = 0, frozenset[str]()
    for m in FETCH_UID_FLAGS.finditer(meta):
        if m.group(1):
            uid = int(m.group(1))
        else:
            flags = frozenset(f for f in m.group(2).decode().split() if f != "\\Recent")
    return uid, flags


def load(c: Cluster, node: str, user: str, folders: dict[str, list[tuple[bytes, tuple[str, ...]]]],
         subscribe: bool = False) -> None:
    """CREATE (and SUBSCRIBE) the folders on ``node`` and APPEND each message with its flags;
    every APPEND must be acknowledged."""
    with c.session(node, user, timeout=30) as imap:
        for folder, msgs in folders.items():
            if folder != "INBOX":
                typ, data = imap.create(quote(folder))
                assert typ == "OK" or b"ALREADYEXISTS" in data[0], (folder, data)
            if subscribe:
                assert imap.subscribe(quote(folder))[0] == "OK", folder
            for raw, flags in msgs:
                typ, data = imap.append(quote(folder), "(" + " ".join(flags) + ")", None, raw)
                assert typ == "OK", (folder, data)


# --- client libraries behind one small interface ---------------------------------------------

class Lib(Protocol):
    """What the failover wrapper needs from a client library."""

    name: str
    lost: tuple[type[BaseException], ...]  # "the connection is gone" as the library says it

    def connect(self, host: str, port: int, user: str, password: str) -> Any: ...
    def append(self, conn: Any, folder: str, raw: bytes, flags: Sequence[str]) -> str: ...
    def select(self, conn: Any, folder: str) -> int: ...
    def messages(self, conn: Any) -> Messages: ...
    def add_flags(self, conn: Any, uid: int, flags: Sequence[str]) -> None: ...
    def close(self, conn: Any) -> None: ...


class _Session:
    """What both libraries share: log in on a fresh connection (closed again when LOGIN
    fails) and close quietly (LOGOUT, then drop the socket, ignoring any error)."""

    def open(self, host: str, port: int) -> Any:
        raise NotImplementedError

    def connect(self, host: str, port: int, user: str, password: str) -> Any:
        conn = self.open(host, port)
        try:
            conn.login(user, password)
        except BaseException:
            self.close(conn)
            raise
        return conn

    def close(self, conn: Any) -> None:
        with contextlib.suppress(Exception):
            conn.logout()
        with contextlib.suppress(Exception):
            conn.shutdown()


class Imaplib2(_Session):
    """imaplib2 3.x (threaded reader; a dead connection raises ``IMAP4.abort``)."""

    name = "imaplib2"
    lost: tuple[type[BaseException], ...] = (imaplib2.IMAP4.abort, OSError)

    def open(self, host: str, port: int) -> Any:
        return imaplib2.IMAP4(host, port, timeout=10)

    def append(self, conn: Any, folder: str, raw: bytes, flags: Sequence[str]) -> str:
        typ, _data = conn.append(quote(folder), "(" + " ".join(flags) + ")", None, raw)
        return str(typ)

    def select(self, conn: Any, folder: str) -> int:
        typ, data = conn.select(quote(folder))
        assert typ == "OK", data
        _typ, uvs = conn.response("UIDVALIDITY")
        return int(uvs[-1])

    def messages(self, conn: Any) -> Messages:
        typ, data = conn.uid("FETCH", "1:*", FETCH_ITEMS)
        assert typ == "OK", data
        return fetched(data)

    def add_flags(self, conn: Any, uid: int, flags: Sequence[str]) -> None:
        typ, data = conn.uid("STORE", str(uid), "+FLAGS", "(" + " ".join(flags) + ")")
        assert typ == "OK", data


class ImapClientLib(_Session):
    """imapclient 4.x (imaplib underneath; a dead connection raises IMAPClientAbortError,
    an ``imaplib.IMAP4.abort``, or a socket error)."""

    name = "imapclient"
    lost: tuple[type[BaseException], ...] = (imaplib.IMAP4.abort, OSError)

    def open(self, host: str, port: int) -> Any:
        return IMAPClient(host, port=port, ssl=False, timeout=10)

    def append(self, conn: Any, folder: str, raw: bytes, flags: Sequence[str]) -> str:
        try:
            conn.append(folder, raw, flags=list(flags))
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error:  # NO: imapclient raises IMAPClientError
            return "NO"
        return "OK"

    def select(self, conn: Any, folder: str) -> int:
        return int(conn.select_folder(folder)[b"UIDVALIDITY"])

    def messages(self, conn: Any) -> Messages:
        key = "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"
        out: Messages = {}
        uids = conn.search(["ALL"])  # imapclient takes UIDs, not "1:*"
        for uid, data in (conn.fetch(uids, ["FLAGS", key]) if uids else {}).items():
            header = next(v for k, v in data.items() if k.startswith(b"BODY[HEADER"))
            flags = frozenset(f.decode() for f in data[b"FLAGS"] if f != b"\\Recent")
            out.setdefault(message_id(header), []).append((int(uid), flags))
        return out

    def add_flags(self, conn: Any, uid: int, flags: Sequence[str]) -> None:
        conn.add_flags([uid], list(flags))


LIBS: dict[str, Lib] = {"imaplib2": Imaplib2(), "imapclient": ImapClientLib()}


@dataclass
class FailoverClient:
    """A client of ``lib`` that tries the nodes in ``order`` and sticks with the one it
    reached until that connection is lost (then it goes on to the next: no failback).
    ``events`` records what happened, e.g. ``("n1", "lost", "IMAP4.abort: ...")``."""

    lib: Lib
    cluster: Cluster
    user: str
    order: Sequence[str]
    attempts: int = 10  # bound on connection attempts over the client's life
    node: str | None = None
    conn: Any = None
    events: list[tuple[str, str, str]] = field(default_factory=list)
    _next: int = 0

    def connect(self) -> Any:
        """The current connection, or a new one to the next reachable node."""
        while self.conn is None:
            if self.attempts <= 0 or self._next >= len(self.order):
                raise AssertionError(f"{self.lib.name}: no node reachable: {self.events}")
            self.attempts -= 1
            name = self.order[self._next]
            host, port = self.cluster.imap(name)
            try:
                self.conn = self.lib.connect(host, port, self.user, self.cluster.users[self.user])
                self.node = name
                self.events.append((name, "connected", ""))
            except (*self.lib.lost, imaplib.IMAP4.error, imaplib2.IMAP4.error) as err:
                self.events.append((name, "connect failed", _describe(err)))
                self._next += 1
        return self.conn

    def drop(self, err: BaseException) -> None:
        """The connection is gone: note it, and go on to the next node next time."""
        assert self.node is not None
        self.events.append((self.node, "lost", _describe(err)))
        self.lib.close(self.conn)
        self.conn, self.node = None, None
        self._next += 1

    def call(self, fn: Callable[[Any], Any]) -> Any:
        """Run a read or an idempotent write; on a lost connection, fail over and rerun."""
        for _ in range(len(self.order)):
            conn = self.connect()
            try:
                return fn(conn)
            except self.lib.lost as err:
                self.drop(err)
        raise AssertionError(f"{self.lib.name}: every node failed: {self.events}")

    def append(self, folder: str, raw: bytes, flags: Sequence[str] = ()) -> str:
        """"OK" | "NO" | "LOST"; a lost APPEND is not retried (it may or may not be stored)."""
        conn = self.connect()
        try:
            return self.lib.append(conn, folder, raw, flags)
        except self.lib.lost as err:
            self.drop(err)
            return "LOST"

    def resync(self, folder: str) -> tuple[int, Messages]:
        """SELECT ``folder`` and read every message (a full resync, as after a new
        UIDVALIDITY): (UIDVALIDITY, Message-ID -> [(UID, flags)])."""
        def read(conn: Any) -> tuple[int, Messages]:
            return self.lib.select(conn, folder), self.lib.messages(conn)
        result: tuple[int, Messages] = self.call(read)
        return result

    def close(self) -> None:
        if self.conn is not None:
            self.lib.close(self.conn)
            self.conn = None


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"[:200]


def counts(msgs: Messages) -> Counter[str]:
    """Message-ID -> how many copies."""
    return Counter({m: len(copies) for m, copies in msgs.items()})


class ClientFailover:
    """FailoverClient's interface on :class:`twistedmail.client.Client` (imaplib2 under
    it): the client itself tries the nodes in order, stays on the one it reached (no
    failback), and never re-sends an APPEND it lost; this maps its addresses to node names."""

    def __init__(self, lib: Lib, cluster: Cluster, user: str, order: Sequence[str]) -> None:
        self.lib, self.order = lib, list(order)
        self.client = Client([cluster.imap(n) for n in order], user, cluster.users[user])
        self._names = {cluster.imap(n): n for n in order}

    @property
    def node(self) -> str | None:
        return None if self.client.server is None else self._names[self.client.server]

    @property
    def events(self) -> list[tuple[str, str, str]]:
        return [(self._names[e.server], e.what, e.detail) for e in self.client.events]

    def call(self, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn`` on the raw imaplib2 connection; on a lost one, fail over and rerun."""
        for _ in range(len(self.order)):
            self.client.connect()
            try:
                return fn(self.client.conn)
            except self.lib.lost as err:
                self.client.connection_lost(err)
        raise AssertionError(f"twistedmail.client: every node failed: {self.events}")

    def append(self, folder: str, raw: bytes, flags: Sequence[str] = ()) -> str:
        """"OK" | "NO" | "LOST" (OutcomeUnknown: the client does not retry it)."""
        try:
            self.client.append(folder, raw, flags)
        except CommandFailed:
            return "NO"
        except OutcomeUnknown:
            return "LOST"
        return "OK"

    def resync(self, folder: str) -> tuple[int, Messages]:
        """SELECT ``folder`` and read every message; a FETCH lost with its node is redone
        from the SELECT on the next one (UidValidityChanged)."""
        for _ in range(len(self.order)):
            uidvalidity = self.client.select(folder).uidvalidity
            assert uidvalidity is not None, self.events
            try:
                return uidvalidity, fetched(self.client.uid("FETCH", "1:*", FETCH_ITEMS))
            except UidValidityChanged:
                continue
        raise AssertionError(f"twistedmail.client: every node failed: {self.events}")

    def close(self) -> None:
        self.client.close()


@contextlib.contextmanager
def failover_client(lib: Lib, c: Cluster, user: str, order: Sequence[str]
                    ) -> Iterator[FailoverClient | ClientFailover]:
    """``with failover_client(LIBS["imaplib2"], c, "alice", c.names) as fc:`` (imaplib2:
    through twistedmail.client; other libraries: the ad-hoc FailoverClient)."""
    client: FailoverClient | ClientFailover
    if isinstance(lib, Imaplib2):
        client = ClientFailover(lib, c, user, order)
    else:
        client = FailoverClient(lib, c, user, order)
    try:
        yield client
    finally:
        client.close()
