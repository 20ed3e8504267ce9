"""A small referral-following, failover-aware IMAP client on imaplib2 (issue 5 item 6).

    with Client([("n1.example", 143), ("n2.example", 143)], "alice", "secret") as imap:
        exists = imap.select("Public/News").exists     # follows NO [REFERRAL ...]
        if imap.uidvalidity_changed("Public/News"):      # after a failover, say
            ...                                            # forget cached UIDs, resync

Invariants:

* Servers are tried in list order.  One that refuses the connection, greets ``* BYE``
  (e.g. ``[UNAVAILABLE]`` while catching up) or answers LOGIN ``NO [UNAVAILABLE]`` is
  skipped; any other LOGIN refusal raises :class:`LoginFailed` at once.
* Once connected the client stays on that server until its connection is lost: no
  failback to an earlier server that comes back (DESIGN.md §5, the seed's client).  After
  a loss it tries the servers after it in the current list, then those before it, each
  once.  :meth:`Client.close` forgets the position: the next command starts again at the
  top of the list the client was given ("failback only after the client reconnects").
* ``NO [REFERRAL url ...]`` to LOGIN (RFC 2221 §4.1) or to a mailbox command (RFC 2193 §4)
  is followed: URLs parsed strictly (RFC 5092, :func:`~twistedmail.imap.imapurl.parse_url`),
  tried in order, the command re-issued there with the URL's mailbox; at most
  ``max_hops`` referrals per command and never the same (server, mailbox) twice.  The
  server reached replaces the current one and its referral list becomes the list to
  fail over along.
* An APPEND whose connection is lost before its answer raises :class:`OutcomeUnknown` and
  is never re-sent (it may or may not be stored).  SELECT, EXAMINE, STATUS, CREATE and the
  idempotent UID commands rerun after a failover; a UID command whose folder shows a new
  UIDVALIDITY there raises :class:`UidValidityChanged` instead (its UIDs mean nothing
  there, RFC 3501 §2.3.1.1).  Other lost commands raise :class:`OutcomeUnknown`.
* The UIDVALIDITY last seen per folder (SELECT, EXAMINE, STATUS) is kept;
  :meth:`Client.uidvalidity_changed` reports a change once.
* Every loop is bounded: list length, ``max_hops``, the ``seen`` set of a command.
"""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import imaplib2

from twistedmail.imap import imapurl, mutf7

Server = tuple[str, int]
Reply = tuple[str, list[Any]]
LOST: tuple[type[BaseException], ...] = (imaplib2.IMAP4.abort, OSError)
_REFERRAL = re.compile(r"\[REFERRAL ([^\]]+)\]", re.IGNORECASE)
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)", re.IGNORECASE)
# UID commands safe to run twice (RFC 3501 §6.4.8; STORE/EXPUNGE reach the same state)
IDEMPOTENT_UID = frozenset({"FETCH", "SEARCH", "STORE", "EXPUNGE", "SORT", "THREAD"})


class ClientError(Exception):
    """Base of the errors :class:`Client` raises."""


class NoServerReachable(ClientError):
    """Every server of the list (and of the referrals it gave) failed; the text says how."""


class LoginFailed(ClientError):
    """LOGIN was refused for another reason than UNAVAILABLE or a referral."""


class ReferralError(ClientError):
    """A referral could not be followed: too many hops, a loop, bad URLs, none reachable."""


class CommandFailed(ClientError):
    """The server answered NO or BAD (not a referral); ``text`` is its answer."""

    def __init__(self, verb: str, text: str) -> None:
        super().__init__(f"{verb}: {text}")
        self.verb, self.text = verb, text


class OutcomeUnknown(ClientError):
    """The connection died before the answer to a non-idempotent command (APPEND, COPY
    ...): it may or may not have taken effect.  The client is not re-sending it."""


class UidValidityChanged(ClientError):
    """After a failover the folder has a new UIDVALIDITY: UIDs must be resynchronised."""

    def __init__(self, folder: str, old: int | None, new: int | None) -> None:
        super().__init__(f"{folder}: UIDVALIDITY {old} -> {new}; resync before UID commands")
        self.folder, self.old, self.new = folder, old, new


class Event(NamedTuple):
    """One thing that happened to the client, e.g. ``(("127.0.0.1", 1430), "lost", ...)``."""

    server: Server
    what: str  # connected | connect failed | referred | lost | loop
    detail: str


class Selected(NamedTuple):
    """What SELECT / EXAMINE told."""

    exists: int
    uidvalidity: int | None


@dataclass(frozen=True)
class Target:
    """A server to try; ``folder`` -> ``mailbox`` when a mailbox referral named it."""

    server: Server
    folder: str | None = None
    mailbox: str | None = None


class _Unreachable(Exception):
    """Connecting or logging in to one server failed (go on down the list)."""


class _Referred(Exception):
    """LOGIN answered with a referral."""

    def __init__(self, urls: list[imapurl.ImapUrl]) -> None:
        super().__init__(" ".join(f"{u.host}:{u.port}" for u in urls))
        self.urls = urls


class _IMAP4(imaplib2.IMAP4):
    """imaplib2 with a bounded TCP connect (imaplib2 itself connects without a timeout)."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.connect_timeout = timeout
        super().__init__(host, port, timeout=timeout)

    def open_socket(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        sock.settimeout(None)  # imaplib2's reader polls itself
        return sock


def referral_urls(text: str) -> list[imapurl.ImapUrl]:
    """The URLs of a ``[REFERRAL url ...]`` code in a server answer (RFC 2193 §6), in order;
    [] when there is none.  Raises :class:`ReferralError` for a malformed URL."""
    found = _REFERRAL.search(text)
    if found is None:
        return []
    try:
        return [imapurl.parse_url(url) for url in found.group(1).split()]
    except ValueError as err:
        raise ReferralError(f"bad referral URL: {err}") from err


def quote_mailbox(name: str) -> str:
    """A mailbox name as a quoted IMAP string in modified UTF-7 (RFC 3501 §5.1.3, §9)."""
    wire = mutf7.encode(name).decode("ascii")
    return '"' + wire.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(data: Any) -> str:
    """Server answer or exception text as ``str``."""
    if isinstance(data, BaseException):
        data = data.args[0] if data.args else str(data)
    if isinstance(data, list):
        data = data[-1] if data else ""
    if isinstance(data, tuple):
        data = data[0]
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return str(data)


def _close(conn: Any) -> None:
    """LOGOUT (which stops imaplib2's threads), then drop the socket; ignore every error."""
    with contextlib.suppress(Exception):
        conn.logout()
    with contextlib.suppress(Exception):
        conn.shutdown()


class Client:
    """An IMAP client over ``servers`` that follows referrals and fails over (module doc)."""

    def __init__(self, servers: Sequence[Server], user: str, password: str,
                 timeout: float = 10.0, max_hops: int = 5) -> None:
        if not servers:
            raise ValueError("a client needs at least one server")
        self.servers = [(str(h), int(p)) for h, p in servers]
        self.user, self.password = user, password
        self.timeout, self.max_hops = timeout, max_hops
        self.events: list[Event] = []
        self.conn: Any = None  # the imaplib2 connection (commands on it do not fail over)
        self.server: Server | None = None
        self._list = [Target(s) for s in self.servers]
        self._pos = 0
        self._mailboxes: dict[str, str] = {}  # folder -> its name on this server (referral)
        self._uidvalidity: dict[str, int] = {}
        self._changed: set[str] = set()
        self._selected: tuple[str, bool] | None = None

    # --- connection -------------------------------------------------------------------

    def connect(self) -> Server:
        """The server of the current connection, or connect down the list and log in."""
        if self.conn is not None and self.server is not None:
            return self.server
        order = self._list[self._pos:] + self._list[:self._pos]
        targets, index = self._connect_down(order, 0, set())
        if targets is order:
            self._pos = (self._pos + index) % len(self._list)
        else:  # a LOGIN referral: its list is the one to fail over along
            self._list, self._pos = targets, index
        return self._adopted()

    def close(self) -> None:
        """Log out; the next command connects from the top of the given list again."""
        if self.conn is not None:
            _close(self.conn)
        self.conn, self.server, self._selected = None, None, None
        self._list, self._pos, self._mailboxes = [Target(s) for s in self.servers], 0, {}

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _adopted(self) -> Server:
        assert self.server is not None
        return self.server

    def _connect_down(self, order: list[Target], hops: int, seen: set[Target]
                      ) -> tuple[list[Target], int]:
        """Log in on the first reachable target of ``order`` (following LOGIN referrals):
        (the list it came from, its index there).  Raises NoServerReachable."""
        failures = []
        for index, target in enumerate(order):
            if target in seen:
                continue
            seen.add(target)
            try:
                self._open(target)
                return order, index
            except _Unreachable as err:
                failures.append(f"{target.server[0]}:{target.server[1]}: {err}")
            except _Referred as ref:
                self._event(target.server, "referred", str(ref))
                if hops >= self.max_hops:
                    raise ReferralError(f"more than {self.max_hops} LOGIN referrals") from None
                referred = [Target((u.host, u.port)) for u in ref.urls]
                with contextlib.suppress(NoServerReachable):
                    return self._connect_down(referred, hops + 1, seen)
                failures.append(f"{target.server[0]}:{target.server[1]}: referred servers failed")
        raise NoServerReachable("; ".join(failures) or "every server already tried")

    def _open(self, target: Target) -> None:
        """Connect and log in to ``target``; it becomes the current connection."""
        conn = self._login(target.server)
        if self.conn is not None:
            _close(self.conn)
        self.conn, self.server, self._selected = conn, target.server, None
        self._mailboxes = {target.folder: target.mailbox} if target.folder and \
            target.mailbox else {}
        self._event(target.server, "connected", "")

    def _login(self, server: Server) -> Any:
        """A logged-in imaplib2 connection to ``server``; _Unreachable / _Referred /
        LoginFailed otherwise."""
        try:
            conn = _IMAP4(server[0], server[1], self.timeout)
        except (*LOST, imaplib2.IMAP4.error) as err:  # refused, BYE greeting, timeout
            self._event(server, "connect failed", _text(err))
            raise _Unreachable(_text(err)) from err
        try:
            conn.login(self.user, self.password)
        except LOST as err:
            _close(conn)
            self._event(server, "connect failed", _text(err))
            raise _Unreachable(_text(err)) from err
        except imaplib2.IMAP4.error as err:
            _close(conn)
            text = _text(err)
            urls = referral_urls(text)
            if urls:
                raise _Referred(urls) from err
            self._event(server, "connect failed", text)
            if "[UNAVAILABLE]" in text.upper():
                raise _Unreachable(text) from err
            raise LoginFailed(f"{server[0]}:{server[1]}: {text}") from err
        return conn

    def connection_lost(self, err: BaseException) -> None:
        """Tell the client its connection died (found by a caller using :attr:`conn`
        directly): the next command goes on down the list."""
        if self.conn is not None:
            self._lost(err)

    def _lost(self, err: BaseException) -> None:
        """The connection is gone: note it; the next command goes on down the list."""
        assert self.server is not None
        self._event(self.server, "lost", _text(err))
        _close(self.conn)
        self.conn, self.server = None, None
        self._pos = (self._pos + 1) % len(self._list)

    def _event(self, server: Server, what: str, detail: str) -> None:
        self.events.append(Event(server, what, detail[:200]))

    # --- UIDVALIDITY ----------------------------------------------------------------------

    def uidvalidity(self, folder: str) -> int | None:
        """The UIDVALIDITY last seen for ``folder`` (None before any SELECT/EXAMINE/STATUS)."""
        return self._uidvalidity.get(folder)

    def uidvalidity_changed(self, folder: str) -> bool:
        """True once after ``folder`` showed a UIDVALIDITY other than the one seen before
        (cached UIDs are void: resync, RFC 3501 §2.3.1.1); the call clears the mark."""
        changed = folder in self._changed
        self._changed.discard(folder)
        return changed

    def _note_uidvalidity(self, folder: str, value: int | None) -> None:
        if value is None:
            return
        old = self._uidvalidity.get(folder)
        if old is not None and old != value:
            self._changed.add(folder)
        self._uidvalidity[folder] = value

    # --- commands ------------------------------------------------------------------------

    def select(self, folder: str, readonly: bool = False) -> Selected:
        """SELECT (EXAMINE when ``readonly``) ``folder``, following referrals and failing
        over; raises CommandFailed on NO/BAD."""
        verb = "EXAMINE" if readonly else "SELECT"

        def run(conn: Any, name: str) -> Reply:
            reply: Reply = conn.select(quote_mailbox(name), readonly=readonly)
            return reply

        typ, data = self._mailbox_command(verb, folder, run, idempotent=True)
        if typ != "OK":
            raise CommandFailed(verb, _text(data))
        _typ, uvs = self.conn.response("UIDVALIDITY")
        uv = int(uvs[-1]) if uvs and uvs[-1] is not None else None
        self._note_uidvalidity(folder, uv)
        self._selected = (folder, readonly)
        return Selected(int(data[0] or b"0"), uv)

    def examine(self, folder: str) -> Selected:
        """EXAMINE ``folder`` (read-only SELECT)."""
        return self.select(folder, readonly=True)

    def status(self, folder: str, items: str = "(MESSAGES UIDNEXT UIDVALIDITY)") -> bytes:
        """STATUS ``folder`` ``items``: the raw ``STATUS`` data (UIDVALIDITY noted)."""
        typ, data = self._mailbox_command(
            "STATUS", folder, lambda conn, name: conn.status(quote_mailbox(name), items),
            idempotent=True)
        if typ != "OK":
            raise CommandFailed("STATUS", _text(data))
        raw = data[-1] if isinstance(data[-1], bytes) else b""
        found = _UIDVALIDITY.search(raw)
        self._note_uidvalidity(folder, int(found.group(1)) if found else None)
        return raw

    def create(self, folder: str) -> None:
        """CREATE ``folder`` (a lost CREATE is rerun: a second answers ALREADYEXISTS)."""
        typ, data = self._mailbox_command(
            "CREATE", folder, lambda conn, name: conn.create(quote_mailbox(name)),
            idempotent=True)
        if typ != "OK":
            raise CommandFailed("CREATE", _text(data))

    def append(self, folder: str, message: bytes, flags: Sequence[str] = ()) -> None:
        """APPEND ``message`` to ``folder``.  NO raises CommandFailed; a connection lost
        before the answer raises OutcomeUnknown (never retried)."""
        flag_list = "(" + " ".join(flags) + ")" if flags else None
        typ, data = self._mailbox_command(
            "APPEND", folder,
            lambda conn, name: conn.append(quote_mailbox(name), flag_list, None, message),
            idempotent=False)
        if typ != "OK":
            raise CommandFailed("APPEND", _text(data))

    def uid(self, command: str, *args: str) -> list[Any]:
        """``UID command args`` in the selected folder: the response data.  After a lost
        connection it re-selects the folder elsewhere and reruns idempotent commands if
        the UIDVALIDITY is the same (UidValidityChanged if not, OutcomeUnknown for others)."""
        if self._selected is None:
            raise ClientError("UID commands need a selected folder")
        folder, readonly = self._selected
        for _ in range(len(self._list) + 1):
            try:
                typ, data = self.conn.uid(command, *args)
            except LOST as err:
                self._lost(err)
                if command.upper() not in IDEMPOTENT_UID:
                    raise OutcomeUnknown(f"UID {command}: {_text(err)}") from err
                old = self._uidvalidity.get(folder)
                new = self.select(folder, readonly).uidvalidity
                if new != old:
                    raise UidValidityChanged(folder, old, new) from err
                continue
            if typ != "OK":
                raise CommandFailed("UID " + command, _text(data))
            return list(data)
        raise NoServerReachable(f"UID {command}: every server failed")

    def noop(self) -> None:
        """NOOP: connect if needed; a dead connection is noticed (next server next time)."""
        self.connect()
        try:
            self.conn.noop()
        except LOST as err:
            self._lost(err)

    # --- mailbox commands: referrals and failover -------------------------------------

    def _mailbox_command(self, verb: str, folder: str, run: Callable[[Any, str], Reply],
                         idempotent: bool) -> Reply:
        """``run(conn, name)`` on the current server; referrals followed; on a lost
        connection rerun elsewhere when ``idempotent``, else OutcomeUnknown."""
        for _ in range(len(self._list) + 1):
            self.connect()
            try:
                typ, data = run(self.conn, self._mailboxes.get(folder, folder))
            except LOST as err:
                self._lost(err)
                if not idempotent:
                    raise OutcomeUnknown(f"{verb} {folder!r}: {_text(err)}") from err
                continue
            urls = referral_urls(_text(data)) if typ == "NO" else []
            if urls:
                return self._follow(verb, folder, run, urls, idempotent)
            return typ, data
        raise NoServerReachable(f"{verb} {folder!r}: every server failed: {self.events[-3:]}")

    def _follow(self, verb: str, folder: str, run: Callable[[Any, str], Reply],
                urls: list[imapurl.ImapUrl], idempotent: bool) -> Reply:
        """Re-issue the command down the referral list (RFC 2193 §4); the first server
        that answers other than with a referral becomes the current one."""
        assert self.server is not None
        seen = {Target(self.server, folder, self._mailboxes.get(folder, folder))}
        for _hop in range(self.max_hops):
            self._event(self.server, "referred", " ".join(f"{u.host}:{u.port}" for u in urls))
            targets = [Target((u.host, u.port), folder, u.mailbox or folder) for u in urls]
            for index, target in enumerate(targets):
                if target in seen:
                    self._event(target.server, "loop", f"{verb} {target.mailbox}")
                    continue
                seen.add(target)
                reply = self._try_referred(verb, target, run, idempotent)
                if reply is None:
                    continue
                typ, data = reply
                urls = referral_urls(_text(data)) if typ == "NO" else []
                if not urls:
                    self._list, self._pos = targets, index
                    return reply
                break
            else:
                raise ReferralError(f"{verb} {folder!r}: no referred server reachable "
                                    f"(or every one already tried): {self.events[-4:]}")
        raise ReferralError(f"{verb} {folder!r}: more than {self.max_hops} referrals")

    def _try_referred(self, verb: str, target: Target, run: Callable[[Any, str], Reply],
                      idempotent: bool) -> Reply | None:
        """Connect to a referred server and run the command there; None if unreachable."""
        try:
            self._open(target)
        except _Unreachable:
            return None
        except _Referred as err:  # a LOGIN referral while following a mailbox one
            self._event(target.server, "connect failed", f"LOGIN referral to {err}")
            return None
        assert target.mailbox is not None
        try:
            return run(self.conn, target.mailbox)
        except LOST as err:
            self._lost(err)
            if not idempotent:
                raise OutcomeUnknown(f"{verb} {target.mailbox!r}: {_text(err)}") from err
            return None
