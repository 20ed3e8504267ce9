"""Parsers for extended LIST, CREATE parameters and METADATA commands.

Grammar: RFC 5258 §6 (LIST-EXTENDED), RFC 5819 §6 (LIST-STATUS), RFC 6154 §6
(SPECIAL-USE, CREATE-SPECIAL-USE), RFC 4466 §2.2 (create-param), RFC 5464 §5
(METADATA).  Called from parser.py with its :class:`Reader`; every failure is
the Reader's ParseError (a BAD).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from twistedmail.imap.commands import GetMetadataCmd, ListCmd, MailboxCommand, SetMetadataCmd

if TYPE_CHECKING:
    from twistedmail.imap.parser import Reader

# RFC 5258 §3.1 / RFC 6154 §2 selection options; §3.2 / RFC 5819 / 6154 return options.
LIST_SELECT = frozenset(("SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"))
LIST_RETURN = frozenset(("SUBSCRIBED", "CHILDREN", "STATUS", "SPECIAL-USE"))
# RFC 6154 §2 use-attr, canonical spelling by upper-case.
USE_ATTRS = {
    a.upper(): a
    for a in ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")
}
_USE_ATTR = re.compile(rb'\\[^\x00-\x20\x7f-\xff(){%*"\\\]]+')
# RFC 5464 §3.2: no "*" "%", no control characters, no "//", no trailing "/".
_BAD_ENTRY = re.compile(r"[\x00-\x1f\x7f*%]|//|/$")


def parse_list(r: Reader, tag: str, lsub: bool) -> ListCmd:
    """LIST / LSUB (RFC 3501 §6.3.8-9) with RFC 5258 §6 extensions for LIST."""
    r.sp()
    extended = False
    select: tuple[str, ...] = ()
    if not lsub and r.peek() == 0x28:  # list-select-opts
        select = _options(r, LIST_SELECT, "selection")
        extended = True
        r.sp()
    reference = r.mailbox()
    r.sp()
    patterns: tuple[str, ...] = ()
    if not lsub and r.peek() == 0x28:  # "(" list-mailbox *(SP list-mailbox) ")"
        patterns = tuple(r.plist(r.list_mailbox, "pattern"))
        pattern = patterns[0]
        extended = True
    else:
        pattern = r.list_mailbox()
    returns: list[str] = []
    status: tuple[str, ...] = ()
    if not lsub and r.skip(b" "):  # list-return-opts
        if not r.try_word(b"RETURN"):
            r.fail("Expected RETURN")
        r.sp()
        extended = True
        for opt, items in r.plist(lambda: _return_option(r), "RETURN option", empty=True):
            if opt in returns:
                r.fail(f"Duplicate RETURN option {opt}")
            returns.append(opt)
            status = items or status
    # RFC 5258 §3.1: RECURSIVEMATCH alone, or with only REMOTE, is an error.
    if "RECURSIVEMATCH" in select and not set(select) - {"RECURSIVEMATCH", "REMOTE"}:
        r.fail("RECURSIVEMATCH needs another selection option")
    return ListCmd(tag, reference, pattern, lsub, patterns, select, tuple(returns), status,
                   extended)


def _options(r: Reader, known: frozenset[str], what: str) -> tuple[str, ...]:
    """``"(" [option *(SP option)] ")"``; unknown options are BAD (RFC 5258 §3)."""
    out: list[str] = []
    for opt in r.plist(lambda: r.word(f"LIST {what} option"), f"{what} option", empty=True):
        if opt not in known:
            r.fail(f"Unknown LIST {what} option {opt}")
        if opt not in out:
            out.append(opt)
    return tuple(out)


def _return_option(r: Reader) -> tuple[str, tuple[str, ...]]:
    """One return option; STATUS takes its item list (RFC 5819 §6)."""
    opt = r.word("RETURN option")
    if opt not in LIST_RETURN:
        r.fail(f"Unknown LIST return option {opt}")
    if opt != "STATUS":
        return opt, ()
    from twistedmail.imap.parser import STATUS_ITEMS

    r.sp()
    items = r.plist(lambda: r.word("STATUS item"), "STATUS item")
    for item in items:
        if item not in STATUS_ITEMS:
            r.fail(f"Unknown STATUS item {item}")
    return opt, tuple(items)


# --- CREATE ------------------------------------------------------------------------


def parse_create(r: Reader, tag: str) -> MailboxCommand:
    """CREATE mailbox [SP "(" create-param *(SP create-param) ")"] (RFC 4466 §2.2);
    the only create-param is RFC 6154 §6 ``USE (use-attr ...)``."""
    r.sp()
    mailbox = r.new_mailbox()
    if not r.skip(b" "):
        return MailboxCommand(tag, "CREATE", mailbox)
    uses: list[str] = []
    for attrs in r.plist(lambda: _create_param(r), "CREATE parameter"):
        uses.extend(a for a in attrs if a not in uses)
    return MailboxCommand(tag, "CREATE", mailbox, tuple(uses))


def _create_param(r: Reader) -> tuple[str, ...]:
    name = r.word("CREATE parameter")
    if name != "USE":
        r.fail(f"Unknown CREATE parameter {name}")
    r.sp()

    def attr() -> str:
        m = r.match(_USE_ATTR)
        if m is None:
            r.fail("Expected a special-use attribute")
        text = m.group().decode("ascii")
        return USE_ATTRS.get(text.upper(), text)

    return tuple(r.plist(attr, "special-use attribute", empty=True))


# --- METADATA (RFC 5464 §5) ------------------------------------------------------------


def entry_name(r: Reader) -> str:
    """RFC 5464 §3.2 entry: an astring naming /private/... or /shared/..."""
    name = r.utf8(r.astring("metadata entry"), "Metadata entry")
    low = name.lower()
    if _BAD_ENTRY.search(name) or not (
        low in ("/private", "/shared") or low.startswith(("/private/", "/shared/"))
    ):
        r.fail("Invalid metadata entry name")
    return name


def parse_getmetadata(r: Reader, tag: str) -> GetMetadataCmd:
    """GETMETADATA [SP "(" option *(SP option) ")"] SP mailbox SP entries."""
    r.sp()
    maxsize: int | None = None
    depth = 0
    if r.peek() == 0x28:
        for name, value in r.plist(lambda: _getmeta_option(r), "GETMETADATA option"):
            if name == "MAXSIZE":
                maxsize = value
            else:
                depth = value
        r.sp()
    mailbox = r.mailbox()
    r.sp()
    if r.peek() == 0x28:
        entries = tuple(r.plist(lambda: entry_name(r), "metadata entry"))
    else:
        entries = (entry_name(r),)
    return GetMetadataCmd(tag, mailbox, entries, maxsize, depth)


def _getmeta_option(r: Reader) -> tuple[str, int]:
    name = r.word("GETMETADATA option")
    r.sp()
    if name == "MAXSIZE":
        return name, r.number("MAXSIZE")
    if name == "DEPTH":
        if r.try_word(b"INFINITY"):
            return name, -1
        depth = r.number("DEPTH")
        if depth > 1:
            r.fail("DEPTH must be 0, 1 or infinity")
        return name, depth
    r.fail(f"Unknown GETMETADATA option {name}")


def parse_setmetadata(r: Reader, tag: str) -> SetMetadataCmd:
    """SETMETADATA SP mailbox SP "(" entry SP value *(SP entry SP value) ")"."""
    r.sp()
    mailbox = r.mailbox()
    r.sp()

    def pair() -> tuple[str, bytes | None]:
        entry = entry_name(r)
        if "/" not in entry[1:]:
            r.fail("Cannot set a metadata root")  # "/private" or "/shared" itself
        r.sp()
        if r.peek() == 0x7E:  # literal8 (RFC 5464 §5 value)
            return entry, r.literal(allow8=True)
        return entry, r.nstring("metadata value")

    return SetMetadataCmd(tag, mailbox, tuple(r.plist(pair, "metadata entry")))
