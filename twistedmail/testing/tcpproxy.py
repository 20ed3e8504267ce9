"""A controllable TCP proxy for fault tests: forward, cut, pause, restore.

    proxy = TcpProxy(("127.0.0.1", 7001), name="n1->n2")   # listens on 127.0.0.1:<free port>
    proxy.address                                            # ("127.0.0.1", port) to dial
    proxy.cut()        # drop every connection now; new ones are accepted and closed at once
    proxy.pause()      # forward nothing, hold connections open (a silent partition)
    proxy.restore()    # forward again (held connections resume where they stopped)
    proxy.retarget(addr)  # new connections go to addr from now on
    proxy.close()

The proxy runs a ``selectors`` loop in one daemon thread of its own -- never the Twisted
reactor, which in-process tests run in another thread.  Control calls are thread-safe: they
are queued to the loop thread, which is woken through a socket pair, and they return once
the loop has carried them out (so after ``cut()`` returns, every connection is closed).

Invariants:
- Bounded: at most ``max_connections`` pairs (more are accepted and closed), at most
  ``buffer_limit`` bytes buffered per direction (reading stops until the other side drains),
  every control call and ``close()`` wait at most ``timeout`` seconds.
- Bytes are forwarded in order and never altered; a half-close (EOF) is passed on once the
  data before it has been written.
- In "cut" mode no connection stays open; in "pause" mode nothing is read or written (the
  kernel buffers fill and the senders stall, as behind a real partition) and new clients are
  held, not connected onward, until ``restore()``.
"""

from __future__ import annotations

import contextlib
import errno
import queue
import selectors
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

Address = tuple[str, int]
MODES = ("forward", "cut", "pause")
CHUNK = 65536


class ProxyError(RuntimeError):
    """The proxy loop did not carry out a control call in time, or has stopped."""


@dataclass
class ProxyStats:
    """Counters, read through :meth:`TcpProxy.stats` (a copy taken in the loop thread)."""

    accepted: int = 0  # client connections accepted (refused ones included)
    refused: int = 0  # closed at once: cut mode, or over max_connections
    upstream_failed: int = 0  # the target refused or reset the onward connection
    dropped: int = 0  # open pairs closed by cut()
    bytes_up: int = 0  # client -> target
    bytes_down: int = 0  # target -> client
    open: int = 0  # pairs open when the snapshot was taken


@dataclass(eq=False)
class _Pair:
    """One proxied connection: the client side and the onward (upstream) side."""

    client: socket.socket
    upstream: socket.socket | None = None
    connecting: bool = False
    up_buf: bytearray = field(default_factory=bytearray)  # client -> target, not yet written
    down_buf: bytearray = field(default_factory=bytearray)  # target -> client
    client_eof: bool = False
    upstream_eof: bool = False
    up_shut: bool = False  # EOF passed on to the target
    down_shut: bool = False  # EOF passed on to the client


class TcpProxy:
    """Forward TCP connections from a local listening port to ``target``."""

    def __init__(
        self,
        target: Address,
        listen: Address = ("127.0.0.1", 0),
        name: str = "",
        max_connections: int = 64,
        buffer_limit: int = 256 * 1024,
        timeout: float = 5.0,
    ) -> None:
        self.target = target
        self.name = name or f"proxy->{target[0]}:{target[1]}"
        self.max_connections = max_connections
        self.buffer_limit = buffer_limit
        self.timeout = timeout
        self.mode = "forward"
        self._stats = ProxyStats()
        self._pairs: set[_Pair] = set()
        self._owner: dict[socket.socket, _Pair] = {}
        self._calls: queue.Queue[tuple[Callable[[], object], threading.Event, list[object]]]
        self._calls = queue.Queue()
        self._stopping = False
        self._sel = selectors.DefaultSelector()
        self._listener = socket.create_server(listen, backlog=64)
        self._listener.setblocking(False)
        self.address: Address = self._listener.getsockname()[:2]
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._listener, selectors.EVENT_READ, "listen")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._run, name=f"tcpproxy {self.name}", daemon=True)
        self._thread.start()

    # --- control (any thread) ---------------------------------------------------------

    def cut(self) -> None:
        """Close every open connection; accept and close new ones until restore()."""
        self._call(lambda: self._set_mode("cut"))

    def pause(self) -> None:
        """Stop forwarding but keep connections; new clients wait until restore()."""
        self._call(lambda: self._set_mode("pause"))

    def restore(self) -> None:
        """Forward again."""
        self._call(lambda: self._set_mode("forward"))

    def retarget(self, target: Address) -> None:
        """Forward connections accepted from now on to ``target`` (open ones keep theirs;
        e.g. a client's failover to another node behind one fixed address)."""
        self._call(lambda: setattr(self, "target", target))

    def stats(self) -> ProxyStats:
        """A snapshot of the counters."""
        result = self._call(lambda: ProxyStats(**{**vars(self._stats), "open": len(self._pairs)}))
        assert isinstance(result, ProxyStats)
        return result

    def close(self) -> None:
        """Stop the loop, close every socket, join the thread (bounded by ``timeout``)."""
        if not self._thread.is_alive():
            return
        self._stopping = True
        self._wake()
        self._thread.join(self.timeout)
        if self._thread.is_alive():
            raise ProxyError(f"{self.name}: loop thread did not stop in {self.timeout} s")

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        (host, port), (to_host, to_port) = self.address, self.target
        return f"<TcpProxy {self.name} {host}:{port} -> {to_host}:{to_port} {self.mode}>"

    def _call(self, fn: Callable[[], object]) -> object:
        if not self._thread.is_alive():
            raise ProxyError(f"{self.name}: the proxy is closed")
        done = threading.Event()
        box: list[object] = []
        self._calls.put((fn, done, box))
        self._wake()
        if not done.wait(self.timeout):
            raise ProxyError(f"{self.name}: control call not done in {self.timeout} s")
        if not box:
            raise ProxyError(f"{self.name}: the proxy closed before the call ran")
        return box[0]

    def _wake(self) -> None:
        # closed, or the wake buffer is full (then the loop wakes anyway)
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    # --- the loop (proxy thread only) -------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping:
                for key, events in self._sel.select(timeout=1.0):
                    self._dispatch(key, events)
                self._run_calls()
        finally:
            self._shutdown()

    def _dispatch(self, key: selectors.SelectorKey, events: int) -> None:
        if key.data == "listen":
            self._accept()
        elif key.data == "wake":
            self._drain_wake()
        else:
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            pair = self._owner.get(sock)
            if pair is not None:
                self._service(pair, sock, events)

    def _run_calls(self) -> None:
        while True:
            try:
                fn, done, box = self._calls.get_nowait()
            except queue.Empty:
                return
            box.append(fn())
            done.set()

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _set_mode(self, mode: str) -> None:
        assert mode in MODES
        self.mode = mode
        if mode == "cut":
            for pair in list(self._pairs):
                self._stats.dropped += 1
                self._close_pair(pair)
        for pair in list(self._pairs):
            if mode == "forward" and pair.upstream is None:
                self._connect_upstream(pair)
            self._update(pair)

    def _accept(self) -> None:
        for _ in range(64):  # bounded per wake-up; the listener stays readable if more wait
            try:
                client, _addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self._stats.accepted += 1
            if self.mode == "cut" or len(self._pairs) >= self.max_connections:
                self._stats.refused += 1
                client.close()
                continue
            client.setblocking(False)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _Pair(client)
            self._pairs.add(pair)
            self._owner[client] = pair
            if self.mode == "forward":
                self._connect_upstream(pair)
            self._update(pair)

    def _connect_upstream(self, pair: _Pair) -> None:
        up = socket.socket(socket.AF_INET6 if ":" in self.target[0] else socket.AF_INET)
        up.setblocking(False)
        up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        err = up.connect_ex(self.target)
        if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            up.close()
            self._stats.upstream_failed += 1
            self._close_pair(pair)
            return
        pair.upstream = up
        pair.connecting = err != 0
        self._owner[up] = pair

    def _service(self, pair: _Pair, sock: socket.socket, events: int) -> None:
        try:
            if sock is pair.upstream and pair.connecting:
                self._finish_connect(pair)
            elif sock is pair.client:
                self._pump(pair, events, pair.client, pair.up_buf, is_client=True)
            else:
                assert pair.upstream is not None
                self._pump(pair, events, pair.upstream, pair.down_buf, is_client=False)
        except OSError:
            self._close_pair(pair)
            return
        if pair in self._pairs:
            self._after_io(pair)

    def _finish_connect(self, pair: _Pair) -> None:
        assert pair.upstream is not None
        err = pair.upstream.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._stats.upstream_failed += 1
            raise OSError(err, "upstream connect failed")
        pair.connecting = False

    def _pump(
        self, pair: _Pair, events: int, sock: socket.socket, inbound: bytearray, is_client: bool
    ) -> None:
        """Read from ``sock`` into ``inbound`` (its bytes for the other side); write to it
        what the other side sent."""
        if events & selectors.EVENT_READ:
            data = sock.recv(CHUNK)
            if not data:
                if is_client:
                    pair.client_eof = True
                else:
                    pair.upstream_eof = True
            else:
                inbound += data
                if is_client:
                    self._stats.bytes_up += len(data)
                else:
                    self._stats.bytes_down += len(data)
        outbound = pair.down_buf if is_client else pair.up_buf
        if events & selectors.EVENT_WRITE and outbound:
            sent = sock.send(outbound)
            del outbound[:sent]

    def _after_io(self, pair: _Pair) -> None:
        """Pass on drained EOFs; close the pair when both directions are done."""
        try:
            if pair.client_eof and not pair.up_buf and not pair.up_shut and self._up_ready(pair):
                assert pair.upstream is not None
                pair.upstream.shutdown(socket.SHUT_WR)
                pair.up_shut = True
            if pair.upstream_eof and not pair.down_buf and not pair.down_shut:
                pair.client.shutdown(socket.SHUT_WR)
                pair.down_shut = True
        except OSError:
            self._close_pair(pair)
            return
        if pair.up_shut and pair.down_shut:
            self._close_pair(pair)
        else:
            self._update(pair)

    def _up_ready(self, pair: _Pair) -> bool:
        return pair.upstream is not None and not pair.connecting

    def _update(self, pair: _Pair) -> None:
        """(Re)register both sockets of ``pair`` for exactly the events it can use now."""
        moving = self.mode == "forward"
        client = 0
        if moving and not pair.client_eof and len(pair.up_buf) < self.buffer_limit:
            client |= selectors.EVENT_READ
        if moving and pair.down_buf:
            client |= selectors.EVENT_WRITE
        self._register(pair.client, client)
        if pair.upstream is None:
            return
        up = 0
        if pair.connecting:
            up = selectors.EVENT_WRITE
        elif moving:
            if not pair.upstream_eof and len(pair.down_buf) < self.buffer_limit:
                up |= selectors.EVENT_READ
            if pair.up_buf:
                up |= selectors.EVENT_WRITE
        self._register(pair.upstream, up)

    def _register(self, sock: socket.socket, events: int) -> None:
        try:
            current = self._sel.get_key(sock).events
        except KeyError:
            current = 0
        if events == current:
            return
        if not events:
            self._sel.unregister(sock)
        elif not current:
            self._sel.register(sock, events, "pair")
        else:
            self._sel.modify(sock, events, "pair")

    def _close_pair(self, pair: _Pair) -> None:
        self._pairs.discard(pair)
        for sock in (pair.client, pair.upstream):
            if sock is None:
                continue
            self._owner.pop(sock, None)
            self._register(sock, 0)
            sock.close()

    def _shutdown(self) -> None:
        for pair in list(self._pairs):
            self._close_pair(pair)
        self._sel.close()
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()
        while True:  # release callers still waiting on a control call
            try:
                _fn, done, _box = self._calls.get_nowait()
            except queue.Empty:
                return
            done.set()
