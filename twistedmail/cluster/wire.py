"""The cluster wire protocol: AMP commands, errors, the Hello proof, VV helpers.

Every AMP value stays under 64 KiB: bodies go in ``Blob`` chunks of at most
``CHUNK`` bytes, encoded batches over ``CHUNK`` as ``Spool`` pieces followed by
the command carrying the tail (link.py does the sending and answering).

Handshake (both nonces in both proofs, so neither side can be replayed):
``Challenge() -> nonce_b``; ``Hello(..., nonce_a, proof_a)`` with
``proof_a = HMAC-SHA256(secret, "clustermail-v1|hello|" + fields + nonce_b + nonce_a)``;
the answer carries ``proof_b`` over the responder's fields with the label
"welcome" and ``nonce_a + nonce_b``.

Invariants:
  * A command's errors are declared on it, so a peer gets a named AMP error
    (BAD_SECRET, REFUSED, ROOT_COLLISION, BAD_REQUEST, MISSING_BLOBS), never a
    traceback; the first three close the link.
  * ``parse_vv`` accepts only {str: int >= 0}.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.protocols import amp

from .cops import Cop

PROTOCOL_VERSION = 1
CHUNK = 60_000  # bytes per Blob/Spool value (AMP values must stay below 65536)
MAX_BLOB = 512 * 1024 * 1024  # largest body a peer may send
MAX_SPOOL = 256 * 1024 * 1024  # largest encoded batch
MAX_PARTIAL = 16  # bodies being received at once on one link
BATCH_COPS = 500  # cops per Ops batch
BATCH_BODY_BYTES = 4 * 1024 * 1024  # bodies sent ahead of one batch (one body may exceed it)
BLOB_WINDOW = 8  # Blob chunks in flight
SENT_MEMORY = 20_000  # digests remembered as already sent on one link
MAX_RETRIES = 3  # a batch refused for missing bodies is retried this often
HANDSHAKE_TIMEOUT = 10.0
MAX_WANT = 200  # body digests asked for in one heartbeat
_DIGEST = re.compile(r"[0-9a-f]{64}\Z")


# --- errors ----------------------------------------------------------------------------

class BadSecret(Exception):
    """The peer's proof does not match the cluster secret."""


class Refused(Exception):
    """The link is refused (unknown node, wrong version, not authenticated ...)."""


class RootCollision(Exception):
    """The peer's UIDVALIDITY root is already used by a live node (DESIGN.md §3)."""


class BadRequest(Exception):
    """A malformed command from an authenticated peer."""


class BlobsMissing(Exception):
    """The batch needs bodies the receiver lacks; the text is a JSON list of digests."""


_FATAL: dict[type[Exception], bytes] = {
    BadSecret: b"BAD_SECRET",
    Refused: b"REFUSED",
    RootCollision: b"ROOT_COLLISION",
}
_ERRORS: dict[type[Exception], bytes] = {BadRequest: b"BAD_REQUEST",
                                         BlobsMissing: b"MISSING_BLOBS"}


# --- commands --------------------------------------------------------------------------

class Challenge(amp.Command):
    """Ask the responder for its nonce (first command on a link)."""

    arguments = []
    response = [(b"nonce", amp.String())]
    fatalErrors = _FATAL


class Hello(amp.Command):
    """Authenticate and introduce the dialler; the answer introduces the responder."""

    arguments = [
        (b"node", amp.Unicode()), (b"incarnation", amp.Unicode()), (b"root", amp.Integer()),
        (b"site", amp.Unicode()), (b"nonce", amp.String()), (b"proof", amp.String()),
        (b"version", amp.Integer()), (b"reserved", amp.Integer(optional=True)),
    ]
    response = [
        (b"node", amp.Unicode()), (b"incarnation", amp.Unicode()), (b"root", amp.Integer()),
        (b"site", amp.Unicode()), (b"nonce", amp.String()), (b"proof", amp.String()),
        (b"vv_json", amp.Unicode()), (b"ready", amp.Boolean()), (b"reserved", amp.Integer()),
    ]
    fatalErrors = _FATAL


class Blob(amp.Command):
    """One chunk of a message body (sha256 hex ``digest``)."""

    arguments = [(b"digest", amp.Unicode()), (b"offset", amp.Integer()),
                 (b"total", amp.Integer()), (b"chunk", amp.String())]
    response = []
    errors = _ERRORS
    fatalErrors = _FATAL


class Spool(amp.Command):
    """A leading piece of the next Ops/SnapshotPart batch (batches over ``CHUNK``)."""

    arguments = [(b"chunk", amp.String())]
    response = []
    errors = _ERRORS
    fatalErrors = _FATAL


class Ops(amp.Command):
    """Encoded cops (``absent_json``: digests of bodies the sender does not have);
    the answer is the receiver's VV (its acknowledgement)."""

    arguments = [(b"batch", amp.String()), (b"absent_json", amp.Unicode(optional=True)),
                 (b"inline", amp.String(optional=True))]
    response = [(b"vv_json", amp.Unicode())]
    errors = _ERRORS
    fatalErrors = _FATAL


INLINE_MAX = 48_000  # bytes of small bodies carried in the Ops box itself (``inline``)
_INLINE_HEAD = 72  # 64 hex digits of SHA-256, then 8 hex digits of length
_INLINE_HEADER = re.compile(rb"[0-9a-f]{72}")


def pack_inline(bodies: Sequence[tuple[str, bytes]]) -> bytes:
    """Small bodies for an Ops box: digest, length (hex) and bytes, back to back; one
    box instead of a Blob box per message (the common case is many small messages)."""
    return b"".join([part for digest, data in bodies
                     for part in (b"%s%08x" % (digest.encode(), len(data)), data)])


def unpack_inline(packed: bytes) -> dict[str, bytes]:
    """The bodies ``pack_inline`` packed, each checked against its digest; BadRequest
    on anything malformed."""
    out: dict[str, bytes] = {}
    pos, end = 0, len(packed)
    while pos < end:
        if _INLINE_HEADER.match(packed, pos) is None:
            raise BadRequest("bad inline body header")
        start = pos + _INLINE_HEAD
        size = int(packed[start - 8:start], 16)
        data = packed[start:start + size]
        digest = packed[pos:pos + 64].decode("ascii")
        if len(data) != size or hashlib.sha256(data).hexdigest() != digest:
            raise BadRequest("inline body truncated or not matching its digest")
        out[digest] = data
        pos = start + size
    return out


class Heartbeat(amp.Command):
    """Liveness; both sides' VVs and the answerer's readiness; ``want_json``: bodies
    the sender waits for (adds it applied without them), for the answerer's link."""

    arguments = [(b"vv_json", amp.Unicode()), (b"want_json", amp.Unicode(optional=True))]
    response = [(b"vv_json", amp.Unicode()), (b"ready", amp.Boolean())]
    errors = _ERRORS
    fatalErrors = _FATAL


class SnapshotPart(amp.Command):
    """Seq-0 state cops of a snapshot (a peer too far behind the log)."""

    arguments = [(b"batch", amp.String()), (b"absent_json", amp.Unicode(optional=True))]
    response = []
    errors = _ERRORS
    fatalErrors = _FATAL


class SnapshotDone(amp.Command):
    """End of a snapshot: the VV it stands for."""

    arguments = [(b"vv_json", amp.Unicode())]
    response = [(b"vv_json", amp.Unicode())]
    errors = _ERRORS
    fatalErrors = _FATAL


# --- helpers ---------------------------------------------------------------------------

@dataclass(frozen=True)
class PeerHello:
    """Who a peer said it is at Hello."""

    node: str
    incarnation: str
    root: int
    site: str
    reserved: int = 0  # the highest UIDVALIDITY counter it saw reserved for us
    vv: Mapping[str, int] | None = None  # its VV (answers to our Hello only)
    ready: bool = False


def proof(secret: bytes, label: bytes, node: str, incarnation: str, root: int, site: str,
          first: bytes, second: bytes) -> bytes:
    """HMAC-SHA256 over the protocol name, a role label, the fields and two nonces."""
    parts = [b"clustermail-v1", label, node.encode(), incarnation.encode(), str(root).encode(),
             site.encode(), str(PROTOCOL_VERSION).encode(), first, second]
    return hmac.new(secret, b"|".join(parts), hashlib.sha256).digest()


def dump_vv(vv: Mapping[str, int]) -> str:
    """A VV as compact JSON."""
    return json.dumps(vv, separators=(",", ":"), sort_keys=True)


def parse_vv(text: str) -> dict[str, int]:
    """A VV from JSON; ``BadRequest`` unless it is {str: int >= 0}."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # "[[[[..." (found by fuzzing)
        raise BadRequest("version vector is not JSON") from None
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and type(v) is int and v >= 0 for k, v in value.items()):
        raise BadRequest("version vector must map origins to sequence numbers")
    return value


def covers(vv: Mapping[str, int], other: Mapping[str, int]) -> bool:
    """True when ``vv`` includes everything ``other`` does."""
    return all(vv.get(origin, 0) >= seq for origin, seq in other.items())


def batches(cops: Sequence[Cop], body_size: Any) -> Iterable[list[Cop]]:
    """``cops`` cut into batches of at most BATCH_COPS cops / ~BATCH_BODY_BYTES of bodies."""
    batch: list[Cop] = []
    size = 0
    for cop in cops:
        weight = sum(body_size(d) for d in cop.blobs)
        if batch and (len(batch) >= BATCH_COPS or size + weight > BATCH_BODY_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(cop)
        size += weight
    if batch:
        yield batch


def digests_of(text: str) -> list[str]:
    """A JSON list of SHA-256 hex digests; BadRequest otherwise."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # "[[[[..." (found by fuzzing)
        value = None
    if not isinstance(value, list) or not all(
            isinstance(d, str) and _DIGEST.match(d) for d in value):
        raise BadRequest("expected a JSON list of body digests")
    return value
