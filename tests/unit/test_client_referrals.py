"""twistedmail.client against tiny scripted IMAP servers on 127.0.0.1 (issue 5 item 6):
list order, refused ports, ``* BYE [UNAVAILABLE]`` greetings, LOGIN and mailbox referrals
(RFC 2221, RFC 2193, URLs per RFC 5092), bounded hops and loops, no failback until the
client reconnects, UIDVALIDITY changes, and APPEND never re-sent after a lost answer.

Each fake server is a listening socket with one thread per connection (at most
``MAX_CONNS``), every read bounded by a socket timeout; servers stop at teardown.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from twistedmail.client import (
    Client,
    CommandFailed,
    LoginFailed,
    NoServerReachable,
    OutcomeUnknown,
    ReferralError,
    UidValidityChanged,
    referral_urls,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:imaplib2")
HOST = "127.0.0.1"
MAX_CONNS = 8
IO_TIMEOUT = 5.0
Reply = list[str] | Callable[[str], list[str]]


class FakeServer:
    """A scripted IMAP server: ``replies[VERB]`` (lines; the last one gets the tag, or
    ``["DROP"]`` to close without answering) overrides the defaults; ``log`` holds every
    (verb, arguments) received and ``logins`` counts LOGINs."""

    def __init__(self, uidvalidity: int = 7, greeting: str = "* OK fake IMAP ready") -> None:
        self.uidvalidity, self.greeting = uidvalidity, greeting
        self.replies: dict[str, Reply] = {}
        self.log: list[tuple[str, str]] = []
        self.conns: list[socket.socket] = []
        self.sock = socket.create_server((HOST, 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    @property
    def address(self) -> tuple[str, int]:
        return HOST, self.port

    def url(self, mailbox: str = "") -> str:
        """An RFC 5092 referral URL to this server (a server URL when ``mailbox`` is "")."""
        return f"imap://;AUTH=*@{HOST}:{self.port}/{mailbox}"

    def commands(self, verb: str) -> list[str]:
        """The arguments of every ``verb`` command received."""
        return [args for v, args in self.log if v == verb]

    def drop_all(self) -> None:
        """Close every open connection abruptly (as a killed server would)."""
        for conn in list(self.conns):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def stop(self) -> None:
        self.stopped.set()
        self.drop_all()
        self.sock.close()
        for thread in self.threads:
            thread.join(IO_TIMEOUT)

    def _accept(self) -> None:
        while not self.stopped.is_set() and len(self.conns) < MAX_CONNS:
            try:
                conn, _addr = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(IO_TIMEOUT)
            self.conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn, conn.makefile("rb") as rfile:
            conn.sendall(self.greeting.encode() + b"\r\n")
            if self.greeting.startswith("* BYE"):
                return
            for _ in range(100):  # bounded: a test session sends a handful of commands
                line = rfile.readline(65536)
                if not line:
                    return
                tag, _sp, rest = line.decode().rstrip("\r\n").partition(" ")
                verb, _sp, args = rest.partition(" ")
                verb = verb.upper()
                if args.endswith("}"):  # a synchronising literal (APPEND)
                    size = int(args[args.rindex("{") + 1:-1])
                    conn.sendall(b"+ go on\r\n")
                    rfile.read(size)
                    rfile.readline(65536)
                self.log.append((verb, args))
                lines = self._reply(verb, args)
                if lines == ["DROP"]:
                    return
                conn.sendall("".join(f"{x}\r\n" for x in [*lines[:-1], f"{tag} {lines[-1]}"])
                             .encode())
                if verb == "LOGOUT":
                    return

    def _reply(self, verb: str, args: str) -> list[str]:
        scripted = self.replies.get(verb)
        if scripted is not None:
            return scripted(args) if callable(scripted) else scripted
        uv = self.uidvalidity
        defaults = {
            "CAPABILITY": ["* CAPABILITY IMAP4rev1 LOGIN-REFERRALS MAILBOX-REFERRALS", "OK done"],
            "LOGIN": ["OK logged in"],
            "SELECT": ["* 2 EXISTS", f"* OK [UIDVALIDITY {uv}] ok", "OK [READ-WRITE] done"],
            "EXAMINE": ["* 2 EXISTS", f"* OK [UIDVALIDITY {uv}] ok", "OK [READ-ONLY] done"],
            "STATUS": [f"* STATUS {args.split(' (')[0]} (MESSAGES 2 UIDVALIDITY {uv})", "OK done"],
            "APPEND": [f"OK [APPENDUID {uv} 3] stored"],
            "UID": ["* 1 FETCH (UID 1 FLAGS (\\Seen))", "OK fetched"],
            "NOOP": ["OK done"],
            "LOGOUT": ["* BYE logging out", "OK done"],
        }
        return defaults.get(verb, ["BAD unknown command"])


@pytest.fixture
def servers() -> Iterator[Callable[..., FakeServer]]:
    """Factory of fake servers, all stopped at teardown."""
    made: list[FakeServer] = []

    def make(**kwargs: object) -> FakeServer:
        made.append(FakeServer(**kwargs))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for server in made:
        server.stop()


@pytest.fixture
def refused() -> Iterator[tuple[str, int]]:
    """An address on 127.0.0.1 that refuses connections (bound, never listening)."""
    sock = socket.socket()
    sock.bind((HOST, 0))
    yield HOST, int(sock.getsockname()[1])
    sock.close()


def client(*addresses: tuple[str, int], **kwargs: object) -> Client:
    return Client(list(addresses), "alice", "secret", timeout=IO_TIMEOUT, **kwargs)  # type: ignore[arg-type]


def whats(c: Client) -> list[tuple[int, str]]:
    return [(e.server[1], e.what) for e in c.events]


def test_connects_to_first_server_in_list_order(servers):
    """The first server of the list is used when it answers; the second is not contacted."""
    a, b = servers(), servers()
    with client(a.address, b.address) as c:
        assert c.select("INBOX").exists == 2
        assert c.server == a.address
    assert a.commands("LOGIN") == ['alice "secret"'] and not b.log


def test_refused_port_moves_to_next(servers, refused):
    """A refused connection is skipped: the client logs in on the next server."""
    b = servers()
    with client(refused, b.address) as c:
        assert c.connect() == b.address
        assert whats(c) == [(refused[1], "connect failed"), (b.port, "connected")]


def test_bye_unavailable_greeting_moves_to_next(servers):
    """A ``* BYE [UNAVAILABLE]`` greeting (node catching up) sends the client on down."""
    a = servers(greeting="* BYE [UNAVAILABLE] catching up")
    b = servers()
    with client(a.address, b.address) as c:
        c.select("INBOX")
        assert c.server == b.address
        assert whats(c) == [(a.port, "connect failed"), (b.port, "connected")]
    assert not a.log


def test_login_unavailable_moves_on_other_refusal_raises(servers):
    """LOGIN ``NO [UNAVAILABLE]`` moves on; ``NO [AUTHENTICATIONFAILED]`` stops at once."""
    a, b, z = servers(), servers(), servers()
    a.replies["LOGIN"] = ["NO [UNAVAILABLE] try later"]
    b.replies["LOGIN"] = ["NO [AUTHENTICATIONFAILED] wrong password"]
    with pytest.raises(LoginFailed, match="AUTHENTICATIONFAILED"):
        client(a.address, b.address, z.address).connect()
    assert not z.log


def test_nothing_reachable_raises(refused):
    """Every server refusing gives NoServerReachable naming each one."""
    with pytest.raises(NoServerReachable, match=str(refused[1])):
        client(refused, refused).connect()


def test_login_referral_followed(servers):
    """LOGIN ``NO [REFERRAL imap://;AUTH=*@host:port/]`` (RFC 2221): logged in there."""
    a, b = servers(), servers()
    a.replies["LOGIN"] = [f"NO [REFERRAL {b.url()}] your mail is elsewhere"]
    with client(a.address) as c:
        assert c.connect() == b.address
        assert whats(c) == [(a.port, "referred"), (b.port, "connected")]
    assert b.commands("LOGIN") == ['alice "secret"']


def test_select_referral_reissued_with_url_mailbox(servers):
    """SELECT ``NO [REFERRAL ...]``: SELECT again on the referred server with the URL's
    mailbox (UTF-8 in the URL, modified UTF-7 on the wire); the client stays there."""
    a, b = servers(), servers(uidvalidity=42)
    a.replies["SELECT"] = [f"NO [REFERRAL {b.url('Public/Caf%C3%A9')}] not here"]
    with client(a.address) as c:
        assert c.select("Public/News") == (2, 42)
        assert c.server == b.address and c.uidvalidity("Public/News") == 42
        c.uid("FETCH", "1:*", "(FLAGS)")
    assert a.commands("SELECT") == ['"Public/News"']
    assert b.commands("SELECT") == ['"Public/Caf&AOk-"']
    assert b.commands("UID") == ["FETCH 1:* (FLAGS)"] and not a.commands("UID")


def test_referral_list_tried_in_order(servers, refused):
    """A referral's URLs are tried in order: a refused first URL, then the second one."""
    a, b, z = servers(), servers(), servers()
    dead = f"imap://;AUTH=*@{refused[0]}:{refused[1]}/Public/News"
    a.replies["SELECT"] = [f"NO [REFERRAL {dead} {b.url('Public/News')} "
                           f"{z.url('Public/News')}] elsewhere"]
    with client(a.address) as c:
        c.select("Public/News")
        assert c.server == b.address
        assert whats(c)[-2:] == [(refused[1], "connect failed"), (b.port, "connected")]
    assert not z.log


def test_status_and_append_referrals(servers):
    """STATUS and APPEND answered with a referral are re-issued once on the referred server."""
    a, b = servers(), servers(uidvalidity=9)
    for verb in ("STATUS", "APPEND"):
        a.replies[verb] = [f"NO [REFERRAL {b.url('Public/News')}] elsewhere"]
    with client(a.address) as c:
        assert b"UIDVALIDITY 9" in c.status("Public/News")
    with client(a.address) as c:
        c.append("Public/News", b"Subject: hi\r\n\r\nhi\r\n", ["\\Seen"])
    assert len(b.commands("STATUS")) == 1 and len(b.commands("APPEND")) == 1
    assert len(a.commands("APPEND")) == 1


def test_referral_loop_is_bounded(servers):
    """A refers SELECT to B, B back to A: ReferralError after one visit each, no ping-pong."""
    a, b = servers(), servers()
    a.replies["SELECT"] = [f"NO [REFERRAL {b.url('Public/News')}] go to b"]
    b.replies["SELECT"] = [f"NO [REFERRAL {a.url('Public/News')}] go to a"]
    with client(a.address) as c, pytest.raises(ReferralError):
        c.select("Public/News")
    assert len(a.commands("SELECT")) == 1 and len(b.commands("SELECT")) == 1
    assert ("127.0.0.1", a.port) in [e.server for e in c.events if e.what == "loop"]


def test_referral_hops_are_bounded(servers):
    """A chain of referrals longer than ``max_hops`` stops: the last server is never asked."""
    chain = [servers() for _ in range(5)]
    for here, there in zip(chain, chain[1:], strict=False):
        here.replies["SELECT"] = [f"NO [REFERRAL {there.url('Public/News')}] next"]
    with client(chain[0].address, max_hops=3) as c, pytest.raises(ReferralError, match="3"):
        c.select("Public/News")
    assert [len(s.commands("SELECT")) for s in chain] == [1, 1, 1, 1, 0]


def test_bad_referral_url_is_an_error(servers):
    """A malformed referral URL (port 0) is a ReferralError naming the problem."""
    a = servers()
    a.replies["SELECT"] = [f"NO [REFERRAL imap://{HOST}:0/Public/News] broken"]
    with client(a.address) as c, pytest.raises(ReferralError, match="port"):
        c.select("Public/News")


def test_plain_no_is_command_failed(servers):
    """A NO without a referral raises CommandFailed with the server text (no failover)."""
    a, b = servers(), servers()
    a.replies["SELECT"] = ["NO [NONEXISTENT] no such mailbox"]
    with client(a.address, b.address) as c, pytest.raises(CommandFailed, match="NONEXISTENT"):
        c.select("Nope")
    assert not b.log


def test_lost_connection_fails_over_without_failback(servers):
    """A drops the connection: the next command runs on B and reports the new UIDVALIDITY;
    A is back (listening) but the client stays on B until close(), then starts at A."""
    a, b = servers(uidvalidity=7), servers(uidvalidity=8)
    c = client(a.address, b.address)
    try:
        assert c.select("INBOX").uidvalidity == 7
        assert not c.uidvalidity_changed("INBOX")
        a.drop_all()
        assert c.select("INBOX").uidvalidity == 8 and c.server == b.address
        assert c.uidvalidity_changed("INBOX") and not c.uidvalidity_changed("INBOX")
        for _ in range(3):
            c.select("INBOX")
        assert c.server == b.address and len(a.commands("LOGIN")) == 1
        c.close()
        assert c.select("INBOX").uidvalidity == 7 and c.server == a.address
        assert c.uidvalidity_changed("INBOX")
    finally:
        c.close()
    assert [w for _p, w in whats(c)] == ["connected", "lost", "connected", "connected"]


def test_failover_wraps_around_the_list(servers):
    """Lost on the last server of the list: the client goes back to the top (each once)."""
    a, b = servers(), servers()
    with client(a.address, b.address) as c:
        a.replies["LOGIN"] = ["NO [UNAVAILABLE] not yet"]
        c.select("INBOX")
        assert c.server == b.address
        del a.replies["LOGIN"]
        b.drop_all()
        c.select("INBOX")
        assert c.server == a.address


def test_append_lost_raises_outcome_unknown_and_is_not_resent(servers):
    """The connection dies before APPEND's answer: OutcomeUnknown, and no server sees the
    APPEND twice; the next command fails over to B."""
    a, b = servers(), servers()
    a.replies["APPEND"] = ["DROP"]
    with client(a.address, b.address) as c:
        with pytest.raises(OutcomeUnknown):
            c.append("INBOX", b"Subject: x\r\n\r\nx\r\n")
        assert not b.log
        c.select("INBOX")
        assert c.server == b.address
    assert len(a.commands("APPEND")) == 1 and not b.commands("APPEND")


def test_uid_command_after_failover_with_new_uidvalidity(servers):
    """A UID command lost with its connection is not rerun under a new UIDVALIDITY:
    UidValidityChanged, and the folder is marked changed."""
    a, b = servers(uidvalidity=7), servers(uidvalidity=8)
    a_uid = ["DROP"]
    with client(a.address, b.address) as c:
        c.select("INBOX")
        a.replies["UID"] = a_uid
        with pytest.raises(UidValidityChanged) as caught:
            c.uid("FETCH", "1:*", "(FLAGS)")
        assert (caught.value.old, caught.value.new) == (7, 8)
        assert c.uidvalidity_changed("INBOX") and c.server == b.address
    assert not b.commands("UID")


def test_uid_command_rerun_when_uidvalidity_kept(servers):
    """Same UIDVALIDITY on the next server: an idempotent UID FETCH is rerun there."""
    a, b = servers(uidvalidity=7), servers(uidvalidity=7)
    with client(a.address, b.address) as c:
        c.select("INBOX")
        a.replies["UID"] = ["DROP"]
        assert c.uid("FETCH", "1:*", "(FLAGS)")[0].startswith(b"1 (UID 1")
        assert not c.uidvalidity_changed("INBOX")
    assert b.commands("UID") == ["FETCH 1:* (FLAGS)"]


def test_referral_urls_parse():
    """referral_urls reads the RFC 2193 code in order and ignores texts without one."""
    urls = referral_urls("[REFERRAL imap://;AUTH=*@h1:1430/Public/News imap://h2/] x")
    assert [(u.host, u.port, u.mailbox) for u in urls] == [
        ("h1", 1430, "Public/News"), ("h2", 143, None)]
    assert referral_urls("[NONEXISTENT] nope") == []
