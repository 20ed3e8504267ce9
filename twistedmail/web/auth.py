"""Bearer-token protection of the HTTP API (issue 6; RFC 6750).

Invariants:
  * No token configured (``settings.http_token`` unset or empty): every API request
    is refused with 403 and a JSON error saying how to set one — the API is off.
  * A request without ``Authorization: Bearer <token>`` or with another token gets
    401 and ``WWW-Authenticate: Bearer realm="twistedmail"`` (RFC 6750 §3), with
    ``error="invalid_token"`` when a token was given but is wrong.
  * Tokens are compared in constant time (``hmac.compare_digest`` on bytes).
  * The status page and ``/metrics`` are not behind this check (read-only views).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

REALM = "twistedmail"
NO_TOKEN = ("the HTTP API is off: no token is configured; start the node with "
            "--http-token TOKEN or set token = \"...\" in the [http] table of the config")


@dataclass(frozen=True)
class Refusal:
    """Why a request may not use the API: HTTP status, JSON error text, extra headers."""

    status: int
    error: str
    headers: tuple[tuple[str, str], ...] = ()


def bearer_token(authorization: bytes | None) -> bytes | None:
    """The token of an ``Authorization: Bearer <token>`` header value, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(b" ")
    if scheme.lower() != b"bearer" or not token.strip():
        return None
    return token.strip()


def check(configured: str | None, authorization: bytes | None) -> Refusal | None:
    """None if the request may use the API, else the refusal to answer with."""
    if not configured:
        return Refusal(403, NO_TOKEN)
    given = bearer_token(authorization)
    if given is None:
        challenge = f'Bearer realm="{REALM}"'
        return Refusal(401, "missing bearer token: send 'Authorization: Bearer <token>'",
                       (("WWW-Authenticate", challenge),))
    if not hmac.compare_digest(given, configured.encode("utf-8")):
        challenge = f'Bearer realm="{REALM}", error="invalid_token"'
        return Refusal(401, "wrong bearer token", (("WWW-Authenticate", challenge),))
    return None
