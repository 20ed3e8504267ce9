"""The node's optional state file: UIDVALIDITY counters reserved ahead of use.

Invariants:
  * Every counter the node issues is ≤ the reservation recorded in the file
    before the counter is used (the file is rewritten, atomically, first).
  * A node that starts with the file uses counters above the recorded
    reservation, so a restart — even several within one minute — never shows
    a UIDVALIDITY it showed before (RFC 3501 §2.3.1.1; DESIGN.md §3).
"""

from __future__ import annotations

import json
import os

BLOCK = 1024  # counters reserved per write: one small write per 1024 new UIDVALIDITYs


class StateFileError(Exception):
    """The state file cannot be read or written."""


class StateFile:
    """Reads the reservation at start; extends it in blocks as counters are issued."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.reserved = self._read()
        self.boot_floor = self.reserved + 1

    def _read(self) -> int:
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as err:
            raise StateFileError(f"state_file: cannot read {self.path}: {err}") from None
        value = data.get("uidvalidity_reserved") if isinstance(data, dict) else None
        if not isinstance(value, int) or value < 0:
            raise StateFileError(f"state_file: {self.path} has no valid uidvalidity_reserved")
        return value

    def reserve(self, counter: int) -> None:
        """Make sure ``counter`` is covered by the recorded reservation."""
        if counter <= self.reserved:
            return
        self._write(counter + BLOCK)

    def _write(self, reserved: int) -> None:
        tmp = self.path + ".tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump({"uidvalidity_reserved": reserved}, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as err:
            raise StateFileError(f"state_file: cannot write {self.path}: {err}") from None
        self.reserved = reserved
