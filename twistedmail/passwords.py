"""Stored password forms: what ``[users]``, ``--user`` and ``users add`` may carry
instead of a plaintext password, and ``clustermail hash-password``.

Two hashed forms are accepted (README "Secrets and TLS"):

  ``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>``
      the RFC 5802 §3 keys, base64 (the form PostgreSQL stores, RFC 5803 in spirit).
      LOGIN, AUTHENTICATE PLAIN *and* AUTHENTICATE SCRAM-SHA-256 keep working; this
      is what ``clustermail hash-password`` prints by default.
  ``scrypt$<log2 n>$<r>$<p>$<salt>$<hash>``
      hashlib.scrypt (RFC 7914) of the SASLprep'd password, base64.  Memory-hard, but
      SCRAM cannot work from it: such a user can only LOGIN / AUTHENTICATE PLAIN (a
      SCRAM attempt fails like a wrong password).

Invariants:
  * A value that starts with ``SCRAM-SHA-256$`` or ``scrypt$`` is a stored form and
    must parse (else :class:`BadPasswordHash`, one line naming the problem); any other
    non-empty string is a plaintext password (accepted for tests and demos, and
    flagged once in the log when a node starts: auth.scrub_users).
  * Parameters are bounded (iterations 4096..10**7, scrypt n 2**10..2**20, r*p <= 64)
    so a config cannot make a login cost unbounded CPU or memory.
  * Nothing here logs or returns the password; ``read_password`` reads it from the
    tty (no echo) or stdin, never from argv.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import hmac
import os
import sys
from dataclasses import dataclass
from typing import TextIO

SCRAM_PREFIX = "SCRAM-SHA-256$"
SCRYPT_PREFIX = "scrypt$"
HASH_ITERATIONS = 100_000  # hash-password's default PBKDF2 count (RFC 7677 §4: >= 4096)
MIN_ITERATIONS, MAX_ITERATIONS = 4096, 10_000_000
SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P = 15, 8, 1  # 32 MiB per check (RFC 7914 §2)
MIN_LOG_N, MAX_LOG_N = 10, 20
SCRYPT_LEN = 32


class BadPasswordHash(ValueError):
    """A stored form that does not parse; ``str(err)`` is one line."""


@dataclass(frozen=True)
class ScryptHash:
    """A scrypt password hash: checks a plaintext in constant time."""

    log_n: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    @classmethod
    def derive(cls, password: str, salt: bytes | None = None, log_n: int = SCRYPT_LOG_N,
               r: int = SCRYPT_R, p: int = SCRYPT_P) -> ScryptHash:
        """scrypt(SASLprep(password)) with a fresh 16-byte salt unless one is given."""
        salt = os.urandom(16) if salt is None else salt
        return cls(log_n, r, p, salt, _scrypt(password, salt, log_n, r, p))

    def matches(self, password: str) -> bool:
        """Whether ``password`` hashes to this digest (constant-time compare)."""
        given = _scrypt(password, self.salt, self.log_n, self.r, self.p)
        return hmac.compare_digest(given, self.digest)

    def encode(self) -> str:
        """``scrypt$<log2 n>$<r>$<p>$<salt>$<hash>``."""
        return (f"{SCRYPT_PREFIX}{self.log_n}${self.r}${self.p}$"
                f"{_b64(self.salt)}${_b64(self.digest)}")


def _scrypt(password: str, salt: bytes, log_n: int, r: int, p: int) -> bytes:
    from twistedmail.auth import saslprep

    n = 1 << log_n
    return hashlib.scrypt(saslprep(password).encode("utf-8", "surrogateescape"), salt=salt,
                          n=n, r=r, p=p, maxmem=256 * n * r * p, dklen=SCRYPT_LEN)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise BadPasswordHash(f"{what} is not base64") from None
    if not data:
        raise BadPasswordHash(f"{what} is empty")
    return data


def _number(text: str, what: str, low: int, high: int) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise BadPasswordHash(f"{what} must be an integer {low}-{high}, got {text[:20]!r}")
    return int(text)


def is_stored_form(value: str) -> bool:
    """Whether ``value`` claims to be a hashed form (and so must parse)."""
    return value.startswith((SCRAM_PREFIX, SCRYPT_PREFIX))


def parse_scram(value: str) -> tuple[int, bytes, bytes, bytes]:
    """(iterations, salt, StoredKey, ServerKey) of a ``SCRAM-SHA-256$`` form."""
    body = value[len(SCRAM_PREFIX):]
    head, sep, keys = body.partition("$")
    iterations, sep2, salt = head.partition(":")
    stored, sep3, server = keys.partition(":")
    if not (sep and sep2 and sep3):
        raise BadPasswordHash("SCRAM-SHA-256 form is SCRAM-SHA-256$<iterations>:<salt>"
                              "$<StoredKey>:<ServerKey>")
    count = _number(iterations, "SCRAM iterations", MIN_ITERATIONS, MAX_ITERATIONS)
    stored_key, server_key = _unb64(stored, "StoredKey"), _unb64(server, "ServerKey")
    if len(stored_key) != 32 or len(server_key) != 32:
        raise BadPasswordHash("SCRAM-SHA-256 keys must be 32 bytes each")
    return count, _unb64(salt, "SCRAM salt"), stored_key, server_key


def parse_scrypt(value: str) -> ScryptHash:
    """The ScryptHash of a ``scrypt$`` form."""
    parts = value[len(SCRYPT_PREFIX):].split("$")
    if len(parts) != 5:
        raise BadPasswordHash("scrypt form is scrypt$<log2 n>$<r>$<p>$<salt>$<hash>")
    log_n = _number(parts[0], "scrypt log2 n", MIN_LOG_N, MAX_LOG_N)
    r = _number(parts[1], "scrypt r", 1, 64)
    p = _number(parts[2], "scrypt p", 1, 64)
    if r * p > 64:
        raise BadPasswordHash("scrypt r * p must be at most 64")
    digest = _unb64(parts[4], "scrypt hash")
    return ScryptHash(log_n, r, p, _unb64(parts[3], "scrypt salt"), digest)


def check_stored_form(value: str) -> None:
    """Raise BadPasswordHash if ``value`` claims a hashed form but does not parse."""
    if value.startswith(SCRAM_PREFIX):
        parse_scram(value)
    elif value.startswith(SCRYPT_PREFIX):
        parse_scrypt(value)


def hash_password(password: str, scheme: str = "scram",
                  iterations: int = HASH_ITERATIONS) -> str:
    """The stored form of ``password``: ``scram`` (default) or ``scrypt``."""
    if not password:
        raise BadPasswordHash("the password is empty")
    if scheme == "scrypt":
        return ScryptHash.derive(password).encode()
    from twistedmail.auth import ScramKeys

    return ScramKeys.derive(password, iterations=iterations).encode()


def read_password(stdin: TextIO | None = None, confirm: bool = True) -> str:
    """The password from the terminal (no echo, typed twice) or the first line of stdin."""
    stdin = stdin or sys.stdin
    if stdin.isatty():
        first = getpass.getpass("Password: ")
        if confirm and getpass.getpass("Again: ") != first:
            raise BadPasswordHash("the two passwords differ")
        return first
    line = stdin.readline(4096)
    return line.rstrip("\r\n")
