"""Shared helpers of the delivery tests: in-process listeners, IMAP reading, raw dialogs."""

from __future__ import annotations

import imaplib
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

HOST = "127.0.0.1"


def listen(server: Any, factory: Any) -> tuple[int, Any]:
    """Listen with ``factory`` on 127.0.0.1:<free port> in the server's reactor thread."""

    def go() -> Any:
        from twisted.internet import endpoints, reactor

        endpoint = endpoints.serverFromString(reactor, f"tcp:0:interface={HOST}")
        return endpoint.listen(factory)

    port = server.call(go)
    return port.getHost().port, port


def fetch_all(host: str, port: int, user: str, password: str = "secret",
              folder: str = "INBOX") -> list[bytes]:
    """Every message (BODY.PEEK[]) of ``folder`` over IMAP, in UID order."""
    with imaplib.IMAP4(host, port, timeout=10) as imap:
        imap.login(user, password)
        typ, data = imap.select(folder, readonly=True)
        assert typ == "OK", data
        if int(data[0] or b"0") == 0:
            return []
        typ, lines = imap.uid("FETCH", "1:*", "(BODY.PEEK[])")
        assert typ == "OK", lines
        return [part[1] for part in lines if isinstance(part, tuple)]


def with_marker(messages: list[bytes], marker: bytes) -> list[bytes]:
    """The messages containing ``marker``."""
    return [m for m in messages if marker in m]


def message(marker: str, size: int = 0) -> bytes:
    """A small RFC 5322 message carrying ``marker`` (and ``size`` bytes of filler)."""
    filler = "".join(f"{'x' * 70}\r\n" for _ in range(size // 72))
    return (f"From: sender@example.org\r\nTo: rcpt@example.org\r\nSubject: {marker}\r\n"
            f"Message-ID: <{marker}@example.org>\r\n\r\nbody {marker}\r\n{filler}").encode()


class Dialog:
    """A raw line-level SMTP/LMTP client: send lines, read whole (multi-line) replies."""

    def __init__(self, port: int, timeout: float = 15.0) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.buffer = b""

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def send(self, data: bytes) -> None:
        """Send raw bytes."""
        self.sock.sendall(data)

    def line(self) -> bytes:
        """One CRLF-terminated line (b"" at EOF)."""
        for _ in range(10000):
            if b"\r\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\r\n", 1)
                return line
            chunk = self.sock.recv(65536)
            if not chunk:
                return b""
            self.buffer += chunk
        raise AssertionError("no line end")

    def reply(self) -> tuple[int, bytes]:
        """One reply: (code, the text of its lines joined by newlines); (0, b"") at EOF."""
        texts = []
        for _ in range(100):
            line = self.line()
            if not line:
                return 0, b"\n".join(texts)
            texts.append(line[4:])
            if line[3:4] != b"-":
                return int(line[:3]), b"\n".join(texts)
        raise AssertionError("endless reply")

    def command(self, line: bytes) -> tuple[int, bytes]:
        """Send one command line, return its reply."""
        self.send(line + b"\r\n")
        return self.reply()


@contextmanager
def dialog(port: int) -> Iterator[Dialog]:
    """``with dialog(port) as d:`` a raw client that has read the greeting."""
    d = Dialog(port)
    try:
        code, text = d.reply()
        assert code == 220, (code, text)
        yield d
    finally:
        d.close()


def logged_ports(node: Any, kind: str) -> list[int]:
    """Every port the node logged for its ``kind`` (LMTP/SMTP) listener, all starts."""
    return [int(p) for p in re.findall(kind + r" listening on [^\s:]+:(\d+)", node.log_text())]


def wait_logged_port(node: Any, kind: str, timeout: float = 15.0, starts: int = 1) -> int:
    """Poll the node's log (bounded) until ``starts`` starts named their ``kind`` port;
    the latest one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ports = logged_ports(node, kind)
        if len(ports) >= starts:
            return ports[-1]
        time.sleep(0.05)
    raise AssertionError(f"{kind} listener not logged within {timeout} s")
