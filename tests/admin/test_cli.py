"""The ``clustermail`` admin CLI and console against real twistd nodes (admin contract)."""

from __future__ import annotations

import imaplib
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from twisted.protocols import amp

from twistedmail.admin import actions, client
from twistedmail.testing.cluster import free_run
from twistedmail.testing.process import ClusterMailProcess, twistd_env

pytestmark = pytest.mark.e2e

ERROR = re.compile(r"clustermail: error: [^\n]+\n\Z")


@pytest.fixture
def node(twistd_admin_node: tuple[ClusterMailProcess, str]
         ) -> tuple[ClusterMailProcess, str]:
    """A twistd node with alice and bob and its --admin endpoint (tests/conftest.py)."""
    return twistd_admin_node


def clustermail(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
                timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run this tree's clustermail CLI to completion."""
    return subprocess.run([sys.executable, "-m", "twistedmail.admin.cli", *args],
                          env=twistd_env(env), input=stdin, capture_output=True, text=True,
                          timeout=timeout, stdin=None if stdin is not None else subprocess.DEVNULL)


def one_error(result: subprocess.CompletedProcess[str], status: int, text: str) -> None:
    """Exit ``status``, nothing on stdout, ONE stderr line containing ``text``."""
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    assert ERROR.match(result.stderr), result.stderr
    assert text in result.stderr, result.stderr


def inbox_uidvalidity(port: int, user: str, password: str) -> int:
    """UIDVALIDITY of the user's INBOX, over IMAP."""
    imap = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    try:
        imap.login(user, password)
        imap.select("INBOX", readonly=True)
        return int(imap.untagged_responses["UIDVALIDITY"][0])
    finally:
        imap.logout()


def test_convert_disable_enable_cycle(node: tuple[ClusterMailProcess, str]):
    """-e- disables IMAP (LOGIN answers NO [UNAVAILABLE]); a second -e- is 'already
    disabled' (exit 1, one line); the Domino form `load convert -e mail\\alice.nsf`
    re-enables it with a new INBOX UIDVALIDITY."""
    proc, admin = node
    assert proc.port is not None
    before = inbox_uidvalidity(proc.port, "alice", "secret")

    off = clustermail("--admin", admin, "convert", "-e-", "alice")
    assert off.returncode == 0, off.stderr
    assert off.stdout.startswith("node1: convert -e- alice: IMAP disabled"), off.stdout
    imap = imaplib.IMAP4("127.0.0.1", proc.port, timeout=10)
    with pytest.raises(imaplib.IMAP4.error, match="UNAVAILABLE"):
        imap.login("alice", "secret")
    imap.logout()

    one_error(clustermail("--admin", admin, "convert", "-e-", "mail/alice.nsf"), 1,
              "already disabled")

    on = clustermail("--admin", admin, "load", "convert", "-e", "mail\\alice.nsf")
    assert on.returncode == 0, on.stderr
    assert "IMAP enabled; 6 folder(s) regenerated" in on.stdout, on.stdout
    assert re.search(r"^\s+FOLDER\s+UIDVALIDITY\s+ROOT\s+COUNTER\s+MESSAGES$", on.stdout, re.M)
    assert inbox_uidvalidity(proc.port, "alice", "secret") != before


def test_set_root_then_convert_changes_root(node: tuple[ClusterMailProcess, str]):
    """set-root 7 + convert -e alice: alice's folders carry root 7, bob's keep root 1
    and are listed as pending until their own convert -e."""
    _, admin = node
    root = clustermail("--admin", admin, "set-root", "7")
    assert root.returncode == 0, root.stderr
    assert "root 1 -> 7" in root.stdout, root.stdout
    assert clustermail("--admin", admin, "convert", "-e", "alice.nsf").returncode == 0

    status = clustermail("--admin", admin, "status", "--json")
    assert status.returncode == 0, status.stderr
    state = json.loads(status.stdout)
    assert state["root"] == 7
    assert {f["root"] for f in state["accounts"]["alice"]["folders"]} == {7}
    assert {f["root"] for f in state["accounts"]["bob"]["folders"]} == {1}
    assert "bob" in state["pending"] and "alice" not in state["pending"]

    text = clustermail("--admin", admin, "status")
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("node node1: ready, root 7 (configured 1)"), text.stdout
    assert "mail file alice: IMAP enabled" in text.stdout


def test_users_commands(node: tuple[ClusterMailProcess, str]):
    """users add / passwd / list / del: each exit 0; the new account logs in over IMAP;
    after del its login is gone but its mail file stays."""
    proc, admin = node
    assert clustermail("--admin", admin, "users", "add", "carol", "pw1").returncode == 0
    assert clustermail("--admin", admin, "users", "passwd", "carol", "pw2").returncode == 0
    listing = clustermail("--admin", admin, "users", "list")
    assert listing.returncode == 0, listing.stderr
    assert re.search(r"^\s+carol\s+yes\s+yes\s+enabled$", listing.stdout, re.M), listing.stdout
    assert inbox_uidvalidity(proc.port or 0, "carol", "pw2") > 0
    assert clustermail("--admin", admin, "users", "del", "carol").returncode == 0
    listing = clustermail("--admin", admin, "users", "list", "--json")
    carol = [u for u in json.loads(listing.stdout)["users"] if u["name"] == "carol"]
    assert [(u["login"], u["account"]) for u in carol] == [(False, True)]
    one_error(clustermail("--admin", admin, "users", "del", "carol"), 1, "unknown user")


def test_refusals_are_one_line(node: tuple[ClusterMailProcess, str], short_dir: Path):
    """Unknown mail file, out-of-range root, no socket, nobody listening: exit 1, one
    line each, no traceback."""
    _, admin = node
    one_error(clustermail("--admin", admin, "convert", "-e-", "zed"), 1, "unknown mail file")
    one_error(clustermail("--admin", admin, "set-root", "300"), 1, "root must be")
    one_error(clustermail("--admin", f"unix:{short_dir / 'none.admin'}", "status"), 1,
              "node unreachable: no admin socket at")
    dead = short_dir / "dead.admin"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(dead))  # a socket file nobody listens on: a node that died
    one_error(clustermail("--admin", f"unix:{dead}", "status"), 1,
              "node unreachable: nothing listens at")
    one_error(clustermail("--node", "n9", "--dir", str(short_dir), "status"), 1,
              "node unreachable: no admin socket at " + str(short_dir / "clustermail-n9.admin"))


@pytest.mark.parametrize(("args", "text"), [
    (["convert", "alice"], "one of the arguments -e- -e is required"),
    (["convert", "-e", "-e-", "alice"], "not allowed with argument"),
    (["set-root", "seven"], "invalid int value: 'seven'"),
    (["load", "compact", "alice"], "unknown task 'compact'"),
    (["status"], "say which node"),
    ([], "the following arguments are required: COMMAND"),
    (["--admin", "unix:/x", "--all-nodes", "status"], "--admin names one node"),
])
def test_bad_arguments(tmp_path: Path, args: list[str], text: str):
    """Bad arguments: exit 2 with one line (checked before any connection)."""
    result = subprocess.run([sys.executable, "-m", "twistedmail.admin.cli", *args],
                            env=twistd_env(), cwd=tmp_path, capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    one_error(result, 2, text)


def test_client_speaking_another_version_is_refused(node: tuple[ClusterMailProcess, str]):
    """A client announcing protocol version 2 gets the node's one-line refusal."""
    _, admin = node
    code = ("import sys; import twistedmail.admin.client as c; c.PROTOCOL_VERSION = 2; "
            "from twistedmail.admin.cli import main; sys.exit(main(sys.argv[1:]))")
    result = subprocess.run([sys.executable, "-c", code, "--admin", admin, "status"],
                            env=twistd_env(), capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    one_error(result, 1, "version")


class FutureNode(threading.Thread):
    """A fake node on a UNIX socket that answers Version with protocol version 2."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(str(path))
        self.sock.listen(1)
        self.sock.settimeout(30)

    def run(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(30)
            box = read_box(conn)
            answer = amp.AmpBox(_answer=box[b"_ask"], version=b"2", node=b"n9", root=b"1")
            conn.sendall(answer.serialize())
            conn.recv(1)  # until the client closes


def read_box(conn: socket.socket) -> dict[bytes, bytes]:
    """One AMP box (16-bit length-prefixed key/value pairs, an empty key ends it)."""
    data = b""
    box: dict[bytes, bytes] = {}
    pos = 0

    def take() -> bytes:
        nonlocal data, pos
        for _ in range(1000):
            if len(data) >= pos + 2 and len(data) >= pos + 2 + int.from_bytes(
                    data[pos:pos + 2], "big"):
                break
            chunk = conn.recv(4096)
            if not chunk:
                raise AssertionError("client closed before a whole box")
            data += chunk
        size = int.from_bytes(data[pos:pos + 2], "big")
        out = data[pos + 2:pos + 2 + size]
        pos += 2 + size
        return out

    for _ in range(100):
        key = take()
        if not key:
            return box
        box[key] = take()
    raise AssertionError("box too long")


def test_node_speaking_another_version_is_refused(short_dir: Path):
    """A node answering Version with protocol version 2: exit 1, one line naming both."""
    path = short_dir / "future.admin"
    fake = FutureNode(path)
    fake.start()
    result = clustermail("--admin", f"unix:{path}", "status")
    one_error(result, 1, "node n9 speaks admin protocol version 2, this clustermail speaks 1")
    fake.join(30)
    fake.sock.close()


def test_console_through_stdin(node: tuple[ClusterMailProcess, str], short_dir: Path):
    """The console runs each line (Domino form included), prints `error: ...` for a
    failing one and goes on, answers help, keeps a history, exits 1 after a failure."""
    _, admin = node
    history = short_dir / "history"
    lines = ["help", "load convert -e- mail\\alice.nsf", "convert -e- alice",
             "frobnicate", "", "convert -e alice", "quit", "status"]
    result = clustermail("--admin", admin, "console", stdin="\n".join(lines) + "\n",
                         env={"CLUSTERMAIL_HISTORY": str(history)})
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "convert -e- MAILFILE" in result.stdout  # the help
    assert "node1: convert -e- mail\\alice.nsf: IMAP disabled" in result.stdout
    assert "node1: convert -e alice: IMAP enabled" in result.stdout
    assert "node node1:" not in result.stdout  # nothing after quit
    errors = result.stderr.splitlines()
    assert len(errors) == 2, errors
    assert "already disabled" in errors[0] and "invalid choice: 'frobnicate'" in errors[1]
    saved = history.read_text()
    assert "load convert -e- mail\\alice.nsf" in saved and "frobnicate" in saved


def test_console_clean_run_exits_zero(node: tuple[ClusterMailProcess, str], short_dir: Path):
    """A console session whose commands all succeed ends at end of input with status 0."""
    _, admin = node
    result = clustermail("--admin", admin, "console", stdin="users list\nhelp status\n",
                         env={"CLUSTERMAIL_HISTORY": str(short_dir / "h")})
    assert result.returncode == 0, result.stderr
    assert "node1: 2 account(s)" in result.stdout and "--json" in result.stdout


def test_endpoint_forms():
    """Client forms of --admin: server-style tcp/ssl strings map to 127.0.0.1, relative
    UNIX paths resolve against the base; console words keep backslashes."""
    assert client.describe("tcp:7443:interface=0.0.0.0") == "tcp:127.0.0.1:7443"
    assert client.describe("ssl:host=10.0.0.5:port=7443") == "ssl:10.0.0.5:7443"
    assert client.describe("tcp:example.org:7443") == "tcp:example.org:7443"
    assert client.describe("unix:n1.admin:mode=600", Path("/srv")) == "/srv/n1.admin"
    with pytest.raises(client.AdminClientError, match="no valid port"):
        client.describe("tcp:host=h")
    assert actions.split_line(r'load convert -e- mail\alice.nsf') == [
        "load", "convert", "-e-", r"mail\alice.nsf"]
    assert actions.split_line('users add "a b" x') == ["users", "add", "a b", "x"]


@pytest.fixture
def local_cluster(tmp_path: Path) -> Iterator[Path]:
    """`clustermail cluster up -n 3` with alice; its directory. Stopped at teardown."""
    rng = random.Random()
    imap = free_run(3, rng)
    cport = free_run(3, rng, frozenset(range(imap, imap + 3)))
    workdir = tmp_path / "c"
    up = clustermail("cluster", "up", "-n", "3", "--no-demo", "--base-port", str(imap),
                     "--cluster-base-port", str(cport), "--dir", str(workdir),
                     "--user", "alice:secret", timeout=120)
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        for i in (1, 2, 3):
            assert f"admin n{i}: unix:{workdir / f'n{i}.admin'}" in up.stdout, up.stdout
        yield workdir
    finally:
        clustermail("cluster", "down", "--dir", str(workdir), timeout=60)


def test_all_nodes_names_the_dead_node(local_cluster: Path):
    """--all-nodes on a `cluster up` cluster: every node confirms convert -e-/-e; with n3
    killed, the live nodes still run it, and the one-line error names n3 (exit 1)."""
    workdir = str(local_cluster)
    off = clustermail("--dir", workdir, "--all-nodes", "convert", "-e-", "alice")
    assert off.returncode == 0, off.stderr
    assert [line.split(":")[0] for line in off.stdout.splitlines()] == ["n1", "n2", "n3"]

    one = clustermail("--dir", workdir, "--node", "n2", "convert", "-e", "alice")
    assert one.returncode == 0 and one.stdout.startswith("n2: convert -e alice"), one.stderr

    pid = next(n["pid"] for n in json.loads((local_cluster / "nodes.json").read_text())
               if n["name"] == "n3")
    os.kill(pid, 9)
    on = clustermail("--dir", workdir, "--all-nodes", "convert", "-e", "alice")
    one_error(on, 1, "convert -e alice: not confirmed by 1 of 3 node(s): n3 (node unreachable")
    assert [line.split(":")[0] for line in on.stdout.splitlines()
            if not line.startswith(" ")] == ["n1", "n2"]


def test_tcp_endpoint_needs_admin_credentials(
        clustermail_node: Callable[..., ClusterMailProcess], tmp_path: Path):
    """On a TCP admin endpoint: no credentials or a wrong password -> exit 1 'permission
    denied' (one line); the admin's password from $CLUSTERMAIL_ADMIN_PASSWORD -> exit 0."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "node.toml"
    config.write_text(f'[node]\nname = "n1"\nadmins = ["root"]\n'
                      f'admin = "tcp:{port}:interface=127.0.0.1"\n'
                      '[users]\nalice = "secret"\nroot = "rootpw"\n')
    clustermail_node(extra_args=["--config", str(config)])
    admin = f"tcp:127.0.0.1:{port}"
    one_error(clustermail("--admin", admin, "status"), 1, "permission denied")
    one_error(clustermail("--admin", admin, "--admin-user", "root", "--admin-password", "bad",
                          "status"), 1, "permission denied")
    one_error(clustermail("--admin", admin, "--admin-user", "alice", "--admin-password",
                          "secret", "status"), 1, "permission denied")
    ok = clustermail("--admin", admin, "--admin-user", "root", "users", "list",
                     env={"CLUSTERMAIL_ADMIN_PASSWORD": "rootpw"})
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("n1: 2 account(s)"), ok.stdout


def test_tls_endpoint_verified_with_cacert(
        clustermail_node: Callable[..., ClusterMailProcess], tmp_path: Path):
    """An ssl: admin endpoint: without --cacert the node's self-signed certificate is not
    trusted (exit 1, one line); with it (and credentials) the command runs."""
    from twistedmail.tls import self_signed_pem

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pem = tmp_path / "node.pem"
    pem.write_bytes(self_signed_pem("localhost"))
    config = tmp_path / "node.toml"
    config.write_text(f'[node]\nname = "n1"\nadmins = ["root"]\n'
                      f'admin = "ssl:{port}:interface=127.0.0.1"\n'
                      '[users]\nroot = "rootpw"\n')
    clustermail_node(extra_args=["--config", str(config), "--tls-cert", str(pem)])
    creds = ["--admin-user", "root", "--admin-password", "rootpw"]
    one_error(clustermail("--admin", f"ssl:localhost:{port}", *creds, "status"), 1,
              "TLS with ssl:localhost")
    ok = clustermail("--admin", f"ssl:localhost:{port}", "--cacert", str(pem), *creds,
                     "status")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("node n1: ready"), ok.stdout
