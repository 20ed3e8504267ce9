"""METADATA and METADATA-SERVER (RFC 5464): GETMETADATA / SETMETADATA."""

from __future__ import annotations

import pytest

from twistedmail.imap.handlers import metadata


def test_capabilities_advertised(imap_script):
    """METADATA and METADATA-SERVER are advertised (RFC 5464 §1)."""
    caps = imap_script(login=True).ok("CAPABILITY").untagged[0].split()
    assert b"METADATA" in caps and b"METADATA-SERVER" in caps


def test_rfc_set_and_get_mailbox_entries(imap_script):
    """RFC 5464 §4.3/§4.2 examples: set /private/comment and /shared/comment on INBOX,
    read them back; a missing entry is simply left out."""
    c = imap_script(login=True)
    c.ok('SETMETADATA INBOX (/private/comment "My comment" /shared/comment "Shared comment")')
    r = c.ok("GETMETADATA INBOX (/shared/comment /private/comment /private/nothing)")
    assert r.untagged == [
        b'* METADATA "INBOX" (/shared/comment "Shared comment" /private/comment "My comment")'
    ]
    r = c.ok('GETMETADATA "INBOX" /shared/comment')
    assert r.untagged == [b'* METADATA "INBOX" (/shared/comment "Shared comment")']


def test_literal_value_and_nil_delete(imap_script):
    """RFC 5464 §4.3.1/§4.3.2: a literal value spanning lines; NIL removes the entry."""
    c = imap_script(login=True)
    value = b"My new comment across\r\ntwo lines."
    c.ok(f"SETMETADATA INBOX (/private/comment {{{len(value)}}}", value + b")")
    r = c.ok("GETMETADATA INBOX /private/comment")
    assert r.untagged == [b'* METADATA "INBOX" (/private/comment {33}\r\n' + value + b")"]
    c.ok("SETMETADATA INBOX (/private/comment NIL)")
    assert c.ok("GETMETADATA INBOX /private/comment").untagged == []


def test_literal8_value(imap_script):
    """Values may come as literal8 and go back as literal8 when they hold NUL (RFC 5464 §5)."""
    c = imap_script(login=True)
    c.ok("SETMETADATA INBOX (/private/vendor/x/bin ~{3}", b"a\x00b)")
    r = c.ok("GETMETADATA INBOX /private/vendor/x/bin")
    assert r.untagged == [b'* METADATA "INBOX" (/private/vendor/x/bin ~{3}\r\na\x00b)']


def test_depth(imap_script):
    """RFC 5464 §4.2.2: DEPTH 0 / 1 / infinity."""
    c = imap_script(login=True)
    c.ok('SETMETADATA INBOX (/private/filters/values/small "SMALLER THAN 4K" '
         '/private/filters/values/big "BIGGER THAN 4K" /private/filters/values/big/x "deep")')
    assert c.ok("GETMETADATA INBOX /private/filters/values").untagged == []
    r = c.ok("GETMETADATA (DEPTH 1) INBOX /private/filters/values")
    assert r.untagged == [b'* METADATA "INBOX" (/private/filters/values/big "BIGGER THAN 4K" '
                          b'/private/filters/values/small "SMALLER THAN 4K")']
    r = c.ok("GETMETADATA (DEPTH infinity) INBOX /private")
    assert b'/private/filters/values/big/x "deep"' in r.untagged[0]


def test_maxsize_longentries(imap_script):
    """RFC 5464 §4.2.1: values over MAXSIZE are left out; OK [METADATA LONGENTRIES n]."""
    c = imap_script(login=True)
    c.ok('SETMETADATA INBOX (/shared/comment "%s" /shared/small "ok")' % ("x" * 2199))
    r = c.ok("GETMETADATA (MAXSIZE 1024) INBOX (/shared/comment /shared/small)")
    assert r.untagged == [b'* METADATA "INBOX" (/shared/small "ok")']
    assert b"OK [METADATA LONGENTRIES 2199]" in r.tagged


def test_server_entries(imap_script):
    """METADATA-SERVER: mailbox "" holds the server's entries; /private ones are
    per user, /shared ones are read-only here (NO [NOPERM])."""
    c = imap_script(login=True)
    c.ok('SETMETADATA "" (/private/vendor/client/theme "dark")')
    r = c.ok('GETMETADATA "" /private/vendor/client/theme')
    assert r.untagged == [b'* METADATA "" (/private/vendor/client/theme "dark")']
    assert b"[NOPERM]" in c.no('SETMETADATA "" (/shared/comment "Shared comment")').tagged
    other = imap_script(login=True, user="bob")
    assert other.ok('GETMETADATA "" /private/vendor/client/theme').untagged == []


def test_private_entries_are_per_user(imap_script):
    """Another user never sees alice's /private entries (RFC 5464 §3)."""
    c = imap_script(login=True)
    c.ok('SETMETADATA INBOX (/private/comment "alice only")')
    bob = imap_script(login=True, user="bob")
    assert bob.ok("GETMETADATA INBOX /private/comment").untagged == []


def test_rename_keeps_and_delete_drops_entries(imap_script):
    """Entries belong to the mailbox: they follow RENAME and go with DELETE."""
    c = imap_script(login=True)
    c.ok("CREATE a")
    c.ok('SETMETADATA a (/shared/comment "kept")')
    c.ok("RENAME a b")
    assert c.ok("GETMETADATA b /shared/comment").untagged == [
        b'* METADATA "b" (/shared/comment "kept")']
    c.ok("DELETE b")
    c.ok("CREATE b")
    assert c.ok("GETMETADATA b /shared/comment").untagged == []


def test_entry_names_case_insensitive(imap_script):
    """Entry names compare case-insensitively (RFC 5464 §3.2)."""
    c = imap_script(login=True)
    c.ok('SETMETADATA INBOX (/Shared/Comment "x")')
    r = c.ok("GETMETADATA INBOX /SHARED/COMMENT")
    assert r.untagged == [b'* METADATA "INBOX" (/SHARED/COMMENT "x")']


def test_maxsize_refused(imap_script, monkeypatch):
    """A value over the server's limit: NO [METADATA MAXSIZE n] (RFC 5464 §4.3), nothing set."""
    monkeypatch.setattr(metadata, "MAX_VALUE", 10)
    c = imap_script(login=True)
    r = c.no('SETMETADATA INBOX (/shared/a "1" /shared/comment "%s")' % ("y" * 11))
    assert b"NO [METADATA MAXSIZE 10]" in r.tagged
    assert c.ok("GETMETADATA INBOX /shared/a").untagged == []


def test_toomany_refused(imap_script, monkeypatch):
    """More entries than allowed: NO [METADATA TOOMANY] (RFC 5464 §4.3), nothing set."""
    monkeypatch.setattr(metadata, "MAX_ENTRIES", 2)
    c = imap_script(login=True)
    c.ok('SETMETADATA INBOX (/private/a "1" /shared/b "2")')
    assert b"NO [METADATA TOOMANY]" in c.no('SETMETADATA INBOX (/private/c "3")').tagged
    c.ok('SETMETADATA INBOX (/private/a NIL /private/c "3")')  # a replacement fits
    assert c.ok("GETMETADATA INBOX /private/a").untagged == []


def test_missing_mailbox(imap_script):
    """GET/SET on a missing mailbox: NO [NONEXISTENT]."""
    c = imap_script(login=True)
    assert b"[NONEXISTENT]" in c.no("GETMETADATA Nope /shared/comment").tagged
    assert b"[NONEXISTENT]" in c.no('SETMETADATA Nope (/shared/comment "x")').tagged


@pytest.mark.parametrize("command", [
    "GETMETADATA INBOX comment",  # must start with /private or /shared
    "GETMETADATA INBOX /shared/*",
    "GETMETADATA INBOX /shared//x",
    "GETMETADATA INBOX /shared/x/",
    "GETMETADATA (DEPTH 2) INBOX /shared",
    "GETMETADATA (FOO 1) INBOX /shared",
    "GETMETADATA INBOX",
    "SETMETADATA INBOX (/shared \"x\")",
    "SETMETADATA INBOX (/shared/comment)",
    "SETMETADATA INBOX /shared/comment \"x\"",
    "SETMETADATA INBOX (/other/comment \"x\")",
])
def test_syntax_errors_are_bad(imap_script, command):
    """Malformed entries, options and argument lists are BAD (RFC 5464 §3.2, §5)."""
    imap_script(login=True).bad(command)


def test_needs_authentication(imap_script):
    """GETMETADATA before LOGIN is BAD (authenticated state only)."""
    imap_script().bad("GETMETADATA INBOX /shared/comment")
