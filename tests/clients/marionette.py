"""A minimal Marionette (Gecko remote protocol) client, stdlib only, for driving Thunderbird.

Wire format: ``<len>:<json>``; a command is ``[0, id, name, params]`` and its reply
``[1, id, error, result]``.  Only what the Thunderbird tests use: a chrome-context session,
privileged JavaScript, and a clean quit.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from typing import Any


class Marionette:
    """One Marionette connection; ``connect_timeout`` bounds the wait for the listener."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 60.0,
                 connect_timeout: float = 60.0) -> None:
        deadline = time.monotonic() + connect_timeout
        while True:
            try:
                self.sock = socket.create_connection((host, port), timeout=timeout)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.25)
        self.buf = b""
        self.id = 0
        self.hello = self._recv()

    def _read_more(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("marionette connection closed")
        self.buf += data

    def _recv(self) -> Any:
        while b":" not in self.buf:
            self._read_more()
        size, _, self.buf = self.buf.partition(b":")
        length = int(size)
        while len(self.buf) < length:
            self._read_more()
        packet, self.buf = self.buf[:length], self.buf[length:]
        return json.loads(packet)

    def cmd(self, name: str, params: dict[str, Any] | None = None) -> Any:
        """Send one command and return its result; raise RuntimeError on a Marionette error."""
        self.id += 1
        data = json.dumps([0, self.id, name, params or {}]).encode()
        self.sock.sendall(str(len(data)).encode() + b":" + data)
        while True:
            reply = self._recv()
            if reply[0] == 1 and reply[1] == self.id:
                if reply[2]:
                    raise RuntimeError(f"{name}: {reply[2]}")
                return reply[3]

    def start_chrome(self) -> None:
        """A new session in the chrome (privileged) context."""
        self.cmd("WebDriver:NewSession", {"capabilities": {"alwaysMatch": {}}})
        self.cmd("Marionette:SetContext", {"value": "chrome"})

    def js(self, script: str, *args: Any, timeout_ms: int = 30000) -> Any:
        """Run privileged JS; the script may ``return`` a value or a Promise."""
        self.cmd("WebDriver:SetTimeouts", {"script": timeout_ms})
        return self.cmd("WebDriver:ExecuteScript", {"script": script, "args": list(args)})["value"]

    def quit(self, timeout: float = 20.0) -> None:
        """Ask the application to quit (nsIAppStartup.eAttemptQuit, what
        Services.startup.quit does); a closed socket, a timeout or a refusal is not an error
        here: the caller kills the process if it does not exit."""
        self.sock.settimeout(timeout)
        with contextlib.suppress(EOFError, OSError, RuntimeError):
            self.cmd("Marionette:Quit", {"flags": ["eAttemptQuit"]})

    def close(self) -> None:
        self.sock.close()
