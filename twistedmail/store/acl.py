"""Access control lists (RFC 4314): rights, identifiers, effective rights.

Pure functions over a mailbox's ACL, a mapping ``identifier -> rights`` kept on
``Mailbox.acl`` and changed only by the ``SetAcl`` / ``DeleteAcl`` ops.

Invariants:
  * Stored rights strings are canonical: letters of :data:`ALL_RIGHTS` only,
    each once, in that order, never empty (an empty set removes the entry).
    The obsolete virtual rights "c" and "d" (RFC 4314 §2.1.1) are expanded on
    input and never stored.
  * Identifiers are user names, ``anyone``, or either prefixed with "-" for
    negative rights (RFC 4314 §2).  The mailbox owner is never an entry: the
    owner holds every right implicitly (decided here; RFC 4314 §2 lets the
    server choose).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# RFC 4314 §2.1, in the order the RFC lists them.
ALL_RIGHTS = "lrswipkxtea"
ALL = frozenset(ALL_RIGHTS)
# RFC 4314 §2.1.1: "c" is the union of "k" and "x", "d" of "e" and "t" (the
# first of the two RFC 2086 readings, the one RIGHTS=texk servers use).
OBSOLETE = {"c": "kx", "d": "et"}
ANYONE = "anyone"
WRITE_RIGHTS = frozenset("stwe")  # without any of these a SELECT is read-only


class BadRights(ValueError):
    """A rights string with a letter RFC 4314 does not define (answer BAD, §3.1)."""


def parse_rights(text: str) -> frozenset[str]:
    """The rights a client's rights string names, "c"/"d" expanded (RFC 4314 §2.1.1)."""
    out: set[str] = set()
    for ch in text:
        if ch in ALL:
            out.add(ch)
        elif ch in OBSOLETE:
            out.update(OBSOLETE[ch])
        else:
            raise BadRights(f"unknown right {ch!r}")
    return frozenset(out)


def canonical(rights: Iterable[str]) -> str:
    """Rights as the stored string: :data:`ALL_RIGHTS` order, no "c"/"d"."""
    have = set(rights)
    return "".join(ch for ch in ALL_RIGHTS if ch in have)


def format_rights(rights: Iterable[str]) -> str:
    """Rights as sent to clients: canonical, plus "c" when "k" or "x" is held and "d"
    when "e" or "t" is (RFC 4314 §2.1.1, as Dovecot does, for RFC 2086 clients)."""
    have = set(rights)
    text = canonical(have)
    if have & set(OBSOLETE["c"]):
        text += "c"
    if have & set(OBSOLETE["d"]):
        text += "d"
    return text


def modify(current: str, mod: str) -> str:
    """SETACL's mod-rights applied to ``current``: "+r" adds, "-r" removes, "r"
    replaces (RFC 4314 §3.1); the canonical result ("" means no entry)."""
    if mod.startswith("+"):
        return canonical(set(current) | parse_rights(mod[1:]))
    if mod.startswith("-"):
        return canonical(set(current) - parse_rights(mod[1:]))
    return canonical(parse_rights(mod))


def valid_identifier(identifier: str) -> bool:
    """True for a non-empty identifier without controls ("-" alone is not one)."""
    bare = identifier[1:] if identifier.startswith("-") else identifier
    return bool(bare) and not any(ord(ch) < 0x20 or ch == "\x7f" for ch in bare)


def effective(acl: Mapping[str, str], user: str) -> frozenset[str]:
    """The rights ``user`` holds from ``acl`` (not counting ownership).

    RFC 4314 §2: the union of the user's and ``anyone``'s rights, minus the
    union of the negative rights of "-user" and "-anyone"."""
    if not acl:
        return frozenset()
    granted = acl.get(user, "") + acl.get(ANYONE, "")
    denied = acl.get("-" + user, "") + acl.get("-" + ANYONE, "")
    return frozenset(granted) - frozenset(denied)
