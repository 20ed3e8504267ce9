"""Scripted conversations: APPENDLIMIT (RFC 7889); the limit is the node's max_literal."""

from __future__ import annotations

import re

from tests.protocol.conftest import SIMPLE


def test_appendlimit_capability_default(imap_script):
    """APPENDLIMIT=<max_literal> is advertised before and after login (RFC 7889 §3)."""
    c = imap_script()
    assert b" APPENDLIMIT=67108864" in c.greeting
    c.ok("LOGIN alice secret")
    caps = c.ok("CAPABILITY").untagged[0]
    assert len(re.findall(rb" APPENDLIMIT=67108864\b", caps)) == 1


def test_appendlimit_follows_max_literal(make_imap_server, imap_script):
    """Configuring max_literal changes the advertised APPENDLIMIT."""
    server = make_imap_server(max_literal=1000)
    c = imap_script(login=True, server=server)
    assert b" APPENDLIMIT=1000" in c.ok("CAPABILITY").untagged[0]


def test_status_appendlimit(make_imap_server, imap_script):
    """STATUS mailbox (APPENDLIMIT) answers the limit (RFC 7889 §4)."""
    server = make_imap_server(max_literal=1000)
    c = imap_script(login=True, server=server)
    r = c.ok("STATUS INBOX (MESSAGES APPENDLIMIT)")
    assert r.untagged == [b'* STATUS "INBOX" (MESSAGES 0 APPENDLIMIT 1000)']


def test_sync_literal_over_limit_toobig(make_imap_server, imap_script):
    """A synchronizing APPEND over the limit gets NO [TOOBIG] instead of "+" (RFC 7889 §3)."""
    server = make_imap_server(max_literal=100)
    c = imap_script(login=True, server=server)
    c.send(b"a1 APPEND INBOX {101}")
    assert c.read_line().startswith(b"a1 NO [TOOBIG]")
    c.ok("NOOP")


def test_nonsync_literal_over_limit_toobig(make_imap_server, imap_script):
    """A LITERAL+ APPEND over the limit is skipped and answered NO [TOOBIG]."""
    server = make_imap_server(max_literal=100)
    c = imap_script(login=True, server=server)
    c.send(b"a1 APPEND INBOX {101+}\r\n" + b"x" * 101)
    assert c.read_line().startswith(b"a1 NO [TOOBIG]")
    assert b"MESSAGES 0" in c.ok("STATUS INBOX (MESSAGES)").untagged[0]


def test_message_at_limit_accepted(make_imap_server, imap_script):
    """A message of exactly APPENDLIMIT octets is accepted."""
    server = make_imap_server(max_literal=len(SIMPLE))
    c = imap_script(login=True, server=server)
    c.send(b"a1 APPEND INBOX {%d+}\r\n%s" % (len(SIMPLE), SIMPLE))
    assert c.read_line().startswith(b"a1 OK [APPENDUID")


def test_multiappend_over_limit_appends_nothing(make_imap_server, imap_script):
    """MULTIAPPEND whose literals together pass the limit: NO [TOOBIG], nothing stored.

    The receiver bounds the literal octets of one command by max_literal."""
    server = make_imap_server(max_literal=100)
    c = imap_script(login=True, server=server)
    c.send(b"a1 APPEND INBOX {60}")
    assert c.read_line().startswith(b"+")
    c.send(b"y" * 60 + b" {60}")
    assert c.read_line().startswith(b"a1 NO [TOOBIG]")
    assert b"MESSAGES 0" in c.ok("STATUS INBOX (MESSAGES)").untagged[0]


def test_binary_literal8_over_limit_toobig(make_imap_server, imap_script):
    """A literal8 (~{n}) APPEND over the limit is TOOBIG too."""
    server = make_imap_server(max_literal=100)
    c = imap_script(login=True, server=server)
    c.send(b"a1 APPEND INBOX ~{200}")
    assert c.read_line().startswith(b"a1 NO [TOOBIG]")
