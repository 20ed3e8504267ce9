"""COPY and MOVE between this node and a proxied public folder (issue 5 item 4).

The transparent proxy (imap/proxied.py) forwards a COPY/MOVE whose destination the
replica holds too.  When the two mailboxes live on different nodes the proxy does the
copy itself, so a client dragging a message between its INBOX and a public folder held
elsewhere just works:

  * out of a proxied folder into one held here: ``FETCH (UID FLAGS INTERNALDATE
    BODY.PEEK[])`` on the replica, a local APPEND (rights, quota and durability as
    for any APPEND), then for MOVE ``UID STORE +FLAGS.SILENT (\\Deleted)`` and
    ``UID EXPUNGE`` on the replica;
  * from a mailbox selected here into a public folder held elsewhere: one MULTIAPPEND
    (RFC 3502) on the first reachable replica, then for MOVE the local expunge.

Invariants:
  * The answer is the COPY/MOVE answer (RFC 4315 §3 COPYUID, RFC 6851 §4.3 untagged
    for MOVE), built from the APPENDUID of the side that stored the copies.
  * Sources are expunged only after the copies were stored (OK): a failed MOVE never
    loses mail; at worst (replica lost after the copy) the message exists twice.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, inlineCallbacks, maybeDeferred

from twistedmail.cluster.proxy import status_of
from twistedmail.imap import commands as c
from twistedmail.imap.errors import CommandFailed, No
from twistedmail.imap.fetchrender import internaldate
from twistedmail.imap.handlers import append as append_handler
from twistedmail.imap.namespaces import require
from twistedmail.imap.responses import MailboxName, encode, flag_list, status_line
from twistedmail.imap.seqset import compress
from twistedmail.store import Expunge

if TYPE_CHECKING:
    from twistedmail.imap.proxied import ProxyState

_FETCH = re.compile(rb"\* \d+ FETCH \(")
_BODY = re.compile(rb"BODY\[\] \{(\d+)\}\r\n")
_UID = re.compile(rb"\bUID (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")
_DATE = re.compile(rb'\bINTERNALDATE "([^"]+)"')
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) ([0-9:,]+)\]")


def _parse_fetch(unit: bytes) -> tuple[int, tuple[str, ...], dt.datetime | None, bytes] | None:
    """(uid, flags, internal date, body) of one FETCH answer that carries BODY[]."""
    body = _BODY.search(unit)
    if _FETCH.match(unit) is None or body is None:
        return None
    size = int(body.group(1))
    data = unit[body.end():body.end() + size]
    around = unit[:body.start()] + unit[body.end() + size:]
    uid, flags, date = _UID.search(around), _FLAGS.search(around), _DATE.search(around)
    if uid is None or len(data) != size:
        return None
    names = tuple(f for f in (flags.group(1).decode().split() if flags else ())
                  if f.lower() != "\\recent")  # RFC 3501 §2.3.2: never stored by APPEND
    when = None
    if date is not None:
        try:
            when = dt.datetime.strptime(date.group(1).decode().strip(), "%d-%b-%Y %H:%M:%S %z")
        except ValueError:
            when = None
    return int(uid.group(1)), names, when, data


def _copyuid(tag: str, move: bool, uidvalidity: int, sources: list[int],
             targets: str) -> tuple[bytes, bytes]:
    """(untagged, tagged) answer lines: COPYUID where RFC 4315 / RFC 6851 put it."""
    code = b"[COPYUID %d %s %s]" % (uidvalidity, compress(sources).encode(), targets.encode())
    if move:  # RFC 6851 §4.3: in an untagged OK before the EXPUNGEs
        return b"* OK " + code + b" Moved\r\n", status_line(tag, "OK", "MOVE completed")
    return b"", tag.encode() + b" OK " + code + b" COPY completed\r\n"


def _sequence_text(request_head: bytes) -> bytes:
    """The sequence set of ``[UID] COPY|MOVE <set> <mailbox>`` as the client wrote it."""
    words = request_head.split(b" ")
    at = 2 if words[0].upper() == b"UID" else 1
    return words[at]


@inlineCallbacks
def copy_out(state: ProxyState, cmd: c.Copy,
             segments: list[bytes]) -> Generator[Deferred[Any], Any, None]:
    """COPY/MOVE from the proxied folder into a mailbox held here."""
    session, selection = state.session, state.selected
    assert selection is not None
    out = session.out
    backend = yield state.backend(selection.node)
    uid = b"UID " if cmd.uid else b""
    fetch = [uid + b"FETCH " + _sequence_text(segments[0])
             + b" (UID FLAGS INTERNALDATE BODY.PEEK[])"]
    held: list[bytes] = []
    state.collecting[selection.node] = held
    try:
        tagged = yield backend.run(fetch)
    finally:
        state.collecting.pop(selection.node, None)
    messages = []
    for unit in held:
        parsed = _parse_fetch(unit)
        if parsed is None:
            out.raw(unit)  # an unrelated update: the client should hear it
        else:
            messages.append(parsed)
    if status_of(tagged) != "OK":
        out.raw(tag_line(cmd.tag, tagged))
        return
    if not messages:
        out.raw(status_line(cmd.tag, "OK" if cmd.uid or cmd.move else "NO",
                            "No messages to copy" if not (cmd.uid or cmd.move)
                            else f"{'MOVE' if cmd.move else 'COPY'} completed"))
        return
    first, *rest = messages
    appending = c.Append(tag=cmd.tag, mailbox=cmd.mailbox, flags=first[1], date=first[2],
                         message=first[3],
                         more=tuple(c.AppendMessage(flags=m[1], date=m[2], message=m[3])
                                    for m in rest))
    try:
        reply = yield maybeDeferred(append_handler.append, session, appending)
    except CommandFailed as err:
        out.tagged(cmd.tag, err.status, err.text, err.code, err.code_args)
        return
    _, _, (uidvalidity, targets) = reply
    sources = [m[0] for m in messages]
    untagged, final = _copyuid(cmd.tag, cmd.move, int(uidvalidity), sources, str(targets))
    out.raw(untagged)
    if cmd.move:
        moved = compress(sources).encode()
        state.relaying.add(selection.node)
        try:
            yield backend.run([b"UID STORE " + moved + b" +FLAGS.SILENT (\\Deleted)"])
            yield backend.run([b"UID EXPUNGE " + moved])
        finally:
            state.relaying.discard(selection.node)
    out.raw(final)


def tag_line(tag: str, tagged: bytes) -> bytes:
    """A backend's tagged line with the client's tag."""
    return tag.encode() + tagged[tagged.index(b" "):]


@inlineCallbacks
def copy_in(state: ProxyState, folder: str,
            cmd: c.Copy) -> Generator[Deferred[Any], Any, None]:
    """COPY/MOVE from the mailbox selected here into a public folder held elsewhere."""
    session = state.session
    view = session.require_view()
    if cmd.move:
        if view.readonly:
            raise No("Mailbox is read-only", "READ-ONLY")
        require(session, view.mailbox, "te")  # RFC 4314 §4, RFC 6851 §3.3
    pairs = [(u, view.record(u)) for _, u in view.resolve(cmd.sequence, cmd.uid,
                                                          session.saved_search)]
    records = [(u, r) for u, r in pairs if r is not None]
    if not records:
        if cmd.move or cmd.uid:
            session.out.tagged(cmd.tag, "OK", f"{'MOVE' if cmd.move else 'COPY'} completed")
            return
        raise No("No messages to copy")
    mailbox = encode(MailboxName.of(cmd.mailbox))
    segments: list[bytes] = []
    for i, (_, rec) in enumerate(records):  # RFC 3502 MULTIAPPEND: one command
        flags = [f for f in sorted(rec.flags) if f.lower() != "\\recent"]
        segments.append((b"APPEND " + mailbox if i == 0 else b"") + b" " + flag_list(flags)
                        + b" " + internaldate(rec.internaldate) + b" {%d}" % rec.size)
    segments.append(b"")
    literals = tuple(rec.blob.data for _, rec in records)
    tagged, node, errors = yield state._first(folder, segments, literals,
                                              retry_no=False, retry_lost=False)
    if tagged is None or node is None:
        state._answer(cmd.tag, None, folder, errors)
        return
    m = _APPENDUID.search(tagged)
    if status_of(tagged) != "OK" or m is None:
        session.out.raw(tag_line(cmd.tag, tagged))
        return
    state.pins.setdefault(folder, node)
    sources = [u for u, _ in records]
    untagged, final = _copyuid(cmd.tag, cmd.move, int(m.group(1)), sources, m.group(2).decode())
    session.out.raw(untagged)
    if cmd.move:
        source = view.mailbox
        present = tuple(u for u in sources if source.get(u) is not None)
        if present:
            session.apply(Expunge(source.user, source.name, present))
        if view.has_pending():
            view.flush(session.out, True, with_uid=cmd.uid)
    session.out.raw(final)

