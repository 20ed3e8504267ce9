"""Cop encoding and validation (twistedmail/cluster/cops.py)."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twistedmail.cluster.cops import Cop, check_body, decode, encode, instance_id, instance_str

D = "ab" * 32
ST = [1_700_000_000_000, 3, "n1~01"]
EXAMPLES = [
    Cop("n1~01", 1, "account", {"u": "alice", "folders": [["f1", "INBOX", []],
                                                          ["f2", "Sent", ["\\Sent"]]]}),
    Cop("n1~01", 2, "folder", {"u": "alice", "f": "f3", "name": "work", "st": ST, "use": []}),
    Cop("n1~01", 0, "folder", {"u": "alice", "f": "f3", "name": "work", "st": ST, "cs": ST,
                               "use": ["\\Drafts"], "ust": ST, "acl": [["bob", "lr", ST]],
                               "meta": [["", "/shared/x", "eA==", ST], ["a", "/private/y", None,
                                                                       ST]]}),
    Cop("n1~01", 3, "rename", {"u": "alice", "f": "f3", "name": "job", "st": ST}),
    Cop("n1~01", 4, "known", {"u": "alice", "f": "f3", "st": ST, "i": ["n1~01:1"]}),
    Cop("n1~01", 5, "delete", {"u": "alice", "f": "f3", "name": "job", "st": ST,
                               "known": ["n1~01:2"]}),
    Cop("n1~01", 6, "add", {"u": "alice", "f": "f1", "i": "n1~01:3", "d": D, "fl": ["\\Seen"],
                            "t": "2026-01-01T00:00:00+00:00", "sv": None, "uid": 7, "st": ST},
        (D,)),
    Cop("n1~01", 0, "add", {"u": "alice", "f": "f1", "i": "n1~01:3", "d": D, "fl": [],
                            "t": "2026-01-01T00:00:00+00:00", "sv": "2026-01-02T00:00:00+00:00",
                            "uid": 7, "st": ST, "fr": [["$x", True, ST]]}, (D,)),
    Cop("n1~01", 7, "flags", {"u": "alice", "st": ST, "ch": [[["\\Seen"], ["$x"], ["n1~01:3"]]]}),
    Cop("n1~01", 8, "expunge", {"u": "alice", "f": "f1", "i": ["n1~01:3"]}),
    Cop("n1~01", 9, "sub", {"u": "alice", "name": "job", "on": False, "st": ST}),
    Cop("n1~01", 10, "acl", {"u": "alice", "f": "f1", "who": "bob", "rights": "", "st": ST}),
    Cop("n1~01", 11, "use", {"u": "alice", "f": "f1", "use": ["\\Junk"], "st": ST}),
    Cop("n1~01", 12, "meta", {"u": "alice", "f": "", "actor": "alice",
                              "e": [["/private/c", "eA=="], ["/shared/d", None]], "st": ST}),
    Cop("n1~01", 13, "quota", {"root": "alice", "limits": [["STORAGE", 10]], "st": ST}),
    Cop("n1~01", 14, "reserve", {"node": "n1", "top": 5000}),
]


def test_every_kind_round_trips() -> None:
    """decode(encode(cops)) gives the same cops, for an example of every kind."""
    assert decode(encode(EXAMPLES)) == EXAMPLES
    assert {c.kind for c in EXAMPLES} >= {"account", "folder", "add", "reserve", "known"}


def test_encoding_is_compact_json() -> None:
    """One JSON list, no spaces, UTF-8."""
    cop = Cop("n1~01", 1, "sub", {"u": "zoë", "name": "ß", "on": True, "st": ST})
    data = encode([cop])
    assert data.startswith(b'[["n1~01",1,"sub",') and b" " not in data
    assert "zoë".encode() in data


@pytest.mark.parametrize("data", [
    b"", b"not json", b"{}", b"[1]", b'[["o",1,"sub",{},[]]]', b'[["",1,"reserve",{},[]]]',
    b'[["o",-1,"reserve",{"node":"n","top":1},[]]]',
    b'[["o",1.5,"reserve",{"node":"n","top":1},[]]]',
    b'[["o",1,"nope",{},[]]]', b'[["o",1,"reserve",[],[]]]',
    b'[["o",1,"reserve",{"node":"n","top":1},["xyz"]]]',
    b'[["o",1,"reserve",{"node":"n","top":1,"extra":0},[]]]',
    b'[["o",1,"reserve",{"node":"n","top":"1"},[]]]',
    b'[["o",1,"reserve",{"node":"n","top":1}]]',
    b'[["o",1,"expunge",{"u":"a","f":"","i":["no-colon"]},[]]]',
    b'[["o",1,"sub",{"u":"a","name":"x","on":1,"st":[1,2,"n"]},[]]]',
    b'[["o",1,"rename",{"u":"a","f":"f","name":"x","st":[1,2]},[]]]',
    b'[["o",1,"add",{"u":"a","f":"f","i":"x:1","d":"' + b"ab" * 32 + b'","fl":[],"t":"t",'
    b'"sv":null,"uid":4294967295,"st":[1,2,"n"]},[]]]',
    b"\xff\xfe", b"[" * 100_000,
])
def test_decode_rejects_malformed(data: bytes) -> None:
    """Malformed batches raise ValueError (never anything else)."""
    with pytest.raises(ValueError):
        decode(data)


def test_instance_ids() -> None:
    """Instance strings are "incarnation:n"; the last colon splits."""
    assert instance_str(("n1~0a", 12)) == "n1~0a:12"
    assert instance_id("n1~0a:12") == ("n1~0a", 12)
    assert instance_id("a:b:3") == ("a:b", 3)
    for bad in ("x", "x:", ":1", "x:-1", "x:1a", 5):
        with pytest.raises(ValueError):
            instance_id(bad)  # type: ignore[arg-type]


def test_check_body_names_the_field() -> None:
    """A validation error says which field is wrong."""
    with pytest.raises(ValueError, match="'top'"):
        check_body("reserve", {"node": "n"})


names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
stamps = st.tuples(st.integers(0, 2**53), st.integers(0, 2**31), names).map(list)
insts = st.builds(lambda o, n: f"{o}:{n}", names, st.integers(0, 10**12))
flags = st.lists(names, max_size=4)
add_bodies = st.fixed_dictionaries({"u": names, "f": names, "i": insts,
                                    "d": st.text("0123456789abcdef", min_size=64, max_size=64),
                                    "fl": flags, "t": names, "sv": st.none() | names,
                                    "uid": st.integers(0, 2**31 - 1), "st": stamps})
bodies = st.one_of(
    st.fixed_dictionaries({"u": names, "st": stamps,
                           "ch": st.lists(st.tuples(flags, flags, st.lists(insts, max_size=3))
                                          .map(list), max_size=3)}).map(lambda b: ("flags", b)),
    st.fixed_dictionaries({"u": names, "f": st.text(max_size=8),
                           "i": st.lists(insts, max_size=4)}).map(lambda b: ("expunge", b)),
    st.fixed_dictionaries({"u": names, "f": names, "name": names, "st": stamps},
                          optional={"cs": stamps, "use": flags,
                                    "acl": st.lists(st.tuples(names, st.text(max_size=4),
                                                              stamps).map(list), max_size=2)})
    .map(lambda b: ("folder", b)),
    st.fixed_dictionaries({"node": names, "top": st.integers(0, 2**40)})
    .map(lambda b: ("reserve", b)),
    add_bodies.map(lambda b: ("add", b)),
)
cops = st.builds(lambda origin, seq, kb: Cop(origin, seq, kb[0], kb[1],
                                             (kb[1]["d"],) if kb[0] == "add" else ()),
                 names, st.integers(0, 2**40), bodies)


@given(st.lists(cops, max_size=8))
def test_round_trip_property(batch: list[Cop]) -> None:
    """Any valid batch survives encode/decode unchanged."""
    assert decode(encode(batch)) == batch


@given(st.binary(max_size=200))
def test_decode_arbitrary_bytes_only_value_error(data: bytes) -> None:
    """Random bytes decode or raise ValueError, nothing else."""
    with contextlib.suppress(ValueError):
        decode(data)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda c: st.lists(c, max_size=5) | st.dictionaries(st.text(max_size=4), c,
                                                                        max_size=5),
                    max_leaves=30))
def test_decode_arbitrary_json_only_value_error(value: object) -> None:
    """Any JSON value (wrapped as a batch) decodes or raises ValueError."""
    for data in (json.dumps(value).encode(), json.dumps([value]).encode(),
                 json.dumps([["o", 1, "add", value, []]]).encode()):
        with contextlib.suppress(ValueError):
            decode(data)


PLAIN_ADD = {"u": "alice", "f": "f1", "i": "n1~01:3", "d": D, "fl": ["\\Seen"],
             "t": "2026-01-01T00:00:00+00:00", "sv": None, "uid": 7, "st": ST}
NEAR_MISSES = [None, True, 0, -1, 2**31 - 1, 2**31, 1.5, "", "x", "a" * 63, "A" * 64, "g" * 64,
               "0" * 64, "n1~x:1", "n1:x", ":5", "n1:" + "1" * 19, [], [""], ["x", 1], [1],
               [0, 0, "n"], [-1, 0, "n"], [0, -1, "n"], [0, 0, 1], [0, 0], [True, 0, "n"],
               [["$x", True, ST]], {"a": 1}]


@pytest.mark.parametrize("key", sorted(PLAIN_ADD) + ["fr", "extra"])
def test_fast_add_check_never_accepts_what_the_table_refuses(key: str) -> None:
    """The one-function check of plain "add" bodies accepts a body with one field
    replaced by a near miss only if the SCHEMAS table does."""
    from twistedmail.cluster.cops import _check_table, _plain_add

    assert _plain_add(PLAIN_ADD)
    for value in NEAR_MISSES:
        body = {**PLAIN_ADD, key: value}
        try:
            _check_table("add", body)
        except ValueError:
            assert not _plain_add(body), (key, value)


@given(add_bodies)
def test_fast_add_check_takes_every_valid_plain_add(body: dict) -> None:
    """Every valid "add" body without "fr" passes the fast check (it is the path taken)."""
    from twistedmail.cluster.cops import _plain_add

    assert _plain_add(body)


def _json_of(cop: Cop) -> bytes:
    return json.dumps([[cop.origin, cop.seq, cop.kind, cop.body, list(cop.blobs)]],
                      separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@given(names, st.integers(0, 2**40), add_bodies)
def test_fast_add_encoding_is_what_json_makes(origin: str, seq: int, body: dict) -> None:
    """An "add" cop of capture's shape takes the one-format encoder, and its bytes are
    exactly json.dumps' (quotes, backslashes, non-ASCII and control characters included)."""
    from twistedmail.cluster.cops import _ADD_ORDER, _encode_add

    body = {key: body[key] for key in _ADD_ORDER}  # capture's order
    cop = Cop(origin, seq, "add", body, (body["d"],))
    assert _encode_add(cop) == _json_of(cop)[1:-1]
    assert encode([cop]) == _json_of(cop)


@pytest.mark.parametrize("key", sorted(PLAIN_ADD))
def test_any_other_add_shape_encodes_as_json_does(key: str) -> None:
    """An "add" body with one field of another type (a bool or float uid, a tuple
    stamp, a dict...) or its keys in another order encodes exactly as json.dumps."""
    for value in NEAR_MISSES + [False, 2.0, (1, 2, "n"), ("x",), "é\"\\\n"]:
        cop = Cop("n1~01", 3, "add", {**PLAIN_ADD, key: value}, (D,))
        assert encode([cop]) == _json_of(cop), (key, value)
    reordered = dict(reversed(list(PLAIN_ADD.items())))
    cop = Cop("n1~01", 4, "add", reordered, (D,))
    assert encode([cop]) == _json_of(cop)


def test_a_cop_is_encoded_once_for_every_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cop sent in batches cut differently (one per peer link) is encoded once; the
    encodings kept stay bounded."""
    from twistedmail.cluster import cops as cops_module

    made: list[int] = []
    real = cops_module._encode_add

    def counting(cop: Cop) -> bytes | None:
        made.append(cop.seq)
        return real(cop)

    monkeypatch.setattr(cops_module, "_encode_add", counting)
    a, b, c = (Cop("n1~01", n, "add", {**PLAIN_ADD, "uid": n}, (D,)) for n in (1, 2, 3))
    first, second = encode([a, b]), encode([b, c])
    assert made == [1, 2, 3]
    assert decode(first) == [a, b] and decode(second) == [b, c]
    many = [Cop("n1~01", n, "add", {**PLAIN_ADD, "uid": n}, (D,)) for n in range(5000)]
    encode(many)
    assert len(cops_module._ENCODED) <= cops_module._ENCODED_LIMIT
