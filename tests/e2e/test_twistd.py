"""End to end: real ``twistd clustermail`` processes, as users and harnesses start them."""

from __future__ import annotations

import imaplib
import json
import signal
import socket
from pathlib import Path
from typing import Any

import pytest

from twistedmail.testing import ClusterMailError, ClusterMailProcess, run_twistd
from twistedmail.testing.process import imap_greeting

pytestmark = pytest.mark.e2e

OPTIONS = [
    "--config",
    "--node",
    "--imap",
    "--uidvalidity-root",
    "--user",
    "--demo",
    "--max-line",
    "--max-literal",
    "--log-format",
    "--tls-cert",
    "--tls-key",
    "--state-file",
]


def assert_one_clean_line(result, starts: str) -> None:
    """Exit status != 0, exactly one line on stderr starting with ``starts``, no traceback."""
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(starts), lines[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_help_lists_every_option():
    """`twistd clustermail --help` exits 0 and documents every option with an example."""
    result = run_twistd(["--help"])
    assert result.returncode == 0, result.stderr
    for option in OPTIONS:
        assert option in result.stdout, option
    assert "tcp:1143:interface=127.0.0.1" in result.stdout
    assert "ssl:1993:privateKey=key.pem" in result.stdout


@pytest.mark.parametrize(
    ("args", "starts"),
    [
        (["--uidvalidity-root", "300"], "clustermail: error: --uidvalidity-root: must be"),
        (["--bogus"], "clustermail: error: option --bogus not recognized"),
        (["--imap", "nonsense:1"], "clustermail: error: --imap: bad endpoint 'nonsense:1'"),
        (["--user", "alice"], "clustermail: error: --user: expected NAME:PASSWORD"),
        (["--config", "/nonexistent.toml"], "clustermail: error: config: cannot read"),
    ],
)
def test_bad_option_exits_with_one_line(args, starts):
    """A bad option stops twistd before it serves: status != 0, one line naming the key."""
    assert_one_clean_line(run_twistd(args), starts)


def test_bad_config_value_exits_with_one_line(tmp_path):
    """A bad value in the TOML file is named by its key (table.key)."""
    config = tmp_path / "bad.toml"
    config.write_text("[node]\nuidvalidity_root = 256\n")
    result = run_twistd(["--config", str(config)])
    assert_one_clean_line(result, "clustermail: error: node.uidvalidity_root: must be an integer")


def test_invalid_toml_exits_with_one_line(tmp_path):
    """A config file that is not TOML is refused in one line."""
    config = tmp_path / "bad.toml"
    config.write_text("[node\n")
    assert_one_clean_line(run_twistd(["--config", str(config)]), "clustermail: error: config: ")


def test_node_answers_greeting(clustermail_node):
    """A node started by the harness listens on 127.0.0.1 and greets with `* OK`."""
    node = clustermail_node()
    assert node.host == "127.0.0.1" and node.port
    assert imap_greeting(node.host, node.port).startswith(b"* OK")
    assert f"IMAP listening on 127.0.0.1:{node.port}" in node.log_text()


def test_login_with_user_option(clustermail_node):
    """`--user alice:secret` creates an account imaplib can log in to; a wrong password is NO."""
    node = clustermail_node(users=["alice:secret"])
    client = imaplib.IMAP4(node.host, node.port)
    with pytest.raises(imaplib.IMAP4.error):
        client.login("alice", "wrong")
    assert client.login("alice", "secret")[0] == "OK"
    assert client.select("INBOX") == ("OK", [b"0"])
    client.logout()


def test_demo_account(clustermail_node):
    """--demo serves demo/demo with sample messages in INBOX and several folders."""
    node = clustermail_node(extra_args=["--demo"])
    client: Any = imaplib.IMAP4(node.host, node.port)
    client.login("demo", "demo")
    typ, folders = client.list()
    names = b"\n".join(folders)
    for name in (b'"Work"', b'"Archive/2026"', b'"Caf&AOk-"'):
        assert name in names
    typ, count = client.select("INBOX")
    assert typ == "OK" and int(count[0]) >= 4
    typ, data = client.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"Subject:" in data[0][1]
    client.logout()


def test_kill_9_and_restart(clustermail_node):
    """kill -9 through the harness ends the node at once; restart serves on the same port."""
    node = clustermail_node(users=["alice:secret"])
    port = node.port
    assert node.kill() == -9
    assert not node.running
    with pytest.raises(OSError):
        socket.create_connection((node.host, port), timeout=2).close()
    node.start()
    assert node.port == port
    client = imaplib.IMAP4(node.host, node.port)
    assert client.login("alice", "secret")[0] == "OK"
    client.logout()


def test_stop_is_a_clean_shutdown(clustermail_node):
    """stop() sends SIGTERM: twistd shuts down cleanly (then re-raises the signal: -15)."""
    node = clustermail_node()
    assert node.stop() == -signal.SIGTERM
    log = node.log_text()
    assert "Received SIGTERM, shutting down." in log and "Server Shut Down." in log
    assert "Traceback" not in log


def _free_ports(n: int) -> list[int]:
    """n TCP ports free on 127.0.0.1 right now (the kernel picks them)."""
    socks = [socket.socket() for _ in range(n)]
    for sock in socks:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in socks]
    for sock in socks:
        sock.close()
    return ports


def test_config_file_node(tmp_path):
    """A node started from a TOML file uses its name, root and users; --imap overrides."""
    config = tmp_path / "node.toml"
    east, west = _free_ports(2)
    config.write_text(
        '[cluster]\nsecret = "s3cret"\n'
        f'[[node]]\nname = "east"\nuidvalidity_root = 5\ncluster = "tcp:{east}"\n'
        f'[[node]]\nname = "west"\nuidvalidity_root = 6\ncluster = "tcp:{west}"\n'
        '[users]\ncarol = "pw"\n'
    )
    # A two-node cluster serves once both members are up (majority): start them together.
    from concurrent.futures import ThreadPoolExecutor

    nodes = [
        ClusterMailProcess(tmp_path / name, extra_args=["--config", str(config), "--node", name])
        for name in ("east", "west")
    ]
    try:
        with ThreadPoolExecutor(2) as pool:
            for started in [pool.submit(n.start) for n in nodes]:
                started.result()
        node = nodes[1]
        assert "clustermail node west (uidvalidity root 6)" in node.log_text()
        client = imaplib.IMAP4(node.host, node.port)
        assert client.login("carol", "pw")[0] == "OK"
        client.logout()
    finally:
        for n in nodes:
            n.stop()


def test_json_log_format(clustermail_node):
    """--log-format json writes one JSON object per line, with the listening address."""
    node = clustermail_node(extra_args=["--log-format", "json"])
    records = [json.loads(line) for line in node.log_text().splitlines() if line.startswith("{")]
    texts = [r["text"] for r in records]
    assert f"IMAP listening on 127.0.0.1:{node.port} (tcp:0:interface=127.0.0.1)" in texts
    assert all({"time", "level", "namespace", "text"} <= r.keys() for r in records)


def test_port_in_use_is_one_clear_error(clustermail_node, tmp_path):
    """A second node on a taken port exits != 0 saying it cannot listen, no traceback."""
    first = clustermail_node()
    second = ClusterMailProcess(
        tmp_path / "second", extra_args=[f"--imap=tcp:{first.port}:interface=127.0.0.1"]
    )
    with pytest.raises(ClusterMailError, match="exited with status 1"):
        second.start()
    log = second.log_text()
    assert f"cannot listen on tcp:{first.port}:interface=127.0.0.1" in log
    assert "Traceback" not in log


def test_startup_timeout_reports_log_tail(tmp_path):
    """A node that never greets in time is killed and the error carries its log tail."""
    node = ClusterMailProcess(tmp_path / "slow", startup_timeout=0.01)
    with pytest.raises(ClusterMailError, match=r"(?s)no IMAP greeting within 0.01 s.*twistd.log"):
        node.start()
    assert not node.running


def test_spawned_node_runs_this_tree():
    """The harness puts this working tree first on the spawned twistd's PYTHONPATH."""
    from twistedmail.testing.process import SOURCE_ROOT, twistd_env

    root = Path(__file__).resolve().parents[2]
    assert root == SOURCE_ROOT
    assert twistd_env()["PYTHONPATH"].split(":")[0] == str(root)


def _uidvalidity(node, mailbox="INBOX"):
    client = imaplib.IMAP4(node.host, node.port)
    client.login("alice", "secret")
    typ, data = client.status(mailbox, "(UIDVALIDITY)")
    client.logout()
    return int(data[0].rsplit(b" ", 1)[1].rstrip(b")"))


def test_restart_gives_larger_uidvalidity(clustermail_node, tmp_path):
    """With --state-file, a node killed -9 and restarted (twice, within seconds) shows
    larger UIDVALIDITYs each time (new UID maps, RFC 3501 §2.3.1.1); root kept."""
    state = tmp_path / "node.state"
    node = clustermail_node(users=["alice:secret"],
                            extra_args=["--uidvalidity-root", "7", "--state-file", str(state)])
    seen = [_uidvalidity(node)]
    for _ in range(2):
        node.kill()
        node.start()
        seen.append(_uidvalidity(node))
    assert [v >> 24 for v in seen] == [7, 7, 7]
    assert seen[0] < seen[1] < seen[2]


def test_unreadable_state_file_is_one_clear_error(tmp_path):
    """A corrupt state file stops startup with one line naming it, exit status != 0."""
    state = tmp_path / "bad.state"
    state.write_text("not json")
    result = run_twistd(["--state-file", str(state), "--imap", "tcp:0:interface=127.0.0.1"])
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and "state_file" in lines[-1], result.stderr
    assert "Traceback" not in result.stdout + result.stderr
