"""Plaintext LOGIN / AUTHENTICATE PLAIN only over TLS or from loopback (RFC 3501 §6.2.3,
§7.2.1 LOGINDISABLED, RFC 5530 PRIVACYREQUIRED; RFC 8314 §5.3).

How the non-loopback peer is made: traffic here may only go to loopback addresses,
and 127.0.0.2 is loopback too, so no real socket can come from elsewhere without a
network namespace.  Two layers instead:
  * the real IMAPProtocol driven through a StringTransport whose getPeer() is a
    non-loopback IPv4Address (192.0.2.7, TEST-NET-1): the real peer classification;
  * real sockets (STARTTLS needs them) with the peer classification forced off.
"""

from __future__ import annotations

import base64
import socket

import pytest
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from twistedmail.config import NodeSettings
from twistedmail.imap import protocol
from twistedmail.imap.protocol import IMAPProtocol
from twistedmail.node import Node
from twistedmail.testing.script import unverified_tls

USERS = {"alice": "secret"}
PLAIN = base64.b64encode(b"\0alice\0secret").decode()


class Peer:
    """An IMAPProtocol on a StringTransport with a chosen peer address."""

    def __init__(self, address, **settings) -> None:
        node = Node(NodeSettings(users=dict(USERS), **settings), reactor=Clock())
        self.proto = IMAPProtocol(node)
        self.proto.callLater = node.reactor.callLater  # TimeoutMixin timers on the Clock
        self.transport = StringTransport(peerAddress=address)
        self.proto.makeConnection(self.transport)
        self.greeting = self.take()

    def take(self) -> bytes:
        data = self.transport.value()
        self.transport.clear()
        return data

    def say(self, line: str) -> bytes:
        self.proto.dataReceived(line.encode() + b"\r\n")
        return self.take()


REMOTE = IPv4Address("TCP", "192.0.2.7", 40000)


def test_remote_greeting_says_logindisabled():
    """A non-loopback peer sees LOGINDISABLED and STARTTLS, and no AUTH=PLAIN."""
    p = Peer(REMOTE)
    assert b" LOGINDISABLED" in p.greeting and b" STARTTLS" in p.greeting
    assert b"AUTH=PLAIN" not in p.greeting
    assert b"AUTH=SCRAM-SHA-256" in p.greeting  # no password on the wire: still offered
    caps = p.say("c1 CAPABILITY")
    assert b"LOGINDISABLED" in caps and b"AUTH=PLAIN" not in caps


def test_remote_login_refused_privacyrequired():
    """LOGIN from a non-loopback peer without TLS: NO [PRIVACYREQUIRED], even if correct."""
    p = Peer(REMOTE)
    assert p.say("a1 LOGIN alice secret").startswith(b"a1 NO [PRIVACYREQUIRED]")
    assert p.say("a2 SELECT INBOX").startswith(b"a2 BAD")  # still not authenticated


@pytest.mark.parametrize("line", [f"a1 AUTHENTICATE PLAIN {PLAIN}", "a1 AUTHENTICATE PLAIN"])
def test_remote_authenticate_plain_refused(line):
    """AUTHENTICATE PLAIN (with or without SASL-IR) is refused before any `+`."""
    p = Peer(REMOTE)
    assert p.say(line).startswith(b"a1 NO [PRIVACYREQUIRED]")


def test_allow_plaintext_setting_allows_remote_login():
    """[tls] allow_plaintext = true restores plaintext login for every peer."""
    p = Peer(REMOTE, allow_plaintext=True)
    assert b"AUTH=PLAIN" in p.greeting and b"LOGINDISABLED" not in p.greeting
    assert p.say("a1 LOGIN alice secret").startswith(b"a1 OK")


@pytest.mark.parametrize("address", [
    IPv4Address("TCP", "127.0.0.1", 40000),
    IPv4Address("TCP", "127.5.6.7", 40000),
    IPv6Address("TCP", "::1", 40000),
    IPv6Address("TCP", "::ffff:127.0.0.1", 40000),  # IPv4-mapped loopback on a dual stack
    UNIXAddress("/run/imap.sock"),
])
def test_loopback_peers_may_log_in(address):
    """Loopback (v4, v6, IPv4-mapped) and UNIX-socket peers keep plaintext login."""
    p = Peer(address)
    assert b"AUTH=PLAIN" in p.greeting and b"LOGINDISABLED" not in p.greeting
    assert p.say("a1 LOGIN alice secret").startswith(b"a1 OK")


@pytest.mark.parametrize("host", ["192.0.2.7", "10.1.2.3", "2001:db8::1", "::ffff:192.0.2.7",
                                  "fe80::1%eth0"])
def test_other_addresses_are_not_loopback(host):
    """Private, public, v6 and mapped non-loopback addresses are all 'remote'."""
    assert protocol._is_loopback(host) is False


@pytest.fixture
def remote_sockets(monkeypatch):
    """Real sockets whose peers the server classifies as non-loopback."""
    monkeypatch.setattr(protocol, "_is_loopback", lambda host: False)


def test_starttls_then_login_off_loopback(imap_server, remote_sockets):
    """Off loopback: LOGINDISABLED before STARTTLS; after it AUTH=PLAIN and LOGIN work."""
    sock = socket.create_connection((imap_server.host, imap_server.port), timeout=10)
    f = sock.makefile("rb")
    greeting = f.readline()
    assert b"LOGINDISABLED" in greeting
    sock.sendall(b"a1 LOGIN alice secret\r\n")
    assert f.readline().startswith(b"a1 NO [PRIVACYREQUIRED]")
    sock.sendall(b"t1 STARTTLS\r\n")
    assert f.readline().startswith(b"t1 OK")
    tls, tf = unverified_tls(sock)
    tls.sendall(b"c1 CAPABILITY\r\n")
    caps = tf.readline()
    assert b"AUTH=PLAIN" in caps and b"LOGINDISABLED" not in caps
    assert tf.readline().startswith(b"c1 OK")
    tls.sendall(f"a2 AUTHENTICATE PLAIN {PLAIN}\r\n".encode())
    assert tf.readline().startswith(b"a2 OK")
    tls.close()


def test_imaplib_sees_logindisabled(imap_server, remote_sockets):
    """A stock client (imaplib) sees LOGINDISABLED; its LOGIN gets [PRIVACYREQUIRED]."""
    import imaplib

    m = imaplib.IMAP4(imap_server.host, imap_server.port)
    assert "LOGINDISABLED" in m.capabilities
    with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
        m.login("alice", "secret")
    m.shutdown()
