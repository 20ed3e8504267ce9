"""SMTP into an in-process node with smtplib over real sockets (issue 6 part 1)."""

from __future__ import annotations

import smtplib
import ssl

import pytest

from tests.delivery.helpers import HOST, dialog, fetch_all, message, with_marker


def inbox(node, user="alice", folder="INBOX"):
    host, port = node.imap
    return fetch_all(host, port, user, folder=folder)


def test_smtp_delivers_to_inbox_with_a_trace_header(mail_node):
    """250 after DATA and the message is in alice's INBOX over IMAP, with a Received: line."""
    with smtplib.SMTP(HOST, mail_node.smtp, timeout=15) as client:
        refused = client.sendmail("sender@example.org", ["alice@example.org"],
                                  message("smtp-inbox-1"))
    assert refused == {}
    got = with_marker(inbox(mail_node), b"smtp-inbox-1")
    assert len(got) == 1
    assert got[0].startswith(b"Received: from ")
    assert b"\r\n\r\nbody smtp-inbox-1\r\n" in got[0]


def test_plus_address_delivers_to_that_folder(mail_node):
    """user+folder puts the message into that folder, not INBOX."""
    with smtplib.SMTP(HOST, mail_node.smtp, timeout=15) as client:
        client.sendmail("s@example.org", ["alice+Archive@example.org"], message("plus-1"))
    assert len(with_marker(inbox(mail_node, folder="Archive"), b"plus-1")) == 1
    assert with_marker(inbox(mail_node), b"plus-1") == []


@pytest.mark.parametrize("rcpt", ["nobody@example.org", "alice+NoSuchFolder@example.org"])
def test_unknown_recipient_is_550_5_1_1_at_rcpt(mail_node, rcpt):
    """An unknown user or folder is refused at RCPT with 550 5.1.1."""
    with smtplib.SMTP(HOST, mail_node.smtp, timeout=15) as client:
        client.ehlo()
        client.mail("s@example.org")
        code, text = client.rcpt(rcpt)
    assert code == 550 and text.startswith(b"5.1.1 "), (code, text)


def test_one_known_one_unknown_recipient_delivers_once(mail_node):
    """A refused recipient does not stop the accepted one; bob gets exactly one copy."""
    with smtplib.SMTP(HOST, mail_node.smtp, timeout=15) as client:
        refused = client.sendmail("s@example.org", ["bob@example.org", "ghost@example.org"],
                                  message("mixed-1"))
    assert list(refused) == ["ghost@example.org"] and refused["ghost@example.org"][0] == 550
    assert len(with_marker(inbox(mail_node, "bob"), b"mixed-1")) == 1


def test_size_is_advertised_and_enforced(make_mail_node):
    """EHLO advertises SIZE=max_literal; SIZE= above it and data above it both get 552 5.3.4."""
    node = make_mail_node(max_literal=4096)
    with smtplib.SMTP(HOST, node.smtp, timeout=15) as client:
        client.ehlo()
        assert client.esmtp_features["size"] == "4096"
        code, text = client.mail("s@example.org", ["SIZE=5000"])
        assert (code, text[:6]) == (552, b"5.3.4 ")
        client.rset()
        assert client.mail("s@example.org")[0] == 250  # no SIZE= given: caught in DATA
        assert client.rcpt("alice@example.org")[0] == 250
        code, text = client.data(message("too-big-1", size=6000))
        assert (code, text[:6]) == (552, b"5.3.4 ")
        assert client.noop()[0] == 250  # the session goes on
        assert client.sendmail("s@example.org", ["alice"], message("small-1")) == {}
    got = inbox(node)
    assert with_marker(got, b"too-big-1") == [] and len(with_marker(got, b"small-1")) == 1


def test_malformed_input_gets_clear_5xx_and_nothing_stored(make_mail_node):
    """Bad MAIL syntax 501, a bare LF in the data 554 5.6.0, an over-long line 500 and close."""
    node = make_mail_node(max_line=1024)
    with dialog(node.smtp) as d:
        assert d.command(b"EHLO client.example")[0] == 250
        assert d.command(b"MAIL FROM:<<bad>")[0] == 501
        assert d.command(b"RCPT TO:<alice@example.org>")[0] == 503
        assert d.command(b"MAIL FROM:<s@example.org>")[0] == 250
        assert d.command(b"RCPT TO:<alice@example.org>")[0] == 250
        assert d.command(b"DATA")[0] == 354
        d.send(b"Subject: bare-lf-1\r\n\r\nline one\nline two\r\n.\r\n")
        code, text = d.reply()
        assert (code, text[:6]) == (554, b"5.6.0 ")
        assert d.command(b"MAIL FROM:<s@example.org>")[0] == 250
        assert d.command(b"RCPT TO:<alice@example.org>")[0] == 250
        assert d.command(b"DATA")[0] == 354
        d.send(b"Subject: long-line-1\r\n\r\n" + b"y" * 2000 + b"\r\n.\r\n")
        code, text = d.reply()
        assert (code, text[:6]) == (500, b"5.5.6 ")
        assert d.reply() == (0, b"")  # closed: the framing is lost
    got = inbox(node)
    assert with_marker(got, b"bare-lf-1") == [] and with_marker(got, b"long-line-1") == []


def test_smtp_auth_required_before_mail(make_mail_node):
    """With smtp_auth: MAIL before AUTH is 530 5.7.0, a wrong password 535, then it works."""
    node = make_mail_node(smtp_auth=True)
    with smtplib.SMTP(HOST, node.smtp, timeout=15) as client:
        client.ehlo()
        assert "PLAIN" in client.esmtp_features["auth"].split()
        assert "LOGIN" in client.esmtp_features["auth"].split()
        code, text = client.mail("s@example.org")
        assert (code, text[:6]) == (530, b"5.7.0 ")
        with pytest.raises(smtplib.SMTPAuthenticationError) as err:
            client.login("alice", "wrong")
        assert err.value.smtp_code == 535
        client.login("alice", "secret")
        assert client.sendmail("alice@example.org", ["bob"], message("auth-1")) == {}
    assert len(with_marker(inbox(node, "bob"), b"auth-1")) == 1


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_mechanisms_after_starttls(make_mail_node, mechanism):
    """STARTTLS with the node's certificate, then AUTH PLAIN / LOGIN and delivery."""
    node = make_mail_node(smtp_auth=True)
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with smtplib.SMTP(HOST, node.smtp, timeout=15) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        assert client.starttls(context=context)[0] == 220
        client.ehlo()
        assert not client.has_extn("starttls")
        client.user, client.password = "bob", "secret"
        auth = client.auth_plain if mechanism == "PLAIN" else client.auth_login
        assert client.auth(mechanism, auth)[0] == 235
        marker = f"tls-{mechanism}"
        assert client.sendmail("bob@example.org", ["alice"], message(marker)) == {}
    assert len(with_marker(inbox(node), marker.encode())) == 1


def test_malformed_sasl_response_is_501(make_mail_node):
    """An AUTH PLAIN response that is not authzid NUL user NUL pass gets 501, no traceback."""
    node = make_mail_node()
    with dialog(node.smtp) as d:
        assert d.command(b"EHLO c")[0] == 250
        assert d.command(b"AUTH PLAIN bm9udWxscw==")[0] == 501  # "nonulls"
        assert d.command(b"AUTH PLAIN !!!notbase64")[0] == 501
        assert d.command(b"NOOP")[0] == 250


def test_one_failed_copy_takes_back_the_others(make_mail_node):
    """SMTP has one DATA reply: bob over quota gives 452 4.2.2 and alice's copy is undone."""
    node = make_mail_node(quota_messages=1)
    with smtplib.SMTP(HOST, node.smtp, timeout=15) as client:
        assert client.sendmail("s@example.org", ["bob"], message("fill-1")) == {}
        with pytest.raises(smtplib.SMTPDataError) as err:
            client.sendmail("s@example.org", ["alice", "bob"], message("undo-1"))
    assert (err.value.smtp_code, err.value.smtp_error[:6]) == (452, b"4.2.2 ")
    assert with_marker(inbox(node), b"undo-1") == []
    assert with_marker(inbox(node, "bob"), b"undo-1") == []
