"""CONDSTORE and QRESYNC helpers shared by the handlers (RFC 7162).

The store gives every message a mod-sequence (``MessageRecord.modseq``), keeps
``Mailbox.highestmodseq`` and remembers expunged UIDs with the mod-sequence of
their expunge (``Mailbox.vanished_since``).  What the IMAP layer adds:

* ``Session.condstore`` is set by the first CONDSTORE-enabling command (RFC 7162
  §3.1: ENABLE CONDSTORE/QRESYNC, SELECT/EXAMINE (CONDSTORE), FETCH MODSEQ or
  CHANGEDSINCE, SEARCH MODSEQ, STORE UNCHANGEDSINCE) and lasts for the connection;
  the selected view mirrors it in ``SelectedView.condstore``.
* A mailbox that was never changed has HIGHESTMODSEQ 0 in the store, but
  mod-sequence-value is >= 1 on the wire (RFC 7162 §7), so it is sent as 1; a
  client's mod-sequence 1 is therefore read as 0 (CHANGEDSINCE 1 may return a
  message whose MODSEQ is 1: sending more than changed is harmless).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twistedmail.imap.commands import SearchKey, SequenceSet
from twistedmail.imap.seqset import compress

if TYPE_CHECKING:
    from twistedmail.imap.session import Session
    from twistedmail.store import Mailbox


def highest(mailbox: Mailbox) -> int:
    """The mailbox's HIGHESTMODSEQ as sent (RFC 7162 §3.1.2.1, >= 1)."""
    return mailbox.highestmodseq or 1


def since(modseq: int) -> int:
    """A client's mod-sequence as a store threshold (1 may stand for 0, see above)."""
    return 0 if modseq <= 1 else modseq


def activate(session: Session) -> None:
    """RFC 7162 §3.1: CONDSTORE is on for the rest of the connection; untagged
    FETCH responses carry UID and MODSEQ from now on."""
    session.condstore = True
    if session.view is not None:
        session.view.condstore = True


def vanished(mailbox: Mailbox, modseq: int, within: SequenceSet | None,
             after: int = 0) -> list[int]:
    """UIDs expunged since ``modseq`` that ``within`` names (all if None), ascending.

    When the mailbox no longer has tombstones that old, every absent UID above
    ``after`` and below UIDNEXT is reported: RFC 7162 §3.2.5.1 lets VANISHED
    (EARLIER) name UIDs the client never saw, and clients ignore those."""
    gone = mailbox.vanished_since(since(modseq))
    if gone is None:
        gone = [u for u in range(after + 1, mailbox.uidnext) if u not in mailbox]
    if within is not None:
        largest = mailbox.uidnext - 1
        gone = [u for u in gone if within.contains(u, largest)]
    return gone


def vanished_earlier(uids: list[int]) -> bytes:
    """``* VANISHED (EARLIER) set`` (RFC 7162 §3.2.10), or nothing for no UIDs."""
    if not uids:
        return b""
    return b"* VANISHED (EARLIER) %s\r\n" % compress(uids).encode("ascii")


def uses_modseq(key: SearchKey) -> bool:
    """True if a SEARCH key tree contains MODSEQ (a CONDSTORE-enabling search)."""
    if key.op == "MODSEQ":
        return True
    return any(isinstance(arg, SearchKey) and uses_modseq(arg) for arg in key.args)


def search_suffix(records: list[Any]) -> bytes:
    """RFC 7162 §3.1.5: `` (MODSEQ n)`` ending a SEARCH with a MODSEQ key, n the
    highest mod-sequence of the messages found; nothing when none were found."""
    if not records:
        return b""
    return b" (MODSEQ %d)" % max(rec.modseq for rec in records)


def esearch_suffix(records: list[Any]) -> bytes:
    """RFC 7162 §3.1.10: `` MODSEQ n`` ending an ESEARCH response (n over the
    messages it reports), nothing when none were found."""
    if not records:
        return b""
    return b" MODSEQ %d" % max(rec.modseq for rec in records)
