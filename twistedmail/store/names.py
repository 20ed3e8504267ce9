"""Mailbox name rules (RFC 3501 §5.1, §6.3.3–§6.3.5).

Names here are decoded unicode (the parser undoes modified UTF-7, RFC 3501
§5.1.3) with "/" as the hierarchy delimiter.

Invariants:
- A canonical name has a first level of exactly "INBOX" whenever that level
  matches "inbox" case-insensitively (RFC 3501 §5.1); every other level is
  kept as given (names are case-sensitive).
- A valid name is non-empty, has no empty level (no leading / trailing "/",
  no "//"), no NUL / CR / LF, and at most ``MAX_NAME_LENGTH`` characters.
"""

from __future__ import annotations

from .changes import InvalidMailboxName

DELIMITER = "/"
INBOX = "INBOX"
MAX_NAME_LENGTH = 1024
_FORBIDDEN = ("\x00", "\r", "\n")


def canonical(name: str) -> str:
    """``name`` with an "inbox" first level spelt "INBOX" (RFC 3501 §5.1).

    Does not validate: lookups use this and answer "no such mailbox" for
    names that cannot exist."""
    head, sep, rest = name.partition(DELIMITER)
    if head != INBOX and head.upper() == INBOX:
        return INBOX + sep + rest
    return name


def validate(name: str) -> str:
    """The canonical form of ``name``, or ``InvalidMailboxName``."""
    if not isinstance(name, str) or not name:
        raise InvalidMailboxName("mailbox name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidMailboxName(f"mailbox name longer than {MAX_NAME_LENGTH} characters")
    for bad in _FORBIDDEN:
        if bad in name:
            raise InvalidMailboxName("mailbox name contains NUL, CR or LF")
    if "" in name.split(DELIMITER):
        raise InvalidMailboxName(f"mailbox name {name!r} has an empty hierarchy level")
    return canonical(name)


def for_create(name: str) -> str:
    """Validate a CREATE argument; one trailing delimiter is dropped.

    RFC 3501 §6.3.3: "foo/" declares the intent to create inferiors of
    "foo"; we create "foo"."""
    if isinstance(name, str) and name.endswith(DELIMITER) and len(name) > 1:
        name = name[:-1]
    return validate(name)


def parents(name: str) -> list[str]:
    """Every superior of ``name``, outermost first: "a/b/c" -> ["a", "a/b"]."""
    levels = name.split(DELIMITER)
    return [DELIMITER.join(levels[:i]) for i in range(1, len(levels))]


def is_inferior(name: str, of: str) -> bool:
    """True if ``name`` lies strictly below ``of`` in the hierarchy."""
    return name.startswith(of + DELIMITER)


def rebase(name: str, old: str, new: str) -> str:
    """Move ``name`` (``old`` or an inferior of it) under ``new``."""
    return new + name[len(old) :]
