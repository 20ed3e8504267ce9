"""IMAP command parser: :class:`~twistedmail.imap.wire.Request` -> typed command.

Grammar: RFC 3501 §9 with the RFC 9051 / extension additions named beside
each rule.  A hand-written recursive-descent :class:`Reader` walks the bytes
of ``Request.line`` with precompiled regexes; a literal marker followed by
CRLF (see wire.py Invariants) takes the next payload from
``Request.literals``.

Every failure is a :class:`ParseError` (never another exception); its
message is short, ASCII, and safe to echo in a BAD response.

Leniencies (documented, deliberate): trailing spaces at the end of a line
are ignored; 8-bit octets are accepted in quoted strings and in astring
atoms (RFC 6855 UTF-8 mailbox names and search strings).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import NoReturn, TypeVar

from twistedmail.imap import mutf7
from twistedmail.imap.commands import (
    STAR,
    AclCommand,
    AnyCommand,
    Append,
    AppendMessage,
    Authenticate,
    CatPart,
    Compress,
    Copy,
    Enable,
    Id,
    ListCmd,
    Login,
    MailboxCommand,
    Qresync,
    QuotaCommand,
    Rename,
    Replace,
    Select,
    SeqRange,
    SequenceSet,
    Simple,
    Status,
    UidExpunge,
)
from twistedmail.imap.parse_fetch import parse_fetch, parse_store
from twistedmail.imap.parse_mailbox import (
    parse_create,
    parse_getmetadata,
    parse_list,
    parse_setmetadata,
)
from twistedmail.imap.parse_search import (
    DATE_TIME,
    date_time,
    parse_search,
    parse_sort,
    parse_thread,
)
from twistedmail.imap.wire import TAG_RE, Request

T = TypeVar("T")

MAX32 = 1 << 32  # RFC 3501 §9: number / nz-number are 32-bit unsigned
MAX63 = 1 << 63  # RFC 7162 §7: mod-sequence-value is 63-bit

# RFC 3501 §9 ATOM-CHAR: any CHAR except atom-specials.
_ATOM = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\\]]+')
# ASTRING-CHAR = ATOM-CHAR / resp-specials; 8-bit allowed (RFC 6855 leniency).
_ASTRING_ATOM = re.compile(rb'[^\x00-\x20\x7f(){%*"\\]+')
# list-char = ATOM-CHAR / list-wildcards / resp-specials (RFC 3501 §9).
_LIST_ATOM = re.compile(rb'[^\x00-\x20\x7f(){"\\]+')
# quoted = DQUOTE *QUOTED-CHAR DQUOTE; 8-bit allowed (RFC 6855 utf8-quoted).
_QUOTED = re.compile(rb'"((?:[^"\\\r\n\x00]|\\["\\])*)"')
_UNESCAPE = re.compile(rb'\\(["\\])')
# literal / literal8 (RFC 3501 §9, RFC 7888, RFC 3516 §4.1); CRLF per wire.py.
_LITERAL = re.compile(rb"(~?)\{([0-9]{1,20})(\+?)\}\r\n")
_DIGITS = re.compile(rb"[0-9]+")
_SEQ_ITEM = rb"(?:[0-9]+|\*)(?::(?:[0-9]+|\*))?"
_SEQSET = re.compile(_SEQ_ITEM + rb"(?:," + _SEQ_ITEM + rb")*")  # RFC 3501 §9 sequence-set
_FLAG = re.compile(rb'\\\*|\\?[^\x00-\x20\x7f-\xff(){%*"\\\]]+')  # RFC 3501 §9 flag
_NOT_ATOM_CHAR = frozenset(b' ()\r\n"{')
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

SYSTEM_FLAGS = {
    f.upper(): f for f in ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")
}
SAVED = SequenceSet(saved=True)
_SEQ_CACHE: dict[bytes, SequenceSet] = {}


class ParseError(Exception):
    """A syntax error: answer BAD, tagged with ``tag`` (untagged when None)."""

    def __init__(self, tag: str | None, message: str) -> None:
        super().__init__(message)
        self.tag = tag
        self.message = message


def show(data: bytes, limit: int = 30) -> str:
    """A short, printable-ASCII rendering of ``data`` for error messages."""
    text = data[:limit].decode("ascii", "replace")
    text = "".join(c if " " <= c <= "~" else "?" for c in text)
    return text + ("..." if len(data) > limit else "")


class Reader:
    """Cursor over one request line; every method raises ParseError on misfit."""

    __slots__ = ("data", "pos", "lits", "nlit", "tag", "utf8_mode")

    def __init__(self, data: bytes, literals: tuple[bytes, ...] = ()) -> None:
        self.data = data
        self.pos = 0
        self.lits = literals
        self.nlit = 0
        self.tag: str | None = None
        self.utf8_mode = False  # RFC 6855 §3: UTF8=ACCEPT is enabled

    # --- primitives ------------------------------------------------------------

    def fail(self, message: str) -> NoReturn:
        raise ParseError(self.tag, message)

    def more(self) -> bool:
        return self.pos < len(self.data)

    def peek(self) -> int:
        """The next octet, or -1 at the end of the line."""
        return self.data[self.pos] if self.pos < len(self.data) else -1

    def skip(self, token: bytes) -> bool:
        """Consume ``token`` if it comes next."""
        if self.data.startswith(token, self.pos):
            self.pos += len(token)
            return True
        return False

    def expect(self, token: bytes, what: str) -> None:
        if not self.skip(token):
            self.fail(f"Expected {what}")

    def sp(self) -> None:
        """RFC 3501 §9: exactly one SP between tokens."""
        if self.data.startswith(b" ", self.pos):
            self.pos += 1
        elif self.pos >= len(self.data):
            self.fail("Missing argument")
        else:
            self.fail(f"Expected space before {show(self.data[self.pos:], 12)}")

    def match(self, regex: re.Pattern[bytes]) -> re.Match[bytes] | None:
        m = regex.match(self.data, self.pos)
        if m is not None:
            self.pos = m.end()
        return m

    def finish(self) -> None:
        """The whole line and every literal must have been used."""
        if self.pos < len(self.data):
            self.fail(f"Unexpected extra arguments: {show(self.data[self.pos :].lstrip())}")
        if self.nlit != len(self.lits):
            self.fail("Unexpected literal")

    # --- tokens ----------------------------------------------------------------

    def atom(self, what: str) -> bytes:
        m = self.match(_ATOM)
        if m is None:
            self.fail(f"Expected {what}" if self.more() else f"Missing {what}")
        return m.group()

    def word(self, what: str) -> str:
        """An atom, upper-cased (command names, keywords, capabilities)."""
        return self.atom(what).upper().decode("ascii")

    def try_word(self, word: bytes) -> bool:
        """Consume the atom ``word`` (upper-case, matched case-insensitively)."""
        end = self.pos + len(word)
        if self.data[self.pos : end].upper() != word:
            return False
        if end < len(self.data) and self.data[end] not in _NOT_ATOM_CHAR:
            return False
        self.pos = end
        return True

    def number(self, what: str, limit: int = MAX32, nonzero: bool = False) -> int:
        m = self.match(_DIGITS)
        if m is None:
            self.fail(f"Expected number for {what}")
        if len(m.group()) > 20 or int(m.group()) >= limit:
            self.fail(f"Number too large for {what}")
        n = int(m.group())
        if nonzero and n == 0:
            self.fail(f"Zero is not allowed for {what}")
        return n

    def quoted(self) -> bytes:
        m = self.match(_QUOTED)
        if m is None:
            self.fail("Invalid quoted string")
        body = m.group(1)
        return _UNESCAPE.sub(rb"\1", body) if b"\\" in body else body

    def literal(self, allow8: bool = False) -> bytes:
        """RFC 3501 §4.3 literal (RFC 3516 literal8 only where ``allow8``)."""
        m = self.match(_LITERAL)
        if m is None:
            self.fail("Invalid literal")
        if m.group(1) and not allow8:
            self.fail("literal8 is not allowed here")
        if self.nlit >= len(self.lits):
            self.fail("Literal data missing")
        data = self.lits[self.nlit]
        self.nlit += 1
        if len(data) != int(m.group(2)):
            self.fail("Literal size mismatch")
        return data

    def string(self, what: str) -> bytes:
        """RFC 3501 §9 string = quoted / literal."""
        c = self.peek()
        if c == 0x22:
            return self.quoted()
        if c == 0x7B:
            return self.literal()
        self.fail(f"Expected string for {what}")

    def astring(self, what: str, atom: re.Pattern[bytes] = _ASTRING_ATOM) -> bytes:
        """RFC 3501 §9 astring = 1*ASTRING-CHAR / string."""
        c = self.peek()
        if c == 0x22 or c == 0x7B:
            return self.string(what)
        if c == 0x7E and self.data.startswith(b"~{", self.pos):
            return self.literal()  # literal8: refused with a clear message
        m = self.match(atom)
        if m is None:
            self.fail(f"Expected {what}" if self.more() else f"Missing {what}")
        return m.group()

    def nstring(self, what: str) -> bytes | None:
        """RFC 3501 §9 nstring = string / NIL."""
        if self.try_word(b"NIL"):
            return None
        return self.string(what)

    def ascii(self, raw: bytes, what: str) -> str:
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            self.fail(f"Non-ASCII {what}")

    def utf8(self, raw: bytes, what: str) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.fail(f"{what} is not valid UTF-8")

    def plist(self, item: Callable[[], T], what: str, empty: bool = False) -> list[T]:
        """``"(" item *(SP item) ")"``; ``empty`` allows ``()``."""
        self.expect(b"(", f"( before {what}")
        out: list[T] = []
        if self.skip(b")"):
            if not empty:
                self.fail(f"Empty {what} list")
            return out
        while True:
            out.append(item())
            if self.skip(b")"):
                return out
            if not self.more():
                self.fail(f"Missing ) after {what} list")
            self.sp()

    # --- composite values -----------------------------------------------------

    def seqset(self) -> SequenceSet:
        """RFC 3501 §9 sequence-set, or RFC 5182 "$"."""
        if self.skip(b"$"):
            return SAVED
        m = self.match(_SEQSET)
        if m is None:
            self.fail("Invalid sequence set")
        text = m.group()
        seq = _SEQ_CACHE.get(text)
        if seq is None:
            ranges = []
            for item in text.split(b","):
                lo, _, hi = item.partition(b":")
                first = self._seqnum(lo)
                ranges.append(SeqRange(first, self._seqnum(hi) if hi else first))
            seq = SequenceSet(tuple(ranges))
            if len(text) <= 32:  # memoise short, common sets ("1:*")
                if len(_SEQ_CACHE) >= 256:
                    _SEQ_CACHE.clear()
                _SEQ_CACHE[text] = seq
        return seq

    def _seqnum(self, raw: bytes) -> int:
        """RFC 3501 §9 seq-number = nz-number / "*"."""
        if raw == b"*":
            return STAR
        if len(raw) > 10 or int(raw) >= MAX32:
            self.fail("Sequence number too large")
        n = int(raw)
        if n == 0:
            self.fail("Sequence number 0 is invalid")
        return n

    def mailbox(self, atom: re.Pattern[bytes] = _ASTRING_ATOM) -> str:
        """RFC 3501 §9 mailbox (astring), decoded per :func:`decode_mailbox`."""
        return decode_mailbox(self, self.astring("mailbox name", atom))

    def new_mailbox(self) -> str:
        """A name CREATE / RENAME will make.  Raw 8-bit is refused unless UTF-8 names are
        on: LIST would give it back in modified UTF-7, a name the client never sent, and
        mbsync 1.4 then makes a second local folder (RFC 3501 §5.1.3; RFC 6855 §3)."""
        raw = self.astring("mailbox name")
        if not raw.isascii() and not self.utf8_mode:
            self.fail("New mailbox name must be modified UTF-7 (or ENABLE UTF8=ACCEPT)")
        return decode_mailbox(self, raw)

    def list_mailbox(self) -> str:
        """RFC 3501 §9 list-mailbox = 1*list-char / string."""
        return self.mailbox(_LIST_ATOM)

    def flag(self, storable: bool = True) -> str:
        """RFC 3501 §9 flag; system flags canonicalised, keywords kept as sent."""
        m = self.match(_FLAG)
        if m is None:
            self.fail("Expected flag")
        text = m.group().decode("ascii")
        if not text.startswith("\\"):
            return text
        key = text.upper()
        if storable and key in ("\\*", "\\RECENT"):
            self.fail(f"{text} cannot be set by a client")  # RFC 3501 §2.3.2
        if storable and key not in SYSTEM_FLAGS:
            # RFC 3501 §9 flag-extension: servers MUST NOT generate undefined ones
            self.fail(f"{text} is not a system flag")
        return SYSTEM_FLAGS.get(key, text)

    def flag_list(self) -> tuple[str, ...]:
        """RFC 3501 §9 flag-list = "(" [flag *(SP flag)] ")"."""
        return tuple(self.plist(self.flag, "flag", empty=True))


def decode_mailbox(r: Reader, raw: bytes) -> str:
    """Decode a wire mailbox name into ``str`` (RFC 3501 §5.1.3, RFC 6855 §3).

    8-bit octets mean raw UTF-8 (never valid modified UTF-7); otherwise the
    name must be valid modified UTF-7.  Control characters are refused.
    "INBOX" (any case) and an "INBOX/" prefix are canonicalised (§5.1)."""
    if raw.isascii() and not r.utf8_mode:  # RFC 6855 §3: UTF-8 names once enabled
        try:
            name = mutf7.decode(raw)
        except ValueError:
            r.fail(f"Invalid modified UTF-7 mailbox name: {show(raw)}")
    else:
        name = r.utf8(raw, "Mailbox name")
    if _CONTROL.search(name):
        r.fail("Control character in mailbox name")
    if name[:5].upper() == "INBOX" and (len(name) == 5 or name[5] == "/"):
        name = "INBOX" + name[5:]
    return name


# --- commands ------------------------------------------------------------------

SIMPLE = frozenset((
    "CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "CHECK", "CLOSE", "EXPUNGE", "UNSELECT", "IDLE",
    "NAMESPACE",
))
# RFC 3501 §6.3.10, RFC 7162 §3.1.11, RFC 9051 §6.3.11, RFC 8474 §4.1, RFC 7889 §3
STATUS_ITEMS = frozenset((
    "MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE", "HIGHESTMODSEQ",
    "MAILBOXID", "APPENDLIMIT",
))
_BASE64 = re.compile(rb"[A-Za-z0-9+/]+=*|=")  # RFC 4959 §7: base64 / "="


def _login(r: Reader, tag: str) -> Login:
    r.sp()
    user = r.utf8(r.astring("user name"), "User name")
    r.sp()
    return Login(tag, user, r.utf8(r.astring("password"), "Password"))


def _authenticate(r: Reader, tag: str) -> Authenticate:
    r.sp()
    mechanism = r.word("SASL mechanism")
    if not r.more():
        return Authenticate(tag, mechanism)
    r.sp()
    m = r.match(_BASE64)
    if m is None:
        r.fail("Invalid SASL initial response")
    if m.group() == b"=":
        return Authenticate(tag, mechanism, b"")  # RFC 4959 §3: empty response
    try:
        initial = base64.b64decode(m.group(), validate=True)
    except (binascii.Error, ValueError):
        r.fail("Invalid base64 in SASL initial response")
    return Authenticate(tag, mechanism, initial)


def _select(r: Reader, tag: str, readonly: bool) -> Select:
    r.sp()
    mailbox = r.mailbox()
    condstore = False
    qresync = None
    if r.skip(b" "):  # RFC 4466 §2.1 select-params
        params = r.plist(lambda: _select_param(r), "SELECT parameter")
        condstore = True  # RFC 7162 §3.1.8 CONDSTORE; §3.2.5: QRESYNC implies it
        qresync = next((p for p in params if isinstance(p, Qresync)), None)
    return Select(tag, mailbox, readonly, condstore, qresync)


def _select_param(r: Reader) -> str | Qresync:
    param = r.word("SELECT parameter")
    if param == "QRESYNC":
        r.sp()
        return _qresync(r)
    if param != "CONDSTORE":  # RFC 7162 §3.1.8
        r.fail(f"Unsupported SELECT parameter {show(param.encode())}")
    return param


def _qresync(r: Reader) -> Qresync:
    """RFC 7162 §3.2.5: "(" uidvalidity SP mod-sequence-value [SP known-uids]
    [SP seq-match-data] ")"; seq-match-data = "(" sequence-set SP uid-set ")"."""
    r.expect(b"(", "( after QRESYNC")
    uidvalidity = r.number("UIDVALIDITY", MAX32, nonzero=True)
    r.sp()
    modseq = r.number("mod-sequence", MAX63, nonzero=True)
    known = match = None
    space = r.skip(b" ")
    if space and r.peek() != 0x28:
        known = r.seqset()
        space = r.skip(b" ")
    if space:
        r.expect(b"(", "( before QRESYNC sequence match data")
        seqs = r.seqset()
        r.sp()
        match = (seqs, r.seqset())
        r.expect(b")", ") after QRESYNC sequence match data")
    r.expect(b")", ") after QRESYNC parameters")
    return Qresync(uidvalidity, modseq, known, match)


def _mailbox_command(r: Reader, tag: str, name: str) -> MailboxCommand:
    r.sp()
    return MailboxCommand(tag, name, r.mailbox())


def _rename(r: Reader, tag: str) -> Rename:
    r.sp()
    old = r.mailbox()
    r.sp()
    return Rename(tag, old, r.new_mailbox())


def _list(r: Reader, tag: str, lsub: bool) -> ListCmd:
    return parse_list(r, tag, lsub)  # RFC 5258 / 5819 / 6154: parse_mailbox.py


def _rlist(r: Reader, tag: str, lsub: bool) -> ListCmd:
    """RFC 2193 §4.1 RLIST / §4.2 RLSUB: LIST / LSUB syntax (twistedmail/imap/referrals.py)."""
    cmd = parse_list(r, tag, lsub)
    return ListCmd(**{**cmd.__dict__, "referral": True})


def _status(r: Reader, tag: str) -> Status:
    r.sp()
    mailbox = r.mailbox()
    r.sp()
    items = r.plist(lambda: r.word("STATUS item"), "STATUS item")
    for item in items:
        if item not in STATUS_ITEMS:
            r.fail(f"Unknown STATUS item {show(item.encode())}")
    return Status(tag, mailbox, tuple(items))


def _append(r: Reader, tag: str) -> Append:
    r.sp()
    mailbox = r.mailbox()
    messages = []
    while True:  # RFC 3502 §6.3.11: 1*append-message
        r.sp()
        messages.append(_append_message(r))
        if not r.more():
            break
    first = messages[0]
    return Append(tag, mailbox, first.flags, first.date, first.message, first.catenate,
                  first.utf8, tuple(messages[1:]))


def _append_message(r: Reader) -> AppendMessage:
    """RFC 4466 §2.1 append-message = append-opts SP append-data (without the lead SP)."""
    flags: tuple[str, ...] = ()
    date = None
    if r.peek() == 0x28:
        flags = r.flag_list()
        r.sp()
    if r.peek() == 0x22:
        if DATE_TIME.match(r.data, r.pos) is None and _QUOTED.fullmatch(r.data, r.pos):
            r.fail("APPEND message must be a literal")
        date = date_time(r)
        r.sp()
    if r.try_word(b"CATENATE"):  # RFC 4469 §5
        r.sp()
        parts = tuple(r.plist(lambda: _cat_part(r), "CATENATE part"))
        return AppendMessage(flags, date, b"", parts)
    if r.try_word(b"UTF8"):  # RFC 6855 §4
        return AppendMessage(flags, date, _utf8_data(r), utf8=True)
    if r.peek() not in (0x7B, 0x7E):
        r.fail("APPEND message must be a literal")
    return AppendMessage(flags, date, r.literal(allow8=True))  # RFC 3516 §4.4


def _cat_part(r: Reader) -> CatPart:
    """RFC 4469 §5 cat-part = text-literal / url; RFC 6855 §4 adds utf8-literal."""
    if r.try_word(b"TEXT"):
        r.sp()
        if r.peek() not in (0x7B, 0x7E):
            r.fail("CATENATE TEXT must be a literal")
        return CatPart(text=r.literal(allow8=True))
    if r.try_word(b"URL"):
        r.sp()
        return CatPart(url=r.utf8(r.astring("URL"), "URL"))
    if r.try_word(b"UTF8"):
        return CatPart(text=_utf8_data(r))
    r.fail("Expected TEXT or URL in CATENATE")


def _utf8_data(r: Reader) -> bytes:
    """RFC 6855 §4 ``"UTF8" SP "(" literal8 ")"``; BAD unless UTF8=ACCEPT is enabled."""
    if not r.utf8_mode:
        r.fail("UTF8 data needs ENABLE UTF8=ACCEPT first")
    r.sp()
    r.expect(b"(", "( after UTF8")
    if r.peek() != 0x7E:
        r.fail("UTF8 data must be a literal8")
    data = r.literal(allow8=True)
    r.expect(b")", ") after UTF8 data")
    return data


def _replace(r: Reader, tag: str, uid: bool) -> Replace:
    """RFC 8508 §6: "REPLACE" SP seq-number SP mailbox append-message."""
    r.sp()
    target = STAR if r.skip(b"*") else r.number("message number", nonzero=True)
    r.sp()
    mailbox = r.mailbox()
    r.sp()
    return Replace(tag, target, mailbox, _append_message(r), uid)


def _enable(r: Reader, tag: str) -> Enable:
    caps = []
    while r.more():  # RFC 5161 §4: 1*(SP capability)
        r.sp()
        caps.append(r.word("capability"))
    if not caps:
        r.fail("Missing capability")
    return Enable(tag, tuple(caps))


def _id(r: Reader, tag: str) -> Id:
    r.sp()  # RFC 2971 §4: "(" *(string SP nstring) ")" / nil
    if r.try_word(b"NIL"):
        return Id(tag, None)

    def pair() -> tuple[str, str | None]:
        key = r.string("ID field").decode("utf-8", "replace")
        r.sp()
        value = r.nstring("ID value")
        return key, None if value is None else value.decode("utf-8", "replace")

    return Id(tag, tuple(r.plist(pair, "ID parameter", empty=True)))


def _copy(r: Reader, tag: str, uid: bool, move: bool) -> Copy:
    r.sp()
    seq = r.seqset()
    r.sp()
    return Copy(tag, seq, r.mailbox(), uid, move)


def _uid_expunge(r: Reader, tag: str) -> UidExpunge:
    r.sp()  # RFC 4315 §2.1
    return UidExpunge(tag, r.seqset())


def _compress(r: Reader, tag: str) -> Compress:
    r.sp()  # RFC 4978 §5: "COMPRESS" SP algorithm
    return Compress(tag, r.word("compression mechanism"))


def _acl(r: Reader, tag: str, name: str, identifier: bool, rights: bool) -> AclCommand:
    """RFC 4314 §3: mailbox [SP identifier [SP mod-rights]] (all astrings)."""
    r.sp()
    mailbox = r.mailbox()
    ident = mod = ""
    if identifier:
        r.sp()
        ident = r.utf8(r.astring("identifier"), "Identifier")
    if rights:
        r.sp()
        mod = r.utf8(r.astring("rights"), "Rights")
    return AclCommand(tag, name, mailbox, identifier=ident, rights=mod)


def _quota_root(r: Reader, tag: str, name: str) -> QuotaCommand:
    """RFC 9208 §4.1.1 GETQUOTA quota-root; §4.1.3 SETQUOTA adds the limits."""
    r.sp()
    root = r.utf8(r.astring("quota root"), "Quota root")
    if name == "GETQUOTA":
        return QuotaCommand(tag, name, "", root=root)
    r.sp()

    def resource() -> tuple[str, int]:  # setquota-resource = resource-name SP number64
        res = r.word("resource name")
        r.sp()
        return res, r.number("resource limit", MAX63)

    limits = tuple(r.plist(resource, "resource", empty=True))
    return QuotaCommand(tag, name, "", root=root, limits=limits)


def _notify(r: Reader, tag: str) -> AnyCommand:
    from twistedmail.imap.notify import parse_notify

    return parse_notify(r, tag)  # type: ignore[return-value]


_Handler = Callable[[Reader, str], AnyCommand]

_COMMANDS: dict[str, _Handler] = {
    "LOGIN": _login,
    "AUTHENTICATE": _authenticate,
    "SELECT": lambda r, t: _select(r, t, False),
    "EXAMINE": lambda r, t: _select(r, t, True),
    "CREATE": parse_create,  # RFC 6154 §3 CREATE-SPECIAL-USE
    "GETMETADATA": parse_getmetadata,  # RFC 5464
    "SETMETADATA": parse_setmetadata,
    "DELETE": lambda r, t: _mailbox_command(r, t, "DELETE"),
    "SUBSCRIBE": lambda r, t: _mailbox_command(r, t, "SUBSCRIBE"),
    "UNSUBSCRIBE": lambda r, t: _mailbox_command(r, t, "UNSUBSCRIBE"),
    "RENAME": _rename,
    "LIST": lambda r, t: _list(r, t, False),
    "LSUB": lambda r, t: _list(r, t, True),
    "RLIST": lambda r, t: _rlist(r, t, False),  # RFC 2193 §4.1
    "RLSUB": lambda r, t: _rlist(r, t, True),  # RFC 2193 §4.2
    "STATUS": _status,
    "APPEND": _append,
    "ENABLE": _enable,
    "ID": _id,
    "COMPRESS": _compress,  # RFC 4978
    "SEARCH": lambda r, t: parse_search(r, t, False),
    "SORT": lambda r, t: parse_sort(r, t, False),  # RFC 5256
    "THREAD": lambda r, t: parse_thread(r, t, False),  # RFC 5256
    "FETCH": lambda r, t: parse_fetch(r, t, False),
    "STORE": lambda r, t: parse_store(r, t, False),
    "COPY": lambda r, t: _copy(r, t, False, False),
    "MOVE": lambda r, t: _copy(r, t, False, True),  # RFC 6851
    "NOTIFY": lambda r, t: _notify(r, t),  # RFC 5465 (grammar in notify.py)
    "REPLACE": lambda r, t: _replace(r, t, False),  # RFC 8508
    # RFC 4314 §3
    "SETACL": lambda r, t: _acl(r, t, "SETACL", True, True),
    "DELETEACL": lambda r, t: _acl(r, t, "DELETEACL", True, False),
    "GETACL": lambda r, t: _acl(r, t, "GETACL", False, False),
    "LISTRIGHTS": lambda r, t: _acl(r, t, "LISTRIGHTS", True, False),
    "MYRIGHTS": lambda r, t: _acl(r, t, "MYRIGHTS", False, False),
    # RFC 9208 §4.1
    "GETQUOTA": lambda r, t: _quota_root(r, t, "GETQUOTA"),
    "SETQUOTA": lambda r, t: _quota_root(r, t, "SETQUOTA"),
    "GETQUOTAROOT": lambda r, t: QuotaCommand(t, "GETQUOTAROOT", _sp_mailbox(r)),
}


def _sp_mailbox(r: Reader) -> str:
    r.sp()
    return r.mailbox()

_UID_COMMANDS: dict[str, _Handler] = {  # RFC 3501 §6.4.8
    "SEARCH": lambda r, t: parse_search(r, t, True),
    "SORT": lambda r, t: parse_sort(r, t, True),
    "THREAD": lambda r, t: parse_thread(r, t, True),
    "FETCH": lambda r, t: parse_fetch(r, t, True),
    "STORE": lambda r, t: parse_store(r, t, True),
    "COPY": lambda r, t: _copy(r, t, True, False),
    "MOVE": lambda r, t: _copy(r, t, True, True),
    "EXPUNGE": _uid_expunge,
    "REPLACE": lambda r, t: _replace(r, t, True),  # RFC 8508
}


def _dispatch(r: Reader, tag: str) -> AnyCommand:
    name = r.word("command name")
    if name in SIMPLE:
        return Simple(tag, name)
    if name == "UID":
        r.sp()
        sub = r.word("UID command")
        handler = _UID_COMMANDS.get(sub)
        if handler is None:
            r.fail(f"Unknown UID command {show(sub.encode())}")
        return handler(r, tag)
    handler = _COMMANDS.get(name)
    if handler is None:
        r.fail(f"Unknown command {show(name.encode())}")
    return handler(r, tag)


def parse_request(req: Request, utf8: bool = False) -> AnyCommand:
    """Parse one :class:`Request` into a command; raises only :class:`ParseError`.

    ``utf8``: the session enabled UTF8=ACCEPT (RFC 6855 §3)."""
    line = req.line.rstrip(b" ")  # leniency: trailing spaces
    r = Reader(line, req.literals)
    r.utf8_mode = utf8
    m = TAG_RE.match(line)
    if m is None:
        raise ParseError(None, "Missing or invalid tag")
    tag = m.group().decode("ascii")
    r.tag, r.pos = tag, m.end()
    r.sp()
    cmd = _dispatch(r, tag)
    r.finish()
    return cmd
