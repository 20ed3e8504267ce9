"""Shape checks for ENVELOPE and BODY/BODYSTRUCTURE as parsed back from the wire
(RFC 3501 §7.4.2, RFC 9051 §7.5.2), via tests/fuzz/imapsyntax.py ``parse_values``."""

from __future__ import annotations

from tests.fuzz.imapsyntax import parse_values
from twistedmail.imap.mime import ParsedMessage
from twistedmail.imap.responses import encode

_NSTRING = (type(None), bytes)


def _nstring(v: object, what: str) -> None:
    assert isinstance(v, _NSTRING), f"{what}: {v!r} is not an nstring"


def check_envelope(env: object) -> None:
    """date subject from sender reply-to to cc bcc in-reply-to message-id."""
    assert isinstance(env, list) and len(env) == 10, env
    for i in (0, 1, 8, 9):
        _nstring(env[i], f"envelope[{i}]")
    for i in range(2, 8):
        addrs = env[i]
        assert addrs is None or (isinstance(addrs, list) and addrs), f"envelope[{i}] {addrs!r}"
        for a in addrs or ():
            assert isinstance(a, list) and len(a) == 4, a
            for x in a:
                _nstring(x, "address")


def _params(v: object) -> None:
    assert v is None or (isinstance(v, list) and v and len(v) % 2 == 0), f"params {v!r}"
    for x in v or ():
        assert isinstance(x, bytes), x


def check_body(body: object, extended: bool, depth: int = 0) -> None:
    """body-type-mpart or body-type-1part, recursively."""
    assert depth < 200 and isinstance(body, list) and body, body
    if isinstance(body[0], list):  # multipart: 1*body SP subtype [SP ext]
        n = next(i for i, x in enumerate(body) if not isinstance(x, list))
        for part in body[:n]:
            check_body(part, extended, depth + 1)
        assert isinstance(body[n], bytes), f"multipart subtype {body[n]!r}"
        if extended and len(body) > n + 1:
            _params(body[n + 1])
        return
    assert len(body) >= 7, body
    media, subtype, params, cid, desc, enc, size = body[:7]
    assert isinstance(media, bytes) and isinstance(subtype, bytes), body
    _params(params)
    _nstring(cid, "body-fld-id")
    _nstring(desc, "body-fld-desc")
    assert isinstance(enc, bytes) and isinstance(size, int) and size >= 0, body
    rest = body[7:]
    # message/global is a basic type to rev1 (RFC 3501 §9), a message type to rev2
    # (RFC 9051 §9); the server sends the rev1 form: accepted either way here.
    global_msg = subtype.lower() == b"global" and rest and isinstance(rest[0], list)
    if media.lower() == b"message" and (subtype.lower() == b"rfc822" or global_msg):
        assert len(rest) >= 3, body
        check_envelope(rest[0])
        check_body(rest[1], extended, depth + 1)
        assert isinstance(rest[2], int), body
    elif media.lower() == b"text":
        assert rest and isinstance(rest[0], int), body


def check_message(raw: bytes) -> None:
    """ENVELOPE, BODY and BODYSTRUCTURE of ``raw`` encode to valid IMAP of the right shape."""
    msg = ParsedMessage(raw)
    (env,) = parse_values(encode(msg.envelope()))
    check_envelope(env)
    for extended in (False, True):
        (body,) = parse_values(encode(msg.bodystructure(extended)))
        check_body(body, extended)
