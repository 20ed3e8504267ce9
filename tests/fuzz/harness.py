"""The in-process fuzz target: a real IMAPProtocol on a StringTransport, plus seeds.

Shared by tests/fuzz/test_protocol_fuzz.py and fuzz/atheris_imap.py.

Invariants
----------
* No sockets, no reactor: the node runs on a ``Clock``; output is read from the
  transport after every ``dataReceived``.
* Small limits (``MAX_LINE``, ``MAX_LITERAL``) so every input, however hostile,
  costs bounded memory and time, and :meth:`FuzzPeer.settle` can always bring the
  connection back to command state with a bounded number of bytes.
* Oracle (:meth:`FuzzPeer.check`): every output byte parses as IMAP responses
  (tests/fuzz/imapsyntax.py), no ``[SERVERBUG]``, no logged failure, and each
  tag sent gets at most one tagged response per command sent with it.
"""

from __future__ import annotations

import os
import random
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher

from tests.fuzz.imapsyntax import Response, check_stream
from twistedmail.config import NodeSettings
from twistedmail.imap.protocol import IMAPProtocol
from twistedmail.node import Node

MAX_LINE = 4096
MAX_LITERAL = 16384
LOOPBACK = IPv4Address("TCP", "127.0.0.1", 40000)

SIMPLE = (
    b"From: Alice Example <alice@example.org>\r\nTo: Bob <bob@example.org>, c@example.net\r\n"
    b"Subject: Hello kumquat\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
    b"Message-ID: <msg1@example.org>\r\n\r\nHello Bob,\r\nthis body mentions xylophonist.\r\n"
)
MULTIPART = (
    b"From: Bob <bob@example.org>\r\nTo: undisclosed-recipients:;\r\n"
    b"Subject: =?utf-8?q?R=C3=A9port?=\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\npreamble\r\n--XX\r\n'
    b"Content-Type: multipart/alternative; boundary=YY\r\n\r\n--YY\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
    b"\r\nCaf=C3=A9 au lait\r\n--YY\r\nContent-Type: text/html\r\n\r\n<p>Caf&eacute;</p>\r\n"
    b"--YY--\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nFrom: x@y\r\n\r\n"
    b"inner body\r\n--XX\r\nContent-Type: application/octet-stream; name*=utf-8''d%C3%A9.bin\r\n"
    b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=d.bin\r\n"
    b"\r\nAAECAwQF\r\n--XX--\r\nepilogue\r\n"
)
EIGHTBIT = (
    b"From: J\xc3\xbcrgen <j@example.de>\r\nSubject: Gr\xfc\xdfe \xff\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\nK\xe4se\r\n"
)
MESSAGES = (SIMPLE, MULTIPART, EIGHTBIT)

# Real commands a client might send in the selected state (RFC 3501 and extensions).
COMMANDS: tuple[bytes, ...] = (
    b"a1 NOOP", b"a2 CAPABILITY", b"a3 CHECK", b"a4 ID NIL", b'a5 ID ("name" "fuzz")',
    b"a6 FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE)", b"a7 FETCH 2 BODYSTRUCTURE",
    b"a8 FETCH 1:3 (ENVELOPE BODY)", b"a9 FETCH 2 BODY.PEEK[1.1]", b"b1 FETCH 2 BODY[2.HEADER]",
    b"b2 FETCH 1 BODY[HEADER.FIELDS (SUBJECT FROM)]", b"b3 FETCH 1 BODY[TEXT]<0.10>",
    b"b4 FETCH 2 BINARY[1.1]", b"b5 FETCH 2 BINARY.SIZE[3]", b"b6 FETCH 3 (PREVIEW SAVEDATE)",
    b"b7 UID FETCH 1:* (EMAILID THREADID MODSEQ)", b"b8 FETCH 2 BODY[HEADER.FIELDS.NOT (TO)]",
    b"b9 FETCH 1:* FAST", b"c1 FETCH * ALL", b"c2 FETCH 2 BODY[2.MIME]", b"c3 FETCH 2 RFC822",
    b"c4 SEARCH ALL", b"c5 SEARCH OR SEEN SUBJECT kumquat", b"c6 UID SEARCH 1:* NOT DELETED",
    b'c7 SEARCH CHARSET UTF-8 TEXT "caf\xc3\xa9"', b"c8 SEARCH HEADER Message-ID <msg1>",
    b"c9 SEARCH SINCE 1-Jan-1990 BEFORE 1-Jan-2100 LARGER 10 SMALLER 100000",
    b"d1 SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN", b"d2 SEARCH RETURN (SAVE) FLAGGED",
    b"d3 FETCH $ FLAGS", b"d4 SEARCH MODSEQ 1 YOUNGER 1000 OLDER 1", b"d5 SEARCH (FROM bob TO x)",
    b"d6 SORT (REVERSE DATE SUBJECT) UTF-8 ALL", b"d7 THREAD REFERENCES UTF-8 ALL",
    b"d8 THREAD ORDEREDSUBJECT US-ASCII SUBJECT hello", b"d9 SORT (DISPLAYFROM ARRIVAL) UTF-8 1:2",
    b"e1 STORE 1 +FLAGS (\\Seen $Work)", b"e2 STORE 1:2 -FLAGS.SILENT (\\Flagged)",
    b"e3 UID STORE 1:* FLAGS (\\Answered)", b"e4 STORE 1 (UNCHANGEDSINCE 5) +FLAGS (x)",
    b"e5 COPY 1:2 Archive", b"e6 UID COPY 1 Archive", b"e7 MOVE 3 Archive", b"e8 UID MOVE 9 INBOX",
    b"e9 EXPUNGE", b"f1 UID EXPUNGE 1:2", b"f2 CREATE Archive/2024", b"f3 CREATE &AMk-t&AOk-",
    b"f4 DELETE Archive/2024", b"f5 RENAME Archive Old", b'f6 LIST "" *', b'f7 LSUB "" %',
    b'f8 LIST (SUBSCRIBED) "" "*" RETURN (CHILDREN STATUS (MESSAGES UNSEEN))',
    b"f9 STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN SIZE HIGHESTMODSEQ)",
    b"g1 SUBSCRIBE Archive", b"g2 UNSUBSCRIBE Archive", b"g3 NAMESPACE", b"g4 EXAMINE Archive",
    b"g5 SELECT INBOX (CONDSTORE)", b"g6 SELECT INBOX (QRESYNC (1 1 1:5 (1:3 1:3)))",
    b"g7 ENABLE CONDSTORE QRESYNC UTF8=ACCEPT", b"g8 UNSELECT", b"g9 CLOSE",
    b"h1 GETQUOTAROOT INBOX", b'h2 GETQUOTA ""', b"h3 MYRIGHTS INBOX", b"h4 GETACL INBOX",
    b"h5 SETACL INBOX bob lrs", b"h6 DELETEACL INBOX bob", b"h7 LISTRIGHTS INBOX bob",
    b'h8 GETMETADATA (DEPTH infinity) INBOX /private', b'h9 SETMETADATA INBOX (/private/c "v")',
    b"i1 APPEND INBOX (\\Seen) {21+}\r\nSubject: hi\r\n\r\nbody\r\n",
    b'i2 APPEND Archive (\\Draft) "7-Feb-1994 21:52:25 -0800" {10}\r\nSubject: x',
    b"i3 APPEND INBOX CATENATE (URL \"/INBOX/;UID=1/;SECTION=TEXT\" TEXT {4+}\r\nabcd)",
    b"i4 REPLACE 1 INBOX {12+}\r\nSubject: r\r\n", b"i5 APPEND INBOX ~{3}\r\na\x00b",
    b"i6 UID REPLACE 2 Archive {2+}\r\nxy", b"i7 SEARCH EMAILID Mabc", b"i8 UNAUTHENTICATE",
    b"i9 NOTIFY SET (SELECTED (MessageNew MessageExpunge FlagChange)) (PERSONAL NONE)",
    b"j1 NOTIFY NONE", b'j2 LIST "" "%" RETURN (SPECIAL-USE)',
    b"j3 CREATE Trash (USE (\\Trash))",
    b"j4 COMPRESS DEFLATE", b"j5 STARTTLS", b"j6 LOGIN alice secret", b"j7 LOGOUT",
    b"j8 IDLE\r\nDONE", b"j9 AUTHENTICATE PLAIN\r\n*", b"k1 SETQUOTA \"\" (STORAGE 100)",
    b"k2 FETCH 1:4294967295 FLAGS", b"k3 UID FETCH 4294967295:* UID",
    b"k4 ESEARCH IN (mailboxes INBOX) ALL", b"l1 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==",
    b"l2 AUTHENTICATE SCRAM-SHA-256 biwsbj1hbGljZSxyPWZ5a28=\r\nYz1iaXdzLHI9Znlrbw==",
    b"l3 AUTHENTICATE SCRAM-SHA-256\r\nbiwsbj1ib2Iscj0x\r\n", b"l4 LOGIN {5+}\r\nalice pw",
)

# Tokens the mutator splices in: IMAP syntax at its edges.
DICTIONARY: tuple[bytes, ...] = (
    b" ", b"(", b")", b"[", b"]", b"<", b">", b'"', b"\\", b"{", b"}", b"*", b"%", b"$", b"~",
    b"+", b":", b",", b".", b"\r\n", b"\n", b"\r", b"\x00", b"\xff", b"\xc3\xa9", b"NIL", b"0",
    b"4294967295", b"4294967296", b"18446744073709551616", b"-1", b"1:*", b"*:1", b"{0}\r\n",
    b"{3}\r\nabc", b"{5+}\r\nab", b"~{2+}\r\n\x00\x00", b"{99999}\r\n", b"{4097+}\r\n",
    b"BODY[", b"BODY[1.2.3.4.5.6.7.8.9.10]", b"<4294967295.4294967295>", b"HEADER.FIELDS ()",
    b"(((((((((((", b")))))))", b"&", b"&-", b"&AGE-", b"&Jjo!-", b"UTF-8", b"CHARSET X",
    b"OR OR OR NOT NOT", b"UID ", b"INBOX", b"inbox.", b"\"\"", b"A" * 300, b"1,2,3,4",
)


class _Transport(StringTransport):
    """A StringTransport on which STARTTLS "succeeds": later bytes would be TLS records,
    so the fuzz session ends there (``FuzzPeer.done``)."""

    tls_started = False

    def startTLS(self, context: object) -> None:
        """Record that TLS began (RFC 3501 §6.2.1)."""
        self.tls_started = True


@contextmanager
def capture_failures() -> Iterator[list[dict[str, Any]]]:
    """Collect logged failures and errors (log.failure / log.error) while active."""
    seen: list[dict[str, Any]] = []

    def observer(event: dict[str, Any]) -> None:
        level = getattr(event.get("log_level"), "name", "")
        if "log_failure" in event or level in ("error", "critical"):
            seen.append(event)

    globalLogPublisher.addObserver(cast(Any, observer))
    try:
        yield seen
    finally:
        globalLogPublisher.removeObserver(cast(Any, observer))


class FuzzPeer:
    """An authenticated, selected IMAP session over a StringTransport."""

    def __init__(self, seed_messages: bool = True, login: bool = True) -> None:
        settings = NodeSettings(users={"alice": "secret", "bob": "pw"}, max_line=MAX_LINE,
                                max_literal=MAX_LITERAL)
        self.clock = Clock()
        self.node = Node(settings, reactor=self.clock)
        self.proto = IMAPProtocol(self.node)
        self.proto.callLater = self.clock.callLater  # type: ignore[assignment,method-assign]
        self.transport = _Transport(peerAddress=LOOPBACK)
        self.proto.makeConnection(self.transport)
        self.out = bytearray(self.take())
        self.inflate: Any = None  # after COMPRESS DEFLATE (RFC 4978): both ways deflated
        self.deflate: Any = None
        self.swallowing = False  # see settle()
        if login:
            self.setup(b"s0 LOGIN alice secret\r\ns1 CREATE Archive\r\n")
        for i, msg in enumerate(MESSAGES if seed_messages and login else ()):
            self.setup(b"s%d APPEND INBOX {%d+}\r\n%s\r\n" % (i + 2, len(msg), msg))
        if login:
            self.setup(b"s9 SELECT INBOX\r\n")

    @property
    def done(self) -> bool:
        """Closed, swallowing a huge literal, or gone over to TLS: no more plain commands."""
        return bool(self.transport.disconnecting or self.swallowing
                    or self.transport.tls_started)

    def setup(self, data: bytes) -> None:
        """Send a setup command; it must succeed."""
        self.proto.dataReceived(data)
        reply = self.take()
        assert b" OK " in reply, reply

    def take(self) -> bytes:
        """Output written since the last take."""
        data = self.transport.value()
        self.transport.clear()
        return data

    def send(self, data: bytes) -> bytes:
        """Feed ``data`` (unless the connection closed) and return what came out."""
        compressed = self.inflate is not None
        if compressed:
            data = self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        if not self.done:
            self.proto.dataReceived(data)
        self.clock.advance(10)  # delayed answers (login delay) fire; no idle timeout
        out = self.take()
        if compressed:
            out = self.inflate.decompress(out)
        elif self.proto.deflate is not None:
            self.inflate = zlib.decompressobj(-15)
            self.deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.out += out
        return out

    def settle(self) -> bytes:
        """Bring the receiver back to command state with bounded input (see Invariants).

        A rejected non-synchronizing literal is skipped by count (RFC 7888, wire.py):
        if it announced more than 1 MiB the connection keeps swallowing, and
        ``swallowing`` is set instead (the client chose to send that much)."""
        out = bytearray()
        receiver = self.proto.receiver
        for _ in range(4):
            if self.done:
                break
            state = receiver._state
            need = receiver._lit_need if state == 1 else receiver._skip if state == 2 else 0
            if need > 1 << 20:
                self.swallowing = True
                break
            out += self.send(b"x" * need + b"\r\n")
            if self.proto.line_waiter is not None:
                out += self.send(b"*\r\nDONE\r\n")
        return bytes(out)

    def check(self) -> list[Response]:
        """Parse all output so far as IMAP; no SERVERBUG, no traceback text."""
        data = bytes(self.out)
        assert b"Traceback" not in data, data[-2000:]
        responses = check_stream(data)
        for r in responses:
            assert b"[SERVERBUG]" not in r.raw, r.raw
        return responses


def mutate(rng: random.Random, data: bytes, rounds: int = 3) -> bytes:
    """A few random edits of ``data``: flips, deletions, duplications, dictionary splices."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, rounds)):
        op = rng.randrange(6)
        pos = rng.randint(0, len(buf))
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            del buf[pos:pos + rng.randint(1, 8)]
        elif op == 2:
            buf[pos:pos] = buf[pos:pos + rng.randint(1, 16)]
        elif op == 3:
            buf[pos:pos] = rng.choice(DICTIONARY)
        elif op == 4:
            buf[pos:pos] = rng.choice(COMMANDS)[rng.randint(0, 10):]
        else:
            buf[pos:pos + rng.randint(0, 4)] = rng.choice(DICTIONARY)
    return bytes(buf)


def examples(n: int) -> Any:
    """``@settings(max_examples=n)``, or $TWM_FUZZ_EXAMPLES for a long run (fuzz/README)."""
    from hypothesis import settings

    return settings(max_examples=int(os.environ.get("TWM_FUZZ_EXAMPLES", "0")) or n)
