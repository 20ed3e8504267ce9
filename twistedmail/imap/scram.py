"""SCRAM-SHA-256 (RFC 7677 / RFC 5802), server side, sans-I/O.

    server = ScramServer(checker.scram_salt)
    server_first = server.first(client_first)     # -> "+ base64(server_first)"
    credentials = server.final(client_final)      # -> portal.login(credentials, ...)
    server_final = server.final_message()         # "v=..." once the checker accepted

The checker (twistedmail.auth.PasswordChecker) holds only the salted keys
(StoredKey, ServerKey, salt, iteration count); the proof is verified by
:meth:`ScramCredentials.verify`, called from the checker, so everything goes
through twisted.cred.  Channel binding is not offered: we advertise
SCRAM-SHA-256, never SCRAM-SHA-256-PLUS (RFC 5802 §6).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Callable

from zope.interface import implementer

from twistedmail.auth import IScramCredentials, ScramKeys

MECHANISM = "SCRAM-SHA-256"
HASH = "sha256"
_PRINTABLE = re.compile(rb"[\x21-\x2b\x2d-\x7e]+\Z")  # RFC 5802 §7 printable, no ","
_SASLNAME = re.compile(rb"(?:[^,=]|=2C|=3D)+\Z")  # RFC 5802 §7 saslname


class ScramError(Exception):
    """The exchange failed; ``malformed`` marks syntax errors (BAD), else NO."""

    def __init__(self, text: str, malformed: bool = True) -> None:
        super().__init__(text)
        self.text = text
        self.malformed = malformed


def _attributes(message: bytes) -> list[tuple[bytes, bytes]]:
    """``a=1,b=2`` → [(b"a", b"1"), (b"b", b"2")]; RFC 5802 §5.1 attr-val syntax."""
    out = []
    for part in message.split(b","):
        if len(part) < 2 or part[1:2] != b"=" or not part[:1].isalpha():
            raise ScramError("Malformed SCRAM attribute")
        out.append((part[:1], part[2:]))
    return out


def _saslname(raw: bytes) -> str:
    """RFC 5802 §5.1: "=2C" is ",", "=3D" is "="; any other "=" is an error."""
    if not _SASLNAME.match(raw):
        raise ScramError("Malformed SCRAM user name")
    try:
        return raw.replace(b"=2C", b",").replace(b"=3D", b"=").decode("utf-8")
    except UnicodeDecodeError:
        raise ScramError("SCRAM user name is not UTF-8") from None


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def _unb64(data: bytes, what: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ScramError(f"Invalid base64 in SCRAM {what}") from None


@implementer(IScramCredentials)
class ScramCredentials:
    """A client's SCRAM proof, checked by the credentials checker against stored keys."""

    def __init__(self, username: str, auth_message: bytes, proof: bytes,
                 hash_name: str = HASH) -> None:
        self.username = username
        self.auth_message = auth_message
        self.proof = proof
        self.hash_name = hash_name
        self.server_signature: bytes | None = None

    def verify(self, keys: ScramKeys) -> bool:
        """RFC 5802 §3: ClientKey = proof XOR HMAC(StoredKey, AuthMessage);
        H(ClientKey) must be StoredKey.  On success keep the ServerSignature."""
        signature = hmac.digest(keys.stored_key, self.auth_message, self.hash_name)
        if len(self.proof) != len(signature):
            return False
        client_key = bytes(a ^ b for a, b in zip(self.proof, signature, strict=True))
        ok = hmac.compare_digest(hashlib.new(self.hash_name, client_key).digest(),
                                 keys.stored_key)
        if ok:
            self.server_signature = hmac.digest(keys.server_key, self.auth_message,
                                                self.hash_name)
        return ok


class ScramServer:
    """One SCRAM exchange: client-first → server-first → client-final → server-final."""

    def __init__(self, salt_for: Callable[[str], tuple[bytes, int]],
                 nonce: bytes | None = None, hash_name: str = HASH) -> None:
        self.salt_for = salt_for
        self.hash_name = hash_name
        self.server_nonce = nonce or _b64(os.urandom(18))
        self.gs2_header = b""
        self.username = ""
        self.nonce = b""
        self.first_bare = b""
        self.server_first = b""
        self.credentials: ScramCredentials | None = None

    def first(self, client_first: bytes) -> bytes:
        """Parse client-first-message (RFC 5802 §7); return server-first-message."""
        parts = client_first.split(b",", 2)
        if len(parts) != 3:
            raise ScramError("Malformed SCRAM client-first message")
        cbind, authzid, bare = parts
        if cbind.startswith(b"p="):  # RFC 5802 §6: we offer no -PLUS mechanism
            raise ScramError("Channel binding is not supported", malformed=False)
        if cbind not in (b"n", b"y"):
            raise ScramError("Malformed SCRAM channel binding flag")
        attrs = _attributes(bare)
        if attrs and attrs[0][0] == b"m":  # RFC 5802 §5.1: unknown mandatory extension
            raise ScramError("Unsupported mandatory SCRAM extension", malformed=False)
        if len(attrs) < 2 or attrs[0][0] != b"n" or attrs[1][0] != b"r":
            raise ScramError("SCRAM client-first needs n= and r=")
        self.username = _saslname(attrs[0][1])
        if authzid and (not authzid.startswith(b"a=") or _saslname(authzid[2:]) != self.username):
            raise ScramError("Authorization identity must match", malformed=False)
        if not _PRINTABLE.match(attrs[1][1]):
            raise ScramError("Malformed SCRAM nonce")
        self.gs2_header = cbind + b"," + authzid + b","
        self.nonce = attrs[1][1] + self.server_nonce
        self.first_bare = bare
        salt, iterations = self.salt_for(self.username)
        self.server_first = b"r=%s,s=%s,i=%d" % (self.nonce, _b64(salt), iterations)
        return self.server_first

    def final(self, client_final: bytes) -> ScramCredentials:
        """Parse client-final-message (RFC 5802 §7); the credentials to check."""
        without_proof, sep, proof = client_final.rpartition(b",p=")
        if not sep:
            raise ScramError("SCRAM client-final needs p=")
        attrs = _attributes(without_proof)
        if len(attrs) < 2 or attrs[0][0] != b"c" or attrs[1][0] != b"r":
            raise ScramError("SCRAM client-final needs c= and r=")
        if _unb64(attrs[0][1], "channel binding") != self.gs2_header:
            raise ScramError("Channel binding data does not match", malformed=False)
        if attrs[1][1] != self.nonce:
            raise ScramError("SCRAM nonce does not match", malformed=False)
        auth_message = b",".join((self.first_bare, self.server_first, without_proof))
        self.credentials = ScramCredentials(self.username, auth_message,
                                            _unb64(proof, "proof"), self.hash_name)
        return self.credentials

    def final_message(self) -> bytes:
        """server-final-message ``v=ServerSignature`` (after a successful check)."""
        if self.credentials is None or self.credentials.server_signature is None:
            raise ScramError("SCRAM exchange is not complete", malformed=False)
        return b"v=" + _b64(self.credentials.server_signature)
