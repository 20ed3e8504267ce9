"""Secrets and TLS on a real ``twistd clustermail`` node (issue 7 item 3): no password or
token ever reaches the log, and ``clustermail tls reload`` / SIGHUP change the certificate
for new connections while established ones keep theirs."""

from __future__ import annotations

import base64
import json
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import scramp
from cryptography import x509

from twistedmail.passwords import hash_password
from twistedmail.testing import ClusterMailProcess
from twistedmail.testing.cluster import reserve_port
from twistedmail.testing.script import ImapScript
from twistedmail.tls import self_signed_pem

pytestmark = pytest.mark.e2e
HOST = "127.0.0.1"
SECRETS = {"alice": "Alice-Pl41n-9f2", "bob": "Bob-Scr4m-7c1", "carol": "Carol-Scrypt-3d8",
           "root": "Root-Adm1n-5e6", "token": "T0ken-Http-4b7", "wrong": "Wr0ng-Guess-1a9",
           "dave": "Dave-N3w-8d2"}
CLI = [sys.executable, "-c", "import sys; from twistedmail.admin.cli import main; "
       "sys.exit(main())"]


def _ports(n: int) -> tuple[list[socket.socket], list[int]]:
    socks = [reserve_port() for _ in range(n)]
    return socks, [s.getsockname()[1] for s in socks]


def _start(clustermail_node: Callable[..., ClusterMailProcess], tmp_path: Path,
           config: str) -> ClusterMailProcess:
    path = tmp_path / "node.toml"
    path.write_text(config)
    return clustermail_node(extra_args=[f"--config={path}"])


def _twistd_log(node: ClusterMailProcess) -> str:
    """The node's own output (the harness's "=== start" line shows only --config)."""
    return node.log_text()


def _imap_logins(port: int) -> None:
    s = ImapScript(HOST, port)
    s.ok(f"LOGIN alice {SECRETS['alice']}")
    s.close()
    s = ImapScript(HOST, port)
    s.no(f"LOGIN alice {SECRETS['wrong']}")
    plain = base64.b64encode(f"\0bob\0{SECRETS['bob']}".encode()).decode()
    s.ok(f"AUTHENTICATE PLAIN {plain}")
    s.close()
    s = ImapScript(HOST, port)
    s.ok(f"LOGIN carol {SECRETS['carol']}")
    s.close()
    client = scramp.ScramClient(["SCRAM-SHA-256"], "bob", SECRETS["bob"])
    s = ImapScript(HOST, port)
    first = base64.b64encode(client.get_client_first().encode()).decode()
    s.send(f"s1 AUTHENTICATE SCRAM-SHA-256 {first}")
    client.set_server_first(base64.b64decode(s.expect_continuation()[2:]).decode())
    s.send(base64.b64encode(client.get_client_final().encode()))
    s.expect_continuation()
    s.send(b"")
    assert s.read_until_tagged("s1").tagged.startswith(b"s1 OK")
    s.close()


def _smtp_auth(port: int) -> None:
    with smtplib.SMTP(HOST, port, timeout=10) as smtp:
        smtp.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login("alice", SECRETS["wrong"])
        smtp.login("alice", SECRETS["alice"])


def _http(port: int) -> None:
    for token, status in ((SECRETS["token"], 200), (SECRETS["wrong"], 401)):
        req = urllib.request.Request(f"http://{HOST}:{port}/api/v1/accounts",
                                     headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, timeout=10) as answer:
                assert answer.status == status
        except urllib.error.HTTPError as err:
            assert err.code == status


def _admin(port: int, *words: str, password: str) -> subprocess.CompletedProcess[str]:
    env = {"CLUSTERMAIL_ADMIN_PASSWORD": password, "PATH": "/usr/bin:/bin"}
    return subprocess.run([*CLI, "--admin", f"tcp:{HOST}:{port}", "--admin-user", "root",
                           *words], capture_output=True, text=True, timeout=60, env=env)


def test_no_secret_in_the_log(clustermail_node: Callable[..., ClusterMailProcess],
                              tmp_path: Path) -> None:
    """LOGIN, AUTHENTICATE PLAIN/SCRAM, SMTP AUTH, HTTP token and admin logins (right and
    wrong) leave no secret in the log; the one plaintext user is flagged once by name."""
    socks, (smtp, http, admin) = _ports(3)
    users = {"alice": SECRETS["alice"], "bob": hash_password(SECRETS["bob"], iterations=4096),
             "carol": hash_password(SECRETS["carol"], "scrypt"),
             "root": hash_password(SECRETS["root"], iterations=4096)}
    config = (f'[node]\nname = "n1"\n'
              f'admin = "tcp:{admin}:interface={HOST}"\nadmins = ["root"]\n'
              f'[delivery]\nsmtp = ["tcp:{smtp}:interface={HOST}"]\nsmtp_auth = true\n'
              f'[http]\nlisten = ["tcp:{http}:interface={HOST}"]\ntoken = "{SECRETS["token"]}"\n'
              "[users]\n" + "".join(f'{k} = "{v}"\n' for k, v in users.items()))
    try:
        node = _start(clustermail_node, tmp_path, config)
        imap = node.port
        assert imap is not None
        _imap_logins(imap)
        _smtp_auth(smtp)
        _http(http)
        assert _admin(admin, "status", password=SECRETS["wrong"]).returncode == 1
        done = _admin(admin, "users", "add", "dave", SECRETS["dave"], password=SECRETS["root"])
        assert done.returncode == 0, done.stderr
        ImapScript(HOST, imap).ok(f"LOGIN dave {SECRETS['dave']}")
    finally:
        for s in socks:
            s.close()
    node.stop()
    text = _twistd_log(node)
    assert "admin: users add dave" in text and "permission denied" in text
    for name, secret in SECRETS.items():
        for form in (secret, base64.b64encode(secret.encode()).decode()):
            assert form not in text, f"{name}'s secret is in the log"
    assert base64.b64encode(f"\0bob\0{SECRETS['bob']}".encode()).decode() not in text
    warned = [line for line in text.splitlines() if "configured in plaintext" in line]
    assert len(warned) == 1 and "(alice)" in warned[0]


def _peer_cn(port: int) -> tuple[str, ssl.SSLSocket]:
    """The subject of the certificate a new STARTTLS connection gets, and the socket."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    raw = socket.create_connection((HOST, port), timeout=10)
    reader = raw.makefile("rb")
    assert reader.readline().startswith(b"* OK")
    raw.sendall(b"t1 STARTTLS\r\n")
    assert reader.readline().startswith(b"t1 OK")
    tls = ctx.wrap_socket(raw)
    der = tls.getpeercert(binary_form=True)
    assert der is not None
    cert = x509.load_der_x509_certificate(der)
    return str(cert.subject.rfc4514_string()), tls


def _noop(tls: ssl.SSLSocket) -> bytes:
    tls.sendall(b"n1 NOOP\r\n")
    return tls.recv(200)


def test_certificate_reload_without_restart(clustermail_node: Callable[..., ClusterMailProcess],
                                           tmp_path: Path) -> None:
    """``tls reload`` and SIGHUP: new connections get the new certificate, an open one
    keeps its own and keeps working; a broken file is refused and the old cert kept."""
    cert = tmp_path / "server.pem"
    cert.write_bytes(self_signed_pem("a.example.test"))
    config = f'[node]\nname = "n1"\n[tls]\ncert = "{cert}"\n[users]\nalice = "x"\n'
    node = _start(clustermail_node, tmp_path, config)
    imap = node.port
    assert imap is not None
    admin = ["--admin", f"unix:{node.workdir}/clustermail-n1.admin"]
    cn_a, first = _peer_cn(imap)
    assert cn_a == "CN=a.example.test"
    cert.write_bytes(self_signed_pem("b.example.test"))
    assert _peer_cn(imap)[0] == cn_a  # not re-read until told
    done = subprocess.run([*CLI, *admin, "tls", "reload", "--json"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["subject"] == "b.example.test"
    assert _peer_cn(imap)[0] == "CN=b.example.test"
    assert _noop(first).startswith(b"n1 OK")  # the old connection lives on, with cert a
    assert x509.load_der_x509_certificate(first.getpeercert(True)).subject.rfc4514_string() \
        == cn_a
    cert.write_bytes(b"garbage")
    bad = subprocess.run([*CLI, *admin, "tls", "reload"], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 1 and "old certificate kept" in bad.stderr
    assert "Traceback" not in bad.stderr and _peer_cn(imap)[0] == "CN=b.example.test"
    cert.write_bytes(self_signed_pem("c.example.test"))
    assert node.proc is not None
    node.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    seen = ""
    while time.monotonic() < deadline and seen != "CN=c.example.test":  # bounded wait
        seen, tls = _peer_cn(imap)
        tls.close()
        time.sleep(0.05)
    assert seen == "CN=c.example.test"
    assert node.running
    first.close()
