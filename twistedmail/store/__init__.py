"""The in-memory, op-based mail store (DESIGN.md §2–§3).

Invariants (details in each module):
- ``MailStore.apply(op)`` is the only mutator; ops are frozen, serialisable
  dataclasses, changes are frozen dataclasses, errors are ``StoreError``s.
- No Twisted imports here: the store is plain synchronous Python,
  deterministic given its ops and injected clock.
"""

from __future__ import annotations

from .changes import (
    AccountCreated,
    AccountDeleted,
    Cannot,
    CannotDelete,
    Change,
    Copied,
    FlagsChanged,
    InvalidMailboxName,
    MailboxCreated,
    MailboxDeleted,
    MailboxExists,
    MailboxRegenerated,
    MailboxRenamed,
    MessagesAdded,
    MessagesExpunged,
    NoSuchAccount,
    NoSuchMailbox,
    NoSuchMessage,
    StoreError,
    StoreFailed,
    Subscribed,
    UidValidityExhausted,
    Unsubscribed,
)
from .mailbox import SYSTEM_FLAGS, Blob, BlobPool, Mailbox, MessageRecord
from .mailstore import Listener, MailStore
from .names import DELIMITER, INBOX, MAX_NAME_LENGTH
from .ops import (
    Append,
    Copy,
    CreateAccount,
    CreateMailbox,
    DeleteAccount,
    DeleteMailbox,
    Expunge,
    Op,
    Regenerate,
    RenameMailbox,
    StoreFlags,
    Subscribe,
    Unsubscribe,
    op_from_dict,
)
from .uidvalidity import UidValidityAllocator

__all__ = [
    "DELIMITER",
    "INBOX",
    "MAX_NAME_LENGTH",
    "SYSTEM_FLAGS",
    "AccountCreated",
    "AccountDeleted",
    "Append",
    "Blob",
    "BlobPool",
    "Cannot",
    "CannotDelete",
    "Change",
    "Copied",
    "Copy",
    "CreateAccount",
    "CreateMailbox",
    "DeleteAccount",
    "DeleteMailbox",
    "Expunge",
    "FlagsChanged",
    "InvalidMailboxName",
    "Listener",
    "MailStore",
    "Mailbox",
    "MailboxCreated",
    "MailboxDeleted",
    "MailboxExists",
    "MailboxRegenerated",
    "MailboxRenamed",
    "MessageRecord",
    "MessagesAdded",
    "MessagesExpunged",
    "NoSuchAccount",
    "NoSuchMailbox",
    "NoSuchMessage",
    "Op",
    "Regenerate",
    "RenameMailbox",
    "StoreError",
    "StoreFailed",
    "StoreFlags",
    "Subscribe",
    "Subscribed",
    "UidValidityAllocator",
    "UidValidityExhausted",
    "Unsubscribe",
    "Unsubscribed",
    "op_from_dict",
]
