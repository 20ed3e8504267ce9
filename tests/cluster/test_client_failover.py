"""twistedmail.client on a real 3-node cluster (issue 5 items 4 and 6): the client sits on
the first node of its list, moves to the next when that node is killed -9, reports the new
UIDVALIDITY, does not fail back when the node returns, and fails back only after it
reconnects.  A UID command lost with n1 is not rerun under n2's UIDVALIDITY."""

from __future__ import annotations

from collections import Counter

import pytest

from twistedmail.client import Client, OutcomeUnknown, UidValidityChanged

from .failover import FAST, message, message_id, mid

pytestmark = [pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::DeprecationWarning:imaplib2")]
USER = "alice"
ITEMS = "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"


def _ids(data: list) -> set[str]:
    return {message_id(item[1]) for item in data if isinstance(item, tuple)}


def _counts(data: list) -> Counter[str]:
    return Counter(message_id(item[1]) for item in data if isinstance(item, tuple))


def _client(c, order=None) -> Client:
    return Client([c.imap(n) for n in (order or c.names)], USER, c.users[USER], timeout=10)


def test_kill_moves_on_no_failback_until_reconnect(make_cluster):
    """kill -9 n1 under the client: it moves to n2 with n2's UIDVALIDITY (reported as a
    change) and every acknowledged message; n1 restarted is not used until close()."""
    c = make_cluster(cluster_options=FAST)
    n1, n2 = c.imap("n1"), c.imap("n2")
    client = _client(c)
    try:
        for i in range(3):
            client.append("INBOX", message("cl", i))
        uv1 = client.select("INBOX").uidvalidity
        assert client.server == n1 and uv1 is not None and uv1 >> 24 == 1
        assert not client.uidvalidity_changed("INBOX")
        c.kill("n1")
        selected = client.select("INBOX")
        assert client.server == n2 and selected.uidvalidity is not None
        assert selected.uidvalidity >> 24 == 2 and client.uidvalidity_changed("INBOX")
        assert _ids(client.uid("FETCH", "1:*", ITEMS)) == {mid("cl", i) for i in range(3)}
        c.restart("n1")  # back and caught up: greets OK again
        for _ in range(3):
            client.noop()
            client.select("INBOX")
        assert client.server == n2, client.events
        assert [(e.server, e.what) for e in client.events] == [
            (n1, "connected"), (n1, "lost"), (n2, "connected")]
        client.close()  # the user reconnects: the list starts at n1 again
        uv3 = client.select("INBOX").uidvalidity
        assert client.server == n1 and uv3 is not None and uv3 >> 24 == 1 and uv3 > uv1
        assert client.uidvalidity_changed("INBOX")
        assert _ids(client.uid("FETCH", "1:*", ITEMS)) == {mid("cl", i) for i in range(3)}
    finally:
        client.close()
    c.invariants.check()


def test_dead_first_node_then_lost_uid_fetch(make_cluster):
    """n1 dead before connecting: the client logs in on n2; n2 killed under a UID FETCH:
    UidValidityChanged (n3's UIDVALIDITY), never a rerun with n2's UIDs; n3 killed: an
    APPEND on the dead connection is OutcomeUnknown and the next one lands on n1 (wrap)."""
    c = make_cluster(cluster_options=FAST)
    n1, n2, n3 = (c.imap(n) for n in c.names)
    c.kill("n1")
    client = _client(c)
    try:
        client.append("INBOX", message("dead", 0))
        assert client.server == n2
        assert client.select("INBOX").uidvalidity >> 24 == 2
        c.restart("n1")  # two live nodes stay behind each kill
        c.kill("n2")
        with pytest.raises(UidValidityChanged) as caught:
            client.uid("FETCH", "1:*", ITEMS)
        assert caught.value.new is not None and caught.value.new >> 24 == 3
        assert client.server == n3 and client.uidvalidity_changed("INBOX")
        c.restart("n2")
        c.kill("n3")
        with pytest.raises(OutcomeUnknown):
            client.append("INBOX", message("dead", 1))
        client.append("INBOX", message("dead", 2))
        assert client.server == n1
        client.select("INBOX")
        seen = _counts(client.uid("FETCH", "1:*", ITEMS))
        assert seen[mid("dead", 0)] == seen[mid("dead", 2)] == 1 and seen[mid("dead", 1)] <= 1
    finally:
        client.close()
    assert [(e.server, e.what) for e in client.events] == [
        (n1, "connect failed"), (n2, "connected"), (n2, "lost"), (n3, "connected"),
        (n3, "lost"), (n1, "connected")]
    c.invariants.check()
