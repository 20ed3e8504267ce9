"""Scripted conversations: greeting, CAPABILITY, LOGIN, AUTHENTICATE, LOGOUT, states."""

from __future__ import annotations

import base64
import socket

import pytest

from twistedmail.testing.script import unverified_tls


def test_greeting_carries_capabilities(imap_script):
    """The greeting is `* OK [CAPABILITY IMAP4rev1 ...]` (mbsync/Thunderbird rely on it)."""
    c = imap_script(login=False)
    assert c.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 ")
    assert b"AUTH=PLAIN" in c.greeting
    assert b"STARTTLS" in c.greeting


def test_capability_command(imap_script):
    """CAPABILITY answers one untagged line and OK (RFC 3501 §6.1.1)."""
    c = imap_script(login=False)
    r = c.ok("CAPABILITY")
    assert len(r.untagged) == 1
    assert r.untagged[0].startswith(b"* CAPABILITY IMAP4rev1")


def test_command_names_are_case_insensitive(imap_script):
    """`capability` and `CaPaBiLiTy` work like CAPABILITY (RFC 3501 §9)."""
    c = imap_script(login=False)
    c.ok("capability")
    c.ok("CaPaBiLiTy")


def test_login_ok_carries_capabilities(imap_script):
    """LOGIN's tagged OK carries [CAPABILITY ...] without AUTH= (after login)."""
    c = imap_script(login=False)
    r = c.ok('LOGIN alice secret')
    assert r.tagged.split(b" ", 2)[2].startswith(b"[CAPABILITY IMAP4rev1")
    assert b"AUTH=PLAIN" not in r.tagged


def test_login_with_quoted_and_literal_strings(imap_script):
    """LOGIN accepts quoted strings and synchronizing literals (RFC 3501 §4.3)."""
    c = imap_script(login=False)
    c.send(b"q1 LOGIN {5}")
    assert c.read_line().startswith(b"+ ")
    c.send(b'alice "secret"')
    assert c.read_line().startswith(b"q1 OK")


def test_login_wrong_password(imap_script):
    """A wrong password gets NO [AUTHENTICATIONFAILED] and the session stays open."""
    c = imap_script(login=False)
    r = c.no("LOGIN alice wrong")
    assert b"[AUTHENTICATIONFAILED]" in r.tagged
    c.no("LOGIN nobody secret")
    c.ok("LOGIN alice secret")


def test_login_twice_is_bad(imap_script):
    """LOGIN in the authenticated state is BAD (RFC 3501 §6.2)."""
    c = imap_script(login=True)
    c.bad("LOGIN alice secret")


def test_commands_before_login_are_bad(imap_script):
    """SELECT/LIST/FETCH before authentication are refused with BAD."""
    c = imap_script(login=False)
    c.bad("SELECT INBOX")
    c.bad('LIST "" "*"')
    c.bad("FETCH 1 FLAGS")


def test_unknown_command_is_bad(imap_script):
    """An unknown command gets BAD and the connection stays usable."""
    c = imap_script(login=True)
    c.bad("FROBNICATE")
    c.ok("NOOP")


def test_authenticate_plain_with_continuation(imap_script):
    """AUTHENTICATE PLAIN: `+ ` then the base64 response (RFC 4616)."""
    c = imap_script(login=False)
    c.send(b"a1 AUTHENTICATE PLAIN")
    assert c.read_line().startswith(b"+")
    c.send(base64.b64encode(b"\0alice\0secret"))
    line = c.read_line()
    assert line.startswith(b"a1 OK [CAPABILITY IMAP4rev1")
    c.ok("SELECT INBOX")


def test_authenticate_plain_initial_response(imap_script):
    """SASL-IR: AUTHENTICATE PLAIN <base64> in one line (RFC 4959)."""
    c = imap_script(login=False)
    token = base64.b64encode(b"alice\0alice\0secret").decode()
    c.ok(f"AUTHENTICATE PLAIN {token}")


def test_authenticate_plain_wrong_password(imap_script):
    """A wrong PLAIN password gets NO [AUTHENTICATIONFAILED]."""
    c = imap_script(login=False)
    token = base64.b64encode(b"\0alice\0nope").decode()
    r = c.no(f"AUTHENTICATE PLAIN {token}")
    assert b"AUTHENTICATIONFAILED" in r.tagged


def test_authenticate_cancel(imap_script):
    """`*` cancels an AUTHENTICATE exchange with BAD (RFC 3501 §6.2.2)."""
    c = imap_script(login=False)
    c.send(b"a1 AUTHENTICATE PLAIN")
    assert c.read_line().startswith(b"+")
    c.send(b"*")
    assert c.read_line().startswith(b"a1 BAD")
    c.ok("LOGIN alice secret")


def test_authenticate_bad_base64(imap_script):
    """Garbage instead of base64 gets BAD, not a traceback."""
    c = imap_script(login=False)
    c.send(b"a1 AUTHENTICATE PLAIN")
    c.read_line()
    c.send(b"!!!not-base64!!!")
    assert c.read_line().startswith(b"a1 BAD")


def test_authenticate_unknown_mechanism(imap_script):
    """An unsupported SASL mechanism is refused with NO."""
    c = imap_script(login=False)
    c.no("AUTHENTICATE KERBEROS_V4")


def test_logout_sends_bye_then_ok(imap_script):
    """LOGOUT: `* BYE`, tagged OK, then the server closes (RFC 3501 §6.1.3)."""
    c = imap_script(login=True)
    r = c.ok("LOGOUT")
    assert r.untagged[0].startswith(b"* BYE")
    assert c.sock.recv(1) == b""


def test_noop_in_every_state(imap_script):
    """NOOP works before login, after login and when selected."""
    c = imap_script(login=False)
    c.ok("NOOP")
    c.ok("LOGIN alice secret")
    c.ok("NOOP")
    c.ok("SELECT INBOX")
    c.ok("NOOP")


def test_pipelined_commands_answered_in_order(imap_script):
    """Several commands in one write are all answered, in order."""
    c = imap_script(login=True)
    c.send(b"p1 NOOP\r\np2 SELECT INBOX\r\np3 NOOP\r\np4 BOGUS")
    tags = []
    while len(tags) < 4:
        line = c.read_line()
        if not line.startswith(b"*"):
            tags.append(line.split(b" ")[0:2])
    assert tags == [[b"p1", b"OK"], [b"p2", b"OK"], [b"p3", b"OK"], [b"p4", b"BAD"]]


def test_starttls_then_login(imap_server):
    """STARTTLS upgrades the connection; CAPABILITY then omits STARTTLS (RFC 3501 §6.2.1)."""
    sock = socket.create_connection((imap_server.host, imap_server.port), timeout=10)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"* OK")
    sock.sendall(b"t1 STARTTLS\r\n")
    assert f.readline().startswith(b"t1 OK")
    tls, tf = unverified_tls(sock)
    tls.sendall(b"t2 CAPABILITY\r\n")
    caps = tf.readline()
    assert caps.startswith(b"* CAPABILITY") and b"STARTTLS" not in caps
    assert tf.readline().startswith(b"t2 OK")
    tls.sendall(b"t3 LOGIN alice secret\r\n")
    assert tf.readline().startswith(b"t3 OK")
    tls.sendall(b"t4 STARTTLS\r\n")
    assert tf.readline().startswith(b"t4 BAD")
    tls.close()


@pytest.mark.parametrize("line", [
    b"",
    b"a1",
    b"a1 LOGIN",
    b"a1 LOGIN alice",
    b'a1 LOGIN "alice secret',
    b"a1 SELECT (",
    b"+ NOOP",
    b"a1 FETCH 0 FLAGS",
    b"a1 FETCH 1:x FLAGS",
])
def test_malformed_lines_get_bad(imap_script, line):
    """Malformed commands get BAD and the connection survives."""
    c = imap_script(login=False)
    c.send(line)
    if line:
        assert b" BAD " in c.read_line() + b" "
    c.ok("NOOP")
