"""A scripted IMAP conversation over a raw socket, for protocol tests.

    c = ImapScript(host, port)
    c.ok("LOGIN alice secret")
    r = c.ok("SELECT INBOX")
    assert r.matching(rb"^\\* \\d+ EXISTS")
    c.cmd("APPEND INBOX {5}", b"hello")        # waits for "+" before each literal

Response lines are returned without their final CRLF; a literal stays inline
as ``{n}\\r\\n<n bytes>`` followed by the rest of its line.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

CRLF = b"\r\n"
_LITERAL_AT_END = re.compile(rb"~?\{(\d+)\+?\}\Z")
_NONSYNC_AT_END = re.compile(rb"\{\d+\+\}\Z")
_STATUS = re.compile(rb"\S+ (OK|NO|BAD)\b", re.IGNORECASE)


@dataclass
class Result:
    """What one command got back: untagged lines, the tagged line, its status."""

    tag: str
    untagged: list[bytes] = field(default_factory=list)
    tagged: bytes = b""
    status: str = ""

    @property
    def text(self) -> bytes:
        """The tagged line after ``tag STATUS ``, e.g. ``b"[READ-WRITE] SELECT completed"``."""
        parts = self.tagged.split(b" ", 2)
        return parts[2] if len(parts) > 2 else b""

    def matching(self, pattern: bytes) -> list[bytes]:
        """The untagged lines in which the regex ``pattern`` is found."""
        regex = re.compile(pattern)
        return [line for line in self.untagged if regex.search(line)]


class ImapScript:
    """A blocking IMAP client that speaks exactly what the test says."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self.transcript: list[str] = []
        self._buffer = b""
        self._counter = 0
        self._pending: list[bytes] = []
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.greeting = self.read_line()

    # --- plumbing ------------------------------------------------------------

    def close(self) -> None:
        """Close the socket (no LOGOUT)."""
        self.sock.close()

    def __enter__(self) -> ImapScript:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def next_tag(self) -> str:
        """A fresh tag: a1, a2, …"""
        self._counter += 1
        return f"a{self._counter}"

    def send(self, line: bytes | str) -> None:
        """Send ``line`` followed by CRLF."""
        self.send_raw((line.encode() if isinstance(line, str) else line) + CRLF)

    def send_raw(self, data: bytes) -> None:
        """Send bytes exactly as given."""
        self.transcript.append(f"C: {data!r}")
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self.failure("timed out waiting for the server")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            raise self.failure("timed out waiting for the server") from None
        if not chunk:
            raise self.failure("the server closed the connection")
        self._buffer += chunk

    def _take_line(self, deadline: float) -> bytes:
        while CRLF not in self._buffer:
            self._fill(deadline)
        line, _, self._buffer = self._buffer.partition(CRLF)
        return line

    def _take_bytes(self, n: int, deadline: float) -> bytes:
        while len(self._buffer) < n:
            self._fill(deadline)
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def read_line(self, timeout: float | None = None) -> bytes:
        """One response line (literals inlined), without the final CRLF."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        line = self._take_line(deadline)
        while (m := _LITERAL_AT_END.search(line)) is not None:
            literal = self._take_bytes(int(m.group(1)), deadline)
            line += CRLF + literal + self._take_line(deadline)
        self.transcript.append(f"S: {line!r}")
        return line

    def failure(self, why: str) -> AssertionError:
        """An AssertionError carrying ``why`` and the conversation so far."""
        return AssertionError(why + "\n--- transcript ---\n" + "\n".join(self.transcript[-200:]))

    # --- commands --------------------------------------------------------------

    def expect_continuation(self, timeout: float | None = None) -> bytes:
        """Read up to a ``+`` continuation request; untagged lines go to the next Result."""
        while True:
            line = self.read_line(timeout)
            if line.startswith(b"+"):
                return line
            if not line.startswith(b"*"):
                raise self.failure(f"expected a continuation request, got {line!r}")
            self._pending.append(line)

    def read_until_tagged(self, tag: str, timeout: float | None = None) -> Result:
        """Collect untagged lines until the line tagged ``tag``."""
        result = Result(tag, untagged=self._pending)
        self._pending = []
        prefix = tag.encode() + b" "
        while True:
            line = self.read_line(timeout)
            if not line.startswith(prefix):
                result.untagged.append(line)
                continue
            result.tagged = line
            m = _STATUS.match(line)
            result.status = m.group(1).decode().upper() if m else ""
            return result

    def cmd(self, line: str | bytes, *parts: bytes | str) -> Result:
        """Send ``tag line``; each bytes part is a literal sent after the server's ``+``
        (the text before it must end with ``{n}``), each str part more command text."""
        tag = self.next_tag()
        head = line.encode() if isinstance(line, str) else line
        pending = tag.encode() + b" " + head
        for part in parts:
            if isinstance(part, str):
                pending += part.encode()
                continue
            nonsync = _NONSYNC_AT_END.search(pending) is not None
            self.send(pending)
            pending = b""
            if not nonsync:
                reply = self._continuation_or_tagged(tag)
                if reply is not None:
                    return reply
            self.send_raw(part)
        self.send(pending)
        return self.read_until_tagged(tag)

    def _continuation_or_tagged(self, tag: str) -> Result | None:
        """After a synchronizing literal's ``{n}``: None on ``+``, else the command's Result."""
        while True:
            line = self.read_line()
            if line.startswith(b"+"):
                return None
            if line.startswith(tag.encode() + b" "):
                m = _STATUS.match(line)
                status = m.group(1).decode().upper() if m else ""
                result = Result(tag, self._pending, line, status)
                self._pending = []
                return result
            self._pending.append(line)

    def _expect(self, status: str, line: str | bytes, parts: tuple[bytes | str, ...]) -> Result:
        result = self.cmd(line, *parts)
        if result.status != status:
            raise self.failure(f"expected {status} for {line!r}, got {result.tagged!r}")
        return result

    def ok(self, line: str | bytes, *parts: bytes | str) -> Result:
        """Run a command that must answer OK."""
        return self._expect("OK", line, parts)

    def no(self, line: str | bytes, *parts: bytes | str) -> Result:
        """Run a command that must answer NO."""
        return self._expect("NO", line, parts)

    def bad(self, line: str | bytes, *parts: bytes | str) -> Result:
        """Run a command that must answer BAD."""
        return self._expect("BAD", line, parts)

    def login(self, user: str = "alice", password: str = "secret") -> Result:
        """LOGIN with quoted strings."""
        return self.ok(f'LOGIN "{user}" "{password}"')

    def logout(self) -> Result:
        """LOGOUT (expects BYE then OK) and close."""
        result = self.ok("LOGOUT")
        self.close()
        return result


def unverified_tls(sock: socket.socket) -> tuple[ssl.SSLSocket, Any]:
    """Wrap a socket after a tagged STARTTLS OK (RFC 3501 §6.2.1), accepting the node's
    self-signed development certificate; returns the TLS socket and a binary reader."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    tls = ctx.wrap_socket(sock, server_hostname="localhost")
    return tls, tls.makefile("rb")
