"""A deterministic test account for the real-client tests (issue "Real client programs in CI").

``ACCOUNT`` is the same on every run: five folders (INBOX, Archive, Work, and the non-ASCII
"Café" / "Café/Ünïcode"), 205 messages in all — plain text, multipart/alternative,
multipart/mixed with attachments of 2 KB to 120 KB, 8-bit bodies and headers, RFC 2047
encoded words — some \\Seen / \\Flagged / \\Answered / \\Draft, a few keywords.

``load_account(host, port)`` APPENDs it to a node over IMAP; ``real_node`` (a pytest
fixture built on ``clustermail_node``) starts a ``twistd clustermail`` process with the
account loaded.  Helpers here are shared by every client module: the lookup of a message by
its Message-ID, Maildir reading, a plain imaplib session for the server side.
"""

from __future__ import annotations

import base64
import hashlib
import imaplib
import os
import random
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from twistedmail.imap import mutf7

USER, PASSWORD = "tester", "s3cret"
FOLDERS: dict[str, int] = {"INBOX": 80, "Archive": 50, "Work": 40, "Café": 10, "Café/Ünïcode": 25}
KEYWORDS = ("$Forwarded", "$Label1", "project-x")
ATTACHMENT_SIZES = (2_000, 8_000, 20_000, 60_000, 120_000)
RUN_TIMEOUT = 60.0  # seconds: every client program run is bounded by this


@dataclass(frozen=True)
class Msg:
    """One message of the account: where it lives, its bytes, its flags, its date."""

    folder: str
    index: int
    raw: bytes
    flags: tuple[str, ...]
    date: str  # INTERNALDATE for APPEND, e.g. "05-Mar-2026 10:00:00 +0000"

    @property
    def message_id(self) -> str:
        return f"<{self.index}.{_slug(self.folder)}@fixtures.twistedmail.test>"

    @property
    def seen(self) -> bool:
        return "\\Seen" in self.flags


def _slug(folder: str) -> str:
    return hashlib.sha1(folder.encode()).hexdigest()[:8]


def _encoded_word(text: str) -> str:
    """RFC 2047 B-encoded UTF-8 word."""
    return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="


def _headers(folder: str, i: int, rng: random.Random, extra: list[str]) -> list[str]:
    style = i % 4
    subject = {
        0: f"Report {i} for {folder.encode('ascii', 'replace').decode()}",
        1: _encoded_word(f"Grüße {i} — naïve café"),
        2: f"=?ISO-8859-1?Q?R=E9sum=E9_{i}?= and plain words",
        3: f"8-bit Überschrift {i} ✓",  # raw UTF-8 in a header (8-bit header)
    }[style]
    sender = _encoded_word("Zoë Åström") if i % 3 == 0 else f"User {rng.randrange(1000)}"
    return [
        f"From: {sender} <sender{i % 7}@example.org>",
        f"To: {USER} <{USER}@example.org>",
        f"Subject: {subject}",
        f"Date: Thu, {1 + i % 28:02d} Jan 2026 {i % 24:02d}:{i % 60:02d}:00 +0100",
        f"Message-ID: <{i}.{_slug(folder)}@fixtures.twistedmail.test>",
        "MIME-Version: 1.0",
        *extra,
    ]


def _text(rng: random.Random, lines: int, eight_bit: bool) -> str:
    words = ["alpha", "beta", "gamma", "delta", "mail", "sync", "node", "twisted"]
    if eight_bit:
        words += ["straße", "çà", "ñandú", "日本語"]
    return "\r\n".join(" ".join(rng.choice(words) for _ in range(9)) for _ in range(lines))


def _build(folder: str, i: int, rng: random.Random) -> bytes:
    kind = i % 5
    eight_bit = i % 3 == 1
    cte = "8bit" if eight_bit else "7bit"
    if kind in (0, 1, 2):  # plain text
        head = _headers(folder, i, rng, [
            "Content-Type: text/plain; charset=utf-8", f"Content-Transfer-Encoding: {cte}"])
        body = _text(rng, 3 + rng.randrange(30), eight_bit)
    elif kind == 3:  # multipart/alternative
        b = f"alt-{i}-{_slug(folder)}"
        head = _headers(folder, i, rng, [f'Content-Type: multipart/alternative; boundary="{b}"'])
        text = _text(rng, 5, eight_bit)
        body = (f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                f"Content-Transfer-Encoding: {cte}\r\n\r\n{text}\r\n"
                f"--{b}\r\nContent-Type: text/html; charset=utf-8\r\n"
                f"Content-Transfer-Encoding: {cte}\r\n\r\n<html><body><p>{text}</p></body>"
                f"</html>\r\n--{b}--")
    else:  # multipart/mixed with an attachment
        b = f"mix-{i}-{_slug(folder)}"
        size = ATTACHMENT_SIZES[(i // 5) % len(ATTACHMENT_SIZES)]
        blob = base64.encodebytes(rng.randbytes(size)).decode().replace("\n", "\r\n")
        name = "rapport-é.bin" if i % 2 else "data.bin"
        head = _headers(folder, i, rng, [f'Content-Type: multipart/mixed; boundary="{b}"'])
        body = (f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                f"{_text(rng, 4, False)}\r\n"
                f"--{b}\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Disposition: attachment; filename*=UTF-8''{name.replace('é', '%C3%A9')}"
                f"\r\nContent-Transfer-Encoding: base64\r\n\r\n{blob}--{b}--")
    return ("\r\n".join(head) + "\r\n\r\n" + body + "\r\n").encode()


def _flags(i: int) -> tuple[str, ...]:
    flags = []
    if i % 5 in (0, 2, 3):
        flags.append("\\Seen")
    if i % 7 == 0:
        flags.append("\\Flagged")
    if i % 11 == 3:
        flags.append("\\Answered")
    if i % 29 == 5:
        flags.append("\\Draft")
    if i % 13 == 4:
        flags.append(KEYWORDS[i % len(KEYWORDS)])
    return tuple(flags)


def generate() -> dict[str, list[Msg]]:
    """The account: folder name (Unicode) -> its messages in APPEND order."""
    account: dict[str, list[Msg]] = {}
    for folder, count in FOLDERS.items():
        rng = random.Random(f"twistedmail-fixtures/{folder}")
        account[folder] = [
            Msg(folder, i, _build(folder, i, rng), _flags(i),
                f"{1 + i % 28:02d}-Feb-2026 {i % 24:02d}:{(7 * i) % 60:02d}:{i % 60:02d} +0000")
            for i in range(count)
        ]
    return account


ACCOUNT = generate()
BY_ID: dict[str, Msg] = {m.message_id: m for msgs in ACCOUNT.values() for m in msgs}


def wire_name(folder: str) -> str:
    """The mailbox name as clients send it (modified UTF-7, RFC 3501 §5.1.3)."""
    return mutf7.encode(folder).decode("ascii")


def quoted(folder: str) -> str:
    return '"' + wire_name(folder) + '"'


# --- server side -------------------------------------------------------------------------


def connect(host: str, port: int) -> imaplib.IMAP4:
    """A logged-in imaplib session to the node, for checks and changes on the server side."""
    imap = imaplib.IMAP4(host, port, timeout=30)
    # imaplib writes a literal and its CRLF separately: without this, Nagle + delayed ACK
    # cost ~40 ms per APPEND
    imap.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    imap.login(USER, PASSWORD)
    return imap


def load_account(host: str, port: int) -> None:
    """CREATE the folders and APPEND every message with its flags and INTERNALDATE."""
    imap = connect(host, port)
    try:
        for folder, msgs in ACCOUNT.items():
            if folder != "INBOX":
                typ, data = imap.create(quoted(folder))  # a new account has Archive etc.
                assert typ == "OK" or b"ALREADYEXISTS" in data[0], (folder, data)
            for m in msgs:
                typ, data = imap.append(quoted(folder), "(" + " ".join(m.flags) + ")",
                                        f'"{m.date}"', m.raw)
                assert typ == "OK", (folder, m.index, data)
    finally:
        imap.logout()


FETCH_LINE = re.compile(rb"UID (\d+).*FLAGS \(([^)]*)\)|FLAGS \(([^)]*)\).*UID (\d+)")


def server_state(imap: imaplib.IMAP4, folder: str) -> dict[str, tuple[int, frozenset[str]]]:
    """Message-ID -> (UID, flags) of every message in ``folder`` on the server."""
    typ, _ = imap.select(quoted(folder), readonly=True)
    assert typ == "OK", folder
    typ, data = imap.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    assert typ == "OK", data
    state: dict[str, tuple[int, frozenset[str]]] = {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta, header = item
        match = FETCH_LINE.search(meta)
        assert match, meta
        uid = int(match.group(1) or match.group(4))
        flags = (match.group(2) if match.group(1) else match.group(3)).decode().split()
        mid = header.decode().split(":", 1)[1].strip()
        state[mid] = (uid, frozenset(flags))
    imap.unselect()
    return state


# --- client side -------------------------------------------------------------------------


def require(program: str) -> str:
    """The path of ``program``; a clear error (not a skip) when it is not installed."""
    path = shutil.which(program)
    if path is None:
        pytest.fail(f"{program} is not installed: `apt-get install isync offlineimap3 fetchmail "
                    f"curl` (.ci/run installs them in CI)", pytrace=False)
    return path


def run(argv: list[str], *, ok: tuple[int, ...] = (0,), env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a client program with a bounded timeout; fail with its output if it exits badly."""
    result = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                            stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})}, cwd=cwd,
                            errors="replace")
    if result.returncode not in ok:
        pytest.fail(f"{argv[0]} exited {result.returncode}\n--- stdout\n{result.stdout[-4000:]}"
                    f"\n--- stderr\n{result.stderr[-4000:]}", pytrace=False)
    return result


def lf(raw: bytes) -> bytes:
    """Line endings as a Maildir client stores them (LF)."""
    return raw.replace(b"\r\n", b"\n")


def message_id_of(data: bytes) -> str:
    match = re.search(rb"^Message-ID:\s*(<[^>]+>)", data, re.M | re.I)
    assert match, data[:300]
    return match.group(1).decode()


def body_hash(data: bytes) -> str:
    """SHA-256 of the body (after the first empty line), line endings normalised."""
    data = lf(data)
    return hashlib.sha256(data.split(b"\n\n", 1)[1]).hexdigest()


@dataclass
class MaildirMsg:
    path: Path
    flags: str  # the letters after ":2,"

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()


def maildir_messages(folder_dir: Path) -> dict[str, MaildirMsg]:
    """Message-ID -> file of every message in a Maildir folder (cur/ and new/)."""
    found: dict[str, MaildirMsg] = {}
    for sub in ("cur", "new"):
        for path in sorted((folder_dir / sub).iterdir()):
            info = path.name.split(":2,", 1)
            mid = message_id_of(path.read_bytes())
            assert mid not in found, f"duplicate {mid} in {folder_dir}"
            found[mid] = MaildirMsg(path, info[1] if len(info) > 1 else "")
    return found


MAILDIR_FLAGS = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen"}


def system_flags(flags: frozenset[str] | tuple[str, ...]) -> set[str]:
    return {f for f in flags if f in MAILDIR_FLAGS.values()}


def maildir_flags(letters: str) -> set[str]:
    return {MAILDIR_FLAGS[ch] for ch in letters if ch in MAILDIR_FLAGS}


def set_maildir_flags(msg: MaildirMsg, letters: str) -> Path:
    """Rename a Maildir file to carry exactly ``letters`` as its flags (in cur/)."""
    base = msg.path.name.split(":2,", 1)[0]
    target = msg.path.parent.parent / "cur" / f"{base}:2,{''.join(sorted(letters))}"
    msg.path.rename(target)
    return target


def assert_maildir_matches(folder_dir: Path, folder: str, expect_flags: bool = True,
                           added_header: str = "") -> None:
    """Every message of ``folder`` is in the Maildir exactly once, byte for byte (LF) but
    for one header line the client adds itself (``added_header``, e.g. mbsync's X-TUID)."""
    local = maildir_messages(folder_dir)
    expected = {m.message_id: m for m in ACCOUNT[folder]}
    assert set(local) == set(expected), (folder, len(local), len(expected))
    added = re.compile(rb"^" + re.escape(added_header.encode()) + rb": [^\n]*\n", re.M)
    for mid, msg in expected.items():
        data = lf(local[mid].data)
        if added_header:
            data = added.sub(b"", data, count=1)
        assert data == lf(msg.raw), (folder, mid)
        if expect_flags:
            assert maildir_flags(local[mid].flags) == system_flags(msg.flags), (folder, mid)


NEW_FAR = (b"From: a@example.org\r\nSubject: far new\r\nMessage-ID: <far-new@x.test>\r\n"
           b"\r\nfrom the server\r\n")
NEW_NEAR = b"From: b@example.org\nSubject: near new\nMessage-ID: <near-new@x.test>\n\nhi\n"
NEW_PROJECT = b"From: c@example.org\nSubject: plan\nMessage-ID: <project@x.test>\n\nplan\n"


def change_both_sides(imap: imaplib.IMAP4, inbox: Path, new_dir: Path) -> list[Msg]:
    """Flag changes on the server and in the Maildir ``inbox``, a message deleted locally,
    a new message on the server (Work) and one in the local folder ``new_dir``."""
    msgs = ACCOUNT["INBOX"]
    uid = {mid: u for mid, (u, _) in server_state(imap, "INBOX").items()}
    local = maildir_messages(inbox)
    imap.select("INBOX")
    ok = imap.uid("STORE", f"{uid[msgs[1].message_id]},{uid[msgs[2].message_id]}",
                  "+FLAGS", "(\\Flagged)")
    assert ok[0] == "OK", ok
    assert imap.uid("STORE", str(uid[msgs[0].message_id]), "-FLAGS", "(\\Seen)")[0] == "OK"
    assert imap.append("Work", "(\\Flagged)", None, NEW_FAR)[0] == "OK"
    imap.unselect()
    set_maildir_flags(local[msgs[1].message_id], "RS")
    set_maildir_flags(local[msgs[4].message_id], local[msgs[4].message_id].flags + "F")
    local[msgs[5].message_id].path.unlink()
    (new_dir / "new" / "1700000000.M1P1.near-new").write_bytes(NEW_NEAR)
    projects = inbox.parent / "Projects"  # a new local folder: CREATE + APPEND
    for sub in ("cur", "new", "tmp"):
        (projects / sub).mkdir(parents=True)
    (projects / "new" / "1700000001.M2P1.project").write_bytes(NEW_PROJECT)
    return msgs


def check_both_sides(imap: imaplib.IMAP4, msgs: list[Msg], inbox: Path, work: Path) -> None:
    """After a sync, both sides agree on what ``change_both_sides`` did."""
    after = server_state(imap, "INBOX")
    local = maildir_messages(inbox)
    assert msgs[5].message_id not in after  # deleted locally -> expunged on the server
    assert set(after) == set(local)
    for mid, (_uid, flags) in after.items():
        assert system_flags(flags) == maildir_flags(local[mid].flags), mid
    assert "\\Flagged" in after[msgs[2].message_id][1]
    assert "\\Seen" not in after[msgs[0].message_id][1]
    assert {"\\Seen", "\\Answered", "\\Flagged"} <= after[msgs[1].message_id][1]
    assert "\\Flagged" in after[msgs[4].message_id][1]
    far = maildir_messages(work)["<far-new@x.test>"]
    assert maildir_flags(far.flags) == {"\\Flagged"}
    assert lf(far.data).endswith(b"\n\nfrom the server\n")
    cafe = server_state(imap, "Café/Ünïcode")
    assert "<near-new@x.test>" in cafe and len(cafe) == len(ACCOUNT["Café/Ünïcode"]) + 1
    assert list(server_state(imap, "Projects")) == ["<project@x.test>"]


@pytest.fixture
def real_node(clustermail_node):
    """A real ``twistd clustermail`` node with ``ACCOUNT`` loaded for USER."""
    node = clustermail_node(users=[f"{USER}:{PASSWORD}"])
    load_account(node.host, node.port)
    return node


def all_messages() -> Iterator[Msg]:
    for msgs in ACCOUNT.values():
        yield from msgs
