"""Scripted conversations: LITERAL+ and LITERAL- (RFC 7888), chosen by NodeSettings.literal_mode."""

from __future__ import annotations

import pytest

from twistedmail.config import ConfigError, NodeSettings


def _caps(c) -> list[bytes]:
    return c.ok("CAPABILITY").untagged[0].split()


def test_literal_plus_is_default(imap_script):
    """By default LITERAL+ is advertised and LITERAL- is not (RFC 7888 §4: never both)."""
    c = imap_script(login=True)
    caps = _caps(c)
    assert b"LITERAL+" in caps and b"LITERAL-" not in caps


def test_literal_plus_large_nonsync(imap_script):
    """With LITERAL+, a {n+} literal of any size up to the limit needs no continuation."""
    c = imap_script(login=True)
    msg = b"Subject: big\r\n\r\n" + b"x" * 10000
    c.send(b"a1 APPEND INBOX {%d+}\r\n%s" % (len(msg), msg))
    assert c.read_line().startswith(b"a1 OK [APPENDUID")


def test_literal_minus_advertised(make_imap_server, imap_script):
    """literal_mode="minus" advertises LITERAL- instead of LITERAL+ (RFC 7888 §4)."""
    server = make_imap_server(literal_mode="minus")
    c = imap_script(server=server)
    assert b"LITERAL-" in c.greeting and b"LITERAL+" not in c.greeting
    c.ok("LOGIN alice secret")
    caps = _caps(c)
    assert b"LITERAL-" in caps and b"LITERAL+" not in caps


def test_literal_minus_small_nonsync_ok(make_imap_server, imap_script):
    """LITERAL- accepts {n+} for n <= 4096 (RFC 7888 §4), e.g. in LOGIN and APPEND."""
    server = make_imap_server(literal_mode="minus")
    c = imap_script(server=server)
    c.send(b"l1 LOGIN {5+}\r\nalice {6+}\r\nsecret")
    assert c.read_line().startswith(b"l1 OK")
    msg = b"Subject: edge\r\n\r\n" + b"y" * (4096 - 17)
    assert len(msg) == 4096
    c.send(b"a1 APPEND INBOX {4096+}\r\n" + msg)
    assert c.read_line().startswith(b"a1 OK [APPENDUID")


def test_literal_minus_large_nonsync_bad_toobig(make_imap_server, imap_script):
    """LITERAL-: a {n+} over 4096 is BAD [TOOBIG]; its bytes are skipped, the session goes on."""
    server = make_imap_server(literal_mode="minus")
    c = imap_script(login=True, server=server)
    c.send(b"a1 APPEND INBOX {4097+}\r\n" + b"z" * 4097)
    assert c.read_line().startswith(b"a1 BAD [TOOBIG]")
    assert b"MESSAGES 0" in c.ok("STATUS INBOX (MESSAGES)").untagged[0]


def test_literal_minus_large_sync_ok(make_imap_server, imap_script):
    """LITERAL-: large messages still go through synchronizing literals."""
    server = make_imap_server(literal_mode="minus")
    c = imap_script(login=True, server=server)
    msg = b"Subject: sync\r\n\r\n" + b"s" * 9000
    c.send(b"a1 APPEND INBOX {%d}" % len(msg))
    assert c.read_line().startswith(b"+")
    c.send(msg)
    assert c.read_line().startswith(b"a1 OK [APPENDUID")


def test_literal_mode_validated():
    """literal_mode accepts only "plus" and "minus"."""
    assert NodeSettings(literal_mode="minus").literal_mode == "minus"
    with pytest.raises(ConfigError, match="literal_mode"):
        NodeSettings(literal_mode="both")
