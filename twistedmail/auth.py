"""Authentication through twisted.cred: avatar, realm, password checker, portal.

User names are case-sensitive.  Passwords are never kept: each user has SCRAM
keys (RFC 5802 §3: a random salt, an iteration count, StoredKey and ServerKey,
from PBKDF2-HMAC-SHA-256 of the SASLprep'd password).  They serve both
AUTHENTICATE SCRAM-SHA-256 (RFC 7677, the client proves it knows the password)
and LOGIN / AUTHENTICATE PLAIN (the given password is run through PBKDF2 with the
user's salt and compared in constant time).  An unknown user costs the same
PBKDF2 work and, for SCRAM, gets a stable made-up salt (RFC 5802 §9).

A successful plaintext check is remembered as a keyed hash (HMAC with a random
per-process key) so that repeated LOGINs skip PBKDF2, like Dovecot's auth cache;
failures always pay the full PBKDF2 cost.

A configured password may be a stored form instead of plaintext
(twistedmail/passwords.py): ``SCRAM-SHA-256$...`` gives the keys directly,
``scrypt$...`` a scrypt hash that serves LOGIN / PLAIN only.  ``scrub_users``
replaces the plaintext of NodeSettings.users by the stored forms once the
checker holds them, and logs (once, names only) which users were configured in
plaintext.  No password, key or hash is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stringprep
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import ICredentials, IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm, Portal
from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import Attribute, Interface, implementer

from twistedmail.passwords import (
    SCRAM_PREFIX,
    SCRYPT_PREFIX,
    ScryptHash,
    is_stored_form,
    parse_scrypt,
)

SCRAM_HASH = "sha256"  # RFC 7677
SCRAM_ITERATIONS = 4096  # RFC 7677 §4: at least 4096
SALT_BYTES = 16
log = Logger()


@dataclass(frozen=True)
class ScramKeys:
    """What is stored for one user (RFC 5802 §3); the password itself is not."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    @classmethod
    def derive(cls, password: str | bytes, salt: bytes | None = None,
               iterations: int = SCRAM_ITERATIONS, hash_name: str = SCRAM_HASH) -> ScramKeys:
        """SaltedPassword = PBKDF2(SASLprep(password), salt, i); the keys from it."""
        salt = os.urandom(SALT_BYTES) if salt is None else salt
        salted = hashlib.pbkdf2_hmac(hash_name, _bytes(saslprep(_text(password))), salt,
                                     iterations)
        client_key = hmac.digest(salted, b"Client Key", hash_name)
        return cls(salt, iterations, hashlib.new(hash_name, client_key).digest(),
                   hmac.digest(salted, b"Server Key", hash_name))

    def encode(self) -> str:
        """``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` (passwords.py)."""
        from twistedmail.passwords import SCRAM_PREFIX, _b64

        return (f"{SCRAM_PREFIX}{self.iterations}:{_b64(self.salt)}"
                f"${_b64(self.stored_key)}:{_b64(self.server_key)}")

    @classmethod
    def decode(cls, value: str) -> ScramKeys:
        """The keys of a ``SCRAM-SHA-256$`` form (BadPasswordHash if malformed)."""
        from twistedmail.passwords import parse_scram

        iterations, salt, stored_key, server_key = parse_scram(value)
        return cls(salt, iterations, stored_key, server_key)


def saslprep(text: str) -> str:
    """RFC 4013 SASLprep, mapping and normalisation only (RFC 5802 §5.1 "Normalize").

    Non-ASCII spaces (C.1.2) become " ", "mapped to nothing" (B.1) characters go,
    then NFKC.  ASCII passwords are returned unchanged."""
    if text.isascii():
        return text
    mapped = "".join(" " if stringprep.in_table_c12(ch) else ch
                     for ch in text if not stringprep.in_table_b1(ch))
    return unicodedata.normalize("NFKC", mapped)


class IScramCredentials(ICredentials):
    """A SCRAM client proof (RFC 5802), checked against a user's stored keys."""

    username = Attribute("The authentication identity (str).")

    def verify(keys: ScramKeys) -> bool:
        """True if the proof matches ``keys`` (and remember the server signature)."""


class IMailUser(Interface):
    """An authenticated mail user: the avatar an IMAP session acts as."""

    name = Attribute("The canonical user name (str).")


@implementer(IMailUser)
class MailUser:
    """The avatar of one logged-in user."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"MailUser({self.name!r})"


def _logout() -> None:
    """Nothing to release when a MailUser logs out."""


@implementer(IRealm)
class Realm:
    """Hands out MailUser avatars for authenticated user names."""

    def requestAvatar(self, avatarId: Any, mind: Any, *interfaces: Any) -> tuple[Any, ...]:
        if IMailUser not in interfaces:
            raise NotImplementedError("this realm only provides IMailUser")
        name = avatarId.decode("utf-8") if isinstance(avatarId, bytes) else avatarId
        return IMailUser, MailUser(name), _logout


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def _bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value


@implementer(ICredentialsChecker)
class PasswordChecker:
    """Checks IUsernamePassword credentials against an in-memory user table."""

    credentialInterfaces = (IUsernamePassword, IScramCredentials)

    def __init__(self, users: Mapping[str, str] | None = None,
                 iterations: int = SCRAM_ITERATIONS) -> None:
        self.iterations = iterations
        self._users: dict[str, ScramKeys | ScryptHash] = {}
        self._secret = os.urandom(32)  # made-up salts of unknown users; the login cache
        self._dummy: ScramKeys | None = None
        self._verified: dict[str, bytes] = {}  # user -> HMAC(secret, good password)
        for name, password in (users or {}).items():
            self.add_user(name, password)

    def add_user(self, name: str, password: str) -> None:
        """Add a user, or change the password of an existing one (new salt).

        ``password`` is plaintext or a stored form (passwords.py; BadPasswordHash)."""
        self._users[name] = _verifier(password, self.iterations)
        self._verified.pop(name, None)

    def stored_form(self, name: str) -> str | None:
        """The stored form of ``name``'s verifier (no plaintext), None if unknown."""
        verifier = self._users.get(name)
        return None if verifier is None else verifier.encode()

    def remove_user(self, name: str) -> None:
        """Forget a user (no-op if unknown): it can no longer log in."""
        self._users.pop(name, None)
        self._verified.pop(name, None)

    def scram_salt(self, name: str) -> tuple[bytes, int]:
        """(salt, iterations) for a SCRAM server-first message; made up but stable
        for unknown users, so the answer does not tell who exists (RFC 5802 §9)."""
        keys = self._users.get(name)
        if isinstance(keys, ScramKeys):
            return keys.salt, keys.iterations
        fake = hmac.digest(self._secret, _bytes(name), "sha256")[:SALT_BYTES]
        return fake, self.iterations

    def usernames(self) -> list[str]:
        """The known user names, sorted."""
        return sorted(self._users)

    def requestAvatarId(self, credentials: Any) -> defer.Deferred[Any]:
        name = _text(credentials.username)
        stored = self._users.get(name)
        keys = stored if stored is not None else self._dummy_keys()
        if IScramCredentials.providedBy(credentials):
            # a scrypt-only user cannot do SCRAM: checked against keys nothing matches
            matches = credentials.verify(keys if isinstance(keys, ScramKeys)
                                         else self._dummy_keys()) and stored is keys
        else:
            matches = self._check_password(name, _text(credentials.password), keys)
        if stored is None or not matches:
            return defer.fail(UnauthorizedLogin("bad user name or password"))
        return defer.succeed(name)  # the avatar id: the user name, as str


    def _check_password(self, name: str, password: str, keys: ScramKeys | ScryptHash) -> bool:
        tag = hmac.digest(self._secret, _bytes(name) + b"\0" + _bytes(password), "sha256")
        cached = self._verified.get(name)
        if cached is not None and hmac.compare_digest(cached, tag):
            return True
        if isinstance(keys, ScryptHash):
            if not keys.matches(password):
                return False
        else:
            given = ScramKeys.derive(password, keys.salt, keys.iterations)
            if not hmac.compare_digest(given.stored_key, keys.stored_key):
                return False
        if keys is not self._dummy:
            self._verified[name] = tag
        return True

    def _dummy_keys(self) -> ScramKeys:
        """Keys no password matches: an unknown user costs a real PBKDF2 run."""
        if self._dummy is None:
            self._dummy = ScramKeys.derive(os.urandom(16).hex(), iterations=self.iterations)
        return self._dummy


def _verifier(password: str, iterations: int) -> ScramKeys | ScryptHash:
    """What the checker keeps for a configured password (plaintext or stored form)."""
    if password.startswith(SCRAM_PREFIX):
        return ScramKeys.decode(password)
    if password.startswith(SCRYPT_PREFIX):
        return parse_scrypt(password)
    return ScramKeys.derive(password, iterations=iterations)


def scrub_users(checker: PasswordChecker, users: dict[str, str]) -> dict[str, str]:
    """``users`` with every password replaced by the checker's stored form (so the
    settings keep no plaintext), logging once which users were given in plaintext."""
    plain = sorted(name for name, value in users.items() if not is_stored_form(value))
    if plain:
        log.warn("users: {count} password(s) configured in plaintext ({names}); store "
                 "hashes instead (clustermail hash-password)", count=len(plain),
                 names=", ".join(plain))
    return {name: checker.stored_form(name) or value for name, value in users.items()}


def build_portal(users: Mapping[str, str]) -> Portal:
    """A Portal whose checker knows ``users`` (name -> password) and yields MailUsers."""
    return Portal(Realm(), [PasswordChecker(users)])
