"""Micro-benchmark: the per-command cost of the metrics hooks (observe/hooks.py).

Times what imap/protocol.py adds around every command — a monotonic() pair and
SessionStats.done (command_key, the tagged-status peek, a cached counter inc and a
histogram observe) — against the bare loop.  Run: .venv/bin/python bench/observe_hooks.py
"""

from __future__ import annotations

import timeit
from time import monotonic
from types import SimpleNamespace

from twistedmail.imap import commands as c
from twistedmail.node import Node
from twistedmail.observe.hooks import SessionStats

N = 200_000


def main() -> None:
    """Print the cost per command in microseconds."""
    node = Node()
    stats = SessionStats(node)
    command = c.Simple(tag="a1", name="NOOP")
    session = SimpleNamespace(out=SimpleNamespace(chunks=[b"a1 OK NOOP completed\r\n"]))
    proto = SimpleNamespace(session=session)

    def hooked() -> None:
        started = monotonic()
        stats.command = command
        stats.done(proto, "a1", started)

    hooked()  # make the label children once
    best = min(timeit.repeat(hooked, number=N, repeat=5)) / N
    print(f"metrics hook per command: {best * 1e6:.2f} us")
    with_hooks = _noop_through_protocol(node, hooks=True)
    without = _noop_through_protocol(node, hooks=False)
    print(f"NOOP through IMAPProtocol: {with_hooks:.2f} us with hooks, "
          f"{without:.2f} us with SessionStats.done stubbed out")


class _Stubbed(SessionStats):
    __slots__ = ()

    def done(self, proto: object, tag: str | None, started: float) -> None:
        """Nothing: the protocol's cost without the metrics hook."""


def _noop_through_protocol(node: Node, hooks: bool, n: int = 50_000) -> float:
    """Microseconds per pipelined NOOP fed to a protocol on a string transport."""
    from twisted.internet.testing import StringTransport

    from twistedmail.imap.protocol import IMAPProtocol

    proto = IMAPProtocol(node)
    proto.makeConnection(StringTransport())
    if not hooks:
        proto.stats.__class__ = _Stubbed
    line = b"a1 NOOP\r\n"
    best = min(timeit.repeat(lambda: proto.dataReceived(line), number=n, repeat=3)) / n
    proto.setTimeout(None)
    return best * 1e6


if __name__ == "__main__":
    main()
