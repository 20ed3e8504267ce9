"""`clustermail cluster up` / `down` (twistedmail/admin/cli.py): a local cluster in one command."""

from __future__ import annotations

import imaplib
import json
import random
import re
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from twistedmail.admin import cli
from twistedmail.cluster import spec
from twistedmail.testing.cluster import free_run
from twistedmail.testing.process import imap_greeting, twistd_env

pytestmark = pytest.mark.e2e


def clustermail(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run the clustermail CLI (this tree's) to completion."""
    return subprocess.run([sys.executable, "-m", "twistedmail.admin.cli", *args],
                          env=twistd_env(), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def ports() -> tuple[int, int]:
    """(IMAP base port, cluster base port), three free ports each."""
    rng = random.Random()
    imap = free_run(3, rng)
    return imap, free_run(3, rng, frozenset(range(imap, imap + 3)))


@pytest.fixture
def cluster_dir(tmp_path: Path) -> Iterator[Path]:
    """A cluster directory; whatever still runs from it is stopped at teardown."""
    workdir = tmp_path / "local"
    yield workdir
    if (workdir / cli.STATE).exists():
        clustermail("cluster", "down", "--dir", str(workdir), timeout=60)


def test_up_table_greetings_and_down(ports: tuple[int, int], cluster_dir: Path):
    """`cluster up -n 3` prints node/root/IMAP/pid/log rows, every node greets * OK and
    serves alice; `cluster down` stops every process."""
    imap, cport = ports
    up = clustermail("cluster", "up", "-n", "3", "--base-port", str(imap),
                     "--cluster-base-port", str(cport), "--dir", str(cluster_dir),
                     "--user", "alice:secret")
    assert up.returncode == 0, up.stderr + up.stdout
    lines = up.stdout.splitlines()
    assert re.match(r"NODE\s+ROOT\s+IMAP\s+PID\s+LOG$", lines[0]), lines[0]
    rows = [line.split() for line in lines[1:4]]
    assert [r[:3] for r in rows] == [[f"n{i}", str(i), f"127.0.0.1:{imap + i - 1}"]
                                     for i in (1, 2, 3)]
    pids = [int(r[3]) for r in rows]
    assert [r[4] for r in rows] == [str(cluster_dir.resolve() / f"n{i}.log") for i in (1, 2, 3)]
    assert f"stop: clustermail cluster down --dir {cluster_dir.resolve()}" in up.stdout
    assert "demo/demo" in up.stdout and "alice/secret" in up.stdout

    for i in range(3):
        assert imap_greeting("127.0.0.1", imap + i).startswith(b"* OK"), i
        client = imaplib.IMAP4("127.0.0.1", imap + i)
        assert client.login("alice", "secret")[0] == "OK"
        client.logout()
    assert all(cli._alive(pid) for pid in pids)

    again = clustermail("cluster", "up", "--dir", str(cluster_dir), "--base-port", str(imap),
                        "--cluster-base-port", str(cport))  # the default may not fit a high base
    assert again.returncode == 1
    assert again.stderr.startswith("clustermail: error: nodes n1, n2, n3 of ")
    assert len(again.stderr.splitlines()) == 1

    down = clustermail("cluster", "down", "--dir", str(cluster_dir))
    assert down.returncode == 0, down.stderr
    assert [line.split()[:2] for line in down.stdout.splitlines()] == [
        ["n1:", "stopped"], ["n2:", "stopped"], ["n3:", "stopped"]]
    assert not any(cli._alive(pid) for pid in pids)
    assert json.loads((cluster_dir / cli.STATE).read_text()) == []


def test_port_in_use_refused_before_starting(ports: tuple[int, int], cluster_dir: Path):
    """A taken IMAP port: one error line naming it, exit 1, no node started."""
    imap, cport = ports
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", imap + 1))
        taken.listen()
        up = clustermail("cluster", "up", "-n", "3", "--base-port", str(imap),
                         "--cluster-base-port", str(cport), "--dir", str(cluster_dir))
    assert up.returncode == 1
    assert up.stderr == (f"clustermail: error: port {imap + 1} on 127.0.0.1 is in use (choose "
                         "other ports with --base-port / --cluster-base-port)\n")
    assert not (cluster_dir / cli.STATE).exists()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["cluster", "up", "-n", "0"], "-n: must be 1-255 nodes, got 0"),
        (["cluster", "up", "--user", "alice"], "--user: expected NAME:PASSWORD, got 'alice'"),
        (["cluster", "up", "--base-port", "7001", "--cluster-base-port", "7002"],
         "--cluster-base-port: the cluster ports overlap the IMAP ports"),
        (["cluster", "up", "--base-port", "65535"], "--base-port: 65535 leaves no room"),
    ],
)
def test_bad_arguments(tmp_path: Path, args: list[str], error: str):
    """Bad arguments: exit 1 with one line, nothing written."""
    result = clustermail(*args, "--dir", str(tmp_path / "d"))
    assert result.returncode == 1
    assert result.stderr.startswith(f"clustermail: error: {error}"), result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "d").exists()


def test_down_without_cluster(tmp_path: Path):
    """`cluster down` where nothing was started: one error line, exit 1."""
    result = clustermail("cluster", "down", "--dir", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr == f"clustermail: error: no cluster was started in {tmp_path} " \
                            f"(no {cli.STATE})\n"


def test_written_config_is_a_valid_cluster(tmp_path: Path):
    """The config `up` writes loads for every node: roots 1..n, ports, secret, demo on n1."""
    nodes = [cli.LocalNode(f"n{i}", i, 1142 + i, 7000 + i, "l", "p") for i in (1, 2, 3, 4)]
    text = cli.cluster_config(nodes, {"bob@example.org": 'pa"ss'}, "0123abcd", demo=True)
    cfg = tomllib.loads(text)
    assert cfg["users"] == {"bob@example.org": 'pa"ss'}
    for node in nodes:
        s = spec.load(cfg, node.name)
        assert s is not None and s.secret == b"0123abcd"
        assert (s.me.root, s.me.imap, s.me.port) == (
            node.root, (f"tcp:{node.imap_port}:interface=127.0.0.1",), node.cluster_port)
    assert [t.get("demo", False) for t in cfg["node"]] == [True, False, False, False]


def test_help_lists_subcommands():
    """`clustermail --help` and `clustermail cluster up --help` document the options."""
    top = clustermail("--help")
    assert top.returncode == 0 and "cluster" in top.stdout
    up = clustermail("cluster", "up", "--help")
    for option in ("-n", "--base-port", "--cluster-base-port", "--dir", "--user", "--timeout"):
        assert option in up.stdout


@pytest.mark.slow
def test_append_without_live_replicas_is_refused(ports: tuple[int, int], cluster_dir: Path):
    """On a real `cluster up` cluster: APPEND is OK while peers live; after kill -9 of both
    peers it answers NO [UNAVAILABLE] and leaves nothing behind (contract §4)."""
    import os
    import signal

    imap, cport = ports
    up = clustermail("cluster", "up", "-n", "3", "--base-port", str(imap), "--no-demo",
                     "--cluster-base-port", str(cport), "--dir", str(cluster_dir),
                     "--user", "alice:secret")
    assert up.returncode == 0, up.stderr + up.stdout
    client = imaplib.IMAP4("127.0.0.1", imap)
    client.login("alice", "secret")
    message = b"Subject: durable\r\n\r\nbody\r\n"
    assert client.append("INBOX", None, None, message)[0] == "OK"
    nodes = json.loads((cluster_dir / cli.STATE).read_text())
    for node in nodes[1:]:
        os.kill(node["pid"], signal.SIGKILL)
    typ, data = client.append("INBOX", None, None, message)
    assert typ == "NO" and data[0].startswith(b"[UNAVAILABLE] "), (typ, data)
    assert client.select("INBOX", readonly=True) == ("OK", [b"1"])
    client.logout()
