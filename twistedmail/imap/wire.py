"""Sans-I/O receiver: turns the client's byte stream into IMAP command events.

Invariants
----------
* No I/O and no Twisted: bytes go in through :meth:`Receiver.feed` (or
  :meth:`Receiver.push` + :meth:`Receiver.next_event`), events come out in
  stream order.  Fragmentation never matters: any split of the same bytes
  yields the same events.
* Linear time: every input byte is looked at a bounded number of times.  A
  fragment is searched for LF once, when it arrives; a buffered partial line
  is never re-scanned.  Literal and skipped bytes are never scanned at all;
  a literal's fragments are kept in a list and joined once.
* Bounded memory: at most ``max_line`` bytes of command text (all line
  segments of one command, literal payloads excluded) plus at most
  ``max_literal`` bytes of literal payload *per command* (the sum of its
  literals) plus input not yet consumed.  Over-long lines and rejected
  non-synchronizing literals are skipped by counting, never buffered.
* ``Request.line`` is the command exactly as on the wire with the literal
  payloads cut out and the final line end removed: every literal marker
  (``{n}``, ``{n+}``, ``~{n}``, ``~{n+}``) is still there, immediately followed
  by CRLF, and ``Request.literals`` holds the payloads in order.  CRLF
  appears in ``line`` only right after a literal marker, so the parser knows
  exactly which markers are literals (a ``{3}`` inside a quoted string or in
  the middle of a line is not one).
* Line ends: CRLF (RFC 3501 §2.2).  A bare LF is also accepted as a line end
  for robustness; it is normalised to CRLF after a literal marker.  A lone CR
  is ordinary data (the parser rejects it).
* Empty command lines are ignored (some clients send a stray CRLF after an
  APPEND literal); in ``line_mode`` an empty line is a :class:`RawLine`
  (an empty SASL response is meaningful).
* :class:`LineTooLong` is emitted once, as soon as the limit is exceeded
  (possibly before the line ends, so the server can answer BAD at once); the
  rest of the line is then discarded.  If the discarded line ends in a
  non-synchronizing literal marker its payload is skipped too.
* Literal limits: a synchronizing literal over the limit is never asked for
  (no :class:`NeedContinuation`); the command is abandoned at that point.
  A non-synchronizing one (RFC 7888) is skipped by count, then the rest of
  its line.  With ``literal_plus=False`` the receiver implements LITERAL-
  (RFC 7888 §4): ``{n+}`` is accepted only for n <= 4096.
* ``line_mode`` is read each time a line completes at the start of a command;
  use :meth:`next_event` when a handler may switch it (AUTHENTICATE, IDLE)
  so that later pipelined bytes are interpreted in the new mode.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

LITERAL_MINUS_MAX = 4096  # RFC 7888 §4: LITERAL- allows {n+} only for n <= 4096

# RFC 3501 §9: tag = 1*<any ASTRING-CHAR except "+">
TAG_RE = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\+]+')
# RFC 3501 §9 literal, RFC 7888 literal+, RFC 3516 §4.1 literal8 - at a segment end.
_MARKER_RE = re.compile(rb"(~?)\{([0-9]{1,20})(\+?)\}")
_MARKER_TAIL = 24  # longest marker: "~{" + 20 digits + "+}"
_TAG_MAX = 256  # longest tag reported in events (the parser has no such limit)


@dataclass(frozen=True)
class Request:
    """A complete command: see the module Invariants for ``line``'s form."""

    tag: str | None
    line: bytes
    literals: tuple[bytes, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class NeedContinuation:
    """A synchronizing literal was accepted: send ``+ Ready for literal data``."""

    size: int


@dataclass(frozen=True)
class RawLine:
    """One line (terminator removed) received while ``line_mode`` is on."""

    line: bytes


@dataclass(frozen=True)
class LineTooLong:
    """The command text exceeded ``max_line``; the rest of the line is dropped."""

    tag: str | None


@dataclass(frozen=True)
class LiteralTooBig:
    """A literal over the limit: answer tagged NO/BAD; it was not (will not be) kept."""

    tag: str | None
    size: int
    synchronizing: bool


Event = Request | NeedContinuation | RawLine | LineTooLong | LiteralTooBig

_LINE, _LITERAL, _SKIP, _DISCARD = range(4)


def guess_tag(first: bytes, complete: bool = True) -> str | None:
    """Best-effort tag: the first SP-delimited token, if it is a valid tag.

    Only the first ``_TAG_MAX`` octets are looked at.  With ``complete``
    False (a line cut short) the token must be followed by SP, so the answer
    never depends on how the input was fragmented."""
    sp = first.find(b" ", 0, _TAG_MAX + 1)
    if sp < 0 and (not complete or len(first) > _TAG_MAX):
        return None
    token = first if sp < 0 else first[:sp]
    if token and TAG_RE.fullmatch(token):
        return token.decode("ascii")
    return None


def _marker(seg: bytes) -> tuple[int, bool] | None:
    """(size, non_synchronizing) if ``seg`` ends with a literal marker.

    literal8's "~" needs no special handling here: it stays in the line."""
    if not seg.endswith(b"}"):
        return None
    start = seg.rfind(b"{", max(0, len(seg) - _MARKER_TAIL))
    if start < 0:
        return None
    if start > 0 and seg[start - 1] == 0x7E:  # "~"
        start -= 1
    m = _MARKER_RE.fullmatch(seg, start)
    if m is None:
        return None
    return int(m.group(2)), bool(m.group(3))


class Receiver:
    """Incremental IMAP command receiver (see the module docstring)."""

    def __init__(
        self,
        max_line: int = 65536,
        max_literal: int = 64 * 1024 * 1024,
        literal_plus: bool = True,
    ) -> None:
        self.max_line = max_line
        self.max_literal = max_literal
        self.literal_plus = literal_plus
        self.line_mode = False
        self.reset()

    # --- public API ----------------------------------------------------------

    def reset(self) -> None:
        """Forget all state and unread input (e.g. after STARTTLS, RFC 3501 §6.2.1)."""
        self._input: deque[bytes] = deque()
        self._chunk = b""
        self._pos = 0
        self._state = _LINE
        self._buf = bytearray()  # current, unterminated line segment
        self._tail = b""  # last bytes of a discarded line (marker detection)
        self._skip = 0
        self._lit_need = 0
        self._lit_chunks: list[bytes] = []
        self._drop_command()

    def push(self, data: bytes) -> None:
        """Queue ``data`` without processing it; see :meth:`next_event`."""
        if data:
            self._input.append(data)

    def next_event(self) -> Event | None:
        """Process queued input up to the next event; None when input runs out."""
        while True:
            if self._pos >= len(self._chunk):
                if not self._input:
                    self._chunk, self._pos = b"", 0
                    return None
                self._chunk, self._pos = self._input.popleft(), 0
            event = self._step()
            if event is not None:
                return event

    def feed(self, data: bytes) -> list[Event]:
        """Process ``data`` and return every event it completes."""
        self.push(data)
        events: list[Event] = []
        while (event := self.next_event()) is not None:
            events.append(event)
        return events

    @property
    def buffered(self) -> int:
        """Bytes held internally (partial command, literals, unread input)."""
        pending = len(self._chunk) - self._pos + sum(map(len, self._input))
        held = len(self._buf) + self._text_len + self._lit_total
        return held + pending + sum(map(len, self._lit_chunks))

    # --- state machine -------------------------------------------------------

    def _drop_command(self) -> None:
        """Forget the command being assembled (segments and literals)."""
        self._parts: list[bytes] = []
        self._text_len = 0
        self._literals: list[bytes] = []
        self._lit_total = 0

    def _step(self) -> Event | None:
        """Consume some of the current chunk according to the state."""
        if self._state == _LINE:
            return self._step_line()
        if self._state == _LITERAL:
            self._step_literal()
        elif self._state == _SKIP:
            self._step_skip()
        else:
            self._step_discard()
        return None

    def _step_line(self) -> Event | None:
        chunk, pos = self._chunk, self._pos
        idx = chunk.find(b"\n", pos)
        if idx < 0:
            size = self._text_len + len(self._buf) + len(chunk) - pos
            if chunk.endswith(b"\r"):
                size -= 1  # may be the CR of a CRLF split across feeds
            if size > self.max_line:
                return self._too_long_unterminated()
            self._buf += chunk[pos:] if pos else chunk
            self._pos = len(chunk)
            return None
        self._pos = idx + 1
        end = idx - 1 if idx > pos and chunk[idx - 1] == 0x0D else idx
        if self._buf:
            self._buf += chunk[pos:idx]
            seg = bytes(self._buf)
            self._buf.clear()
            if seg.endswith(b"\r"):
                seg = seg[:-1]
        else:
            seg = chunk[pos:end]
        return self._segment(seg)

    def _tag_window(self) -> int:
        """Octets of an over-long first segment searched for the tag.

        At least this many are always at hand when the limit trips, so the
        reported tag does not depend on fragmentation."""
        return min(self.max_line, _TAG_MAX) + 1

    def _too_long_unterminated(self) -> Event:
        """The limit is exceeded before the line ends: report, then discard."""
        window = self._tag_window()
        first = self._parts[0] if self._parts else bytes(self._buf[:window])
        if not self._parts and len(first) < window:
            first += self._chunk[self._pos : self._pos + window - len(first)]
        tag = None if self.line_mode and not self._parts else guess_tag(first, False)
        self._tail = bytes(self._buf[-_MARKER_TAIL:])  # the unread chunk follows it
        self._buf.clear()
        self._drop_command()
        self._state = _DISCARD
        return LineTooLong(tag)

    def _segment(self, seg: bytes) -> Event | None:
        """A line segment (terminator removed) is complete."""
        if self.line_mode and not self._parts:
            if len(seg) > self.max_line:
                return LineTooLong(None)
            return RawLine(seg)
        if self._text_len + len(seg) > self.max_line:
            first = self._parts[0] if self._parts else seg[: self._tag_window()]
            tag = guess_tag(first, False)
            self._drop_command()
            self._abandon_line(seg[-_MARKER_TAIL:])
            return LineTooLong(tag)
        if not seg and not self._parts:
            return None  # stray empty line
        marker = _marker(seg)
        if marker is None:
            self._parts.append(seg)
            return self._finish_request()
        return self._literal_marker(seg, *marker)

    def _finish_request(self) -> Request:
        parts, literals = self._parts, self._literals
        line = parts[0] if len(parts) == 1 else b"".join(parts)
        req = Request(guess_tag(parts[0]), line, tuple(literals))
        self._drop_command()
        return req

    def _literal_marker(self, seg: bytes, size: int, non_sync: bool) -> Event | None:
        """Handle a segment that announces a literal (RFC 3501 §4.3, RFC 7888)."""
        tag = guess_tag(self._parts[0] if self._parts else seg)
        too_big = self._lit_total + size > self.max_literal
        if non_sync and not self.literal_plus and size > LITERAL_MINUS_MAX:
            too_big = True  # RFC 7888 §4 (LITERAL-)
        if too_big:
            self._drop_command()
            if non_sync:
                self._skip_then_discard(size)
            return LiteralTooBig(tag, size, not non_sync)
        self._parts.append(seg + b"\r\n")
        self._text_len += len(seg) + 2
        self._state, self._lit_need = _LITERAL, size
        if size == 0:
            self._step_literal()
        return None if non_sync else NeedContinuation(size)

    def _abandon_line(self, tail: bytes) -> None:
        """A rejected line just ended: skip a trailing {n+} payload, if any."""
        marker = None if self.line_mode else _marker(tail)
        if marker is not None and marker[1]:
            self._skip_then_discard(marker[0])
        else:
            self._state = _LINE

    def _skip_then_discard(self, size: int) -> None:
        """Skip ``size`` literal bytes, then the rest of their line."""
        self._skip = size
        self._state = _SKIP
        if size == 0:
            self._step_skip()

    def _step_literal(self) -> None:
        chunk, pos = self._chunk, self._pos
        take = min(self._lit_need, len(chunk) - pos)
        if take:
            whole = pos == 0 and take == len(chunk)
            self._lit_chunks.append(chunk if whole else chunk[pos : pos + take])
            self._pos = pos + take
            self._lit_need -= take
        if self._lit_need == 0:
            chunks = self._lit_chunks
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            self._lit_chunks = []
            self._literals.append(data)
            self._lit_total += len(data)
            self._state = _LINE

    def _step_skip(self) -> None:
        take = min(self._skip, len(self._chunk) - self._pos)
        self._pos += take
        self._skip -= take
        if self._skip == 0:
            self._tail = b""
            self._state = _DISCARD

    def _step_discard(self) -> None:
        chunk, pos = self._chunk, self._pos
        idx = chunk.find(b"\n", pos)
        end = len(chunk) if idx < 0 else idx
        piece = chunk[max(pos, end - _MARKER_TAIL) : end]
        self._tail = (self._tail + piece)[-_MARKER_TAIL:]
        if idx < 0:
            self._pos = len(chunk)
            return
        self._pos = idx + 1
        tail = self._tail[:-1] if self._tail.endswith(b"\r") else self._tail
        self._tail = b""
        self._abandon_line(tail)
