"""Every cluster-link command but Challenge/Hello is refused before Hello (issue 7 item 3):
the list is every amp.Command of twistedmail/cluster/wire.py, so a new one is covered."""

from __future__ import annotations

import inspect
import socket
import ssl
from typing import Any

import pytest
from twisted.protocols import amp

from twistedmail.cluster import wire

from .inproc import InProcessCluster, call

COMMANDS = sorted((cls for _, cls in inspect.getmembers(wire, inspect.isclass)
                   if issubclass(cls, amp.Command) and cls is not amp.Command),
                  key=lambda cls: cls.__name__)
OPEN = {"Challenge", "Hello"}  # the handshake itself
DUMMY: dict[type, Any] = {amp.Unicode: "{}", amp.Integer: 0, amp.Boolean: False,
                          amp.String: b"[]"}


def _box(command: type[amp.Command]) -> bytes:
    """An AMP box asking ``command`` with well-formed values for its required arguments."""
    objects = {name.decode(): next((v for kind, v in DUMMY.items() if isinstance(arg, kind)),
                                   b"")
               for name, arg in command.arguments if not arg.optional}
    strings = dict(command.makeArguments(objects, None))
    strings.update({b"_command": command.commandName, b"_ask": b"1"})
    return b"".join(len(k).to_bytes(2, "big") + k + len(v).to_bytes(2, "big") + v
                    for k, v in strings.items()) + b"\x00\x00"


def test_the_list_is_not_empty() -> None:
    """The wire module still declares the commands this file walks."""
    assert {c.__name__ for c in COMMANDS} >= OPEN | {"Ops", "Blob", "Heartbeat"}


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.__name__ not in OPEN],
                         ids=lambda c: c.__name__)
def test_command_before_hello_refused(inproc: InProcessCluster,
                                      command: type[amp.Command]) -> None:
    """Before Hello each command gets REFUSED "not authenticated", no traceback; the node
    lives on."""
    member = inproc.start("n1")
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    answer = b""
    with socket.create_connection(("127.0.0.1", inproc.nodes[0].port), timeout=10) as raw, \
            context.wrap_socket(raw) as tls:
        tls.sendall(_box(command))
        for _ in range(100):  # bounded: the node closes the link after the error
            data = tls.recv(4096)
            if not data:
                break
            answer += data
    assert b"_error_code\x00\x07REFUSED" in answer, answer
    assert b"not authenticated" in answer and b"Traceback" not in answer
    assert call(lambda: member.cluster.state) == "catching-up"
