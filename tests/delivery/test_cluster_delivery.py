"""Delivery in a real 2-node cluster: 250 only once the replica holds the message, a 4xx and
nothing left behind when it cannot, 421 from a node that is not ready (issue 6 part 1)."""

from __future__ import annotations

import smtplib

import pytest

from tests.delivery.helpers import (
    HOST,
    dialog,
    fetch_all,
    logged_ports,
    message,
    wait_logged_port,
    with_marker,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
FAST = {"heartbeat": 0.1, "suspect_after": 0.3, "down_after": 0.6, "ack_timeout": 2.0}
DELIVERY = (f'[delivery]\nlmtp = ["tcp:0:interface={HOST}"]\n'
            f'smtp = ["tcp:0:interface={HOST}"]\n')


@pytest.fixture
def pair(make_cluster):
    """n1 and n2 (both hold alice; ack_replicas defaults to 2), LMTP and SMTP on each."""
    return make_cluster(n=2, users={"alice": "secret"}, cluster_options=FAST,
                        extra_config=DELIVERY)


def on(cluster, name, folder="INBOX"):
    """alice's messages in ``folder`` on node ``name``, over IMAP."""
    host, port = cluster.imap(name)
    return fetch_all(host, port, "alice", folder=folder)


def lmtp_send(port, marker):
    """One LMTP transaction for alice: the (code, text) reply after DATA."""
    with dialog(port) as d:
        assert d.command(b"LHLO c")[0] == 250
        assert d.command(b"MAIL FROM:<s@example.org>")[0] == 250
        assert d.command(b"RCPT TO:<alice@example.org>")[0] == 250
        assert d.command(b"DATA")[0] == 354
        d.send(message(marker) + b".\r\n")
        return d.reply()


def test_250_means_the_replica_holds_it(pair):
    """Right after 250 (LMTP and SMTP to n1) the message is readable on n2, no waiting."""
    n1 = pair.node("n1")
    assert lmtp_send(wait_logged_port(n1, "LMTP"), "c-lmtp-1")[0] == 250
    assert len(with_marker(on(pair, "n2"), b"c-lmtp-1")) == 1
    with smtplib.SMTP(HOST, wait_logged_port(n1, "SMTP"), timeout=15) as client:
        assert client.sendmail("s@example.org", ["alice+Archive"], message("c-smtp-1")) == {}
    assert len(with_marker(on(pair, "n2", "Archive"), b"c-smtp-1")) == 1


def test_cut_replica_gives_4xx_and_leaves_nothing(pair):
    """With n1-n2 cut, LMTP and SMTP on n1 answer 451 4.3.0; after healing neither node
    holds either message."""
    n1 = pair.node("n1")
    lmtp, smtp_port = wait_logged_port(n1, "LMTP"), wait_logged_port(n1, "SMTP")
    pair.partition("n1", "n2")
    code, text = lmtp_send(lmtp, "cut-lmtp-1")
    assert (code, text[:6]) == (451, b"4.3.0 "), text
    with (smtplib.SMTP(HOST, smtp_port, timeout=15) as client,
          pytest.raises(smtplib.SMTPResponseException) as err):
        client.sendmail("s@example.org", ["alice"], message("cut-smtp-1"))
    assert err.value.smtp_code // 100 == 4, err.value.smtp_error
    pair.heal()
    pair.wait_converged(timeout=30)
    for name in ("n1", "n2"):
        got = on(pair, name)
        assert with_marker(got, b"cut-lmtp-1") == [] and with_marker(got, b"cut-smtp-1") == []


def test_killed_replica_gives_4xx_and_leaves_nothing(pair):
    """With n2 killed, LMTP on n1 answers 4xx; after n2 restarts nothing is left anywhere."""
    lmtp = wait_logged_port(pair.node("n1"), "LMTP")
    pair.kill("n2")
    code, text = lmtp_send(lmtp, "kill-lmtp-1")
    assert code // 100 == 4, (code, text)
    pair.restart("n2")
    pair.wait_converged(timeout=30)
    for name in ("n1", "n2"):
        assert with_marker(on(pair, name), b"kill-lmtp-1") == []


def test_node_not_ready_greets_421(pair):
    """n1 restarted while n2 is down is not ready: its LMTP and SMTP greet 421 and close."""
    n1 = pair.node("n1")
    starts = len(logged_ports(n1, "LMTP"))
    pair.kill("n2")
    pair.restart("n1", ready=False)
    for kind in ("LMTP", "SMTP"):
        port = wait_logged_port(n1, kind, starts=starts + 1)
        with smtplib.SMTP(timeout=15) as client:
            code, text = client.connect(HOST, port)
        assert code == 421 and b"4.3.2 node not ready" in text, (code, text)
