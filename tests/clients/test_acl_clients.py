"""imapclient against NAMESPACE, ACL and QUOTA (RFC 2342, 4314, 9208)."""

from __future__ import annotations

from imapclient import IMAPClient

MSG = b"From: a@example.org\r\nSubject: shared\r\n\r\nbody\r\n"


def _client(server, user):
    c = IMAPClient(server.host, port=server.port, ssl=False)
    c.login(user, "secret")
    return c


def test_imapclient_namespace(imap_server):
    """imapclient parses our NAMESPACE response into its three groups."""
    with _client(imap_server, "alice") as c:
        ns = c.namespace()
        assert ns.personal == (("", "/"),)
        assert ns.other == (("Other Users/", "/"),)
        assert ns.shared == (("Public/", "/"),)


def test_imapclient_acl_sharing(imap_server):
    """bob shares a folder with setacl; getacl parses; alice lists and reads it."""
    with _client(imap_server, "bob") as bob, _client(imap_server, "alice") as alice:
        bob.create_folder("Shared")
        bob.append("Shared", MSG)
        bob.setacl("Shared", "alice", "lr")
        assert bob.getacl("Shared") == [(b"bob", b"lrswipkxteacd"), (b"alice", b"lr")]
        folders = [name for _, _, name in alice.list_folders()]
        assert "Other Users/bob/Shared" in folders
        info = alice.select_folder("Other Users/bob/Shared", readonly=True)
        assert info[b"EXISTS"] == 1
        assert alice.fetch([1], ["BODY.PEEK[]"])[1][b"BODY[]"] == MSG
        bob.setacl("Shared", "alice", "-r")
        assert bob.getacl("Shared") == [(b"bob", b"lrswipkxteacd"), (b"alice", b"l")]


def test_imapclient_quota(make_imap_server):
    """get_quota_root and get_quota parse our QUOTAROOT / QUOTA responses."""
    server = make_imap_server(quota_storage=1024, quota_messages=100)
    with _client(server, "alice") as c:
        c.append("INBOX", MSG)
        roots, quotas = c.get_quota_root("INBOX")
        assert roots.quota_roots == ["alice"]
        got = {(q.resource, q.usage, q.limit) for q in quotas}
        assert got == {("STORAGE", 1, 1024), ("MESSAGE", 1, 100)}
        assert {q.resource for q in c.get_quota("INBOX")} == {"STORAGE", "MESSAGE"}
