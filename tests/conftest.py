"""Suite-wide setup.  The fixtures come from twistedmail.testing.plugin (pytest11 entry point)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

import twistedmail
from twistedmail.testing.process import ClusterMailProcess

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to test an installed copy of twistedmail instead of this working tree."""
    tested = Path(twistedmail.__file__).resolve().parent
    if tested != ROOT / "twistedmail":
        raise pytest.UsageError(
            f"twistedmail is imported from {tested}, not from {ROOT}: "
            "run `make test` (it installs the tree in editable mode)"
        )


# Hypothesis: no per-example deadline (a loaded CI machine is not a failing test), and in CI
# a fixed seed so a run is repeatable; locally each run explores new examples.
hypothesis_settings.register_profile(
    "twistedmail", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.register_profile(
    "twistedmail-ci", deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile(
    "twistedmail-ci" if os.environ.get("CI") else "twistedmail")


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory for UNIX sockets (sun_path is ~107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="twm-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def twistd_admin_node(clustermail_node: Callable[..., ClusterMailProcess],
               short_dir: Path) -> tuple[ClusterMailProcess, str]:
    """A twistd node with alice and bob, its admin channel on a UNIX socket:
    (process, --admin)."""
    endpoint = f"unix:{short_dir / 'n1.admin'}"
    proc = clustermail_node(users=["alice:secret", "bob:pw"], extra_args=["--admin", endpoint])
    return proc, endpoint
