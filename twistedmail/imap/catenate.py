"""CATENATE (RFC 4469): build a message from TEXT parts and IMAP URLs (RFC 5092).

A URL names a message (or a part of one) in this server, as the session's
own user sees it.  Accepted forms (RFC 4469 §5, RFC 5092 §5-§6):

* ``imap://[user[;AUTH=*]@]host[:port]/mailbox[;UIDVALIDITY=n]/;UID=n...``:
  the user, when present, must be the session's (a URL naming another
  account is refused); the host is not compared (the node has no canonical
  host name);
* ``/mailbox[;UIDVALIDITY=n]/;UID=n...``: an absolute path on this server;
* ``;UID=n...``: relative to the selected mailbox.

After ``;UID=n`` come optional ``/;SECTION=<section-spec>`` (the text of a
FETCH BODY[...] section, RFC 3501 §6.4.5) and ``/;PARTIAL=offset[.length]``.
URLAUTH (RFC 4467) is not supported.  Mailbox names and sections are
percent-decoded UTF-8 (RFC 5092 §3.2).  Every failure is ``NO [BADURL url]``
(RFC 4469 §6); a result over the APPENDLIMIT is ``NO [TOOBIG]`` (RFC 4469 §6,
RFC 7889).
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from twistedmail.imap.commands import CatPart, Section
from twistedmail.imap.errors import No
from twistedmail.imap.fetchrender import parsed
from twistedmail.imap.parse_fetch import _section
from twistedmail.imap.parser import ParseError, Reader
from twistedmail.imap.responses import Atom
from twistedmail.imap.session import Session
from twistedmail.store import Mailbox

_SCHEME = re.compile(r"imap://", re.IGNORECASE)
_NUMBER = re.compile(r"[1-9][0-9]{0,9}\Z")
_PARTIAL = re.compile(r"([0-9]{1,10})(?:\.([1-9][0-9]{0,9}))?\Z")  # RFC 5092 partial-range
_UIDVALIDITY = re.compile(r"UIDVALIDITY=([1-9][0-9]{0,9})\Z", re.IGNORECASE)


class BadUrl(No):
    """``NO [BADURL url]`` (RFC 4469 §6: resp-text-code "BADURL" SP url-resp-text)."""

    def __init__(self, url: str, why: str) -> None:
        # url-resp-text excludes "]" and CR/LF; keep the response well formed.
        shown = re.sub(r"[\]\r\n\x00]", "?", url) or "?"
        super().__init__(f"Bad URL: {why}", "BADURL", (Atom(shown),))


def build(session: Session, parts: tuple[CatPart, ...]) -> bytes:
    """The message the CATENATE ``parts`` describe (RFC 4469 §5), in order."""
    limit = session.node.settings.max_literal  # the advertised APPENDLIMIT
    out: list[bytes] = []
    total = 0
    for part in parts:
        data = part.text if part.text is not None else resolve(session, part.url or "")
        total += len(data)
        if total > limit:
            raise No(f"Catenated message is over the {limit} byte limit", "TOOBIG")
        out.append(data)
    return b"".join(out)


def resolve(session: Session, url: str) -> bytes:
    """The data an IMAP URL names; BadUrl when it names nothing we can read."""
    mailbox, params = _locate(session, url)
    uid_text = params.get("UID", "")
    if not _NUMBER.match(uid_text):
        raise BadUrl(url, "missing or invalid ;UID=")
    rec = mailbox.get(int(uid_text))
    if rec is None:
        raise BadUrl(url, "no such message")
    data = rec.blob.data
    if "SECTION" in params:
        section = _parse_section(url, params["SECTION"])
        found = parsed(rec.blob).section(section.part, section.text, section.fields)
        if found is None:
            raise BadUrl(url, "no such section")
        data = found
    if "PARTIAL" in params:  # RFC 5092 §6: ;PARTIAL=offset[.length]
        m = _PARTIAL.match(params["PARTIAL"])
        if m is None:
            raise BadUrl(url, "invalid ;PARTIAL=")
        start = int(m.group(1))
        data = data[start:start + int(m.group(2))] if m.group(2) else data[start:]
    return bytes(data)


def _locate(session: Session, url: str) -> tuple[Mailbox, dict[str, str]]:
    """(mailbox, {"UID": .., "SECTION": .., "PARTIAL": ..}) from ``url``."""
    path = url
    if _SCHEME.match(url):
        server, slash, path = url[7:].partition("/")
        if not slash:
            raise BadUrl(url, "no message path")
        _check_user(session, url, server)
        path = "/" + path
    if path[:5].upper() == ";UID=":  # relative to the selected mailbox
        if session.view is None:
            raise BadUrl(url, "relative URL without a selected mailbox")
        return session.view.mailbox, _params(url, path[1:].split("/;"))
    if not path.startswith("/"):
        raise BadUrl(url, "not an IMAP URL")
    chunks = path[1:].split("/;")
    name, _, validity = chunks[0].partition(";")
    mailbox = _mailbox(session, url, _decode(url, name))
    if validity:
        m = _UIDVALIDITY.match(validity)
        if m is None:
            raise BadUrl(url, "invalid ;UIDVALIDITY=")
        if int(m.group(1)) != mailbox.uidvalidity:
            raise BadUrl(url, "UIDVALIDITY does not match")
    return mailbox, _params(url, chunks[1:])


def _check_user(session: Session, url: str, server: str) -> None:
    """RFC 4469 §5: only the session's own user's messages are reachable."""
    userinfo, at, _host = server.rpartition("@")
    if not at:
        return
    user = userinfo.split(";", 1)[0]  # drop ;AUTH=<mech>
    if user and _decode(url, user) != session.username:
        raise BadUrl(url, "URL names another user")


def _params(url: str, chunks: list[str]) -> dict[str, str]:
    """``["UID=20", "SECTION=1"]`` → {"UID": "20", "SECTION": "1"} in RFC 5092 order."""
    order = ("UID", "SECTION", "PARTIAL")
    out: dict[str, str] = {}
    last = -1
    for chunk in chunks:
        key, eq, value = chunk.partition("=")
        key = key.upper()
        if not eq or key not in order or order.index(key) <= last:
            raise BadUrl(url, f"unexpected ;{key[:20]}")
        last = order.index(key)
        out[key] = value
    if "UID" not in out:
        raise BadUrl(url, "missing ;UID=")
    return out


def _decode(url: str, text: str) -> str:
    """Percent-decoded UTF-8 (RFC 5092 §3.2 enc-mailbox, enc-section, enc-user)."""
    try:
        return unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        raise BadUrl(url, "not UTF-8") from None


def _mailbox(session: Session, url: str, name: str) -> Mailbox:
    if not name:
        raise BadUrl(url, "no mailbox name")
    if name[:5].upper() == "INBOX" and (len(name) == 5 or name[5] == "/"):
        name = "INBOX" + name[5:]  # RFC 3501 §5.1
    try:
        return session.mailbox(name)
    except No:
        raise BadUrl(url, "no such mailbox") from None


def _parse_section(url: str, text: str) -> Section:
    """RFC 5092 enc-section: a FETCH section-spec, parsed by the FETCH grammar."""
    raw = _decode(url, text).encode("utf-8")
    r = Reader(b"[" + raw + b"]")
    try:
        section = _section(r)
        r.finish()
    except ParseError:
        raise BadUrl(url, "invalid ;SECTION=") from None
    return section
