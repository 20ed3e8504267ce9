"""Typed IMAP commands: what the parser produces and the handlers consume.

Every command is a frozen dataclass.  Strings that are mailbox names are
already decoded from modified UTF-7 (RFC 3501 §5.1.3) into ``str``; the
parser does that, the handlers never see the wire form.  Raw message data
(APPEND literals, search strings) stays ``bytes``.

Sequence sets (RFC 3501 §9 ``sequence-set``) are kept symbolic, because ``*``
means "the largest number in use" and is resolved only against a mailbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# --- sequence sets -----------------------------------------------------------

STAR = -1  # stands for "*" in a SeqRange bound


@dataclass(frozen=True)
class SeqRange:
    """One ``a:b`` (or ``a``) element; bounds may be STAR; a may exceed b."""

    start: int
    end: int


@dataclass(frozen=True)
class SequenceSet:
    """RFC 3501 §9 sequence-set; ``saved`` is RFC 5182's ``$`` (SEARCHRES)."""

    ranges: tuple[SeqRange, ...] = ()
    saved: bool = False

    def resolve(self, largest: int) -> set[int]:
        """The numbers this set names when ``*`` is ``largest`` (0 = empty mailbox).

        RFC 3501 §6.4.8 / §9: ``*`` is the largest number in use; ``a:b`` is
        the same as ``b:a``.  Values above ``largest`` are kept (UID sets may
        name UIDs that do not exist; the caller intersects)."""
        out: set[int] = set()
        for r in self.ranges:
            lo = largest if r.start == STAR else r.start
            hi = largest if r.end == STAR else r.end
            if lo > hi:
                lo, hi = hi, lo
            if lo == 0 and hi == 0:
                continue
            out.update(range(max(lo, 1), hi + 1))
        return out

    def contains(self, n: int, largest: int) -> bool:
        """True if ``n`` is named by this set (no materialisation)."""
        for r in self.ranges:
            lo = largest if r.start == STAR else r.start
            hi = largest if r.end == STAR else r.end
            if lo > hi:
                lo, hi = hi, lo
            if lo <= n <= hi:
                return True
        return False


# --- FETCH -------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """A BODY[...] section spec (RFC 3501 §6.4.5).

    ``part``: nested part numbers, () for the whole message.
    ``text``: None, "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME".
    ``fields``: header field names (upper-cased) for HEADER.FIELDS(.NOT).
    """

    part: tuple[int, ...] = ()
    text: str | None = None
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class FetchAtt:
    """One fetch attribute.

    ``name`` is upper-case: ENVELOPE FLAGS INTERNALDATE RFC822 RFC822.HEADER
    RFC822.SIZE RFC822.TEXT BODY BODYSTRUCTURE UID BODY[] (name "BODY" with a
    section) BINARY BINARY.SIZE MODSEQ ...  For BODY[...]/BODY.PEEK[...]
    ``section`` is set, ``peek`` tells .PEEK, ``partial`` is (offset, count).
    """

    name: str
    section: Section | None = None
    peek: bool = False
    partial: tuple[int, int] | None = None


# --- SEARCH ------------------------------------------------------------------


@dataclass(frozen=True)
class SearchKey:
    """One search key (RFC 3501 §6.4.4).

    ``op`` is the upper-cased key name.  Argument shapes by op:
      ALL ANSWERED DELETED DRAFT FLAGGED NEW OLD RECENT SEEN UNANSWERED
        UNDELETED UNDRAFT UNFLAGGED UNSEEN: no args
      KEYWORD/UNKEYWORD: args=(keyword: str,)
      BCC BODY CC FROM SUBJECT TEXT TO: args=(needle: bytes,)
      HEADER: args=(field_name: str, needle: bytes)
      BEFORE ON SINCE SENTBEFORE SENTON SENTSINCE: args=(datetime.date,)
      LARGER SMALLER: args=(n: int,)
      UID: args=(SequenceSet,)      SEQSET: args=(SequenceSet,)
      NOT: args=(SearchKey,)        OR: args=(SearchKey, SearchKey)
      AND: args=tuple of SearchKey (a parenthesised list, or the top level)
      MODSEQ: args=(n: int,)  (RFC 7162)
      OLDER YOUNGER: args=(seconds: int,) (RFC 5032)
      SAVEDBEFORE SAVEDON SAVEDSINCE: args=(datetime.date,); SAVEDATESUPPORTED: no
        args (RFC 8514)
      EMAILID THREADID: args=(objectid: str,) (RFC 8474)
    """

    op: str
    args: tuple[object, ...] = ()


# --- commands ----------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """Base class; ``tag`` is the client's tag, ``uid`` is the UID prefix."""

    tag: str


@dataclass(frozen=True)
class Simple(Command):
    """Commands without arguments: CAPABILITY NOOP LOGOUT STARTTLS CHECK CLOSE
    EXPUNGE UNSELECT IDLE NAMESPACE."""

    name: str


@dataclass(frozen=True)
class Login(Command):
    user: str
    password: str


@dataclass(frozen=True)
class Authenticate(Command):
    mechanism: str  # upper-cased
    initial: bytes | None = None  # decoded SASL-IR initial response; b"" for "="


@dataclass(frozen=True)
class Qresync:
    """RFC 7162 §3.2.5 SELECT/EXAMINE ``QRESYNC (uidvalidity modseq [known-uids]
    [(known-sequence-set known-uid-set)])``."""

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    seq_match: tuple[SequenceSet, SequenceSet] | None = None


@dataclass(frozen=True)
class Select(Command):
    mailbox: str
    readonly: bool = False  # True for EXAMINE
    condstore: bool = False
    qresync: Qresync | None = None  # RFC 7162 §3.2.5


@dataclass(frozen=True)
class MailboxCommand(Command):
    """CREATE DELETE SUBSCRIBE UNSUBSCRIBE (name tells which)."""

    name: str
    mailbox: str
    special_use: tuple[str, ...] = ()  # RFC 6154 §3 CREATE mailbox (USE (...))


@dataclass(frozen=True)
class Rename(Command):
    old: str
    new: str


@dataclass(frozen=True)
class ListCmd(Command):
    """LIST or LSUB (``lsub`` True).  ``reference`` and ``pattern`` decoded."""

    reference: str
    pattern: str
    lsub: bool = False
    # RFC 5258 extended LIST (parse_mailbox.py): every pattern (``pattern`` is
    # the first), selection and return options (upper-cased), RFC 5819 STATUS
    # items; ``extended`` when any RFC 5258 syntax was used.
    patterns: tuple[str, ...] = ()
    select_opts: tuple[str, ...] = ()
    return_opts: tuple[str, ...] = ()
    status_items: tuple[str, ...] = ()
    extended: bool = False
    referral: bool = False  # RLIST / RLSUB (RFC 2193 §4.1, §4.2)


@dataclass(frozen=True)
class Status(Command):
    mailbox: str
    items: tuple[str, ...]  # upper-cased: MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN ...


@dataclass(frozen=True)
class Append(Command):
    mailbox: str
    flags: tuple[str, ...] = ()
    date: object | None = None  # datetime.datetime with tzinfo, or None
    message: bytes = b""
    # RFC 4469 CATENATE parts of the first message (``message`` is then b"").
    catenate: tuple[CatPart, ...] | None = None
    utf8: bool = False  # RFC 6855 §4: the first message came as UTF8 (~{n})
    more: tuple[AppendMessage, ...] = ()  # RFC 3502 MULTIAPPEND: the other messages


@dataclass(frozen=True)
class CatPart:
    """One RFC 4469 cat-part: TEXT data (``text``) or an IMAP URL (``url``)."""

    text: bytes | None = None
    url: str | None = None


@dataclass(frozen=True)
class AppendMessage:
    """One RFC 3502 append-message (flags, date, data or CATENATE parts)."""

    flags: tuple[str, ...] = ()
    date: object | None = None
    message: bytes = b""
    catenate: tuple[CatPart, ...] | None = None
    utf8: bool = False


@dataclass(frozen=True)
class Search(Command):
    key: SearchKey
    charset: str | None = None
    uid: bool = False
    returns: tuple[str, ...] | None = None  # RFC 4731 RETURN (...) options, upper-cased


@dataclass(frozen=True)
class Fetch(Command):
    sequence: SequenceSet
    atts: tuple[FetchAtt, ...]
    uid: bool = False
    changedsince: int | None = None
    vanished: bool = False  # RFC 7162 §3.2.6 UID FETCH (CHANGEDSINCE n VANISHED)


@dataclass(frozen=True)
class Store(Command):
    sequence: SequenceSet
    mode: str  # "+", "-" or ""  (add / remove / replace)
    silent: bool
    flags: tuple[str, ...]
    uid: bool = False
    unchangedsince: int | None = None


@dataclass(frozen=True)
class Copy(Command):
    sequence: SequenceSet
    mailbox: str
    uid: bool = False
    move: bool = False


@dataclass(frozen=True)
class UidExpunge(Command):
    sequence: SequenceSet


@dataclass(frozen=True)
class Enable(Command):
    capabilities: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Id(Command):
    params: tuple[tuple[str, str | None], ...] | None = None


@dataclass(frozen=True)
class Replace(Command):
    """RFC 8508 REPLACE / UID REPLACE: ``target`` is a seq-number or UID (STAR for *)."""

    target: int
    mailbox: str
    message: AppendMessage
    uid: bool = False


@dataclass(frozen=True)
class Compress(Command):
    mechanism: str  # RFC 4978 §3, upper-cased


@dataclass(frozen=True)
class AclCommand(MailboxCommand):
    """SETACL DELETEACL GETACL LISTRIGHTS MYRIGHTS (RFC 4314 §3; ``name`` tells which)."""

    identifier: str = ""
    rights: str = ""  # SETACL mod-rights, as sent (may start with "+" or "-")


@dataclass(frozen=True)
class QuotaCommand(MailboxCommand):
    """GETQUOTA SETQUOTA (``root``) and GETQUOTAROOT (``mailbox``), RFC 9208 §4.1."""

    root: str = ""
    limits: tuple[tuple[str, int], ...] = ()  # SETQUOTA (RESOURCE, limit), upper-cased


@dataclass(frozen=True)
class GetMetadataCmd(Command):
    """RFC 5464 §4.2 GETMETADATA; ``mailbox`` "" is the server; depth -1 = infinity."""

    mailbox: str
    entries: tuple[str, ...]
    maxsize: int | None = None
    depth: int = 0


@dataclass(frozen=True)
class SetMetadataCmd(Command):
    """RFC 5464 §4.3 SETMETADATA; a None value (NIL) deletes the entry."""

    mailbox: str
    entries: tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True)
class Sort(Command):
    """RFC 5256 §3 SORT / UID SORT: (key, reverse) criteria, charset, search program."""

    criteria: tuple[tuple[str, bool], ...]
    key: SearchKey
    charset: str
    uid: bool = False


@dataclass(frozen=True)
class Thread(Command):
    """RFC 5256 §3 THREAD / UID THREAD: ORDEREDSUBJECT or REFERENCES."""

    algorithm: str
    key: SearchKey
    charset: str
    uid: bool = False


AnyCommand = (
    GetMetadataCmd | SetMetadataCmd |
    Compress | Simple | Login | Authenticate | Select | MailboxCommand | Rename | ListCmd | Status
    | Append | Search | Fetch | Store | Copy | UidExpunge | Enable | Id | Replace | Sort | Thread
)

