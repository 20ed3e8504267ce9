"""SCRAM-SHA-256 server (RFC 7677 / RFC 5802) and the key-storing password checker."""

from __future__ import annotations

import base64

import pytest
import scramp
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin

from twistedmail.auth import PasswordChecker, ScramKeys, saslprep
from twistedmail.imap.scram import ScramError, ScramServer

# RFC 7677 §3: the SCRAM-SHA-256 example exchange (user "user", password "pencil").
C_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
S_NONCE = b"%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
S_FIRST = (b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
           b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
C_FINAL = (b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
           b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
S_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def rfc_server() -> ScramServer:
    return ScramServer(lambda user: (SALT, 4096), nonce=S_NONCE)


def result(d):
    """The value of an already-fired Deferred, or its failure raised."""
    out = []
    d.addBoth(out.append)
    value = out[0]
    if hasattr(value, "raiseException"):
        value.raiseException()
    return value


def test_rfc7677_example_exchange():
    """The RFC 7677 §3 example: same server-first, proof accepted, same v= signature."""
    keys = ScramKeys.derive("pencil", SALT, 4096)
    server = rfc_server()
    assert server.first(C_FIRST) == S_FIRST
    credentials = server.final(C_FINAL)
    assert credentials.username == "user"
    assert credentials.verify(keys)
    assert server.final_message() == S_FINAL


def test_wrong_password_proof_is_rejected():
    """A proof made from another password does not verify and yields no v=."""
    server = rfc_server()
    server.first(C_FIRST)
    credentials = server.final(C_FINAL)
    assert not credentials.verify(ScramKeys.derive("pencil2", SALT, 4096))
    with pytest.raises(ScramError):
        server.final_message()


@pytest.mark.parametrize("message", [
    b"", b"n,,", b"x,,n=user,r=abc", b"n,,r=abc,n=user", b"n,,n=user", b"n,,n=us=er,r=abc",
    b"n,,n=user,r=a,bc=", b"n,,n=user,r=\x01", b"n,,n=user,r=",
])
def test_malformed_client_first(message):
    """Syntax errors in client-first are 'malformed' (BAD in IMAP)."""
    with pytest.raises(ScramError) as err:
        rfc_server().first(message)
    assert err.value.malformed


@pytest.mark.parametrize("message", [
    b"p=tls-unique,,n=user,r=abc",  # RFC 5802 §6: channel binding required by the client
    b"n,,m=ext,n=user,r=abc",  # RFC 5802 §5.1: unknown mandatory extension
    b"n,a=other,n=user,r=abc",  # authzid must be the user
])
def test_refused_client_first(message):
    """Well-formed but refused client-first messages are failures (NO), not BAD."""
    with pytest.raises(ScramError) as err:
        rfc_server().first(message)
    assert not err.value.malformed


def test_escaped_user_name_and_matching_authzid():
    """saslname escapes =2C and =3D decode to ',' and '='; a=<same user> is accepted."""
    server = rfc_server()
    server.first(b"n,a=a=2Cb=3Dc,n=a=2Cb=3Dc,r=abc")
    assert server.username == "a,b=c"


@pytest.mark.parametrize("final, malformed", [
    (C_FINAL.replace(b"r=rOpr", b"r=XOpr"), False),  # nonce mismatch
    (C_FINAL.replace(b"c=biws", b"c=eSws"), False),  # "y,," instead of "n,,"
    (C_FINAL.split(b",p=")[0], True),  # no proof
    (C_FINAL.replace(b"p=dHzb", b"p=!!zb"), True),  # proof not base64
    (b"r=x,c=biws,p=AAAA", True),  # attribute order
])
def test_bad_client_final(final, malformed):
    """client-final must echo the GS2 header and the combined nonce, and carry p=."""
    server = rfc_server()
    server.first(C_FIRST)
    with pytest.raises(ScramError) as err:
        server.final(final)
    assert err.value.malformed is malformed


def test_scramp_client_against_checker_keys():
    """An independent client (scramp) completes an exchange against stored keys."""
    checker = PasswordChecker({"alice": "s3cret"})
    client = scramp.ScramClient(["SCRAM-SHA-256"], "alice", "s3cret")
    server = ScramServer(checker.scram_salt)
    server_first = server.first(client.get_client_first().encode())
    client.set_server_first(server_first.decode())
    credentials = server.final(client.get_client_final().encode())
    assert result(checker.requestAvatarId(credentials)) == "alice"
    client.set_server_final(server.final_message().decode())  # raises on a bad signature


def test_checker_keeps_no_password():
    """The checker stores salt, iteration count (>= 4096), StoredKey, ServerKey only."""
    checker = PasswordChecker({"alice": "s3cret"})
    keys = checker._users["alice"]
    assert isinstance(keys, ScramKeys) and keys.iterations >= 4096 and len(keys.salt) >= 16
    assert b"s3cret" not in repr(vars(checker)).encode()


def test_plain_password_checks():
    """LOGIN-style credentials: right password ok (also the cached second time), wrong fails."""
    checker = PasswordChecker({"alice": "s3cret"})
    assert result(checker.requestAvatarId(UsernamePassword(b"alice", b"s3cret"))) == "alice"
    assert result(checker.requestAvatarId(UsernamePassword(b"alice", b"s3cret"))) == "alice"
    for user, password in [(b"alice", b"wrong"), (b"nobody", b"s3cret"), (b"Alice", b"s3cret")]:
        with pytest.raises(UnauthorizedLogin):
            result(checker.requestAvatarId(UsernamePassword(user, password)))


def test_password_change_invalidates_cached_login():
    """After add_user with a new password the old one no longer works."""
    checker = PasswordChecker({"alice": "old"})
    result(checker.requestAvatarId(UsernamePassword(b"alice", b"old")))
    checker.add_user("alice", "new")
    with pytest.raises(UnauthorizedLogin):
        result(checker.requestAvatarId(UsernamePassword(b"alice", b"old")))
    assert result(checker.requestAvatarId(UsernamePassword(b"alice", b"new"))) == "alice"


def test_unknown_user_gets_stable_made_up_salt():
    """RFC 5802 §9: an unknown user's salt is stable, so it does not reveal who exists."""
    checker = PasswordChecker({"alice": "x"})
    assert checker.scram_salt("mallory") == checker.scram_salt("mallory")
    assert checker.scram_salt("mallory")[0] != checker.scram_salt("eve")[0]
    assert checker.scram_salt("mallory")[1] == checker.scram_salt("alice")[1]


def test_saslprep_mapping():
    """RFC 4013: soft hyphen maps to nothing, NBSP to space, NFKC applies; ASCII unchanged."""
    assert saslprep("I\u00adX") == "IX"
    assert saslprep("a\u00a0b") == "a b"
    assert saslprep("\u2168") == "IX"
    assert saslprep("plain ascii") == "plain ascii"
    assert ScramKeys.derive("I\u00adX", b"s" * 16) == ScramKeys.derive("IX", b"s" * 16)
