"""IMAP URLs (RFC 5092) as mailbox and login referrals use them (RFC 2193, RFC 2221).

:func:`build_url` makes the URL a referral carries, :func:`parse_url` is a strict
parser for the RFC 5092 §11 ABNF, :func:`referral_code` shapes a list of URLs into the
``(code, args)`` pair :func:`twistedmail.imap.responses.status_line` emits as
``NO [REFERRAL url1 url2] text`` (RFC 2193 §6 ``referral_response_code``).

Invariants:

* Every URL :func:`build_url` returns is accepted by :func:`parse_url`, and parsing gives
  back the host, port, user, auth, mailbox and UIDVALIDITY it was built from.
* Mailbox names are Unicode (``str``) on both sides; on the IMAP wire they are modified
  UTF-7 (RFC 3501 §5.1.3), in the URL UTF-8 then percent-encoded (RFC 5092 §8).
* Only ``bchar`` (mailbox) and ``achar`` (user, auth type) characters appear unescaped
  (RFC 5092 §11); dot-segments and a leading "/" in a mailbox are always escaped (§7, §7.1).
* :func:`parse_url` raises ``ValueError`` whose message names what is wrong and where;
  it never returns a half-parsed URL.

What :func:`parse_url` accepts (decisions, all stricter than or equal to the ABNF):

* ``imapurl`` only (absolute URLs); relative references (§7) are refused.
* ``iserver``: optional ``enc-user`` / ``;AUTH=`` (``*`` or an atom, §3.2); host is a DNS
  name (letters, digits, hyphens), a dotted-quad IPv4 address or a bracketed IPv6 address.
  Refused although RFC 3986 allows them: reg-names with other characters or escapes,
  IPvFuture, IPv6 zone identifiers, an empty port (``host:``), port 0.
* ``imessagelist`` (mailbox, ``;UIDVALIDITY=``, ``?enc-search``) and ``imessagepart``
  (``/;UID=``, ``/;SECTION=``, ``/;PARTIAL=``) are parsed; ``;EXPIRE=`` / ``;URLAUTH=``
  (RFC 4467 URLAUTH) are refused as unsupported.
* A mailbox with an unescaped dot-segment or leading "/" is refused (RFC 5092 §7, §7.1:
  such names MUST be percent-encoded, so the text does not name that mailbox).
* Keywords (scheme, ``;AUTH=``, ``;UIDVALIDITY=`` ...) are case-insensitive (§11).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypedDict
from urllib.parse import quote, unquote_to_bytes

from twistedmail.imap import mutf7
from twistedmail.imap.responses import Atom

DEFAULT_PORT = 143  # RFC 3501 §2.1; omitted from built URLs (RFC 3986 §6.2.3)
MAX_URL = 8192  # longer input is refused before any parsing work
_MAX_NUMBER = 4294967295  # RFC 3501 §9 number / nz-number: unsigned 32-bit

# RFC 5092 §11: uchar = unreserved / sub-delims-sh / pct-encoded; achar adds "&" "=";
# bchar adds ":" "@" "/".  quote() always keeps ALPHA DIGIT "-._~" (RFC 3986 unreserved).
_ACHAR_SAFE = "!$'()*+,&="
_BCHAR_SAFE = _ACHAR_SAFE + ":@/"
_PCT = r"%[0-9A-Fa-f]{2}"
_ACHAR = rf"(?:[A-Za-z0-9\-._~!$'()*+,&=]|{_PCT})"
_BCHAR = rf"(?:[A-Za-z0-9\-._~!$'()*+,&=:@/]|{_PCT})"
# RFC 3986 §2: every character a URI may hold at all (unreserved, reserved, "%").
_URI_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    ":/?#[]@!$&'()*+,;=%")
_BAD_PCT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_USERINFO = re.compile(rf"(?P<user>{_ACHAR}+)?(?:;AUTH=(?P<auth>\*|{_ACHAR}+))?",
                       re.IGNORECASE)
# RFC 3501 §9 auth-type = atom: CHAR minus atom-specials ( ) { SP CTL % * " \ ].
_ATOM = re.compile(r'[^\x00-\x20\x7f-\U0010ffff(){%*"\\\]]+')
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_MAILBOX = re.compile(rf"{_BCHAR}+")
_SEARCH = re.compile(rf"{_BCHAR}+")
# enc-section = 1*bchar; a "/" directly before ";" starts the next component (/;PARTIAL=).
_SECTION = re.compile(rf"(?:(?!/;){_BCHAR})+")
_VALUE = re.compile(r"[^/;?]*")
_NZ = re.compile(r"[1-9][0-9]*")
_PARTIAL = re.compile(r"([0-9]+)(?:\.([1-9][0-9]*))?")


class _PathFields(TypedDict, total=False):
    """The :class:`ImapUrl` fields the path part sets."""

    mailbox: str
    uidvalidity: int
    uid: int
    section: str
    partial: tuple[int, int | None]
    search: bytes


@dataclass(frozen=True)
class ImapUrl:
    """One parsed IMAP URL (RFC 5092 §11 ``imapurl``); text fields are decoded."""

    host: str  # without IPv6 brackets
    port: int = DEFAULT_PORT
    user: str | None = None
    auth: str | None = None  # "*" or a mechanism name; None when absent (§3.2)
    mailbox: str | None = None  # Unicode; None for a server URL (§4)
    uidvalidity: int | None = None
    uid: int | None = None
    section: str | None = None
    partial: tuple[int, int | None] | None = None
    search: bytes | None = None  # percent-decoded enc-search (§5)

    @property
    def wire_mailbox(self) -> bytes | None:
        """The mailbox as an IMAP command would send it (modified UTF-7)."""
        return None if self.mailbox is None else mutf7.encode(self.mailbox)


def build_url(host: str, port: int, mailbox: str | bytes | None, user: str | None = None,
              auth: str | None = "*", uidvalidity: int | None = None) -> str:
    """An RFC 5092 URL for a referral: ``imap://[user][;AUTH=auth]@host[:port]/mailbox``.

    ``mailbox`` is the Unicode name (``str``), its modified UTF-7 wire form (``bytes``,
    RFC 3501 §5.1.3) or None for a server URL ending in "/" (RFC 2221 login referrals).
    Raises ``ValueError`` for a bad host, port, user, auth type, name or UIDVALIDITY."""
    userinfo = _build_userinfo(user, auth)
    out = "imap://" + (userinfo + "@" if userinfo else "") + _build_host(host)
    if port != DEFAULT_PORT:
        out += ":" + str(_check_port(port))
    out += "/"
    if mailbox is None:
        if uidvalidity is not None:
            raise ValueError("UIDVALIDITY needs a mailbox")
        return out
    name = mutf7.decode(mailbox) if isinstance(mailbox, bytes) else mailbox
    out += _encode_mailbox(name)
    if uidvalidity is not None:
        out += f";UIDVALIDITY={_check_nz(uidvalidity, 'UIDVALIDITY')}"
    return out


def parse_url(text: str) -> ImapUrl:
    """Parse an absolute IMAP URL strictly (see the module docstring for what is accepted).

    Raises ``ValueError`` with the reason (and offset where useful) on anything malformed."""
    if not isinstance(text, str):
        raise ValueError(f"an IMAP URL is text, not {type(text).__name__}")
    if len(text) > MAX_URL:
        raise ValueError(f"URL longer than {MAX_URL} characters")
    _check_characters(text)
    if text[:7].lower() != "imap://":
        raise ValueError("not an imap:// URL (RFC 5092 §11 imapurl)")
    if "#" in text:
        raise ValueError(f"fragment at offset {text.index('#')}: IMAP URLs have none")
    end = 7
    while end < len(text) and text[end] not in "/?":
        end += 1
    user, auth, host, port = _parse_iserver(text[7:end])
    return ImapUrl(host=host, port=port, user=user, auth=auth, **_parse_path(text, end))


def referral_code(urls: Iterable[str | ImapUrl]) -> tuple[str, tuple[Atom, ...]]:
    """``("REFERRAL", urls)`` for ``Responder.tagged(tag, "NO", text, *referral_code(urls))``.

    RFC 2193 §6: ``"[" "REFERRAL" 1*(SP url) "]"`` — the URLs go out verbatim (never
    quoted: a quoted URL is not a URL), so they are :class:`Atom` values. Each string is
    checked with :func:`parse_url`. A URL holding "]" (an IPv6 literal host) is refused:
    RFC 3501 §9 ``resp-text-code`` text is ``1*<any TEXT-CHAR except "]">`` and no escape
    exists, so such a referral would be cut short; use a host name instead."""
    out: list[Atom] = []
    for url in urls:
        if isinstance(url, ImapUrl):
            url = _unparse(url)
        parse_url(url)
        if "]" in url:
            raise ValueError(f"{url!r}: ']' cannot appear in a response code (RFC 3501 §9)")
        out.append(Atom(url))
    if not out:
        raise ValueError("a REFERRAL code needs at least one URL (RFC 2193 §6)")
    return "REFERRAL", tuple(out)


# -- building ---------------------------------------------------------------------------

def _build_userinfo(user: str | None, auth: str | None) -> str:
    """``enc-user [iauth] / [enc-user] iauth`` (RFC 5092 §3.2), or "" for neither."""
    out = ""
    if user is not None:
        if not user:
            raise ValueError("empty user name (enc-user is 1*achar)")
        out = _quote(user, _ACHAR_SAFE, "user name")
    if auth is not None:
        if auth != "*" and not _ATOM.fullmatch(auth):
            raise ValueError(f"auth type {auth!r} is not '*' or an atom (RFC 3501 auth-type)")
        out += ";AUTH=" + (auth if auth == "*" else _quote(auth, _ACHAR_SAFE, "auth type"))
    return out


def _build_host(host: str) -> str:
    """The host as it appears in the URL: IPv6 in brackets (RFC 3986 §3.2.2)."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if ":" in bare:
        return "[" + _check_ipv6(bare) + "]"
    return _check_host(bare)


def _encode_mailbox(name: str) -> str:
    """UTF-8, percent-encoded except bchar (RFC 5092 §8, §11); "." / ".." segments and a
    leading "/" escaped too (§7, §7.1) so the path is never read as a dot-segment."""
    if not name:
        raise ValueError("empty mailbox name (enc-mailbox is 1*bchar)")
    enc = _quote(name, _BCHAR_SAFE, "mailbox name")
    if enc.startswith("/"):
        enc = "%2F" + enc[1:]
    return "/".join(seg.replace(".", "%2E") if seg in (".", "..") else seg
                    for seg in enc.split("/"))


def _quote(text: str, safe: str, what: str) -> str:
    """Percent-encode the UTF-8 of ``text``, keeping unreserved and ``safe``."""
    try:
        return quote(text, safe=safe, encoding="utf-8", errors="strict")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{what} is not encodable as UTF-8 (lone surrogate)") from exc


def _unparse(url: ImapUrl) -> str:
    """The URL text of a parsed :class:`ImapUrl` (server, mailbox and UIDVALIDITY parts)."""
    if url.uid is not None or url.search is not None:
        raise ValueError("only server and mailbox URLs can be referrals (RFC 2193 §3)")
    return build_url(url.host, url.port, url.mailbox, url.user, url.auth, url.uidvalidity)


# -- parsing ----------------------------------------------------------------------------

def _check_characters(text: str) -> None:
    """Every character must be a URI character (RFC 3986 §2) and every "%" an escape."""
    for i, ch in enumerate(text):
        if ch not in _URI_CHARS:
            raise ValueError(f"illegal character {ch!r} at offset {i}")
    bad = _BAD_PCT.search(text)
    if bad:
        raise ValueError(f"bad percent-escape {text[bad.start():bad.start() + 3]!r} "
                         f"at offset {bad.start()}")


def _parse_iserver(authority: str) -> tuple[str | None, str | None, str, int]:
    """``iserver = [iuserinfo "@"] host [":" port]`` → (user, auth, host, port)."""
    if authority.count("@") > 1:
        raise ValueError("more than one '@' in the server part")
    userinfo, at, hostport = authority.rpartition("@")
    user = auth = None
    if at:
        user, auth = _parse_userinfo(userinfo)
    host, port = _parse_hostport(hostport)
    return user, auth, host, port


def _parse_userinfo(userinfo: str) -> tuple[str | None, str | None]:
    """``enc-user [iauth] / [enc-user] iauth`` (RFC 5092 §3.2, §11)."""
    if ":" in userinfo:
        raise ValueError("':' in userinfo: IMAP URLs carry no password (RFC 5092 §3.2)")
    m = _USERINFO.fullmatch(userinfo)
    if m is None or not (m.group("user") or m.group("auth")):
        raise ValueError(f"malformed userinfo {userinfo!r} (want user, ;AUTH=x or both)")
    user = _decode_utf8(m.group("user"), "user name") if m.group("user") else None
    auth = m.group("auth")
    if auth is not None and auth != "*":
        auth = _decode_utf8(auth, "auth type")
        if not _ATOM.fullmatch(auth):
            raise ValueError(f"auth type {auth!r} is not an atom (';AUTH=%2A' is not "
                             "';AUTH=*', RFC 5092 §3.2)")
    return user, auth


def _parse_hostport(hostport: str) -> tuple[str, int]:
    """``host [":" port]``: bracketed IPv6, dotted-quad IPv4 or a DNS name."""
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            raise ValueError("unterminated IPv6 literal ('[' without ']')")
        host = _check_ipv6(hostport[1:close])
        rest = hostport[close + 1:]
        if rest and not rest.startswith(":"):
            raise ValueError(f"unexpected {rest!r} after the IPv6 literal")
    else:
        if "[" in hostport or "]" in hostport:
            raise ValueError(f"stray bracket in host {hostport!r}")
        if hostport.count(":") > 1:
            raise ValueError("an IPv6 address must be in brackets (RFC 3986 §3.2.2)")
        host, colon, port = hostport.partition(":")
        host = _check_host(host)
        rest = colon + port
    if not rest:
        return host, DEFAULT_PORT
    return host, _parse_port(rest[1:])


def _parse_port(text: str) -> int:
    """``port = *DIGIT`` (RFC 3986 §3.2.3), here 1-65535 and never empty."""
    if not text:
        raise ValueError("empty port after ':'")
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"bad port {text!r}: digits only")
    if len(text) > 5:
        raise ValueError(f"port {text} out of range 1-65535")
    return _check_port(int(text))


def _check_port(port: int) -> int:
    """A TCP port 1-65535."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port {port!r} out of range 1-65535")
    return port


def _check_ipv6(text: str) -> str:
    """The compressed form of an IPv6 address (no zone id, no IPvFuture)."""
    if text[:1] in ("v", "V"):
        raise ValueError("IPvFuture host literals are not supported")
    if "%" in text:
        raise ValueError("IPv6 zone identifiers are not supported")
    try:
        return ipaddress.IPv6Address(text).compressed
    except ValueError as exc:
        raise ValueError(f"bad IPv6 address {text!r}") from exc


def _check_host(host: str) -> str:
    """A dotted-quad IPv4 address or a DNS host name (RFC 1123 §2.1 labels)."""
    if not host:
        raise ValueError("missing host")
    if all(c.isdigit() or c == "." for c in host):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError as exc:
            raise ValueError(f"bad IPv4 address {host!r}") from exc
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in host.split(".")):
        raise ValueError(f"bad host name {host!r} (letters, digits, '-' and '.' only)")
    return host


def _parse_path(text: str, pos: int) -> _PathFields:
    """``ipath-query = ["/" [icommand]]`` (RFC 5092 §11) from ``pos``: the decoded fields."""
    if pos == len(text) or text[pos:] == "/":
        return {}
    if text[pos] == "?":
        raise ValueError(f"query at offset {pos} without a mailbox")
    body = pos + 1
    if text[body] == "/":
        raise ValueError(f"mailbox at offset {body} starts with '/': it must be "
                         "percent-encoded (RFC 5092 §7.1)")
    m = _MAILBOX.match(text, body)
    if m is None:
        raise ValueError(f"no mailbox at offset {body} (enc-mailbox is 1*bchar)")
    end = m.end()
    if text[end - 1:end + 5].upper() == "/;UID=":
        end -= 1  # that "/" introduces iuid, not part of the name
    if end == body:
        raise ValueError(f"no mailbox at offset {body} (enc-mailbox is 1*bchar)")
    out: _PathFields = {"mailbox": _decode_mailbox(text[body:end])}
    pos = _parse_params(text, end, out)
    if pos != len(text):
        raise ValueError(f"unexpected {text[pos:pos + 20]!r} at offset {pos}")
    return out


def _parse_params(text: str, pos: int, out: _PathFields) -> int:
    """``[uidvalidity] (iuid [isection] [ipartial] / ["?" enc-search])`` into ``out``."""
    value, pos = _param(text, pos, ";UIDVALIDITY=")
    if value is not None:
        out["uidvalidity"] = _parse_nz(value, "UIDVALIDITY")
    value, pos = _param(text, pos, "/;UID=")
    if value is None:
        if text.startswith("?", pos):
            m = _SEARCH.match(text, pos + 1)
            if m is None:
                raise ValueError(f"empty search after '?' at offset {pos}")
            out["search"] = unquote_to_bytes(m.group())
            return m.end()
        return pos
    out["uid"] = _parse_nz(value, "UID")
    if text[pos:pos + 10].upper() == "/;SECTION=":
        m = _SECTION.match(text, pos + 10)
        if m is None:
            raise ValueError(f"empty SECTION at offset {pos + 10}")
        out["section"] = _decode_utf8(m.group(), "section")
        pos = m.end()
    value, pos = _param(text, pos, "/;PARTIAL=")
    if value is not None:
        out["partial"] = _parse_partial(value)
    for word in (";EXPIRE=", ";URLAUTH="):
        if text[pos:pos + len(word)].upper() == word:
            raise ValueError(f"{word[1:-1]} is not supported (RFC 4467 URLAUTH)")
    return pos


def _param(text: str, pos: int, word: str) -> tuple[str | None, int]:
    """If ``word`` (case-insensitive) is at ``pos``: (its raw value, position after it)."""
    if text[pos:pos + len(word)].upper() != word:
        return None, pos
    m = _VALUE.match(text, pos + len(word))
    assert m is not None  # "*" always matches
    return m.group(), m.end()


def _parse_nz(value: str, what: str) -> int:
    """RFC 3501 nz-number: no leading zero, 1 to 2**32-1."""
    if not _NZ.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not a non-zero number")
    if len(value) > 10:
        raise ValueError(f"{what} {value} out of range 1-{_MAX_NUMBER}")
    return _check_nz(int(value), what)


def _check_nz(number: int, what: str) -> int:
    """1 <= number <= 2**32-1 (RFC 3501 §9 nz-number is 32-bit)."""
    if isinstance(number, bool) or not isinstance(number, int) or \
            not 0 < number <= _MAX_NUMBER:
        raise ValueError(f"{what} {number!r} out of range 1-{_MAX_NUMBER}")
    return number


def _parse_partial(value: str) -> tuple[int, int | None]:
    """``partial-range = number ["." nz-number]`` (RFC 5092 §11)."""
    m = _PARTIAL.fullmatch(value)
    if m is None:
        raise ValueError(f"PARTIAL {value!r} is not number[.nz-number]")
    if len(m.group(1)) > 10 or int(m.group(1)) > _MAX_NUMBER:
        raise ValueError(f"PARTIAL offset {m.group(1)} out of range 0-{_MAX_NUMBER}")
    offset, length = int(m.group(1)), m.group(2)
    if length is not None and len(length) > 10:
        raise ValueError(f"PARTIAL length {length} out of range 1-{_MAX_NUMBER}")
    return offset, None if length is None else _check_nz(int(length), "PARTIAL length")


def _decode_mailbox(enc: str) -> str:
    """enc-mailbox → Unicode name; unescaped dot-segments are refused (RFC 5092 §7)."""
    for seg in enc.split("/"):
        if seg in (".", ".."):
            raise ValueError(f"unescaped dot-segment {seg!r} in mailbox (RFC 5092 §7)")
    return _decode_utf8(enc, "mailbox")


def _decode_utf8(enc: str, what: str) -> str:
    """Percent-decode, then strict UTF-8 (RFC 5092 §8; no surrogates, no overlongs)."""
    try:
        return unquote_to_bytes(enc).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what} is not UTF-8 after percent-decoding: {exc.reason} "
                         f"at byte {exc.start}") from exc
