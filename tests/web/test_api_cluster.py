"""The HTTP API on a node of an in-process 3-node cluster (real TCP links, 127.0.0.1):
accounts and sent mail replicate like the admin channel's and APPEND's, writes wait for
ack_replicas (503 + Retry-After without them), mail files held elsewhere are 409."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster.inproc import InProcessCluster, call, wait_for
from tests.web import webnode
from tests.web.webnode import TOKEN, WebNode

V1 = "/api/v1"


def web_on(cluster: InProcessCluster, name: str) -> WebNode:
    """The web service of member ``name`` (token TOKEN)."""
    node = cluster[name].node
    node.settings.http_token = TOKEN
    return webnode.start_web(node)


@pytest.fixture
def three() -> Iterator[tuple[InProcessCluster, WebNode]]:
    cluster = InProcessCluster(3).start_all()
    web = web_on(cluster, "n1")
    try:
        yield cluster, web
    finally:
        web.stop()
        cluster.stop_all()


def test_account_and_mail_replicate_from_the_api(three: tuple[InProcessCluster, WebNode]
                                                 ) -> None:
    """POST /accounts on n1 makes the mail file on n2 and n3 (as clustermail users add);
    a sent message reaches every replica; DELETE drops n1's login, the mail stays."""
    cluster, web = three
    created = web.request("POST", f"{V1}/accounts", json_body={"name": "carol", "password": "p"})
    assert created.status == 201
    for name in ("n2", "n3"):
        store = cluster[name].node.store
        wait_for(lambda s=store: s.has_account("carol"), f"carol's mail file on {name}")
    sent = web.request("POST", f"{V1}/messages", json_body={"to": "carol", "subject": "r"})
    assert sent.status == 201 and sent.json()["delivered"][0]["node"] == "n1"
    for name in ("n2", "n3"):
        store = cluster[name].node.store
        wait_for(lambda s=store: len(s.mailbox("carol", "INBOX")) == 1, f"the mail on {name}")
    assert web.request("DELETE", f"{V1}/accounts/carol").status == 200
    assert "carol" not in call(cluster["n1"].node.usernames)
    assert call(lambda: len(cluster["n2"].node.store.mailbox("carol", "INBOX"))) == 1
    status = web.get(f"{V1}/cluster/status").json()
    assert status["node"] == "n1"


def test_without_enough_replicas_writes_are_503_with_retry_after(
        three: tuple[InProcessCluster, WebNode]) -> None:
    """n2 and n3 stopped: send and purge answer 503 + Retry-After; nothing is stored."""
    cluster, web = three
    cluster.stop("n2")
    cluster.stop("n3")
    n1 = cluster["n1"].cluster

    def refused() -> bool:
        try:
            n1.check_writable("alice")
        except Exception:  # noqa: BLE001 - ClusterUnavailable is what we wait for
            return True
        return False

    wait_for(refused, "n1 to see n2 and n3 gone")
    sent = web.request("POST", f"{V1}/messages", json_body={"to": "alice", "subject": "x"})
    assert sent.status == 503 and int(sent.headers["retry-after"]) > 0
    assert call(lambda: len(cluster["n1"].node.store.mailbox("alice", "INBOX"))) == 0
    purge = web.request("DELETE", f"{V1}/accounts/alice/mailboxes/INBOX/messages")
    assert purge.status == 503 and "retry-after" in purge.headers


def test_a_mail_file_held_elsewhere_is_409_naming_its_holders() -> None:
    """[accounts] alice on n2, n3 only: n1's API refuses her folders and a create with
    409 and the holders' names (the admin channel refuses users add the same way)."""
    cluster = InProcessCluster(3, placement={"alice": ("n2", "n3")}).start_all()
    web = web_on(cluster, "n1")
    try:
        boxes = web.get(f"{V1}/accounts/alice/mailboxes")
        assert boxes.status == 409 and "n2, n3" in boxes.json()["error"]
        create = web.request("POST", f"{V1}/accounts",
                             json_body={"name": "alice", "password": "p"})
        assert create.status == 409
        assert web.get(f"{V1}/accounts/bob/mailboxes").status == 200
    finally:
        web.stop()
        cluster.stop_all()
