"""RFC 5464 METADATA and RFC 6154 special-use bookkeeping for ``MailStore``.

Plain functions over the dicts the store keeps: a mailbox's ``metadata`` and
the store's server-wide table.  Keys are ``(scope, entry)``: ``scope`` is ""
for a /shared entry and the owning user for a /private one (RFC 5464 §3:
private values are per user); ``entry`` is the lower-cased entry name (§3.2:
entry names are case-insensitive).

Invariants:
- A stored value is bytes (never None: NIL deletes, RFC 5464 §4.3).
- Every key's entry starts with "/private/" or "/shared/", and the scope is
  "" exactly for "/shared/" entries.
"""

from __future__ import annotations

from collections.abc import Iterable

Key = tuple[str, str]


def key(entry: str, actor: str) -> Key:
    """The table key of ``entry`` as seen by ``actor`` (RFC 5464 §3)."""
    low = entry.lower()
    return (actor if low.startswith("/private") else "", low)


def apply_entries(
    table: dict[Key, bytes], entries: Iterable[tuple[str, bytes | None]], actor: str
) -> tuple[str, ...]:
    """Set (bytes) or delete (None) ``entries`` in ``table``; the lower-cased
    names whose value really changed, in order."""
    changed: list[str] = []
    for entry, value in entries:
        k = key(entry, actor)
        old = table.get(k)
        if value is None:
            if old is None:
                continue
            del table[k]
        elif old == value:
            continue
        else:
            table[k] = value
        if k[1] not in changed:
            changed.append(k[1])
    return tuple(changed)


def drop_scope(table: dict[Key, bytes], user: str) -> None:
    """Forget every /private entry of ``user`` (account deleted)."""
    for k in [k for k in table if k[0] == user]:
        del table[k]
