"""The replication op decoder and the cluster wire helpers under hostile peer bytes.

Extends tests/cluster/test_cops.py (round trip, random bytes, random JSON) toward
mutated *real* batches and the wire.py helpers (parse_vv, digests_of, unpack_inline).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.cluster.test_cops import EXAMPLES
from tests.fuzz.harness import examples
from twistedmail.cluster import cops, wire

REAL = cops.encode(EXAMPLES)
_EDITS = [b"\\ud800", b"\\udfff", b"\xed\xa0\x80", b"\\u0000", b"[", b"]", b"{", b"}", b",",
          b'"', b"null", b"-1", b"1e999", b"9" * 30, b"true", b"\x00", b"\xff", b"NaN"]


def only_value_error(data: bytes) -> None:
    """decode raises nothing but ValueError; what it accepts re-encodes and round-trips."""
    try:
        batch = cops.decode(data)
    except ValueError:
        return
    assert cops.decode(cops.encode(list(batch))) == batch


def _mutate(seed: int, data: bytes) -> bytes:
    rng = random.Random(seed)
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        pos = rng.randint(0, len(buf))
        op = rng.randrange(3)
        if op == 0 and buf:
            del buf[pos:pos + rng.randint(1, 6)]
        elif op == 1:
            buf[pos:pos] = rng.choice(_EDITS)
        else:
            buf[pos:pos + 1] = rng.choice(_EDITS)
    return bytes(buf)


@examples(400)
@given(st.integers(0, 2**32 - 1))
def test_mutated_real_batch(seed: int) -> None:
    """A real encoded batch with random edits: ValueError or a batch that re-encodes."""
    only_value_error(_mutate(seed, REAL))


@examples(200)
@given(st.sampled_from(EXAMPLES), st.text(max_size=6), st.sampled_from(["u", "f", "name", "i"]))
def test_any_string_field_value(cop: cops.Cop, text: str, key: str) -> None:
    """Any str (surrogates included) in a string field is accepted only if it can be sent on."""
    body = dict(cop.body)
    if key in body and isinstance(body[key], str):
        body[key] = text
    raw = json.dumps([[cop.origin, cop.seq, cop.kind, body, list(cop.blobs)]]).encode()
    only_value_error(raw)


@pytest.mark.parametrize("raw", [
    b'[["n1~01",9,"sub",{"u":"a\\ud800","name":"j","on":false,"st":[1,0,"n"]},[]]]',
    b'[["n1~01",9,"sub",{"u":"a\xed\xa0\x80","name":"j","on":false,"st":[1,0,"n"]},[]]]',
])
def test_lone_surrogate_is_refused_regression(raw: bytes) -> None:
    """Fuzz finding: a lone surrogate decoded fine, then encode() raised UnicodeEncodeError
    when the batch was passed on; cops.decode now refuses it (ValueError)."""
    with pytest.raises(ValueError, match="surrogate"):
        cops.decode(raw)


def test_escaped_surrogate_pair_is_fine() -> None:
    """A properly paired escape (an emoji) still decodes and re-encodes."""
    raw = b'[["n1~01",9,"sub",{"u":"a\\ud83d\\ude00","name":"j","on":false,"st":[1,0,"n"]},[]]]'
    assert cops.decode(raw)[0].body["u"] == "a\U0001f600"


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a":' * 100_000])
def test_deep_json_is_bad_request_regression(text: str) -> None:
    """Fuzz finding: deeply nested JSON escaped parse_vv/digests_of as RecursionError
    (an undeclared AMP error); now BadRequest like any malformed value."""
    with pytest.raises(wire.BadRequest):
        wire.parse_vv(text)
    with pytest.raises(wire.BadRequest):
        wire.digests_of(text)


@examples(300)
@given(st.text(max_size=60))
def test_vv_and_digest_lists_only_bad_request(text: str) -> None:
    """parse_vv / digests_of: BadRequest or a well-typed value, for any text."""
    for parse in (wire.parse_vv, wire.digests_of):
        with contextlib.suppress(wire.BadRequest):
            parse(text)
    try:
        vv = wire.parse_vv(text)
    except wire.BadRequest:
        return
    assert wire.parse_vv(wire.dump_vv(vv)) == vv


def _packed() -> bytes:
    bodies = [(hashlib.sha256(b).hexdigest(), b) for b in (b"hello", b"", b"x" * 70)]
    return wire.pack_inline(bodies)


@examples(300)
@given(st.integers(0, 2**32 - 1))
def test_unpack_inline_mutated(seed: int) -> None:
    """Mutated inline body packs: BadRequest, or every body matches its digest."""
    data = _mutate(seed, _packed())
    try:
        out = wire.unpack_inline(data)
    except wire.BadRequest:
        return
    assert all(hashlib.sha256(v).hexdigest() == k for k, v in out.items())
