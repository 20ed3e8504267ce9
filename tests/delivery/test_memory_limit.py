"""The node memory ceiling (twistedmail/limits.py) on LMTP and SMTP: 452 4.3.1, nothing
stored, accepted again once there is room (issue 7 item 2)."""

from __future__ import annotations

from tests.delivery.helpers import dialog, fetch_all, message, with_marker


def _ceiling(node, value):
    node.server.call(setattr, node.server.node.settings, "memory_limit", value)


def _inbox(node, user="alice"):
    return fetch_all(*node.imap, user)


def test_lmtp_past_the_ceiling_is_452_4_3_1_per_recipient(mail_node):
    """Past memory_limit each LMTP recipient gets 452 4.3.1 (retry later); nothing is
    stored; with room again the same message is delivered."""
    _ceiling(mail_node, 1)
    with dialog(mail_node.lmtp) as d:
        assert d.command(b"LHLO c")[0] == 250
        assert d.command(b"MAIL FROM:<s@example.org>")[0] == 250
        assert d.command(b"RCPT TO:<alice>")[0] == 250
        assert d.command(b"RCPT TO:<bob>")[0] == 250
        assert d.command(b"DATA")[0] == 354
        d.send(message("mem-lmtp") + b".\r\n")
        assert [(c, t[:6]) for c, t in (d.reply(), d.reply())] == [(452, b"4.3.1 ")] * 2
        assert d.command(b"NOOP")[0] == 250
    assert with_marker(_inbox(mail_node), b"mem-lmtp") == []
    _ceiling(mail_node, 0)
    with dialog(mail_node.lmtp) as d:
        assert d.command(b"LHLO c")[0] == 250
        assert d.command(b"MAIL FROM:<s@example.org>")[0] == 250
        assert d.command(b"RCPT TO:<alice>")[0] == 250
        assert d.command(b"DATA")[0] == 354
        d.send(message("mem-lmtp") + b".\r\n")
        assert d.reply()[0] == 250
    assert len(with_marker(_inbox(mail_node), b"mem-lmtp")) == 1


def test_smtp_past_the_ceiling_is_452_4_3_1(mail_node):
    """Past memory_limit SMTP DATA gets 452 4.3.1 and nothing is stored."""
    _ceiling(mail_node, 1)
    with dialog(mail_node.smtp) as d:
        assert d.command(b"EHLO c")[0] == 250
        assert d.command(b"MAIL FROM:<s@example.org>")[0] == 250
        assert d.command(b"RCPT TO:<alice>")[0] == 250
        assert d.command(b"DATA")[0] == 354
        d.send(message("mem-smtp") + b".\r\n")
        code, text = d.reply()
        assert (code, text[:6]) == (452, b"4.3.1 ")
    assert with_marker(_inbox(mail_node), b"mem-smtp") == []
