"""Helpers of the real-cluster admin tests (issue 4 item 5): the ``clustermail`` CLI run as a
subprocess against a node's default admin socket, and a load client thread that APPENDs and
flags through ``convert -e-`` / ``convert -e``.

Invariants: every wait and loop is bounded (count and time).  The load client retries an
APPEND only when it was refused (NO) or never sent (the connection or LOGIN/SELECT failed
before it); an APPEND whose connection was lost is never retried and counts as "unknown".
"""

from __future__ import annotations

import contextlib
import imaplib
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imaplib2

from tests.cluster.failover import Lib, message, mid
from twistedmail.testing.cluster import Cluster
from twistedmail.testing.imapview import quote

CLI_TIMEOUT = 60.0  # seconds: one clustermail run
LOAD_LIMIT = 180.0  # seconds: a load client stops by itself after this
LOAD_MAX = 3000  # messages: ... or after this many APPENDs
NO_ERRORS = (imaplib.IMAP4.error, imaplib2.IMAP4.error)  # NO (lost is checked first)


# --- the CLI ------------------------------------------------------------------------------


def admin_socket(c: Cluster, node: str) -> Path:
    """Node ``node``'s default admin socket: clustermail-<node>.admin in its workdir."""
    return c.workdir / node / f"clustermail-{node}.admin"


def cli(c: Cluster, node: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m twistedmail.admin.cli --admin unix:<node's socket> ARGS``, bounded."""
    argv = [sys.executable, "-m", "twistedmail.admin.cli",
            "--admin", f"unix:{admin_socket(c, node)}", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=CLI_TIMEOUT,
                          stdin=subprocess.DEVNULL, errors="replace")


def cli_ok(c: Cluster, node: str, *args: str) -> str:
    """Run the CLI; exit status 0 required; its stdout."""
    result = cli(c, node, *args)
    assert result.returncode == 0, (args, result.returncode, result.stdout, result.stderr)
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """Assert the CLI failed (exit != 0) with exactly one stderr line
    ``clustermail: error: ...``; return that line."""
    lines = result.stderr.splitlines()
    assert result.returncode != 0, (result.stdout, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("clustermail: error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


def status(c: Cluster, node: str) -> dict[str, Any]:
    """``clustermail status --json`` of ``node``."""
    answer: dict[str, Any] = json.loads(cli_ok(c, node, "status", "--json"))
    return answer


def uidvalidities(c: Cluster, node: str, user: str) -> dict[str, int]:
    """Folder -> UIDVALIDITY of ``user``'s mail file on ``node`` (from status)."""
    folders = status(c, node)["accounts"][user]["folders"]
    return {f["name"]: int(f["uidvalidity"]) for f in folders}


# --- a load client --------------------------------------------------------------------------


class _Ops:
    """The few IMAP operations of the load client, for imaplib2 and imapclient."""

    def __init__(self, lib: Lib) -> None:
        self.lib = lib
        self.imaplib2 = lib.name == "imaplib2"

    def select(self, conn: Any) -> None:
        """SELECT INBOX; NO raises an IMAP4.error."""
        if self.imaplib2:
            typ, data = conn.select("INBOX")
            if typ != "OK":
                raise imaplib2.IMAP4.error(f"SELECT: {typ} {data!r}")
        else:
            conn.select_folder("INBOX")

    def noop(self, conn: Any) -> None:
        conn.noop()

    def uids(self, conn: Any, message_id: str) -> list[int]:
        """UIDs of the messages with that Message-ID (UID SEARCH HEADER)."""
        if self.imaplib2:
            typ, data = conn.uid("SEARCH", "HEADER", "Message-ID", quote(message_id))
            if typ != "OK":
                raise imaplib2.IMAP4.error(f"UID SEARCH: {typ} {data!r}")
            return [int(u) for u in b" ".join(d for d in data if d).split()]
        return [int(u) for u in conn.search(["HEADER", "Message-ID", message_id])]

    def flag(self, conn: Any, uid: int, flags: tuple[str, ...]) -> None:
        """UID STORE +FLAGS; NO raises an IMAP4.error."""
        if self.imaplib2:
            typ, data = conn.uid("STORE", str(uid), "+FLAGS", "(" + " ".join(flags) + ")")
            if typ != "OK":
                raise imaplib2.IMAP4.error(f"UID STORE: {typ} {data!r}")
        else:
            conn.add_flags([uid], list(flags))


@dataclass
class LoadClient:
    """A thread of ``lib`` appending ``message(tag, i)`` to INBOX on ``node`` (every other
    one with \\Seen) and flagging every third acknowledged one \\Flagged $Load, until
    :meth:`finish`.  ``acked``: Message-ID -> flags acknowledged (APPEND OK, STORE OK);
    ``unknown``: Message-IDs whose APPEND lost its connection; ``refused``: answered NO and
    not acknowledged later; ``events``: (what, server text) of every refusal or loss."""

    lib: Lib
    c: Cluster
    node: str
    user: str
    tag: str
    acked: dict[str, frozenset[str]] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    events: list[tuple[str, str]] = field(default_factory=list)
    error: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _conn: Any = None

    def start(self) -> LoadClient:
        self._ops = _Ops(self.lib)
        self._thread = threading.Thread(target=self._run, name=f"load-{self.tag}", daemon=True)
        self._thread.start()
        return self

    def finish(self, timeout: float = 30.0) -> None:
        """Stop the loop and join the thread; re-raise what broke it."""
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"{self.tag}: load client did not stop"
        if self.error is not None:
            raise AssertionError(f"{self.tag}: load client failed: {self.error!r}; "
                                 f"events {self.events[-5:]}") from self.error

    def saw_unavailable(self) -> bool:
        """Whether the server refused or closed with an [UNAVAILABLE] text."""
        return any("UNAVAILABLE" in text for _what, text in self.events)

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as err:  # reported by finish()
            self.error = err
        finally:
            if self._conn is not None:
                self.lib.close(self._conn)

    def _loop(self) -> None:
        deadline = time.monotonic() + LOAD_LIMIT
        i = 0
        while not self._stop.is_set() and time.monotonic() < deadline and i < LOAD_MAX:
            if not self._ready():
                time.sleep(0.05)
                continue
            flags = ("\\Seen",) if i % 2 else ()
            outcome = self._append(mid(self.tag, i), message(self.tag, i), flags)
            if outcome == "NO":
                time.sleep(0.05)
                continue  # refused: the same message again
            i += 1  # acknowledged or unknown: never sent again
            if outcome == "OK" and i % 3 == 0:
                self._flag(mid(self.tag, i - 1))

    def _ready(self) -> bool:
        """A logged-in session with INBOX selected that answers NOOP (else: not sent)."""
        try:
            if self._conn is None:
                host, port = self.c.imap(self.node)
                self._conn = self.lib.connect(host, port, self.user, self.c.users[self.user])
                self._ops.select(self._conn)
            self._ops.noop(self._conn)
            return True
        except self.lib.lost as err:
            self._drop("lost before APPEND", err)
        except NO_ERRORS as err:
            self._drop("refused before APPEND", err)
        return False

    def _append(self, message_id: str, raw: bytes, flags: tuple[str, ...]) -> str:
        try:
            outcome = self.lib.append(self._conn, "INBOX", raw, flags)
        except self.lib.lost as err:
            self._drop("APPEND lost", err)
            self.unknown.add(message_id)
            self.refused.discard(message_id)
            return "LOST"
        if outcome == "OK":
            self.acked[message_id] = frozenset(flags)
            self.refused.discard(message_id)
        else:
            self.events.append(("APPEND NO", outcome))
            self.refused.add(message_id)
        return outcome

    def _flag(self, message_id: str) -> None:
        """Flag ``message_id`` (found by SEARCH); acknowledged flags are recorded."""
        extra = ("\\Flagged", "$Load")
        try:
            uids = self._ops.uids(self._conn, message_id)
            if len(uids) != 1:
                raise AssertionError(f"{message_id}: UID SEARCH found {uids} on {self.node}")
            self._ops.flag(self._conn, uids[0], extra)
        except self.lib.lost as err:
            self._drop("STORE lost", err)
            return
        except NO_ERRORS as err:
            self.events.append(("STORE NO", _text(err)))
            return
        self.acked[message_id] = self.acked[message_id] | frozenset(extra)

    def _drop(self, what: str, err: BaseException) -> None:
        self.events.append((what, _text(err)))
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self.lib.close(self._conn)
        self._conn = None


def _text(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"[:300]
