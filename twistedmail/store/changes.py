"""What ``MailStore.apply`` produces: typed change records, or a ``StoreError``.

An op either succeeds and returns a list of changes, or raises a ``StoreError``
and changes nothing.  Changes feed local sessions (untagged EXISTS / EXPUNGE /
FETCH, IDLE), later replication, and tests.

Invariants:
- Every change is a frozen, slotted dataclass holding only str / int / bool /
  frozenset / tuple values (hashable, cheap to compare, trivially serialisable).
- Fields declared ``compare=False`` (``FlagsChanged.old``, ``*.instances``) are
  extra facts for replication (cluster/replica.py); equality ignores them.
- ``FlagsChanged`` is emitted only when a message's flags really changed.
- ``uids`` tuples are ascending and duplicate-free.
- Every ``StoreError`` has a ``code`` the IMAP layer turns into a response code
  (RFC 5530), and a human ``str()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

# --- errors -----------------------------------------------------------------


class StoreError(Exception):
    """Base class of every error the store raises; ``code`` is an RFC 5530 code."""

    code: ClassVar[str] = "SERVERBUG"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NoSuchAccount(StoreError):
    """The user has no account on this store."""

    code = "NONEXISTENT"  # RFC 5530 §3


class NoSuchMailbox(StoreError):
    """The mailbox does not exist (the IMAP layer adds TRYCREATE where due)."""

    code = "NONEXISTENT"  # RFC 5530 §3


class MailboxExists(StoreError):
    """CREATE / RENAME target already exists (RFC 3501 §6.3.3, §6.3.5)."""

    code = "ALREADYEXISTS"  # RFC 5530 §3


class InvalidMailboxName(StoreError):
    """The name breaks the naming rules (see ``names.py``)."""

    code = "CANNOT"  # RFC 5530 §3


class Cannot(StoreError):
    """The operation violates a server invariant and can never succeed."""

    code = "CANNOT"  # RFC 5530 §3


class CannotDelete(Cannot):
    """DELETE refused, e.g. DELETE INBOX (RFC 3501 §6.3.4)."""


class NoSuchMessage(StoreError):
    """A UID that is not (or no longer) in the mailbox."""

    code = "NONEXISTENT"  # RFC 5530 §3


class UidValidityExhausted(StoreError):
    """The per-name UIDVALIDITY counter would pass 2**24-1; it never wraps."""

    code = "LIMIT"  # RFC 5530 §3


# --- changes ----------------------------------------------------------------


class Change:
    """Base class of every change record."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class AccountCreated(Change):
    """A new account (its INBOX comes with a ``MailboxCreated``)."""

    user: str


@dataclass(frozen=True, slots=True)
class AccountDeleted(Change):
    """The account and all its mailboxes are gone."""

    user: str


@dataclass(frozen=True, slots=True)
class MailboxCreated(Change):
    """A mailbox now exists under ``name``."""

    user: str
    name: str
    mailbox_id: str


@dataclass(frozen=True, slots=True)
class MailboxDeleted(Change):
    """The mailbox and its messages are gone; its inferiors are kept.
    ``instances``: the instance ids of the messages it held."""

    user: str
    name: str
    mailbox_id: str
    instances: tuple[tuple[str, int], ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class MailboxRenamed(Change):
    """Same mailbox (same id, messages, UIDs), new name."""

    user: str
    old: str
    new: str
    mailbox_id: str


@dataclass(frozen=True, slots=True)
class MailboxRegenerated(Change):
    """The mailbox presents a new UIDVALIDITY; UIDs may have been renumbered.

    Sessions that have it selected must drop it (their UID map is void)."""

    mailbox_id: str
    uidvalidity: int


@dataclass(frozen=True, slots=True)
class MessagesAdded(Change):
    """New messages (EXISTS); ``uids`` ascending."""

    mailbox_id: str
    uids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class FlagsChanged(Change):
    """One message's flags changed to ``flags`` at ``modseq`` (RFC 7162);
    ``old``: its flags before."""

    mailbox_id: str
    uid: int
    flags: frozenset[str]
    modseq: int
    old: frozenset[str] = field(default=frozenset(), compare=False)


@dataclass(frozen=True, slots=True)
class StoreFailed(Change):
    """UIDs a conditional STORE left alone (RFC 7162 §3.2 MODIFIED)."""

    mailbox_id: str
    uids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class MessagesExpunged(Change):
    """Messages removed; ``modseq`` is the mailbox HIGHESTMODSEQ after it;
    ``instances``: their instance ids, in ``uids`` order."""

    mailbox_id: str
    uids: tuple[int, ...]
    modseq: int = 0
    instances: tuple[tuple[str, int], ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class Copied(Change):
    """COPY / MOVE result: (source uid, destination uid) pairs (RFC 4315 COPYUID)."""

    src_id: str
    dst_id: str
    uid_map: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class AclChanged(Change):
    """``identifier`` now holds ``rights`` on the mailbox ("" = no entry, RFC 4314)."""

    mailbox_id: str
    identifier: str
    rights: str


@dataclass(frozen=True, slots=True)
class QuotaChanged(Change):
    """Quota ``root`` now has ``limits`` (RFC 9208 §4.1.3)."""

    root: str
    limits: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class MetadataChanged(Change):
    """RFC 5464 entries (lower-case names) set or deleted on a mailbox, or on
    the server when ``mailbox_id`` is ""."""

    user: str
    mailbox_id: str
    entries: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SpecialUseChanged(Change):
    """A mailbox's RFC 6154 special-use attributes were replaced."""

    mailbox_id: str
    special_use: frozenset[str]


@dataclass(frozen=True, slots=True)
class Subscribed(Change):
    """``name`` was added to the subscription list (RFC 3501 §6.3.6)."""

    user: str
    name: str


@dataclass(frozen=True, slots=True)
class Unsubscribed(Change):
    """``name`` was removed from the subscription list (RFC 3501 §6.3.7)."""

    user: str
    name: str
