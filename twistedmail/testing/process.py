"""Real ``twistd -n clustermail`` processes for end-to-end tests.

Ports: a node started without ``--imap`` listens on ``tcp:0:interface=127.0.0.1``
and the harness reads the port it logs ("IMAP listening on 127.0.0.1:PORT"), so
no port is ever guessed and two tests never race for one.  ``restart()`` reuses
the port the node had, so clients reconnect to the same address.

The processes run the code under test: ``PYTHONPATH`` starts with the directory
holding the imported ``twistedmail`` package, and a private plugin directory
holds a copy of ``tap/clustermail.py``, so ``twistd`` finds the plugin even in a
checkout whose dropin is not installed.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import twistedmail

# twistd's own entry point, run by this interpreter (``python -m twisted`` is ``twist``).
TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"
LISTENING = re.compile(r"IMAP listening on (\[[^\]]+\]|[^\s:]+):(\d+)")
SOURCE_ROOT = Path(twistedmail.__file__).resolve().parent.parent


class ClusterMailError(RuntimeError):
    """A node did not start or stop as expected; the message has its log tail."""


@functools.cache
def _plugin_dir() -> Path:
    """A directory holding twisted/plugins/clustermail.py copied from tap/ (this process)."""
    target = Path(tempfile.mkdtemp(prefix="twistedmail-plugins-"))
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    dropin = SOURCE_ROOT / "tap" / "clustermail.py"
    if dropin.exists():
        plugins = target / "twisted" / "plugins"
        plugins.mkdir(parents=True)
        shutil.copyfile(dropin, plugins / "clustermail.py")
    return target


def twistd_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a spawned twistd: the source tree first on PYTHONPATH."""
    env = dict(os.environ)
    paths = [str(SOURCE_ROOT), str(_plugin_dir())]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def twistd_command(args: Sequence[str], twistd_args: Sequence[str] = ()) -> list[str]:
    """argv for ``twistd --nodaemon --pidfile= [twistd_args] clustermail ARGS``."""
    return [
        sys.executable,
        "-c",
        TWISTD,
        "--nodaemon",
        "--pidfile=",
        "--logfile=-",
        *twistd_args,
        "clustermail",
        *args,
    ]


def run_twistd(args: Sequence[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``twistd clustermail ARGS`` to completion (for --help, bad options)."""
    return subprocess.run(
        twistd_command(args),
        env=twistd_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def imap_greeting(host: str, port: int, timeout: float = 2.0) -> bytes:
    """Connect, read the first line the server sends, close."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n", 1)[0]


class ClusterMailProcess:
    """One ``twistd -n clustermail`` node process on 127.0.0.1."""

    def __init__(
        self,
        workdir: Path | str,
        users: Iterable[str] = (),
        extra_args: Sequence[str] = (),
        startup_timeout: float = 15.0,
        host: str = "127.0.0.1",
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.users = list(users)
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.host = host
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.logfile = self.workdir / "twistd.log"
        self.starts = 0
        self._log_offset = 0

    # --- life cycle ----------------------------------------------------------------

    def args(self) -> list[str]:
        """The clustermail options this node is started with."""
        args = [f"--user={u}" for u in self.users] + self.extra_args
        if not any(a == "--imap" or a.startswith("--imap=") for a in self.extra_args):
            args.append(f"--imap=tcp:{self.port or 0}:interface={self.host}")
        return args

    def start(self) -> ClusterMailProcess:
        """Spawn the process and wait until it answers with an IMAP greeting."""
        if self.running:
            raise ClusterMailError("already running")
        self.starts += 1
        with open(self.logfile, "ab") as log:
            log.write(f"=== start #{self.starts}: {' '.join(self.args())}\n".encode())
            log.flush()
            self._log_offset = log.tell()
            self.proc = subprocess.Popen(
                twistd_command(self.args()),
                cwd=self.workdir,
                env=twistd_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise self._error(f"twistd clustermail exited with status {code} while starting")
            port = self._logged_port()
            if port is not None and self._greets(port):
                self.port = port
                return
            time.sleep(0.05)
        self.kill()
        raise self._error(f"no IMAP greeting within {self.startup_timeout} s")

    def _logged_port(self) -> int | None:
        with open(self.logfile, "rb") as log:
            log.seek(self._log_offset)
            m = LISTENING.search(log.read().decode("utf-8", "replace"))
        return int(m.group(2)) if m else None

    def _greets(self, port: int) -> bool:
        try:
            return imap_greeting(self.host, port).startswith(b"* OK")
        except OSError:
            return False

    def _error(self, why: str) -> ClusterMailError:
        tail = "\n".join(self.log_text().splitlines()[-40:])
        return ClusterMailError(f"{why}\n--- {self.logfile} (tail) ---\n{tail}")

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The process id, if started."""
        return None if self.proc is None else self.proc.pid

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL; return the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> int | None:
        """SIGKILL (kill -9): no shutdown code runs; return the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        return self.proc.returncode

    def restart(self) -> ClusterMailProcess:
        """Stop (if running) and start again on the same port."""
        self.stop()
        return self.start()

    # --- observation -----------------------------------------------------------------

    def log_text(self) -> str:
        """Everything the process(es) logged so far, all starts included."""
        try:
            return self.logfile.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<ClusterMailProcess {self.host}:{self.port} pid={self.pid} {state}>"
