"""A real ``twistd clustermail --lmtp --smtp`` node fed by swaks and smtplib, read over IMAP."""

from __future__ import annotations

import shutil
import smtplib
import subprocess

import pytest

from tests.delivery.helpers import HOST, fetch_all, message, wait_logged_port, with_marker

pytestmark = pytest.mark.e2e
LISTEN = f"tcp:0:interface={HOST}"


def swaks(*args: str) -> subprocess.CompletedProcess[str]:
    """Run swaks (bounded); a clear failure when it is not installed (.ci/run installs it)."""
    program = shutil.which("swaks")
    if program is None:
        pytest.fail("swaks is not installed: `apt-get install swaks`", pytrace=False)
    return subprocess.run([program, "--timeout", "15", "--from", "sender@example.org", *args],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.fixture
def node(clustermail_node):
    """A twistd node with alice and bob, LMTP and SMTP on loopback, SMTP AUTH required."""
    return clustermail_node(users=["alice:secret", "bob:secret"],
                            extra_args=["--lmtp", LISTEN, "--smtp", LISTEN, "--smtp-auth"])


def test_swaks_lmtp_and_authenticated_smtp(node):
    """swaks over LMTP and over SMTP with AUTH LOGIN: 250, exit 0, both messages in IMAP."""
    lmtp, smtp_port = wait_logged_port(node, "LMTP"), wait_logged_port(node, "SMTP")
    out = swaks("--server", HOST, "--port", str(lmtp), "--protocol", "LMTP",
                "--to", "alice@example.org", "--header", "Subject: swaks-lmtp-1",
                "--body", "via lmtp")
    assert out.returncode == 0, out.stdout + out.stderr
    out = swaks("--server", HOST, "--port", str(smtp_port), "--to", "alice+Archive@example.org",
                "--auth", "LOGIN", "--auth-user", "bob", "--auth-password", "secret",
                "--header", "Subject: swaks-smtp-1", "--body", "via smtp")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "250 2.0.0" in out.stdout
    assert len(with_marker(fetch_all(HOST, node.port, "alice"), b"swaks-lmtp-1")) == 1
    archive = fetch_all(HOST, node.port, "alice", folder="Archive")
    assert len(with_marker(archive, b"swaks-smtp-1")) == 1


def test_swaks_sees_550_and_530(node):
    """swaks fails (exit != 0) on an unknown recipient (550 5.1.1) and without AUTH (530)."""
    lmtp, smtp_port = wait_logged_port(node, "LMTP"), wait_logged_port(node, "SMTP")
    out = swaks("--server", HOST, "--port", str(lmtp), "--protocol", "LMTP",
                "--to", "nobody@example.org")
    assert out.returncode != 0 and "550 5.1.1" in out.stdout, out.stdout
    out = swaks("--server", HOST, "--port", str(smtp_port), "--to", "alice@example.org")
    assert out.returncode != 0 and "530 5.7.0" in out.stdout, out.stdout


def test_smtplib_against_twistd(node):
    """smtplib.SMTP with AUTH PLAIN and smtplib.LMTP both deliver to the twistd node."""
    with smtplib.SMTP(HOST, wait_logged_port(node, "SMTP"), timeout=15) as client:
        client.login("alice", "secret")
        assert client.sendmail("alice@example.org", ["bob"], message("e2e-smtp-1")) == {}
    lmtp = smtplib.LMTP(HOST, wait_logged_port(node, "LMTP"), timeout=15)
    try:
        assert lmtp.sendmail("s@example.org", ["bob"], message("e2e-lmtp-1")) == {}
    finally:
        lmtp.quit()
    got = fetch_all(HOST, node.port, "bob")
    assert len(with_marker(got, b"e2e-smtp-1")) == len(with_marker(got, b"e2e-lmtp-1")) == 1
