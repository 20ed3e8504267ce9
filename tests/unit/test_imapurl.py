"""IMAP URLs for referrals: build, strict RFC 5092 parse, and the REFERRAL response code."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twistedmail.imap import mutf7
from twistedmail.imap.imapurl import ImapUrl, build_url, parse_url, referral_code
from twistedmail.imap.responses import Atom, Responder, status_line

# RFC 5092 §11 bchar, unescaped: unreserved, sub-delims-sh, "&" "=" ":" "@" "/", escapes.
BCHARS = re.compile(r"(?:[A-Za-z0-9\-._~!$'()*+,&=:@/]|%[0-9A-F]{2})+")


# -- build ------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "kwargs", "url"), [
    (("127.0.0.1", 1144, "Public/News"), {}, "imap://;AUTH=*@127.0.0.1:1144/Public/News"),
    (("server2", 143, "REMOTE"), {"user": "user"}, "imap://user;AUTH=*@server2/REMOTE"),
    (("server2", 143, None), {"user": "MIKE", "auth": None}, "imap://MIKE@server2/"),
    (("server2", 143, None), {"user": "u", "auth": "GSSAPI"}, "imap://u;AUTH=GSSAPI@server2/"),
    (("h", 143, "gray council"), {"auth": None}, "imap://h/gray%20council"),
    (("h", 143, "~peter/日本語/台北"), {"auth": None},
     "imap://h/~peter/%E6%97%A5%E6%9C%AC%E8%AA%9E/%E5%8F%B0%E5%8C%97"),  # RFC 5092 §9
    (("::1", 1144, "Public/A"), {}, "imap://;AUTH=*@[::1]:1144/Public/A"),
    (("[2001:DB8::0:1]", 143, "x"), {}, "imap://;AUTH=*@[2001:db8::1]/x"),
    (("h", 143, "x"), {"uidvalidity": 385759045}, "imap://;AUTH=*@h/x;UIDVALIDITY=385759045"),
    (("h", 143, "a;b?c#d%e f"), {}, "imap://;AUTH=*@h/a%3Bb%3Fc%23d%25e%20f"),
    (("h", 143, "a&b=c:d@e/f!$'()*+,"), {}, "imap://;AUTH=*@h/a&b=c:d@e/f!$'()*+,"),
    (("h", 143, "/lead"), {}, "imap://;AUTH=*@h/%2Flead"),  # RFC 5092 §7.1
    (("h", 143, "../a/./b/.."), {}, "imap://;AUTH=*@h/%2E%2E/a/%2E/b/%2E%2E"),  # §7
    (("h", 143, "a..b/.c"), {}, "imap://;AUTH=*@h/a..b/.c"),  # not dot-segments
    (("h", 143, "x"), {"user": "a b;c@d:e/é"}, "imap://a%20b%3Bc%40d%3Ae%2F%C3%A9;AUTH=*@h/x"),
])
def test_build_url_examples(args, kwargs, url):
    """Exact URL text: ;AUTH=* default, port 143 omitted, only bchar/achar unescaped."""
    assert build_url(*args, **kwargs) == url


def test_build_url_takes_the_modified_utf7_wire_name():
    """A bytes mailbox is the wire (modified UTF-7) name and is converted to UTF-8 (§8)."""
    assert build_url("h", 143, b"~peter/&ZeVnLIqe-/&U,BTFw-", auth=None) == (
        "imap://h/~peter/%E6%97%A5%E6%9C%AC%E8%AA%9E/%E5%8F%B0%E5%8C%97")
    assert build_url("h", 143, b"a&-b") == "imap://;AUTH=*@h/a&b"


@pytest.mark.parametrize(("args", "kwargs", "reason"), [
    (("h", 143, ""), {}, "empty mailbox"),
    (("h", 143, b"&U,BTFw"), {}, "modified UTF-7"),
    (("h", 143, "bad\ud800"), {}, "lone surrogate"),
    (("h", 143, "x"), {"user": ""}, "empty user"),
    (("h", 143, "x"), {"user": "\udc80"}, "lone surrogate"),
    (("h", 143, "x"), {"auth": "A B"}, "atom"),
    (("h", 143, "x"), {"auth": "%"}, "atom"),
    (("h", 0, "x"), {}, "port"),
    (("h", 65536, "x"), {}, "port"),
    (("h", True, "x"), {}, "port"),
    (("", 143, "x"), {}, "missing host"),
    (("a_b.example", 143, "x"), {}, "bad host name"),
    (("-a.example", 143, "x"), {}, "bad host name"),
    (("1.2.3.256", 143, "x"), {}, "IPv4"),
    (("fe80::1%eth0", 143, "x"), {}, "zone"),
    (("1::2::3", 143, "x"), {}, "IPv6"),
    (("h", 143, "x"), {"uidvalidity": 0}, "UIDVALIDITY"),
    (("h", 143, "x"), {"uidvalidity": 2**32}, "UIDVALIDITY"),
    (("h", 143, None), {"uidvalidity": 5}, "needs a mailbox"),
])
def test_build_url_refuses(args, kwargs, reason):
    """Every bad argument is a ValueError naming the problem, never a malformed URL."""
    with pytest.raises(ValueError, match=reason):
        build_url(*args, **kwargs)


# -- round trips ------------------------------------------------------------------------

NASTY = st.sampled_from(list(" %/?#;.&=@:[]\"\\~+*(),'!$") + ["ü", "台", "😀", "\t", "\x00"])
# Mailbox names are Unicode text: lone surrogates cannot be UTF-8 (build_url refuses them;
# the error table above pins that refusal, not the round trip).
_CHARS = st.characters(blacklist_categories=("Cs",))
NAMES = st.one_of(st.text(_CHARS, min_size=1, max_size=40),
                  st.text(NASTY | _CHARS, min_size=1, max_size=40),
                  st.lists(st.sampled_from([".", "..", "", "a", "%2F", ";UID=1"]),
                           min_size=1, max_size=5).map("/".join).filter(bool))
HOSTS = st.sampled_from(["127.0.0.1", "node-1.example", "SERVER2", "::1", "2001:db8::7"])


@settings(max_examples=400, deadline=None)
@given(host=HOSTS, port=st.integers(1, 65535), name=NAMES,
       user=st.none() | st.text(min_size=1, max_size=20),
       auth=st.sampled_from([None, "*", "GSSAPI", "SCRAM-SHA-256", "X;Y[z"]),
       uidvalidity=st.none() | st.integers(1, 2**32 - 1))
def test_build_then_parse_round_trips(host, port, name, user, auth, uidvalidity):
    """parse_url(build_url(...)) gives back every field; the mailbox part is pure bchar."""
    url = build_url(host, port, name, user=user, auth=auth, uidvalidity=uidvalidity)
    parsed = parse_url(url)
    assert parsed == ImapUrl(host=str(host), port=port, user=user, auth=auth, mailbox=name,
                             uidvalidity=uidvalidity)
    assert parsed.wire_mailbox == mutf7.encode(name)
    path = url.split("/", 3)[3].split(";UIDVALIDITY=")[0]
    assert BCHARS.fullmatch(path)
    assert build_url(host, port, mutf7.encode(name), user, auth, uidvalidity) == url


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60) | st.text(max_size=60).map("imap://".__add__)
       | st.text(st.sampled_from(list("imap:/;AUTH=*@[]%2Fa9.?#UIDVALIDITY")), max_size=60))
def test_parse_url_only_ever_raises_value_error(text):
    """Arbitrary input is parsed or refused with ValueError; nothing else escapes."""
    try:
        url = parse_url(text)
    except ValueError as exc:
        assert str(exc)
    else:
        assert isinstance(url, ImapUrl) and url.host


# -- RFC examples -----------------------------------------------------------------------

@pytest.mark.parametrize(("url", "expected"), [
    # RFC 5092 §9
    ("imap://minbari.example.org/gray-council;UIDVALIDITY=385759045/;UID=20/;PARTIAL=0.1024",
     ImapUrl("minbari.example.org", mailbox="gray-council", uidvalidity=385759045, uid=20,
             partial=(0, 1024))),
    ("imap://psicorp.example.org/~peter/%E6%97%A5%E6%9C%AC%E8%AA%9E/%E5%8F%B0%E5%8C%97",
     ImapUrl("psicorp.example.org", mailbox="~peter/日本語/台北")),
    ("imap://;AUTH=GSSAPI@minbari.example.org/gray-council/;uid=20/;section=1.2",
     ImapUrl("minbari.example.org", auth="GSSAPI", mailbox="gray-council", uid=20,
             section="1.2")),
    ("imap://;AUTH=*@minbari.example.org/gray%20council?SUBJECT%20shadows",
     ImapUrl("minbari.example.org", auth="*", mailbox="gray council",
             search=b"SUBJECT shadows")),
    ("imap://john;AUTH=*@minbari.example.org/babylon5/personel?charset%20UTF-8%20SUBJECT"
     "%20%7B14+%7D%0D%0A%D0%98%D0%B2%D0%B0%D0%BD%D0%BE%D0%B2%D0%B0",
     ImapUrl("minbari.example.org", user="john", auth="*", mailbox="babylon5/personel",
             search=b"charset UTF-8 SUBJECT {14+}\r\n" + "Иванова".encode())),
    # RFC 2193 §3, §4.1 and RFC 2221 §3, §4.1 (scheme and keywords are case-insensitive)
    ("IMAP://user;AUTH=*@SERVER2/SHARED/FOO",
     ImapUrl("SERVER2", user="user", auth="*", mailbox="SHARED/FOO")),
    ("IMAP://MIKE@SERVER2/", ImapUrl("SERVER2", user="MIKE")),
    ("IMAP://user;AUTH=GSSAPI@SERVER2/", ImapUrl("SERVER2", user="user", auth="GSSAPI")),
    ("imap://;auth=*@[::1]:1144/Public/News;uidvalidity=7",
     ImapUrl("::1", 1144, auth="*", mailbox="Public/News", uidvalidity=7)),
    ("imap://h", ImapUrl("h")),
    ("imap://h:0143/a/;UIDVALIDITY=3", ImapUrl("h", mailbox="a/", uidvalidity=3)),
    ("imap://h/x/;UID=1/;SECTION=1.2/;PARTIAL=5", ImapUrl("h", mailbox="x", uid=1,
                                                         section="1.2", partial=(5, None))),
])
def test_parse_rfc_examples(url, expected):
    """The RFC 5092 §9, RFC 2193 and RFC 2221 example URLs parse to the decoded fields."""
    assert parse_url(url) == expected


# -- every error class ------------------------------------------------------------------

@pytest.mark.parametrize(("url", "reason"), [
    (b"imap://h/x", "is text"),
    ("imap://h/" + "a" * 9000, "longer than"),
    ("http://h/x", "not an imap:// URL"),
    ("imap:/h/x", "not an imap:// URL"),
    ("imap://h/a b", "illegal character ' ' at offset 10"),
    ("imap://h/caf\u00e9", "illegal character"),
    ("imap://h/a\r\n", "illegal character"),
    ("imap://h/<x>", "illegal character"),
    ("imap://h/%zz", "bad percent-escape '%zz' at offset 9"),
    ("imap://h/x%4", "bad percent-escape"),
    ("imap://h/%C3%28", "mailbox is not UTF-8"),
    ("imap://h/%ED%A0%80", "mailbox is not UTF-8"),  # an encoded surrogate
    ("imap://h/%C0%AF", "mailbox is not UTF-8"),  # overlong "/"
    ("imap://%FF@h/x", "user name is not UTF-8"),
    ("imap://h/x#frag", "fragment"),
    ("imap:///x", "missing host"),
    ("imap://u@/x", "missing host"),
    ("imap://h:/x", "empty port"),
    ("imap://h:0/x", "out of range"),
    ("imap://h:65536/x", "out of range"),
    ("imap://h:999999/x", "out of range"),
    ("imap://h:1a/x", "bad port"),
    ("imap://h:1:2/x", "must be in brackets"),
    ("imap://::1/x", "must be in brackets"),
    ("imap://[::1/x", "unterminated IPv6"),
    ("imap://[::g]/x", "bad IPv6"),
    ("imap://[::1]x/x", "after the IPv6 literal"),
    ("imap://[v1.x]/x", "IPvFuture"),
    ("imap://[fe80::1%25eth0]/x", "zone"),
    ("imap://h]/x", "stray bracket"),
    ("imap://1.2.3.04/x", "bad IPv4"),
    ("imap://h%41/x", "bad host name"),
    ("imap://h_1/x", "bad host name"),
    ("imap://a;b/x", "bad host name"),
    ("imap://u:pw@h/x", "no password"),
    ("imap://a@b@h/x", "more than one '@'"),
    ("imap://@h/x", "malformed userinfo"),
    ("imap://;AUTH=@h/x", "malformed userinfo"),
    ("imap://u;FOO=x@h/x", "malformed userinfo"),
    ("imap://;AUTH=%2A@h/x", "not ';AUTH=\\*'"),
    ("imap://h?x", "without a mailbox"),
    ("imap://h/?x", "no mailbox"),
    ("imap://h//x", "starts with '/'"),
    ("imap://h/;UID=3", "no mailbox"),
    ("imap://h/../x", "dot-segment"),
    ("imap://h/a/./b", "dot-segment"),
    ("imap://h/a/..", "dot-segment"),
    ("imap://h/x;UIDVALIDITY=0", "not a non-zero number"),
    ("imap://h/x;UIDVALIDITY=", "not a non-zero number"),
    ("imap://h/x;UIDVALIDITY=07", "not a non-zero number"),
    ("imap://h/x;UIDVALIDITY=4294967296", "out of range"),
    ("imap://h/x;UIDVALIDITY=99999999999999999999999", "out of range"),
    ("imap://h/x/;UID=-1", "not a non-zero number"),
    ("imap://h/x/;UID=1/;SECTION=", "empty SECTION"),
    ("imap://h/x/;UID=1/;PARTIAL=1.0", "PARTIAL"),
    ("imap://h/x/;UID=1/;PARTIAL=99999999999", "PARTIAL offset"),
    ("imap://h/x/;UID=1/;PARTIAL=0.99999999999", "PARTIAL length"),
    ("imap://h/x/;UID=1?ALL", "unexpected '\\?ALL'"),
    ("imap://h/x?", "empty search"),
    ("imap://h/x?a?b", "unexpected"),
    ("imap://h/x;FOO=1", "unexpected ';FOO=1' at offset 10"),
    ("imap://h/x/;UID=1;EXPIRE=2030-01-01T00:00:00Z", "EXPIRE is not supported"),
    ("imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred:internal:"
     "91354a473744909de610943775f92038", "URLAUTH is not supported"),  # RFC 5092 §6.1.2
])
def test_parse_url_refuses(url, reason):
    """Each malformation is a ValueError whose message says what is wrong (and where)."""
    with pytest.raises(ValueError, match=reason):
        parse_url(url)


# -- the REFERRAL response code ---------------------------------------------------------

URL1 = "imap://;AUTH=*@127.0.0.1:1144/Public/News"
URL2 = "imap://;AUTH=*@node-3.example:1146/Public/News"


def test_referral_code_exact_bytes():
    """RFC 2193 §6: URLs go out verbatim, space-separated, in list order, never quoted."""
    code, args = referral_code([URL1, URL2])
    assert code == "REFERRAL" and all(type(a) is Atom for a in args)
    assert status_line("A001", "NO", "Remote mailbox", code, args) == (
        b"A001 NO [REFERRAL imap://;AUTH=*@127.0.0.1:1144/Public/News "
        b"imap://;AUTH=*@node-3.example:1146/Public/News] Remote mailbox\r\n")


def test_referral_code_escaped_names_and_login_referral():
    """Percent-escapes, ';' and '*' survive verbatim; the RFC 2221 server form works."""
    out = Responder()
    name_url = build_url("node-2.example", 1145, "Public/Grüße & \"Co\"", user="ann")
    out.tagged("a2", "NO", "Try elsewhere", *referral_code([name_url]))
    login = parse_url(build_url("node-2.example", 143, None, user="ann"))
    out.tagged("a3", "NO", "Wrong server", *referral_code([login]))
    assert out.take() == (
        b"a2 NO [REFERRAL imap://ann;AUTH=*@node-2.example:1145/"
        b"Public/Gr%C3%BC%C3%9Fe%20&%20%22Co%22] Try elsewhere\r\n"
        b"a3 NO [REFERRAL imap://ann;AUTH=*@node-2.example/] Wrong server\r\n")


@pytest.mark.parametrize(("urls", "reason"), [
    ([], "at least one URL"),
    (["imap://h/a b"], "illegal character"),
    (["imap://;AUTH=*@[::1]:1144/Public/News"], "']' cannot appear"),
    ([ImapUrl("h", mailbox="x", uid=3)], "only server and mailbox URLs"),
])
def test_referral_code_refuses(urls, reason):
    """No empty code, no malformed URL, no ']' that would end the code early (RFC 3501 §9)."""
    with pytest.raises(ValueError, match=reason):
        referral_code(urls)
