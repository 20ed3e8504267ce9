"""Scripted conversations: UTF8=ACCEPT (RFC 6855)."""

from __future__ import annotations

from twistedmail.imap.responses import MailboxName, Responder, quote

ETE = "été".encode()
MSG = "Subject: Grüße\r\nFrom: jörg@example.org\r\n\r\nDas Büro ist zu.\r\n".encode()


def _enable(c) -> None:
    assert c.ok("ENABLE UTF8=ACCEPT").untagged == [b"* ENABLED UTF8=ACCEPT"]


def test_utf8_accept_advertised(imap_script):
    """CAPABILITY lists UTF8=ACCEPT (RFC 6855 §3)."""
    c = imap_script(login=True)
    assert b" UTF8=ACCEPT" in c.ok("CAPABILITY").untagged[0]


def test_enable_once(imap_script):
    """ENABLE UTF8=ACCEPT answers ENABLED once; enabling again lists nothing (RFC 5161)."""
    c = imap_script(login=True)
    _enable(c)
    assert c.ok("ENABLE UTF8=ACCEPT").untagged == [b"* ENABLED"]


def test_list_names_mutf7_before_utf8_after(imap_script):
    """Mailbox names go out in modified UTF-7 until enabled, then as UTF-8 quoted strings."""
    c = imap_script(login=True)
    c.ok("CREATE &AOk-t&AOk-")
    assert c.ok('LIST "" "&AOk-t&AOk-"').untagged == [
        b'* LIST (\\HasNoChildren) "/" "&AOk-t&AOk-"']
    _enable(c)
    assert c.ok(b'LIST "" "' + ETE + b'"').untagged == [
        b'* LIST (\\HasNoChildren) "/" "' + ETE + b'"']
    r = c.ok(b'STATUS "' + ETE + b'" (MESSAGES)')
    assert r.untagged == [b'* STATUS "' + ETE + b'" (MESSAGES 0)']


def test_utf8_names_accepted_verbatim(imap_script):
    """Once enabled, names are UTF-8: "&" is an ordinary character (RFC 6855 §3)."""
    c = imap_script(login=True)
    _enable(c)
    c.ok('CREATE "R&D"')
    c.ok(b'CREATE "' + ETE + b'/sub"')
    names = [line.rsplit(b" ", 1)[1] for line in c.ok('LIST "" "*"').untagged]
    assert b'"R&D"' in names and b'"' + ETE + b'/sub"' in names
    c.ok('SELECT "R&D"')
    other = imap_script(login=True)  # a client without UTF8=ACCEPT sees modified UTF-7
    listed = b"\n".join(other.ok('LIST "" "*"').untagged)
    assert b'"R&-D"' in listed and b'"&AOk-t&AOk-/sub"' in listed


def test_append_utf8_data(imap_script):
    """APPEND mbox UTF8 (~{n}) stores the message (RFC 6855 §4)."""
    c = imap_script(login=True)
    _enable(c)
    c.send(b"u1 APPEND INBOX (\\Seen) UTF8 (~{%d+}\r\n%s)" % (len(MSG), MSG))
    assert c.read_line().startswith(b"u1 OK [APPENDUID")
    c.ok("SELECT INBOX")
    assert c.ok("FETCH 1 BODY.PEEK[]").untagged[0].endswith(MSG + b")")


def test_append_utf8_before_enable_is_bad(imap_script):
    """APPEND ... UTF8 without ENABLE UTF8=ACCEPT is BAD (RFC 6855 §4)."""
    c = imap_script(login=True)
    c.send(b"u1 APPEND INBOX UTF8 (~{%d+}\r\n%s)" % (len(MSG), MSG))
    assert c.read_line().startswith(b"u1 BAD")
    assert b"MESSAGES 0" in c.ok("STATUS INBOX (MESSAGES)").untagged[0]


def test_append_utf8_needs_literal8(imap_script):
    """UTF8 data must be a literal8 and parenthesised; otherwise BAD."""
    c = imap_script(login=True)
    _enable(c)
    c.send(b"u1 APPEND INBOX UTF8 ({5+}\r\nhello)")
    assert c.read_line().startswith(b"u1 BAD")
    c.send(b"u2 APPEND INBOX UTF8 ~{5+}\r\nhello")
    assert c.read_line().startswith(b"u2 BAD")


def test_utf8_in_catenate_and_multiappend(imap_script):
    """UTF8 literals work as CATENATE parts and in MULTIAPPEND (RFC 6855 §4)."""
    c = imap_script(login=True)
    _enable(c)
    c.send(b"u1 APPEND INBOX CATENATE (UTF8 (~{%d+}\r\n%s)) UTF8 (~{%d+}\r\n%s)"
           % (len(MSG), MSG, len(MSG), MSG))
    line = c.read_line()
    assert line.startswith(b"u1 OK [APPENDUID") and line.split(b"]")[0].endswith(b" 1:2")


def test_login_with_utf8_credentials(make_imap_server, imap_script):
    """LOGIN accepts UTF-8 user names and passwords in quoted strings (RFC 6855 §5)."""
    server = make_imap_server(users={"jörg": "pässwörd"})
    c = imap_script(server=server)
    c.ok("LOGIN \"jörg\" \"pässwörd\"".encode())
    _enable(c)


def test_encoder_utf8_mode():
    """With UTF-8 mode on, valid UTF-8 is quoted; invalid 8-bit and controls stay literals."""
    assert quote(ETE) == b"{5}\r\n" + ETE
    assert quote(ETE, utf8=True) == b'"' + ETE + b'"'
    assert quote(b"\xff\xfe", utf8=True) == b"{2}\r\n\xff\xfe"
    assert quote(ETE + b"\r\n", utf8=True).startswith(b"{7}")
    out = Responder()
    out.untagged(MailboxName.of("été"))
    out.utf8 = True
    out.untagged(MailboxName.of("été"))
    assert out.take() == b'* "&AOk-t&AOk-"\r\n* "' + ETE + b'"\r\n'
