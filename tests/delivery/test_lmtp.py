"""LMTP (RFC 2033) into an in-process node: smtplib.LMTP and a raw dialog (issue 6 part 1)."""

from __future__ import annotations

import smtplib

from tests.delivery.helpers import HOST, dialog, fetch_all, message, with_marker


def inbox(node, user="alice", folder="INBOX"):
    host, port = node.imap
    return fetch_all(host, port, user, folder=folder)


def test_smtplib_lmtp_delivers(mail_node):
    """smtplib.LMTP (LHLO, MAIL, RCPT, DATA) gets 250 and the message is in the INBOX."""
    client = smtplib.LMTP(HOST, mail_node.lmtp, timeout=15)
    try:
        assert client.sendmail("s@example.org", ["alice@example.org"], message("lmtp-1")) == {}
    finally:
        client.quit()
    assert len(with_marker(inbox(mail_node), b"lmtp-1")) == 1


def test_one_reply_per_recipient_after_data(mail_node):
    """Two accepted recipients get two 250 replies after the final dot, in RCPT order."""
    with dialog(mail_node.lmtp) as d:
        code, text = d.command(b"LHLO client.example")
        assert code == 250 and b"SIZE" in text
        assert d.command(b"MAIL FROM:<s@example.org>")[0] == 250
        assert d.command(b"RCPT TO:<alice@example.org>")[0] == 250
        assert d.command(b"RCPT TO:<nobody@example.org>")[0] == 550
        assert d.command(b"RCPT TO:<bob+Archive@example.org>")[0] == 250
        assert d.command(b"DATA")[0] == 354
        d.send(message("lmtp-two") + b".\r\n")
        first, second = d.reply(), d.reply()
        assert first[0] == 250 and b"alice INBOX" in first[1]
        assert second[0] == 250 and b"bob Archive" in second[1]
        assert d.command(b"QUIT")[0] == 221
    assert len(with_marker(inbox(mail_node), b"lmtp-two")) == 1
    assert len(with_marker(inbox(mail_node, "bob", "Archive"), b"lmtp-two")) == 1


def test_too_big_is_one_552_per_recipient(make_mail_node):
    """Data over max_literal gets 552 5.3.4 once per accepted recipient; nothing stored."""
    node = make_mail_node(max_literal=2048)
    with dialog(node.lmtp) as d:
        assert d.command(b"LHLO c")[0] == 250
        assert d.command(b"MAIL FROM:<s@example.org>")[0] == 250
        assert d.command(b"RCPT TO:<alice>")[0] == 250
        assert d.command(b"RCPT TO:<bob>")[0] == 250
        assert d.command(b"DATA")[0] == 354
        d.send(message("lmtp-big", size=4000) + b".\r\n")
        replies = [d.reply(), d.reply()]
        assert [(c, t[:6]) for c, t in replies] == [(552, b"5.3.4 ")] * 2
        assert d.command(b"NOOP")[0] == 250  # exactly two replies: the next is NOOP's
    assert with_marker(inbox(node), b"lmtp-big") == []
    assert with_marker(inbox(node, "bob"), b"lmtp-big") == []


def test_helo_and_ehlo_are_refused(mail_node):
    """LMTP answers HELO and EHLO with 500 5.5.1 (RFC 2033 §4.1) and offers no AUTH."""
    with dialog(mail_node.lmtp) as d:
        for verb in (b"HELO c", b"EHLO c"):
            code, text = d.command(verb)
            assert (code, text[:6]) == (500, b"5.5.1 ")
        code, text = d.command(b"LHLO c")
        assert code == 250 and b"AUTH" not in text and b"STARTTLS" not in text


def test_lmtp_copies_stand_alone(make_mail_node):
    """LMTP: alice 250, bob (over quota) 452 4.2.2; alice keeps her copy, bob has none."""
    node = make_mail_node(quota_messages=1)
    client = smtplib.LMTP(HOST, node.lmtp, timeout=15)
    try:
        assert client.sendmail("s@example.org", ["bob"], message("lfill-1")) == {}
    finally:
        client.quit()
    with dialog(node.lmtp) as d:
        assert d.command(b"LHLO c")[0] == 250
        assert d.command(b"MAIL FROM:<s@example.org>")[0] == 250
        assert d.command(b"RCPT TO:<alice>")[0] == 250
        assert d.command(b"RCPT TO:<bob>")[0] == 250
        assert d.command(b"DATA")[0] == 354
        d.send(message("lone-1") + b".\r\n")
        assert d.reply()[0] == 250
        code, text = d.reply()
        assert (code, text[:6]) == (452, b"4.2.2 ")
    assert len(with_marker(inbox(node), b"lone-1")) == 1
    assert with_marker(inbox(node, "bob"), b"lone-1") == []
