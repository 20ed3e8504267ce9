"""Ops: every mutation of the store, as a typed, frozen, serialisable value.

``MailStore.apply(op)`` is the only way to change the store; the same op stream
will later be shipped to peers.  ``op.to_dict()`` is JSON-safe (bytes as
base64, frozensets as sorted lists, datetimes as ISO 8601, tuples as lists) and
``op_from_dict(d)`` rebuilds an equal op.

Invariants:
- Ops are immutable and self-contained: applying one never needs randomness or
  the clock (ids and dates are chosen when the op is built, e.g. by
  ``CreateMailbox.new`` / ``Append.new``), so equal stores + equal ops give
  equal results.
- Fields are normalised on construction: ``uids`` ascending and unique,
  ``flags`` a frozenset of non-empty str, ``internaldate`` aware with a
  fixed-offset zone (``datetime.timezone``).
- Single-node ops (StoreFlags, Expunge, Copy) name messages by local UID; the
  cluster milestone translates them to instance ids.  Mailboxes are named by
  (user, name); the mailbox UUID travels in CreateMailbox.
"""

from __future__ import annotations

import base64
import datetime
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from .mailstore import MailStore

STORE_MODES = ("add", "remove", "replace")


class Op:
    """Base class of every op; subclasses register under their class name."""

    __slots__ = ()
    registry: ClassVar[dict[str, type[Op]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Op.registry[cls.__name__] = cls

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict; ``op_from_dict`` inverts it."""
        out: dict[str, Any] = {"op": type(self).__name__}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            codec = _CODECS.get(f.name)
            out[f.name] = codec[0](value) if codec and value is not None else value
        return out


def op_from_dict(d: dict[str, Any]) -> Op:
    """Rebuild the op ``to_dict`` produced; ``ValueError`` if malformed."""
    try:
        cls = Op.registry[d["op"]]
    except (KeyError, TypeError):
        raise ValueError(f"not an op: {d!r:.200}") from None
    try:
        kwargs: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name not in d:
                continue  # let the dataclass apply its default (or complain)
            value = d[f.name]
            codec = _CODECS.get(f.name)
            kwargs[f.name] = codec[1](value) if codec and value is not None else value
        return cls(**kwargs)
    except (TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"bad {d['op']} op: {e}") from None


# --- field normalisation -------------------------------------------------------


def _set(op: Op, name: str, value: object) -> None:
    object.__setattr__(op, name, value)


def _uids(values: Iterable[int]) -> tuple[int, ...]:
    unique = set(values)
    if not all(type(u) is int and u > 0 for u in unique):
        raise ValueError("uids must be positive ints")
    return tuple(sorted(unique))


def _flags(values: Iterable[str]) -> frozenset[str]:
    out = values if isinstance(values, frozenset) else frozenset(values)
    for flag in out:
        if not isinstance(flag, str) or not flag:
            raise ValueError(f"flag must be a non-empty str, got {flag!r}")
    return out


def _str(op: Op, *names: str) -> None:
    for name in names:
        if not isinstance(getattr(op, name), str):
            raise ValueError(f"{type(op).__name__}.{name} must be a str")


def _aware(when: datetime.datetime) -> datetime.datetime:
    """``when`` with a fixed-offset zone (what IMAP's date-time carries, RFC 3501
    §9); a zone with rules (zoneinfo) would not survive the ISO roundtrip."""
    offset = when.utcoffset() if isinstance(when, datetime.datetime) else None
    if offset is None:
        raise ValueError("internaldate must be a timezone-aware datetime")
    if type(when.tzinfo) is datetime.timezone:
        return when
    return when.replace(tzinfo=datetime.timezone(offset), fold=0)


# --- ops -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateAccount(Op):
    """Create the account and its INBOX; a no-op if it exists.

    ``special_mailboxes``: (name, special-use attribute) pairs created with it
    (RFC 6154); their ids are derived from the user name, so apply stays
    deterministic.  ``CreateAccount.standard`` gives every new account
    Drafts, Sent, Trash, Junk and Archive."""

    user: str
    special_mailboxes: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        _str(self, "user")
        _set(self, "special_mailboxes", _pairs(self.special_mailboxes))

    @classmethod
    def standard(cls, user: str) -> CreateAccount:
        """The account with the default special-use mailboxes (RFC 6154 §2)."""
        return cls(user, DEFAULT_SPECIAL_MAILBOXES)


@dataclass(frozen=True, slots=True)
class DeleteAccount(Op):
    """Delete the account, every mailbox and subscription (UIDVALIDITY
    history is kept, so a re-created account gets larger values)."""

    user: str

    def __post_init__(self) -> None:
        _str(self, "user")


@dataclass(frozen=True, slots=True)
class CreateMailbox(Op):
    """CREATE (RFC 3501 §6.3.3), creating missing superiors too.

    Superiors get ids derived from ``mailbox_id`` (uuid5), so apply stays
    deterministic.  ``special_use``: RFC 6154 attributes of the new mailbox
    (CREATE-SPECIAL-USE), e.g. {"\\Drafts"}; superiors get none.
    ``superiors=False`` creates only ``name`` (a replicated folder: its
    superiors are folders of their own, DESIGN.md §4)."""

    user: str
    name: str
    mailbox_id: str
    special_use: frozenset[str] = frozenset()
    superiors: bool = True

    def __post_init__(self) -> None:
        _str(self, "user", "name", "mailbox_id")
        if not self.mailbox_id:
            raise ValueError("CreateMailbox.mailbox_id must not be empty")
        _set(self, "special_use", _attrs(self.special_use))

    @classmethod
    def new(cls, user: str, name: str, special_use: Iterable[str] = ()) -> CreateMailbox:
        """An op with a fresh random mailbox id."""
        return cls(user, name, uuid.uuid4().hex, frozenset(special_use))


@dataclass(frozen=True, slots=True)
class DeleteMailbox(Op):
    """DELETE (RFC 3501 §6.3.4): the mailbox and its messages; inferiors stay."""

    user: str
    name: str

    def __post_init__(self) -> None:
        _str(self, "user", "name")


@dataclass(frozen=True, slots=True)
class RenameMailbox(Op):
    """RENAME (RFC 3501 §6.3.5), inferiors included; RENAME INBOX moves its
    messages to a new mailbox.  Mailboxes the rename creates (missing
    superiors, the INBOX target) get ids derived from ``id_seed``; when it is
    empty, from (store node name, user, old, new).  Subscriptions are left alone: they name
    names, not mailboxes (RFC 3501 §6.3.6).  ``inferiors=False`` renames only
    ``old`` and creates no superiors (replication renames folder by folder)."""

    user: str
    old: str
    new: str
    id_seed: str = ""
    inferiors: bool = True

    def __post_init__(self) -> None:
        _str(self, "user", "old", "new", "id_seed")

    @classmethod
    def fresh(cls, user: str, old: str, new: str) -> RenameMailbox:
        """An op with a random id seed."""
        return cls(user, old, new, uuid.uuid4().hex)


@dataclass(frozen=True, slots=True)
class Subscribe(Op):
    """SUBSCRIBE (RFC 3501 §6.3.6); the mailbox need not exist."""

    user: str
    name: str

    def __post_init__(self) -> None:
        _str(self, "user", "name")


@dataclass(frozen=True, slots=True)
class Unsubscribe(Op):
    """UNSUBSCRIBE (RFC 3501 §6.3.7); a no-op if not subscribed."""

    user: str
    name: str

    def __post_init__(self) -> None:
        _str(self, "user", "name")


@dataclass(frozen=True, slots=True)
class Append(Op):
    """APPEND (RFC 3501 §6.3.11) of one message, identified cluster-wide by
    ``instance_id`` = (origin node, origin sequence).  ``savedate`` (RFC 8514)
    is chosen by ``new``; None means "the internaldate".  ``uid``: a UID hint
    (a replicated message's UID on its origin), used when >= the mailbox's
    UIDNEXT, else ignored; 0 = none."""

    user: str
    mailbox: str
    data: bytes
    flags: frozenset[str]
    internaldate: datetime.datetime
    instance_id: tuple[str, int]
    savedate: datetime.datetime | None = None
    uid: int = 0

    def __post_init__(self) -> None:
        _str(self, "user", "mailbox")
        if not isinstance(self.data, bytes):
            _set(self, "data", bytes(self.data))
        _set(self, "flags", _flags(self.flags))
        _set(self, "internaldate", _aware(self.internaldate))
        ident = self.instance_id
        if (
            not isinstance(ident, tuple | list)
            or len(ident) != 2
            or not isinstance(ident[0], str)
            or type(ident[1]) is not int
        ):
            raise ValueError(f"instance_id must be (str, int), got {ident!r}")
        if type(ident) is not tuple:
            _set(self, "instance_id", (ident[0], ident[1]))
        if self.savedate is not None:
            _set(self, "savedate", _aware(self.savedate))
        if type(self.uid) is not int or self.uid < 0:
            raise ValueError("uid must be an int >= 0")

    @classmethod
    def new(
        cls,
        store: MailStore,
        user: str,
        mailbox: str,
        data: bytes,
        flags: Iterable[str] = (),
        internaldate: datetime.datetime | None = None,
    ) -> Append:
        """An op with the store's next instance id; internaldate defaults to
        the store clock's now, whole seconds, UTC, and so does savedate."""
        savedate = None  # RFC 8514: saved now; None = the internaldate object itself
        if internaldate is not None:
            savedate = datetime.datetime.fromtimestamp(int(store.clock()), datetime.UTC)
        else:
            now = int(store.clock())
            internaldate = datetime.datetime.fromtimestamp(now, datetime.UTC)
        return cls(user, mailbox, data, frozenset(flags), internaldate, store.next_instance_id(),
                   savedate)


@dataclass(frozen=True, slots=True)
class StoreFlags(Op):
    """STORE (RFC 3501 §6.4.6): ``mode`` is "add" (+FLAGS), "remove" (-FLAGS) or
    "replace" (FLAGS).  With ``unchangedsince`` (RFC 7162 §3.2), messages
    whose modseq is above it are left alone and reported in ``StoreFailed``."""

    user: str
    mailbox: str
    uids: tuple[int, ...]
    mode: str
    flags: frozenset[str]
    unchangedsince: int | None = None

    def __post_init__(self) -> None:
        _str(self, "user", "mailbox")
        if self.mode not in STORE_MODES:
            raise ValueError(f"mode must be one of {STORE_MODES}, got {self.mode!r}")
        _set(self, "uids", _uids(self.uids))
        _set(self, "flags", _flags(self.flags))
        if self.unchangedsince is not None and type(self.unchangedsince) is not int:
            raise ValueError("unchangedsince must be an int or None")


@dataclass(frozen=True, slots=True)
class Expunge(Op):
    """Remove the named messages (the IMAP layer picks the \\Deleted ones)."""

    user: str
    mailbox: str
    uids: tuple[int, ...]

    def __post_init__(self) -> None:
        _str(self, "user", "mailbox")
        _set(self, "uids", _uids(self.uids))


@dataclass(frozen=True, slots=True)
class Copy(Op):
    """COPY (RFC 3501 §6.4.7) or, with ``move``, MOVE (RFC 6851): copy then
    expunge from ``src`` in one step.  UIDs absent from ``src`` are skipped."""

    user: str
    src: str
    uids: tuple[int, ...]
    dst: str
    move: bool = False
    dst_user: str = ""  # owner of ``dst`` when not ``user`` (shared folders, RFC 4314)
    # RFC 8514 SAVEDATE of the copies; None = the applying store's clock.
    savedate: datetime.datetime | None = None

    def __post_init__(self) -> None:
        _str(self, "user", "src", "dst", "dst_user")
        _set(self, "uids", _uids(self.uids))
        if type(self.move) is not bool:
            raise ValueError("move must be a bool")
        if self.savedate is not None:
            _set(self, "savedate", _aware(self.savedate))


@dataclass(frozen=True, slots=True)
class Regenerate(Op):
    """``convert -e``: new UIDVALIDITY, messages renumbered 1..n in order."""

    user: str
    mailbox: str

    def __post_init__(self) -> None:
        _str(self, "user", "mailbox")


@dataclass(frozen=True, slots=True)
class SetAcl(Op):
    """SETACL (RFC 4314 §3.1): ``identifier`` holds exactly ``rights`` (letters of
    ``acl.ALL_RIGHTS``, "c"/"d" expanded) on the mailbox; "" removes the entry."""

    user: str
    mailbox: str
    identifier: str
    rights: str

    def __post_init__(self) -> None:
        _str(self, "user", "mailbox", "identifier", "rights")
        if not self.identifier:
            raise ValueError("SetAcl.identifier must not be empty")
        from .acl import canonical, parse_rights  # RFC 4314 §2.1; BadRights is a ValueError

        _set(self, "rights", canonical(parse_rights(self.rights)))


@dataclass(frozen=True, slots=True)
class DeleteAcl(Op):
    """DELETEACL (RFC 4314 §3.2): drop ``identifier``'s entry; a no-op if none."""

    user: str
    mailbox: str
    identifier: str

    def __post_init__(self) -> None:
        _str(self, "user", "mailbox", "identifier")


@dataclass(frozen=True, slots=True)
class SetQuota(Op):
    """SETQUOTA (RFC 9208 §4.1.3): the limits of quota ``root`` become exactly
    ``limits`` ((RESOURCE, limit) pairs, sorted, names upper-case)."""

    root: str
    limits: tuple[tuple[str, int], ...]

    def __post_init__(self) -> None:
        _str(self, "root")
        pairs: dict[str, int] = {}
        for pair in self.limits:
            name, value = pair
            if not isinstance(name, str) or not name or type(value) is not int or value < 0:
                raise ValueError(f"bad quota limit {pair!r}")
            pairs[name.upper()] = value
        _set(self, "limits", tuple(sorted(pairs.items())))


@dataclass(frozen=True, slots=True)
class SetSpecialUse(Op):
    """Replace a mailbox's RFC 6154 special-use attributes (METADATA
    /private/specialuse, RFC 6154 §4)."""

    user: str
    name: str
    special_use: frozenset[str]

    def __post_init__(self) -> None:
        _str(self, "user", "name")
        _set(self, "special_use", _attrs(self.special_use))


@dataclass(frozen=True, slots=True)
class SetMetadata(Op):
    """SETMETADATA (RFC 5464 §4.3): set (bytes) or delete (None) entries of
    mailbox ``mailbox`` of ``user``, or of the server when ``mailbox`` is "".
    Entry names are full paths ("/private/comment", "/shared/vendor/x"),
    compared case-insensitively (§3.2); "/private" entries belong to
    ``actor``, the user who sets them (§3)."""

    user: str
    mailbox: str
    entries: tuple[tuple[str, bytes | None], ...]
    actor: str = ""

    def __post_init__(self) -> None:
        _str(self, "user", "mailbox", "actor")
        out = []
        for item in self.entries:
            name, value = item
            if not isinstance(name, str) or not name.lower().startswith(METADATA_ROOTS):
                raise ValueError(f"metadata entry must start with /private/ or /shared/: {name!r}")
            if value is not None and not isinstance(value, bytes):
                value = bytes(value)
            out.append((name, value))
        _set(self, "entries", tuple(out))


METADATA_ROOTS = ("/private/", "/shared/")  # RFC 5464 §3.2
# RFC 6154 §2: the mailboxes every new account gets (CreateAccount.standard).
DEFAULT_SPECIAL_MAILBOXES: tuple[tuple[str, str], ...] = (
    ("Drafts", "\\Drafts"),
    ("Sent", "\\Sent"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
)


def _attrs(values: Iterable[str]) -> frozenset[str]:
    """Special-use attributes: a frozenset of "\\Name" strings."""
    out = values if isinstance(values, frozenset) else frozenset(values)
    for attr in out:
        if not isinstance(attr, str) or not attr.startswith("\\") or len(attr) < 2:
            raise ValueError(f"special-use attribute must look like \\Name, got {attr!r}")
    return out


def _pairs(values: Iterable[Any]) -> tuple[tuple[str, str], ...]:
    out = tuple((str(a), str(b)) for a, b in values)
    _attrs(attr for _, attr in out)
    return out


def _encode_entries(entries: tuple[tuple[str, bytes | None], ...]) -> list[list[Any]]:
    return [[name, None if value is None else _b64(value)] for name, value in entries]


def _decode_entries(entries: list[list[Any]]) -> tuple[tuple[str, bytes | None], ...]:
    return tuple((name, None if value is None else _unb64(value)) for name, value in entries)


# --- serialisation codecs, by field name ---------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


_Codec = tuple[Callable[[Any], Any], Callable[[Any], Any]]
_CODECS: dict[str, _Codec] = {
    "data": (_b64, _unb64),
    "flags": (sorted, frozenset),
    "internaldate": (datetime.datetime.isoformat, datetime.datetime.fromisoformat),
    "savedate": (datetime.datetime.isoformat, datetime.datetime.fromisoformat),
    "instance_id": (list, tuple),
    "uids": (list, tuple),
    "special_use": (sorted, frozenset),
    "special_mailboxes": (lambda v: [list(p) for p in v], lambda v: tuple(tuple(p) for p in v)),
    "entries": (_encode_entries, _decode_entries),
    "limits": (lambda v: [list(p) for p in v], lambda v: tuple(tuple(p) for p in v)),
}
