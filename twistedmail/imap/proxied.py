"""The transparent proxy, session side (issue 5 item 4; seed 003; DESIGN.md §5).

Most IMAP clients ignore referrals (RFC 2193), so a node serves a public folder it holds
no replica of by proxying: SELECT/EXAMINE opens an IMAP connection to the first
reachable replica in referral-list order (``node.cluster.referrals``) — connect, log in
by proxy (twistedmail/cluster/proxy.py), select — and trying the next replica when any
step fails.  While that folder is selected, the selected-state commands go to the
replica and its answers come back verbatim, tags rewritten.  STATUS and APPEND on such
a folder are proxied one at a time.  A login whose mail file this node does not hold
(RFC 2221) proxies the whole session to the first reachable holder.

Invariants:
  * Cluster mode only, and never for a referral-aware session (those get
    ``NO [REFERRAL]``, twistedmail/imap/referrals.py) nor for a session a proxy
    opened (``session.proxied_by``): a request never hops twice.
  * While a proxied folder is selected the local session is AUTHENTICATED with no
    view; commands of ``FORWARD_SELECTED`` go to the replica, the rest run here.
  * A session stays on the replica it reached (``pins``) until the client
    reconnects: no failback to a cheaper replica that comes back (the seed's client).
  * A replica lost while its folder is selected: the next one in list order is
    selected and the client is told (``* OK [UIDVALIDITY n]``, EXISTS ...); the
    command in flight gets ``NO [UNAVAILABLE]``; with no replica left,
    ``* OK [CLOSED]``.  A whole-session proxy that loses its holder says BYE.
  * Every failure reaches the client as a tagged NO/BYE, never a traceback.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.logger import Logger

from twistedmail.cluster.proxy import Backend, BackendLost, open_backend, split_request, status_of
from twistedmail.imap import commands as c
from twistedmail.imap import referrals
from twistedmail.imap.errors import No
from twistedmail.imap.responses import status_line
from twistedmail.imap.session import Session
from twistedmail.imap.wire import Request
from twistedmail.observe import metrics

log = Logger()
UNAVAILABLE = "UNAVAILABLE"  # RFC 5530 §3
FORWARD_SELECTED = frozenset({
    "CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "UID EXPUNGE", "SEARCH", "UID SEARCH",
    "SORT", "UID SORT", "THREAD", "UID THREAD", "FETCH", "UID FETCH", "STORE", "UID STORE",
    "COPY", "UID COPY", "MOVE", "UID MOVE", "REPLACE", "UID REPLACE", "NOOP", "IDLE",
})
ONE_SHOT = frozenset({"STATUS", "APPEND"})
LOCAL_IN_WHOLE = frozenset({"COMPRESS", "LOGOUT", "CAPABILITY"})  # answered by this node


@dataclass
class Selection:
    """The proxied folder selected now, and how it was selected."""

    folder: str
    node: str
    segments: list[bytes]
    literals: tuple[bytes, ...]


def _retag(tagged: bytes, tag: str) -> bytes:
    """The backend's tagged line with the client's tag."""
    return tag.encode() + tagged[tagged.index(b" "):]


def _command_text(request: Request) -> tuple[list[bytes], tuple[bytes, ...]]:
    """The request cut at its literals, without the client's tag."""
    segments = split_request(request.line, request.literals)
    head = segments[0]
    segments[0] = head[head.index(b" ") + 1:]
    return segments, request.literals


class ProxyState:
    """The backends and pins of one proxied session."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.backends: dict[str, Backend] = {}
        self.pins: dict[str, str] = {}  # public folder -> the replica it reached
        self.selected: Selection | None = None
        self.whole: Backend | None = None
        self.collecting: dict[str, list[bytes]] = {}  # node -> units held back
        self.relaying: set[str] = set()  # nodes whose units go to the client now
        self.failing: Deferred[None] | None = None
        self.push_pending = False

    # --- backends -----------------------------------------------------------------

    @property
    def spec(self) -> Any:
        return referrals.spec_of(self.session)

    def backend(self, node: str) -> Deferred[Backend]:
        """The open connection to ``node``, or a new one."""
        have = self.backends.get(node)
        if have is not None and not have.lost:
            return succeed(have)
        address = referrals.imap_address(self.spec, node)
        if address is None:
            return _failed(No(f"{node} has no IMAP address"))
        session = self.session
        d = open_backend(session.node.reactor, node, address, self.spec.secret,
                         session.username, self.spec.me.name)

        def opened(backend: Backend) -> Backend:
            backend.on_unit = lambda unit: self._unit(backend, unit)
            backend.on_lost = self._lost
            self.backends[node] = backend
            metrics.proxy_session(session.node, node)
            return backend

        return d.addCallback(opened)

    def candidates(self, folder: str, exclude: str | None = None) -> list[str]:
        """The folder's replicas in referral order, the pinned one first."""
        cluster = self.session.node.cluster
        order = [r.server for r in cluster.referrals(folder) if r.server != exclude]
        pin = self.pins.get(folder)
        if pin in order:
            order.remove(pin)
            order.insert(0, pin)
        return order

    def close(self) -> None:
        """Drop every backend (the client went away)."""
        self.selected = None
        for backend in list(self.backends.values()):
            backend.on_lost = lambda b: None
            backend.close()
        self.backends.clear()

    # --- relaying --------------------------------------------------------------------

    def _unit(self, backend: Backend, unit: bytes) -> None:
        held = self.collecting.get(backend.node)
        if held is not None:
            held.append(unit)
        elif backend is self.whole or backend.node in self.relaying or (
                self.selected is not None and self.selected.node == backend.node):
            self.relay(unit)
        else:
            log.debug("proxy: dropped a unit from {node}", node=backend.node)

    def relay(self, data: bytes) -> None:
        """Queue ``data`` for the client and send it this reactor turn."""
        self.session.out.raw(data)
        if not self.push_pending:
            self.push_pending = True
            self.session.node.reactor.callLater(0, self._push)

    def _push(self) -> None:
        self.push_pending = False
        self.session.conn.push()

    def run(self, backend: Backend, segments: list[bytes],
            literals: tuple[bytes, ...]) -> Deferred[bytes]:
        """Send a command; a continuation the backend sends (IDLE) goes to the client,
        and the client's next line back to the backend."""
        return backend.run(segments, literals,
                           on_continuation=lambda unit: self._continuation(backend, unit))

    def _continuation(self, backend: Backend, unit: bytes) -> bytes | None:
        self.relay(unit)
        asked = self.session.conn.ask_line()
        asked.addCallback(backend.send_line)
        return None

    def end_line_wait(self) -> None:
        """Stop waiting for a client line (the IDLE ended without DONE)."""
        cancel = getattr(self.session.conn, "cancel_line", None)
        if cancel is not None:
            cancel()

    # --- selected folder ----------------------------------------------------------------

    @inlineCallbacks
    def select(self, folder: str, cmd: c.Select,
               request: Request) -> Generator[Deferred[Any], Any, None]:
        """SELECT/EXAMINE a folder held elsewhere: the first replica that selects it."""
        session = self.session
        if session.view is not None or self.selected is not None:
            session.out.untagged_status("OK", "Previous mailbox closed", "CLOSED")
        session.unselect()
        self.leave_selected()
        segments, literals = _command_text(request)
        tagged, node, errors = yield self._first(folder, segments, literals, retry_no=True)
        if tagged is not None and node is not None and status_of(tagged) == "OK":
            self.selected = Selection(folder, node, segments, literals)
            self.pins[folder] = node
        self._answer(cmd.tag, tagged, folder, errors)

    def leave_selected(self) -> None:
        """Deselect on the replica (its answer is dropped) and forget the selection."""
        selection, self.selected = self.selected, None
        if selection is None:
            return
        backend = self.backends.get(selection.node)
        if backend is not None and not backend.lost:
            backend.run([b"UNSELECT"]).addErrback(lambda f: None)

    @inlineCallbacks
    def _first(self, folder: str, segments: list[bytes], literals: tuple[bytes, ...],
               retry_no: bool, exclude: str | None = None, retry_lost: bool = True
               ) -> Generator[Deferred[Any], Any, tuple[bytes | None, str | None, list[str]]]:
        """Run a command on the first replica that answers OK (a NO moves on only when
        ``retry_no``); its untagged answers are queued for the client."""
        errors: list[str] = []
        last: tuple[bytes | None, str | None] = (None, None)
        for node in self.candidates(folder, exclude):
            try:
                backend = yield self.backend(node)
            except Exception as err:  # noqa: BLE001 - any failure: try the next replica
                errors.append(f"{node}: {_why(err)}")
                continue
            held: list[bytes] = []
            self.collecting[node] = held
            try:
                tagged = yield backend.run(segments, literals)
            except BackendLost as err:
                errors.append(f"{node}: {err}")
                if not retry_lost:
                    errors.append("the command may have completed there; not retried")
                    break
                continue
            finally:
                self.collecting.pop(node, None)
            last = (tagged, node)
            if status_of(tagged) == "OK" or not retry_no:
                for unit in held:
                    self.session.out.raw(unit)
                return tagged, node, errors
            errors.append(f"{node}: {status_of(tagged)}")
        return last[0], last[1], errors

    def _answer(self, tag: str, tagged: bytes | None, folder: str, errors: list[str]) -> None:
        if tagged is not None:
            self.session.out.raw(_retag(tagged, tag))
            return
        detail = "; ".join(errors) or "no replica is listed"
        self.session.out.raw(status_line(
            tag, "NO", f"No replica of Public/{folder} is reachable ({detail})", UNAVAILABLE))

    @inlineCallbacks
    def forward_selected(self, key: str, tag: str,
                         request: Request) -> Generator[Deferred[Any], Any, None]:
        """A selected-state command for the proxied folder."""
        selection = self.selected
        assert selection is not None
        segments, literals = _command_text(request)
        try:
            backend = yield self.backend(selection.node)
            tagged = yield self.run(backend, segments, literals)
        except Exception as err:  # noqa: BLE001 - the replica went away mid-command
            self.end_line_wait()
            if self.failing is not None:
                yield self.failing
            now = self.selected.node if self.selected is not None else None
            where = f"now on {now}" if now else "no replica left, mailbox closed"
            self.session.out.raw(status_line(
                tag, "NO", f"Replica {selection.node} lost ({_why(err)}); {where}; "
                           "the command may not have completed", UNAVAILABLE))
            return
        self.end_line_wait()
        self.session.out.raw(_retag(tagged, tag))
        if key in ("CLOSE", "UNSELECT") and status_of(tagged) == "OK":
            self.selected = None

    def _lost(self, backend: Backend) -> None:
        if self.backends.get(backend.node) is backend:
            del self.backends[backend.node]
        if backend is self.whole:
            self._whole_lost(backend)
            return
        selection = self.selected
        if selection is not None and selection.node == backend.node and self.failing is None:
            self.failing = self._failover(selection)

    @inlineCallbacks
    def _failover(self, selection: Selection) -> Generator[Deferred[Any], Any, None]:
        """Select the folder on the next replica in list order; tell the client."""
        try:
            tagged, node, errors = yield self._first(
                selection.folder, selection.segments, selection.literals,
                retry_no=True, exclude=selection.node)
            out = self.session.out
            if tagged is not None and node is not None and status_of(tagged) == "OK":
                self.selected = Selection(selection.folder, node, selection.segments,
                                          selection.literals)
                self.pins[selection.folder] = node
                out.untagged_status(
                    "OK", f"Replica {selection.node} lost; Public/{selection.folder} is "
                          f"now served by {node}; UIDs have changed")
            else:
                self.selected = None
                out.untagged_status("OK", f"Replica {selection.node} lost and no other "
                                          f"replica of Public/{selection.folder} is "
                                          f"reachable", "CLOSED")
                log.warn("proxy: {folder}: no replica left ({errors})",
                         folder=selection.folder, errors="; ".join(errors))
            self.relay(b"")
        finally:
            self.failing = None

    # --- one command on a folder held elsewhere -------------------------------------------

    @inlineCallbacks
    def one_shot(self, folder: str, key: str, tag: str,
                 request: Request) -> Generator[Deferred[Any], Any, None]:
        """STATUS or APPEND: STATUS tries the next replica on any failure; an APPEND
        whose replica was lost mid-command is not retried (it may have landed)."""
        segments, literals = _command_text(request)
        status = key == "STATUS"
        tagged, node, errors = yield self._first(folder, segments, literals,
                                                 retry_no=status, retry_lost=status)
        if node is not None:
            self.pins.setdefault(folder, node)
        self._answer(tag, tagged, folder, errors)

    # --- the whole session (a mail file held elsewhere, RFC 2221) --------------------------

    @inlineCallbacks
    def open_whole(self, holders: list[str]) -> Generator[Deferred[Any], Any, str]:
        """Log in on the first reachable holder; every later command goes there."""
        errors = []
        for node in holders:
            try:
                backend = yield self.backend(node)
            except Exception as err:  # noqa: BLE001 - try the next holder
                errors.append(f"{node}: {_why(err)}")
                continue
            self.whole = backend
            return str(node)
        raise No(f"no node holding this mail file is reachable ({'; '.join(errors)})",
                 UNAVAILABLE)

    @inlineCallbacks
    def forward_whole(self, tag: str, request: Request) -> Generator[Deferred[Any], Any, None]:
        """Any command of a whole-session proxy."""
        backend = self.whole
        assert backend is not None
        segments, literals = _command_text(request)
        try:
            tagged = yield self.run(backend, segments, literals)
        except Exception as err:  # noqa: BLE001 - _whole_lost says BYE
            self.end_line_wait()
            log.info("proxy: whole session lost its backend: {err}", err=_why(err))
            return
        self.end_line_wait()
        self.session.out.raw(_retag(tagged, tag))

    def _whole_lost(self, backend: Backend) -> None:
        self.session.out.untagged_status(
            "BYE", f"Lost the connection to {backend.node}, which holds this mail file; "
                   "please reconnect", UNAVAILABLE)
        self.session.conn.close()
        self.relay(b"")


def _why(err: BaseException) -> str:
    text = getattr(err, "text", None) or str(err) or type(err).__name__
    return str(text).splitlines()[0][:160]


def _failed(err: BaseException) -> Deferred[Any]:
    d: Deferred[Any] = Deferred()
    d.errback(err)
    return d


# --- entry points (twistedmail/imap/protocol.py, handlers/auth.py) -----------------------


def state_of(session: Session) -> ProxyState:
    """The session's proxy state, made on first use."""
    if session.proxy is None:
        session.proxy = ProxyState(session)
    state: ProxyState = session.proxy
    return state


def remote_folder(session: Session, name: str) -> str | None:
    """The public folder ``name`` belongs to when this session must proxy it."""
    spec = referrals.spec_of(session)
    if spec is None or session.proxied_by is not None or referrals.aware(session):
        return None
    if getattr(session.node, "cluster", None) is None:
        return None
    folder = referrals.public_folder(spec, name)
    if folder is None or spec.me.name in spec.public_replicas[folder]:
        return None
    from twistedmail.imap.namespaces import hidden_public, public_account

    if hidden_public(session, public_account(folder)):
        return None  # answered here as a missing mailbox (RFC 4314 §4)
    return folder


def intercept(session: Session, key: str, cmd: c.Command,
              request: Request) -> Deferred[Any] | None:
    """Run ``cmd`` through the proxy when it must be; None: run it here as usual."""
    state: ProxyState | None = session.proxy
    if state is not None and state.whole is not None:
        if key in LOCAL_IN_WHOLE:
            return None
        return state.forward_whole(cmd.tag, request)
    if key in ("SELECT", "EXAMINE") and isinstance(cmd, c.Select):
        folder = remote_folder(session, cmd.mailbox)
        if folder is not None:
            return state_of(session).select(folder, cmd, request)
        if state is not None and state.selected is not None:
            session.out.untagged_status("OK", "Previous mailbox closed", "CLOSED")
            state.leave_selected()
        return None
    if state is not None and state.failing is not None and (
            key in FORWARD_SELECTED or isinstance(cmd, c.Copy)):
        return _after_failover(session, state, key, cmd, request)
    if isinstance(cmd, c.Copy):
        return _copy(session, state, cmd, key, request)
    if state is not None and state.selected is not None and key in FORWARD_SELECTED:
        return state.forward_selected(key, cmd.tag, request)
    if key in ONE_SHOT:
        folder = remote_folder(session, getattr(cmd, "mailbox", ""))
        if folder is not None:
            return state_of(session).one_shot(folder, key, cmd.tag, request)
    return None


@inlineCallbacks
def _after_failover(session: Session, state: ProxyState, key: str, cmd: c.Command,
                    request: Request) -> Generator[Deferred[Any], Any, None]:
    """A command that arrived while the replica was being replaced: run it once the
    failover is over — on the new replica, or here if none was left (NOOP is OK then,
    FETCH is BAD: nothing is selected)."""
    from twistedmail.imap import dispatch

    while state.failing is not None:
        yield state.failing
    result = intercept(session, key, cmd, request)
    if result is None:
        result = dispatch.execute(session, cmd)
    if result is not None:
        yield result


def _copy(session: Session, state: ProxyState | None, cmd: c.Copy, key: str,
          request: Request) -> Deferred[Any] | None:
    """COPY/MOVE: forwarded when the replica holds both ends, else copied across
    nodes (imap/proxycopy.py), else run here."""
    from twistedmail.imap import proxycopy

    if state is not None and state.selected is not None:
        spec: Any = referrals.spec_of(session)
        dest = referrals.public_folder(spec, cmd.mailbox)
        if dest is not None and state.selected.node in spec.public_replicas[dest]:
            return state.forward_selected(key, cmd.tag, request)
        return proxycopy.copy_out(state, cmd, _command_text(request)[0])
    folder = remote_folder(session, cmd.mailbox)
    if folder is not None and session.view is not None:
        return proxycopy.copy_in(state_of(session), folder, cmd)
    return None


def proxy_login(session: Session, user: str) -> Deferred[str] | None:
    """RFC 2221: when ``user``'s mail file is held elsewhere and the session gets no
    referrals, open a whole-session proxy; fire with the holder reached."""
    spec = referrals.spec_of(session)
    cluster = getattr(session.node, "cluster", None)
    if spec is None or cluster is None or spec.holds(user) or spec.public_refer:
        return None
    if session.proxied_by is not None:
        return None
    public = getattr(cluster, "public", None)
    if public is None:
        return None
    holders = [r.server for r in
               public.table.referral_list(spec.holders(user), spec.me.name, public.rng)]
    session.user = user  # the backend login needs the name; state follows on success
    d: Deferred[str] = state_of(session).open_whole(holders)
    return d


def release(session: Session) -> None:
    """The connection closed: close the session's backends."""
    state: ProxyState | None = session.proxy
    if state is not None:
        state.close()
