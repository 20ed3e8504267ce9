"""Client libraries over the transport features: STARTTLS, implicit TLS, IDLE, SCRAM.

imapclient and imaplib2 speak neither COMPRESS nor SCRAM themselves; COMPRESS is
covered by the zlib client in tests/protocol/test_compress.py, SCRAM here through
imapclient's generic ``sasl_login`` with the scramp package doing the SCRAM maths.
"""

from __future__ import annotations

import socket
import ssl
import threading

import imaplib2
import pytest
import scramp
from imapclient import IMAPClient

from twistedmail.tls import self_signed_pem, server_endpoint

pytestmark = pytest.mark.clients

MSG = (b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\n"
       b"Subject: transport test\r\nMessage-ID: <t@example.org>\r\n\r\nbody\r\n")


@pytest.fixture
def tls_server(make_imap_server, tmp_path):
    """A node with a configured certificate for localhost, plus an implicit-TLS port."""
    cert = tmp_path / "cert.pem"
    cert.write_bytes(self_signed_pem("localhost"))
    server = make_imap_server(tls_cert=str(cert))

    def go():
        from twisted.internet import reactor

        from twistedmail.imap.protocol import IMAPFactory

        endpoint, factory = server_endpoint(reactor, "ssl:0:interface=127.0.0.1",
                                            server.node.settings, IMAPFactory(server.node))
        return endpoint.listen(factory)

    port = server.call(go)
    server.tls_port = port.getHost().port
    server.cafile = str(cert)
    yield server
    server.call(port.stopListening)


def verifying(cafile: str) -> ssl.SSLContext:
    """Verifies the chain against our certificate; the libraries connect by IP (127.0.0.1),
    which the certificate (DNS:localhost) cannot name, so only the hostname check is off."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    return ctx


def test_imapclient_starttls(tls_server):
    """imapclient.starttls(ssl_context) then LOGIN, APPEND, FETCH inside TLS."""
    c = IMAPClient(tls_server.host, port=tls_server.port, ssl=False)
    assert c.has_capability("STARTTLS")
    c.starttls(verifying(tls_server.cafile))
    assert not c.has_capability("STARTTLS")
    c.login("alice", "secret")
    c.append("INBOX", MSG)
    c.select_folder("INBOX")
    assert c.fetch([1], ["BODY.PEEK[]"])[1][b"BODY[]"] == MSG
    c.logout()


def test_imapclient_implicit_tls(tls_server):
    """imapclient(ssl=True) against the `ssl:` listener, certificate verified."""
    with IMAPClient(tls_server.host, port=tls_server.tls_port, ssl=True,
                    ssl_context=verifying(tls_server.cafile)) as c:
        assert not c.has_capability("STARTTLS")
        c.login("alice", "secret")
        assert c.select_folder("INBOX")[b"EXISTS"] == 0


def test_imapclient_idle_over_tls(tls_server):
    """imapclient IDLE inside implicit TLS: another client's APPEND is pushed as EXISTS."""
    ctx = verifying(tls_server.cafile)
    with IMAPClient(tls_server.host, port=tls_server.tls_port, ssl_context=ctx) as a, \
            IMAPClient(tls_server.host, port=tls_server.tls_port, ssl_context=ctx) as b:
        a.login("alice", "secret")
        b.login("alice", "secret")
        a.select_folder("INBOX")
        a.idle()
        b.append("INBOX", MSG)
        responses = a.idle_check(timeout=5)
        a.idle_done()
        assert (1, b"EXISTS") in responses


def test_imapclient_scram_sha_256(imap_server):
    """SCRAM-SHA-256 through imapclient.sasl_login, scramp computing the messages."""
    client = scramp.ScramClient(["SCRAM-SHA-256"], "alice", "secret")
    steps = iter([
        lambda challenge: client.get_client_first(),
        lambda challenge: (client.set_server_first(challenge.decode()),
                           client.get_client_final())[1],
        lambda challenge: (client.set_server_final(challenge.decode()), b"")[1],
    ])

    def mech(challenge: bytes) -> str | bytes:
        return next(steps)(challenge)

    with IMAPClient(imap_server.host, port=imap_server.port, ssl=False) as c:
        assert c.has_capability("AUTH=SCRAM-SHA-256")
        c.sasl_login("SCRAM-SHA-256", mech)
        assert c.select_folder("INBOX")[b"EXISTS"] == 0


def test_starttls_upgrade_is_reliable(tls_server):
    """50 STARTTLS upgrades in a row, each followed at once by a command: all answered.

    imaplib2's own STARTTLS hangs on about 1 run in 10 here (its writer thread races the
    socket wrap: the server never receives the post-handshake CAPABILITY), so imaplib2 is
    exercised over implicit TLS below and STARTTLS through imapclient above and here."""
    ctx = verifying(tls_server.cafile)
    for _ in range(50):
        sock = socket.create_connection((tls_server.host, tls_server.port), timeout=10)
        plain = sock.makefile("rb")
        assert plain.readline().startswith(b"* OK")
        sock.sendall(b"s1 STARTTLS\r\n")
        assert plain.readline().startswith(b"s1 OK")
        tls = ctx.wrap_socket(sock, server_hostname="localhost")
        tls.sendall(b"s2 CAPABILITY\r\n")
        reply = tls.makefile("rb")
        assert reply.readline().startswith(b"* CAPABILITY")
        assert reply.readline().startswith(b"s2 OK")
        tls.close()


def test_imaplib2_implicit_tls_idle(tls_server):
    """imaplib2 IMAP4_SSL + IDLE: the EXISTS from another session ends the IDLE early."""
    m = imaplib2.IMAP4_SSL(tls_server.host, tls_server.tls_port, ca_certs=tls_server.cafile,
                           timeout=10)
    other = IMAPClient(tls_server.host, port=tls_server.port, ssl=False)
    try:
        assert m.login("alice", "secret")[0] == "OK"
        m.select("INBOX")
        other.login("alice", "secret")
        timer = threading.Timer(0.3, other.append, ("INBOX", MSG))
        timer.start()
        typ, data = m.idle(timeout=10)
        timer.join()
        assert typ == "OK"
        assert m.response("EXISTS")[1] == [b"1"]
    finally:
        other.logout()
        m.logout()
