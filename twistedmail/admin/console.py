"""``clustermail console``: an interactive admin console, as a Domino server console.

    clustermail --node n1 console
    n1> load convert -e- mail\\alice.nsf
    n1> convert -e alice
    n1> help convert
    n1> quit

Each line is one admin command of twistedmail/admin/actions.py (without the
target options: the console's target is chosen on its command line), run when
entered.  Lines are kept in a readline history (~/.clustermail_history, or
$CLUSTERMAIL_HISTORY).

Invariants:
  * A failing line prints ``error: <reason>`` on stderr and the console goes on;
    only ``quit``/``exit``/end of input ends it.
  * Exit status: 0 if every command succeeded, 1 if any failed (useful when the
    console is driven through stdin).
  * Input is bounded: lines longer than MAX_LINE are refused, not run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from twistedmail.admin import actions
from twistedmail.admin.client import AdminClientError

HISTORY_ENV = "CLUSTERMAIL_HISTORY"
HISTORY_LENGTH = 1000
MAX_LINE = 4096
QUIT = ("quit", "exit", "q")
BANNER = "twistedmail admin console: 'help' lists the commands, 'quit' leaves."


def history_path() -> Path:
    """Where the console's history is kept."""
    return Path(os.environ.get(HISTORY_ENV) or Path.home() / ".clustermail_history")


class Console:
    """Reads lines, runs each as an admin command against the chosen target."""

    def __init__(self, args: argparse.Namespace, stdin: TextIO = sys.stdin,
                 stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr) -> None:
        self.args = args
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.interactive = stdin.isatty()
        self.parser = actions.command_parser("")
        self.client = actions.make_client(args)
        self.failures = 0
        self.readline: Any = None
        with contextlib.suppress(ImportError):
            import readline

            self.readline = readline

    def run(self) -> int:
        """The read-run loop until quit or end of input; the exit status."""
        self._load_history()
        if self.interactive:
            print(BANNER, file=self.stdout)
        try:
            while True:
                line = self._read()
                if line is None or line.strip().lower() in QUIT:
                    break
                self.one(line)
        finally:
            self._save_history()
        return 1 if self.failures else 0

    def _read(self) -> str | None:
        prompt = f"{self.args.node or 'clustermail'}> "
        try:
            if self.interactive and self.stdin is sys.stdin:
                return input(prompt)
            line = self.stdin.readline()
        except EOFError:
            return None
        except KeyboardInterrupt:
            print(file=self.stdout)
            return ""
        if not line:
            return None
        line = line.rstrip("\r\n")
        if self.readline is not None and line.strip():
            self.readline.add_history(line)  # input() adds interactive lines itself
        return line

    def one(self, line: str) -> bool:
        """Run one console line; whether it succeeded (errors are printed)."""
        if len(line) > MAX_LINE:
            return self._fail(f"line longer than {MAX_LINE} characters")
        try:
            words = actions.split_line(line)
            if not words:
                return True
            if words[0].lower() in ("help", "?"):
                print(self.help(words[1:]), file=self.stdout)
                return True
            parsed = self.parser.parse_args(words)
            merged = argparse.Namespace(**{**vars(self.args), **vars(parsed)})
            if merged.run is not actions.run_admin:  # load, import, export
                merged.run(merged, self.stdout)
            else:
                actions.run_admin(merged, self.stdout, self.client)
        except (actions.UsageError, AdminClientError) as err:
            return self._fail(str(err))
        self.stdout.flush()
        return True

    def _fail(self, reason: str) -> bool:
        self.failures += 1
        print(f"error: {reason}", file=self.stderr)
        self.stderr.flush()
        return False

    def help(self, topic: list[str]) -> str:
        """``help``: the command list; ``help COMMAND``: that command's usage."""
        if topic:
            try:
                self.parser.parse_args([*topic, "--help"])
            except SystemExit:
                return ""
            except actions.UsageError as err:
                return f"no help for {' '.join(topic)!r}: {err}"
        return "\n".join([
            "commands (each runs on the console's node):",
            r"  convert -e- MAILFILE         disable IMAP for a mail file (alice, mail\alice.nsf)",
            "  convert -e MAILFILE          new UIDVALIDITY from the current root, IMAP enabled",
            r"  load convert -e- MAILFILE    the Domino form of convert",
            "  status [--json]              members, state, roots, folders' UIDVALIDITY",
            "  set-root N                   the root byte used by the next convert -e",
            "  users add NAME PASSWORD | users del NAME | users passwd NAME PASSWORD",
            "  users list [--json]",
            "  help [COMMAND]               this list, or a command's options",
            "  quit                         leave (also exit, end of input)",
        ])

    def _load_history(self) -> None:
        if self.readline is None:
            return
        self.readline.set_history_length(HISTORY_LENGTH)
        with contextlib.suppress(OSError):
            self.readline.read_history_file(str(history_path()))

    def _save_history(self) -> None:
        if self.readline is None:
            return
        path = history_path()
        with contextlib.suppress(OSError):
            path.touch(mode=0o600, exist_ok=True)
            self.readline.write_history_file(str(path))


def run_console(args: argparse.Namespace) -> int:
    """``clustermail console`` (the subcommand's entry)."""
    actions.targets(args)  # refuse a missing or unknown target before reading anything
    return Console(args).run()
