"""Suite-wide setup.  The fixtures come from twistedmail.testing.plugin (pytest11 entry point)."""

from __future__ import annotations

from pathlib import Path

import pytest

import twistedmail

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to test an installed copy of twistedmail instead of this working tree."""
    tested = Path(twistedmail.__file__).resolve().parent
    if tested != ROOT / "twistedmail":
        raise pytest.UsageError(
            f"twistedmail is imported from {tested}, not from {ROOT}: "
            "run `make test` (it installs the tree in editable mode)"
        )
