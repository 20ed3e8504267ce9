"""Limits and bad input: long lines, big literals, timeouts, no tracebacks."""

from __future__ import annotations

import socket
import time

import pytest


@pytest.fixture
def small_limits(make_imap_server):
    """A server with a 1 KiB line limit, 4 KiB literal limit and 1 s pre-auth timeout."""
    return make_imap_server(max_line=1024, max_literal=4096, idle_timeout_preauth=1)


def test_long_line_refused_connection_kept(small_limits, imap_script):
    """A command line over the limit gets BAD [TOOBIG]; the next command works."""
    c = imap_script(login=True, server=small_limits)
    c.send(b"x1 NOOP " + b"a" * 5000)
    line = c.read_line()
    assert b"BAD" in line and b"[TOOBIG]" in line
    c.ok("NOOP")


def test_big_literal_refused_without_continuation(small_limits, imap_script):
    """A synchronizing literal over the limit is refused before the client sends it."""
    c = imap_script(login=True, server=small_limits)
    c.send(b"x1 APPEND INBOX {100000}")
    line = c.read_line()
    assert line.startswith(b"x1 NO [TOOBIG]")
    c.ok("NOOP")
    assert b"MESSAGES 0" in c.ok("STATUS INBOX (MESSAGES)").untagged[0]


def test_big_nonsync_literal_skipped(small_limits, imap_script):
    """A LITERAL+ over the limit is skipped unbuffered; nothing is stored."""
    c = imap_script(login=True, server=small_limits)
    c.send(b"x1 APPEND INBOX {10000+}\r\n" + b"z" * 10000)
    line = c.read_line()
    assert line.startswith(b"x1 NO [TOOBIG]") or line.startswith(b"x1 BAD")
    c.ok("NOOP")
    assert b"MESSAGES 0" in c.ok("STATUS INBOX (MESSAGES)").untagged[0]


def test_preauth_idle_timeout(small_limits):
    """An idle unauthenticated connection is logged out with BYE (RFC 3501 §5.4)."""
    sock = socket.create_connection((small_limits.host, small_limits.port), timeout=10)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"* OK")
    start = time.monotonic()
    assert f.readline().startswith(b"* BYE")
    assert f.readline() == b""
    assert time.monotonic() - start < 9


def test_binary_garbage_never_traceback(imap_script):
    """Random bytes get BAD lines, never a Python traceback."""
    c = imap_script(login=True)
    c.send(b"\x00\xff\xfe garbage \x01\x02")
    line = c.read_line()
    assert b"BAD" in line and b"Traceback" not in line
    c.ok("NOOP")
