"""TLS: STARTTLS and implicit-TLS listeners (RFC 8314), with the node's certificate."""

from __future__ import annotations

import re
import socket
import ssl

import pytest

from twistedmail.config import ConfigError, check_endpoint
from twistedmail.tls import (
    plain_description,
    self_signed_pem,
    server_endpoint,
    uses_node_certificate,
)

HOST = "mail.example.test"


def insecure_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def trusting(cafile: str) -> ssl.SSLContext:
    """A verifying context that trusts exactly ``cafile`` (hostname checked too)."""
    return ssl.create_default_context(cafile=cafile)


@pytest.fixture
def cert_file(tmp_path):
    """A configured certificate for mail.example.test, key in the same PEM file."""
    path = tmp_path / "server.pem"
    path.write_bytes(self_signed_pem(HOST))
    return str(path)


def listen(server, description="ssl:0:interface=127.0.0.1"):
    """Add a listener for ``description`` to the in-process node; returns (port, stop)."""

    def go():
        from twisted.internet import reactor

        from twistedmail.imap.protocol import IMAPFactory

        endpoint, factory = server_endpoint(reactor, description, server.node.settings,
                                            IMAPFactory(server.node))
        return endpoint.listen(factory)

    port = server.call(go)
    return port.getHost().port, lambda: server.call(port.stopListening)


def tls_conversation(port: int, ctx: ssl.SSLContext, hostname: str = "localhost"):
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                           server_hostname=hostname)
    return sock, sock.makefile("rb")


def test_implicit_tls_with_generated_certificate(imap_server):
    """`ssl:PORT` without privateKey= serves TLS from the first byte with the dev cert."""
    port, stop = listen(imap_server)
    try:
        sock, f = tls_conversation(port, insecure_context())
        greeting = f.readline()
        assert greeting.startswith(b"* OK [CAPABILITY IMAP4rev1")
        assert b"STARTTLS" not in greeting and b"AUTH=PLAIN" in greeting
        sock.sendall(b"a1 LOGIN alice secret\r\n")
        assert f.readline().startswith(b"a1 OK")
        sock.sendall(b"a2 STARTTLS\r\n")
        assert f.readline().startswith(b"a2 BAD")  # TLS already active
        cert = ssl.DER_cert_to_PEM_cert(sock.getpeercert(binary_form=True))
        assert cert.startswith("-----BEGIN CERTIFICATE-----")
        sock.close()
    finally:
        stop()


def test_configured_certificate_on_implicit_tls(make_imap_server, cert_file):
    """With [tls] cert set, implicit TLS presents it: a client trusting it verifies the host."""
    server = make_imap_server(tls_cert=cert_file)
    port, stop = listen(server)
    try:
        sock, f = tls_conversation(port, trusting(cert_file), HOST)
        assert f.readline().startswith(b"* OK")
        sock.close()
        with pytest.raises(ssl.SSLCertVerificationError):
            tls_conversation(port, trusting(cert_file), "other.example.test")
    finally:
        stop()


def test_configured_certificate_on_starttls(make_imap_server, cert_file):
    """STARTTLS presents the configured certificate too (verified, not just accepted)."""
    server = make_imap_server(tls_cert=cert_file)
    sock = socket.create_connection((server.host, server.port), timeout=10)
    f = sock.makefile("rb")
    f.readline()
    sock.sendall(b"t1 STARTTLS\r\n")
    assert f.readline().startswith(b"t1 OK")
    tls = trusting(cert_file).wrap_socket(sock, server_hostname=HOST)
    tls.sendall(b"t2 LOGIN alice secret\r\n")
    assert tls.makefile("rb").readline().startswith(b"t2 OK")
    tls.close()


def test_separate_key_file(make_imap_server, tmp_path):
    """[tls] key may name a separate PEM file for the private key."""
    pem = self_signed_pem(HOST).decode()
    cert_end = pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----\n")
    (tmp_path / "c.pem").write_text(pem[:cert_end])
    (tmp_path / "k.pem").write_text(pem[cert_end:])
    server = make_imap_server(tls_cert=str(tmp_path / "c.pem"), tls_key=str(tmp_path / "k.pem"))
    port, stop = listen(server)
    try:
        sock, f = tls_conversation(port, trusting(str(tmp_path / "c.pem")), HOST)
        assert f.readline().startswith(b"* OK")
        sock.close()
    finally:
        stop()


def test_twisted_ssl_endpoint_with_its_own_key(imap_server, tmp_path):
    """`ssl:PORT:privateKey=..:certKey=..` keeps Twisted's meaning (its own certificate)."""
    pem = tmp_path / "own.pem"
    pem.write_bytes(self_signed_pem("own.example.test"))
    port, stop = listen(imap_server, f"ssl:0:interface=127.0.0.1:privateKey={pem}:certKey={pem}")
    try:
        sock, f = tls_conversation(port, trusting(str(pem)), "own.example.test")
        assert f.readline().startswith(b"* OK")
        sock.close()
    finally:
        stop()


@pytest.mark.parametrize("description, node_cert", [
    ("ssl:993", True),
    ("ssl:993:interface=0.0.0.0", True),
    ("ssl:993:privateKey=k.pem", False),
    ("ssl:993:certKey=c.pem", False),
    ("tcp:143", False),
    ("unix:/tmp/x.sock", False),
])
def test_which_endpoints_use_the_node_certificate(description, node_cert):
    """Only ssl: endpoints without privateKey=/certKey= are given the node's certificate."""
    assert uses_node_certificate(description) is node_cert
    assert plain_description(description).startswith("tcp:") is (node_cert or
                                                                  description.startswith("tcp:"))


def test_config_accepts_ssl_endpoint_without_key():
    """`--imap ssl:993` is valid config (no server.pem needed); bad ports still fail."""
    assert check_endpoint("--imap", "ssl:993:interface=127.0.0.1") == "ssl:993:interface=127.0.0.1"
    with pytest.raises(ConfigError, match="--imap: bad endpoint"):
        check_endpoint("--imap", "ssl:99999")
    with pytest.raises(ConfigError, match="--imap: bad endpoint"):
        check_endpoint("--imap", "ssl:993:privateKey=/nonexistent/key.pem")


@pytest.mark.e2e
def test_twistd_implicit_tls_listener(clustermail_node):
    """`twistd clustermail --imap ssl:0` serves IMAPS next to a plain listener."""
    node = clustermail_node(users=["alice:secret"], extra_args=[
        "--imap", "tcp:0:interface=127.0.0.1", "--imap", "ssl:0:interface=127.0.0.1"])
    ports = re.findall(r"IMAP listening on 127\.0\.0\.1:(\d+) \(ssl:", node.log_text())
    assert len(ports) == 1
    sock, f = tls_conversation(int(ports[0]), insecure_context())
    assert f.readline().startswith(b"* OK [CAPABILITY")
    sock.sendall(b"a1 LOGIN alice secret\r\n")
    assert f.readline().startswith(b"a1 OK")
    sock.close()
