"""One client's IMAP session: its state, selected view and output buffer.

Invariants:
  * ``state`` is one of NOT_AUTHENTICATED, AUTHENTICATED, SELECTED, LOGOUT
    (RFC 3501 §3); ``view`` is set exactly when the state is SELECTED.
  * Handlers write responses only through ``out`` (a Responder); the protocol
    sends what is queued in one write when the command's batch is done.
  * Every store mutation a handler makes goes through :meth:`apply`, so the
    session's own selected view hears of it like any other session's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred

from twistedmail.imap.errors import No
from twistedmail.imap.responses import Responder
from twistedmail.imap.selected import SelectedView, Watchers
from twistedmail.store import Mailbox, MailStore, StoreError

if TYPE_CHECKING:
    from twistedmail.node import Node

NOT_AUTHENTICATED = "NOT_AUTHENTICATED"
AUTHENTICATED = "AUTHENTICATED"
SELECTED = "SELECTED"
LOGOUT = "LOGOUT"


class Connection:
    """What a session needs from its transport (implemented by the protocol)."""

    def ask_line(self) -> Deferred[bytes]:
        """Fire with the next raw line the client sends (continuations, IDLE DONE)."""
        raise NotImplementedError

    def push(self) -> None:
        """Send what is queued in the session's Responder now."""
        raise NotImplementedError

    def start_tls(self) -> None:
        """Switch the transport to TLS after the queued output (RFC 3501 §6.2.1)."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the connection after the queued output."""
        raise NotImplementedError

    def start_compress(self) -> None:
        """Compress both directions after the queued output (RFC 4978 §3)."""
        raise NotImplementedError

    compress_active: bool = False
    closing: bool = False  # the connection is going away: stop long work
    tls_active: bool = False
    tls_available: bool = False
    peer_is_loopback: bool = True


class Session:
    """State of one IMAP connection, shared by all handlers."""

    def __init__(self, node: Node, conn: Connection) -> None:
        self.node = node
        self.conn = conn
        self.out = Responder()
        self.state = NOT_AUTHENTICATED
        self.user: str | None = None
        self.view: SelectedView | None = None
        self.enabled: set[str] = set()
        self.condstore = False  # RFC 7162 §3.1: a CONDSTORE-enabling command was issued
        self.saved_search: frozenset[int] = frozenset()
        self.client_id: dict[str, str | None] = {}
        self.notifier: Any = None  # RFC 5465 NOTIFY settings (notify.Notifier)
        self.applying = False  # True while this session's own op is applied (NOTIFY)
        self.referral_aware = False  # RFC 2193: sent RLIST / RLSUB (imap/referrals.py)
        self.proxy: Any = None  # the transparent proxy's state (imap/proxied.py)
        self.streaming = False  # a large FETCH is going out in slices (handlers/fetch.py)
        self.proxied_by: str | None = None  # the node proxying this session, if any
        self.login_name: str | None = None  # user a login attempt named (observe/hooks.py)

    @property
    def username(self) -> str:
        """The logged-in user (only called in authenticated states)."""
        if self.user is None:
            raise No("Not authenticated")
        return self.user

    @property
    def rev2(self) -> bool:
        """True once the client sent ENABLE IMAP4rev2 (RFC 9051; see rev2.py)."""
        return "IMAP4rev2" in self.enabled  # the ENABLEABLE spelling

    @property
    def store(self) -> MailStore:
        """The node's mailstore."""
        return self.node.store

    # --- authentication --------------------------------------------------------

    def login_allowed(self) -> bool:
        """False when plaintext authentication is disabled here (RFC 3501 §6.2.3)."""
        settings = self.node.settings
        if self.conn.tls_active or getattr(settings, "allow_plaintext", True):
            return True
        return self.conn.peer_is_loopback

    def authenticated(self, user: str) -> None:
        """Enter the authenticated state as ``user``."""
        self.user = user
        self.state = AUTHENTICATED

    # --- selection ---------------------------------------------------------------

    def select(self, mailbox: Mailbox, readonly: bool, condstore: bool = False) -> SelectedView:
        """Make ``mailbox`` the selected one (a previous selection is dropped)."""
        self.unselect()
        view = SelectedView(mailbox, readonly, condstore)
        from twistedmail.imap import notify, rev2

        rev2.configure_view(self, view)  # RFC 9051: no \\Recent
        notify.configure_view(self, view)  # RFC 5465 §6.1
        Watchers.of(self.store).add(view)
        self.view = view
        self.state = SELECTED
        return view

    def unselect(self) -> None:
        """Leave the selected state, if in it."""
        self.saved_search = frozenset()  # RFC 5182 §2.1: "$" is per selection
        if self.view is not None:
            Watchers.of(self.store).remove(self.view)
            self.view = None
        if self.state == SELECTED:
            self.state = AUTHENTICATED

    def require_view(self) -> SelectedView:
        """The selected view (the dispatch table guarantees there is one)."""
        if self.view is None:
            raise No("No mailbox selected")
        return self.view

    # --- store access --------------------------------------------------------------

    def mailbox(self, name: str) -> Mailbox:
        """The mailbox a client name designates; NO [NONEXISTENT] if missing (RFC 5530)."""
        from twistedmail.imap.namespaces import lookup

        return lookup(self, name)

    def apply(self, op: Any, own_flags: bool = False) -> list[Any]:
        """Apply a store op; ``own_flags`` hides this session's flag changes from its view."""
        view = self.view
        if own_flags and view is not None:
            view.suppress_own_flags = True
        self.applying = True
        try:
            return self.store.apply(op)
        except StoreError as err:
            raise No(str(err) or "Operation failed", err.code) from None
        finally:
            self.applying = False
            if view is not None:
                view.suppress_own_flags = False

    def close(self) -> None:
        """Release everything the session holds (connection lost)."""
        if self.notifier is not None:
            self.notifier.stop()
        self.unselect()
        self.state = LOGOUT

    on_logout: Callable[[], None] | None = None
