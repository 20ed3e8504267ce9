"""AUTHENTICATE SCRAM-SHA-256 over IMAP (RFC 7677, RFC 5802, RFC 4959 SASL-IR)."""

from __future__ import annotations

import base64

import pytest
import scramp

from twistedmail.imap import protocol

MECH = "SCRAM-SHA-256"


def b64(data: str | bytes) -> bytes:
    return base64.b64encode(data.encode() if isinstance(data, str) else data)


def unb64_challenge(line: bytes) -> str:
    assert line.startswith(b"+ "), line
    return base64.b64decode(line[2:]).decode()


def scram_exchange(c, user="alice", password="secret", initial=False, tag="s1"):
    """Run the exchange up to the tagged line; returns (tagged line, scramp client)."""
    client = scramp.ScramClient([MECH], user, password)
    first = b64(client.get_client_first())
    if initial:
        c.send(b"%s AUTHENTICATE %s %s" % (tag.encode(), MECH.encode(), first))
    else:
        c.send(f"{tag} AUTHENTICATE {MECH}".encode())
        assert c.read_line() == b"+ "  # RFC 3501 §6.2.2: empty initial challenge
        c.send(first)
    line = c.read_line()
    if not line.startswith(b"+"):
        return line, client
    client.set_server_first(unb64_challenge(line))
    c.send(b64(client.get_client_final()))
    line = c.read_line()
    if not line.startswith(b"+"):
        return line, client
    client.set_server_final(unb64_challenge(line))  # verifies the server's signature
    c.send(b"")
    return c.read_line(), client


def test_advertised_before_login_only(imap_script):
    """AUTH=SCRAM-SHA-256 is in the greeting and pre-auth CAPABILITY, not after login."""
    c = imap_script(login=False)
    assert b" AUTH=SCRAM-SHA-256" in c.greeting
    assert b"SCRAM-SHA-256-PLUS" not in c.greeting  # no channel binding offered
    r = c.ok("LOGIN alice secret")
    assert b"AUTH=SCRAM" not in r.tagged


def test_scram_with_continuations(imap_script):
    """Client-first after "+ ", server-first, client-final, "+ v=...", empty line, OK."""
    c = imap_script(login=False)
    tagged, _ = scram_exchange(c)
    assert tagged.startswith(b"s1 OK [CAPABILITY IMAP4rev1")
    c.ok("SELECT INBOX")


def test_scram_with_sasl_ir(imap_script):
    """SASL-IR: the client-first message on the AUTHENTICATE line (RFC 4959)."""
    c = imap_script(login=False)
    tagged, _ = scram_exchange(c, initial=True)
    assert tagged.startswith(b"s1 OK")
    c.ok("LIST \"\" INBOX")


def test_scram_unicode_password(make_imap_server, imap_script):
    """Passwords are SASLprep'd UTF-8 on both sides (RFC 5802 §5.1)."""
    server = make_imap_server(users={"zoë": "pässwörd\u00a0x"})
    c = imap_script(server=server)
    tagged, _ = scram_exchange(c, user="zoë", password="pässwörd x")
    assert tagged.startswith(b"s1 OK")


@pytest.mark.parametrize("user, password", [("alice", "wrong"), ("nobody", "secret")])
def test_scram_bad_credentials(imap_script, user, password):
    """Wrong password or unknown user: NO [AUTHENTICATIONFAILED] after client-final."""
    c = imap_script(login=False)
    tagged, _ = scram_exchange(c, user=user, password=password)
    assert tagged.startswith(b"s1 NO [AUTHENTICATIONFAILED]")
    c.bad("SELECT INBOX")
    c.ok("LOGIN alice secret")


@pytest.mark.parametrize("step", [0, 1, 2])
def test_scram_cancel_at_each_step(imap_script, step):
    """`*` at any step cancels with BAD (RFC 3501 §6.2.2); the session stays usable."""
    c = imap_script(login=False)
    client = scramp.ScramClient([MECH], "alice", "secret")
    c.send(f"s1 AUTHENTICATE {MECH}".encode())
    c.read_line()
    if step > 0:
        c.send(b64(client.get_client_first()))
        client.set_server_first(unb64_challenge(c.read_line()))
    if step > 1:
        c.send(b64(client.get_client_final()))
        assert c.read_line().startswith(b"+ ")
    c.send(b"*")
    assert c.read_line().startswith(b"s1 BAD")
    c.ok("NOOP")
    c.bad("SELECT INBOX")  # not logged in


def test_scram_malformed_messages_are_bad(imap_script):
    """Garbage base64 and malformed SCRAM messages get BAD, never a traceback."""
    c = imap_script(login=False)
    c.bad(f"AUTHENTICATE {MECH} {b64('n,,r=abc').decode()}")
    c.send(f"s2 AUTHENTICATE {MECH}".encode())
    c.read_line()
    c.send(b"!!!")
    assert c.read_line().startswith(b"s2 BAD")
    c.ok("LOGIN alice secret")


def test_scram_channel_binding_request_refused(imap_script):
    """A client that insists on channel binding (p=) gets NO (RFC 5802 §6)."""
    c = imap_script(login=False)
    r = c.no(f"AUTHENTICATE {MECH} {b64('p=tls-unique,,n=alice,r=abcdef').decode()}")
    assert b"[AUTHENTICATIONFAILED]" in r.tagged


def test_scram_tampered_nonce_fails(imap_script):
    """A client-final with another nonce is refused (RFC 5802 §5.1 r=)."""
    c = imap_script(login=False)
    client = scramp.ScramClient([MECH], "alice", "secret")
    c.send(b"s1 AUTHENTICATE %s %s" % (MECH.encode(), b64(client.get_client_first())))
    client.set_server_first(unb64_challenge(c.read_line()))
    final = client.get_client_final()
    c.send(b64(final.replace(",r=", ",r=X", 1)))
    assert c.read_line().startswith(b"s1 NO [AUTHENTICATIONFAILED]")


def test_scram_nonempty_answer_to_server_final(imap_script):
    """After "+ v=..." the client must send an empty line; anything else is BAD."""
    c = imap_script(login=False)
    client = scramp.ScramClient([MECH], "alice", "secret")
    c.send(b"s1 AUTHENTICATE %s %s" % (MECH.encode(), b64(client.get_client_first())))
    client.set_server_first(unb64_challenge(c.read_line()))
    c.send(b64(client.get_client_final()))
    client.set_server_final(unb64_challenge(c.read_line()))
    c.send(b64("junk"))
    assert c.read_line().startswith(b"s1 BAD")
    c.bad("SELECT INBOX")


def test_scram_allowed_off_loopback_without_tls(imap_server, imap_script, monkeypatch):
    """SCRAM sends no password, so it works where LOGINDISABLED applies (non-loopback)."""
    monkeypatch.setattr(protocol, "_is_loopback", lambda host: False)
    c = imap_script(login=False)
    assert b"LOGINDISABLED" in c.greeting and b"AUTH=SCRAM-SHA-256" in c.greeting
    tagged, _ = scram_exchange(c)
    assert tagged.startswith(b"s1 OK")
