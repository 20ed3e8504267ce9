"""Modified UTF-7 for IMAP mailbox names (RFC 3501 §5.1.3).

Rules enforced by :func:`decode` (each violation raises ``ValueError``):

* printable US-ASCII 0x20-0x25 and 0x27-0x7e represent themselves;
  every other octet outside a shift sequence is invalid (8-bit, controls);
* "&" shifts to modified BASE64 (RFC 2152 alphabet with "," for "/") of
  UTF-16BE, "-" shifts back; "&-" stands for "&";
* there is no implicit shift back: an unterminated "&..." is invalid;
* the encoding must be minimal: no printable ASCII inside BASE64, no null
  shift ("-&" immediately re-entering BASE64), no unused trailing BASE64
  characters and the padding bits must be zero;
* the UTF-16 must be well formed (surrogates paired).

:func:`encode` produces exactly the canonical form, so
``decode(encode(s)) == s`` for every ``str`` without lone surrogates, and
``encode(decode(b)) == b`` for every valid ``b``.
"""

from __future__ import annotations

import base64
import binascii
import re

_B64_RUN = re.compile(rb"&([A-Za-z0-9+,]*)-")
_PRINTABLE = re.compile(rb"[\x20-\x25\x27-\x7e]*")


def _is_direct(ch: str) -> bool:
    """True if ``ch`` is printable US-ASCII and so stands for itself."""
    return "\x20" <= ch <= "\x7e"


def _encode_run(run: str) -> bytes:
    """BASE64-encode one run of non-ASCII characters as ``&...-``."""
    raw = base64.b64encode(run.encode("utf-16-be")).rstrip(b"=")
    return b"&" + raw.replace(b"/", b",") + b"-"


def encode(name: str) -> bytes:
    """Encode ``name`` into modified UTF-7 (RFC 3501 §5.1.3).

    Raises ``ValueError`` for lone surrogates (not representable in UTF-16).
    """
    try:
        return _encode(name)
    except UnicodeEncodeError as exc:
        raise ValueError("modified UTF-7: lone surrogate in name") from exc


def _encode(name: str) -> bytes:
    """Body of :func:`encode`; may raise ``UnicodeEncodeError``."""
    out: list[bytes] = []
    run: list[str] = []
    for ch in name:
        if _is_direct(ch):
            if run:
                out.append(_encode_run("".join(run)))
                run.clear()
            out.append(b"&-" if ch == "&" else ch.encode("ascii"))
        else:
            run.append(ch)
    if run:
        out.append(_encode_run("".join(run)))
    return b"".join(out)


def _decode_run(b64: bytes) -> str:
    """Decode the modified BASE64 between "&" and "-" (non-empty)."""
    if len(b64) % 4 == 1:
        raise ValueError("modified UTF-7: truncated BASE64 run")
    std = b64.replace(b",", b"/")
    try:
        raw = base64.b64decode(std + b"=" * (-len(std) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("modified UTF-7: bad BASE64") from exc
    # Non-minimal: padding bits must be zero (re-encoding must give the same text).
    if base64.b64encode(raw).rstrip(b"=") != std:
        raise ValueError("modified UTF-7: non-zero padding bits")
    if len(raw) % 2:
        raise ValueError("modified UTF-7: odd number of UTF-16 octets")
    try:
        text = raw.decode("utf-16-be")
    except UnicodeDecodeError as exc:
        raise ValueError("modified UTF-7: unpaired surrogate") from exc
    if any(_is_direct(ch) for ch in text):
        raise ValueError("modified UTF-7: printable ASCII encoded in BASE64")
    return text


def decode(data: bytes) -> str:
    """Decode modified UTF-7 ``data`` into ``str``; ``ValueError`` if invalid."""
    out: list[str] = []
    pos = 0
    n = len(data)
    after_run = False
    while pos < n:
        m = _PRINTABLE.match(data, pos)
        assert m is not None  # "*" always matches
        if m.end() > pos:
            out.append(m.group().decode("ascii"))
            pos = m.end()
            after_run = False
            continue
        if data[pos] != 0x26:  # not "&": 8-bit or control octet
            raise ValueError(f"modified UTF-7: invalid octet 0x{data[pos]:02x}")
        if data.startswith(b"&-", pos):
            out.append("&")
            pos += 2
            after_run = False
            continue
        run = _B64_RUN.match(data, pos)
        if run is None:
            raise ValueError("modified UTF-7: unterminated or invalid BASE64 run")
        if after_run:
            raise ValueError("modified UTF-7: null shift between BASE64 runs")
        out.append(_decode_run(run.group(1)))
        pos = run.end()
        after_run = True
    return "".join(out)
