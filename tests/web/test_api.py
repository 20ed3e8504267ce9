"""The HTTP API of one in-process node over real sockets (issue 6 item 3): token,
accounts, mailboxes, messages, send, errors.  Every API answer is also checked against
the OpenAPI document (tests/web/webnode.py ``check_documented``)."""

from __future__ import annotations

import imaplib
import json
from collections.abc import Iterator
from email import message_from_bytes, policy

import pytest

from tests.web import webnode
from tests.web.webnode import WebNode

V1 = "/api/v1"


@pytest.fixture
def web() -> Iterator[WebNode]:
    node = webnode.start(max_literal=4096)
    yield node
    node.stop()


def imap_login(web: WebNode, user: str, password: str) -> imaplib.IMAP4:
    conn = imaplib.IMAP4(*web.host_port, timeout=10)
    conn.login(user, password)
    return conn


def send(web: WebNode, **fields: object) -> webnode.Answer:
    return web.request("POST", f"{V1}/messages", json_body=fields)


# --- the token --------------------------------------------------------------------------


def test_without_a_configured_token_the_api_is_off_with_a_hint() -> None:
    """No http_token: 403 JSON saying how to set one, even with some bearer token."""
    node = webnode.start(token=None)
    try:
        answer = node.request("GET", f"{V1}/accounts", token="anything")
        assert answer.status == 403
        assert "--http-token" in answer.json()["error"]
    finally:
        node.stop()


def test_missing_or_wrong_token_is_401_with_a_bearer_challenge(web: WebNode) -> None:
    """No Authorization / another token: 401 + WWW-Authenticate (RFC 6750 §3)."""
    missing = web.request("GET", f"{V1}/accounts", token=False)
    assert missing.status == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = web.request("GET", f"{V1}/accounts", token="nope")
    assert wrong.status == 401
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    basic = web.request("GET", f"{V1}/accounts", token=False,
                        headers={"Authorization": "Basic YWxpY2U6c2VjcmV0"})
    assert basic.status == 401
    assert web.get(f"{V1}/accounts").status == 200


# --- accounts ---------------------------------------------------------------------------


def test_account_create_login_and_delete(web: WebNode) -> None:
    """POST creates a login that works over IMAP; again resets the password; DELETE
    removes the login (the admin channel's users add / del)."""
    created = web.request("POST", f"{V1}/accounts",
                          json_body={"name": "carol", "password": "pw1"})
    assert created.status == 201 and created.json()["created"] is True
    imap_login(web, "carol", "pw1").logout()
    again = web.request("POST", f"{V1}/accounts", json_body={"name": "carol", "password": "pw2"})
    assert again.status == 200 and again.json()["created"] is False
    imap_login(web, "carol", "pw2").logout()
    names = {a["name"] for a in web.get(f"{V1}/accounts").json()["accounts"]}
    assert {"alice", "bob", "carol"} <= names
    assert web.request("DELETE", f"{V1}/accounts/carol").status == 200
    with pytest.raises(imaplib.IMAP4.error):
        imap_login(web, "carol", "pw2")
    gone = web.request("DELETE", f"{V1}/accounts/carol")
    assert gone.status == 404 and "carol" in gone.json()["error"]


def test_bad_account_requests_are_clear_400s(web: WebNode) -> None:
    """Bad JSON, a missing password, a bad name, a wrong content type: 400 / 415."""
    bad_json = web.request("POST", f"{V1}/accounts", body=b"{nope",
                           headers={"Content-Type": "application/json"})
    assert bad_json.status == 400 and "JSON" in bad_json.json()["error"]
    assert web.request("POST", f"{V1}/accounts", json_body={"name": "x"}).status == 400
    assert web.request("POST", f"{V1}/accounts", json_body=["x"]).status == 400
    spaced = web.request("POST", f"{V1}/accounts", json_body={"name": "a b", "password": "p"})
    assert spaced.status == 400 and "bad user name" in spaced.json()["error"]
    form = web.request("POST", f"{V1}/accounts", body=b"name=x&password=y",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status == 415


def test_reset_empties_the_account_and_keeps_the_standard_folders(web: WebNode) -> None:
    """reset: every message gone, a user folder deleted, INBOX and Sent kept (empty)."""
    conn = imap_login(web, "alice", "secret")
    conn.create("Projects")
    conn.append("Projects", "", None, b"Subject: p\r\n\r\nbody\r\n")
    conn.append("Sent", "", None, b"Subject: s\r\n\r\nbody\r\n")
    conn.logout()
    assert send(web, to="alice", subject="hello").status == 201
    answer = web.request("POST", f"{V1}/accounts/alice/reset")
    assert answer.status == 200
    assert answer.json()["messages_removed"] == 3
    assert answer.json()["mailboxes_deleted"] == ["Projects"]
    boxes = {b["name"]: b["messages"] for b in
             web.get(f"{V1}/accounts/alice/mailboxes").json()["mailboxes"]}
    assert boxes == dict.fromkeys(["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"], 0)
    assert web.request("POST", f"{V1}/accounts/nobody/reset").status == 404


# --- mailboxes and messages -------------------------------------------------------------


def test_send_json_then_list_fetch_and_read_over_imap(web: WebNode) -> None:
    """A JSON-built message lands in INBOX (seen by IMAP), with counts and a summary."""
    sent = send(web, to=["alice", "bob@example.org"], subject="Grüße",
                text="hello\n", html="<p>hello</p>", headers={"X-Test": "1"})
    assert sent.status == 201
    delivered = sent.json()["delivered"]
    assert [(d["user"], d["mailbox"], d["uid"]) for d in delivered] == [
        ("alice", "INBOX", 1), ("bob", "INBOX", 1)]
    boxes = web.get(f"{V1}/accounts/alice/mailboxes").json()["mailboxes"]
    inbox = next(b for b in boxes if b["name"] == "INBOX")
    assert (inbox["messages"], inbox["unseen"]) == (1, 1)
    listing = web.get(f"{V1}/accounts/alice/mailboxes/INBOX/messages").json()
    assert listing["total"] == 1
    summary = listing["messages"][0]
    assert summary["subject"] == "Grüße" and summary["to"] == "alice, bob@example.org"
    raw = web.get(f"{V1}/accounts/alice/mailboxes/INBOX/messages/1")
    assert raw.status == 200 and raw.headers["content-type"] == "message/rfc822"
    conn = imap_login(web, "alice", "secret")
    conn.select("INBOX")
    _typ, data = conn.uid("FETCH", "1", "(BODY.PEEK[])")
    conn.logout()
    assert data[0][1] == raw.body
    parsed = message_from_bytes(raw.body, policy=policy.default)
    assert parsed["X-Test"] == "1" and parsed.get_content_type() == "multipart/alternative"
    assert b"\r\n" in raw.body and b"\n" not in raw.body.replace(b"\r\n", b"")


def test_send_raw_rfc822_to_a_folder_with_flags(web: WebNode) -> None:
    """message/rfc822 body, ?to=alice+Drafts&flag=\\Seen: stored as sent (LF -> CRLF)."""
    raw = b"From: a@b\nSubject: raw one\n\nline\n"
    answer = web.request("POST", f"{V1}/messages?to=alice%2BDrafts&flag=%5CSeen", body=raw,
                         headers={"Content-Type": "message/rfc822"})
    assert answer.status == 201
    assert answer.json()["delivered"][0]["mailbox"] == "Drafts"
    got = web.get(f"{V1}/accounts/alice/mailboxes/Drafts/messages").json()["messages"]
    assert got[0]["flags"] == ["\\Seen"] and got[0]["subject"] == "raw one"
    body = web.get(f"{V1}/accounts/alice/mailboxes/Drafts/messages/{got[0]['uid']}").body
    assert body == raw.replace(b"\n", b"\r\n")


def test_send_refusals_are_4xx_and_deliver_nothing(web: WebNode) -> None:
    """Unknown recipient 404 (nothing delivered to the others), no folder 404, over
    max_literal 413, no recipient 400, raw plus fields 400, header injection 400."""
    unknown = send(web, to=["alice", "nobody"], subject="x")
    assert unknown.status == 404 and unknown.json()["delivered"] == []
    assert web.get(f"{V1}/accounts/alice/mailboxes/INBOX/messages").json()["total"] == 0
    assert send(web, to="alice+NoSuchFolder").status == 404
    big = send(web, to="alice", text="x" * 5000)
    assert big.status == 413 and big.json()["code"] == "TOOBIG"
    assert send(web, subject="to nobody").status == 400
    assert send(web, to="alice", raw="Subject: r\r\n\r\n", subject="also").status == 400
    assert send(web, to="alice", subject="a\r\nBcc: evil@x").status == 400


def test_temporary_delivery_failure_is_503_with_retry_after(web: WebNode) -> None:
    """Over quota (a temporary refusal of deliver): 503 + Retry-After, nothing stored."""
    from twistedmail.store import SetQuota

    web.call(web.node.store.apply, SetQuota("alice", (("MESSAGE", 0),)))
    answer = send(web, to="alice", subject="q")
    assert answer.status == 503
    assert int(answer.headers["retry-after"]) > 0
    assert answer.json()["code"] == "OVERQUOTA"
    assert web.get(f"{V1}/accounts/alice/mailboxes/INBOX/messages").json()["total"] == 0


def test_purge_and_paging(web: WebNode) -> None:
    """limit/offset page the summaries in UID order; DELETE purges the folder."""
    for i in range(5):
        assert send(web, to="alice", subject=f"m{i}").status == 201
    page = web.get(f"{V1}/accounts/alice/mailboxes/INBOX/messages?limit=2&offset=3").json()
    assert [m["subject"] for m in page["messages"]] == ["m3", "m4"]
    assert web.get(f"{V1}/accounts/alice/mailboxes/INBOX/messages?limit=0").status == 400
    purged = web.request("DELETE", f"{V1}/accounts/alice/mailboxes/INBOX/messages")
    assert purged.status == 200 and purged.json()["messages_removed"] == 5
    assert web.get(f"{V1}/accounts/alice/mailboxes/INBOX/messages").json()["total"] == 0


def test_nested_mailbox_names_are_one_encoded_segment(web: WebNode) -> None:
    """Lists/Work is addressed as Lists%2FWork; unknown mailbox / UID are 404s."""
    conn = imap_login(web, "alice", "secret")
    conn.create("Lists/Work")
    conn.logout()
    assert send(web, to="alice+Lists/Work", subject="w").status == 201
    listing = web.get(f"{V1}/accounts/alice/mailboxes/Lists%2FWork/messages")
    assert listing.status == 200 and listing.json()["mailbox"] == "Lists/Work"
    assert web.get(f"{V1}/accounts/alice/mailboxes/Nope/messages").status == 404
    assert web.get(f"{V1}/accounts/alice/mailboxes/INBOX/messages/99").status == 404
    assert web.get(f"{V1}/accounts/nobody/mailboxes").status == 404


# --- plumbing -------------------------------------------------------------------------------


def test_unknown_routes_and_methods_are_json_404_and_405(web: WebNode) -> None:
    """No such route: 404 JSON; a known path with another method: 405 + Allow."""
    missing = web.get(f"{V1}/nothing/here")
    assert missing.status == 404 and "error" in missing.json()
    wrong = web.request("PUT", f"{V1}/accounts", json_body={})
    assert wrong.status == 405 and wrong.headers["allow"] == "GET, POST"


def test_a_body_over_the_limit_is_413_and_not_kept(web: WebNode) -> None:
    """A body over max_literal + 1 MiB is dropped while it arrives: 413 JSON."""
    huge = b"x" * (4096 + (1 << 20) + 1)
    answer = web.request("POST", f"{V1}/messages?to=alice", body=huge,
                         headers={"Content-Type": "message/rfc822"})
    assert answer.status == 413 and "limit" in answer.json()["error"]
    assert web.get(f"{V1}/accounts/alice/mailboxes/INBOX/messages").json()["total"] == 0


def test_root_status_metrics_and_cluster_status(web: WebNode) -> None:
    """/ redirects to /status (HTML); /metrics is Prometheus text without a token;
    /api/v1/cluster/status is /status.json's data."""
    page = web.get("/", token=False)  # urllib follows the redirect
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    metrics = web.get("/metrics", token=False)
    assert metrics.status == 200 and metrics.headers["content-type"].startswith("text/plain")
    public = web.get("/status.json", token=False).json()
    api = web.get(f"{V1}/cluster/status").json()
    assert api["node"] == public["node"] == web.node.settings.node_name
    assert json.dumps(sorted(api)) == json.dumps(sorted(public))


def test_api_writes_are_admin_events_without_secrets(web: WebNode) -> None:
    """POST /accounts logs one admin.command event (ok); a wrong token is 'denied';
    neither the password nor the token appears in the log."""
    from tests.cluster.inproc import LogCapture

    with LogCapture() as logs:
        web.request("POST", f"{V1}/accounts", json_body={"name": "erin", "password": "pw-x1"})
        web.request("DELETE", f"{V1}/accounts/erin", token="wrong-t0k")
    assert logs.has("admin: http POST /api/v1/accounts by http api from 127.0.0.1:")
    assert logs.has("http DELETE /api/v1/accounts/erin by http api from 127.0.0.1")
    assert any("denied" in line for line in logs.lines if "DELETE" in line)
    assert not logs.has("pw-x1") and not logs.has("wrong-t0k") and not logs.has(webnode.TOKEN)
