"""Quotas (RFC 9208): one quota root per account, usage, limits, the over-quota test.

Decisions (RFC 9208 leaves them to the server):
  * Every account has exactly one quota root, named like the account (the public
    pseudo-account's root is "#public"); it covers all the account's mailboxes.
  * Resources: STORAGE (the sum of RFC822.SIZE, in units of 1024 octets,
    RFC 9208 §5.1) and MESSAGE (the number of messages, §5.2).
  * Limits set with ``SetQuota`` replace the node's defaults for that root
    entirely; a resource left out is unlimited.  Roots never set use the
    defaults (``NodeSettings.quota_storage`` / ``quota_messages``, 0 = none).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .mailstore import MailStore

STORAGE = "STORAGE"
MESSAGE = "MESSAGE"
RESOURCES = (STORAGE, MESSAGE)
KIB = 1024


def root_of(user: str) -> str:
    """The quota root of account ``user``."""
    return user


def usage_bytes(store: MailStore, user: str) -> tuple[int, int]:
    """(octets, messages) held by every mailbox of ``user``."""
    size = count = 0
    for box in store.mailboxes(user):
        size += box.total_size
        count += len(box)
    return size, count


def usage(store: MailStore, user: str) -> dict[str, int]:
    """Usage per resource in RFC 9208 units (STORAGE rounded up to whole KiB)."""
    size, count = usage_bytes(store, user)
    return {STORAGE: -(-size // KIB), MESSAGE: count}


def limits(store: MailStore, root: str, defaults: Mapping[str, int]) -> dict[str, int]:
    """The limits of ``root``: what ``SetQuota`` set, else the non-zero defaults."""
    explicit = store.quota_limits(root)
    if explicit is not None:
        return dict(explicit)
    return {r: n for r, n in defaults.items() if n > 0}


def exceeded(store: MailStore, user: str, add_bytes: int, add_messages: int,
             defaults: Mapping[str, int]) -> str | None:
    """The resource adding this much to ``user``'s root would push past its limit."""
    caps = limits(store, root_of(user), defaults)
    if not caps:
        return None
    size, count = usage_bytes(store, user)
    if STORAGE in caps and size + add_bytes > caps[STORAGE] * KIB:
        return STORAGE
    if MESSAGE in caps and count + add_messages > caps[MESSAGE]:
        return MESSAGE
    return None
