"""The management channel: version handshake, authorisation, errors, logging, users."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from twisted.logger import formatEvent, globalLogPublisher

from twistedmail.admin import commands as c
from twistedmail.admin.channel import admin_description, default_admin_endpoint
from twistedmail.config import ConfigError, settings_from
from twistedmail.testing.script import ImapScript

from .conftest import Admin

Make = Callable[..., tuple[Any, Admin]]


@pytest.fixture
def admin_log() -> Iterator[list[str]]:
    """Admin log lines emitted during the test (observed in the reactor thread)."""
    lines: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        text = formatEvent(event)
        if text.startswith("admin: "):
            lines.append(text)

    globalLogPublisher.addObserver(observe)
    yield lines
    globalLogPublisher.removeObserver(observe)


def test_version_handshake(admin_node: Make) -> None:
    """Version answers protocol version 1, the node name and its current root."""
    _, admin = admin_node(uidvalidity_root=5)
    answer = admin.raw(c.Version, version=c.PROTOCOL_VERSION)
    assert answer == {"version": 1, "node": "n1", "root": 5}


def test_other_major_version_refused(admin_node: Make) -> None:
    """A client speaking version 2 gets VersionMismatch with a one-line reason."""
    _, admin = admin_node()
    with pytest.raises(c.VersionMismatch, match="version 2 is not supported.*speaks version 1"):
        admin.raw(c.Version, version=2)


def test_unix_socket_is_private(admin_node: Make) -> None:
    """The UNIX socket is created with mode 0600: only its owner may administer."""
    _, admin = admin_node()
    path = admin.channel.port.getHost().name  # type: ignore[union-attr]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_tcp_needs_admin_credentials(admin_node: Make) -> None:
    """On TCP, missing / wrong credentials or a non-admin user are refused; an admin
    of the config with the right password is served."""
    _, admin = admin_node(tcp=True)
    for creds in ({}, {"admin_user": "root", "admin_password": "wrong"},
                  {"admin_user": "alice", "admin_password": "secret"},
                  {"admin_user": "nobody", "admin_password": "x"}):
        with pytest.raises(c.PermissionDenied, match="permission denied"):
            admin(c.Status, **creds)
    status = admin(c.Status, admin_user="root", admin_password="rootpw")
    assert status["node"] == "n1"


def test_unknown_mail_file(admin_node: Make) -> None:
    """convert of a mail file that does not exist: UnknownMailFile naming it."""
    _, admin = admin_node()
    for enable in (False, True):
        with pytest.raises(c.UnknownMailFile, match=r"unknown mail file 'mail\\\\zed.nsf'"):
            admin(c.Convert, mailfile="mail\\zed.nsf", enable=enable)


def test_already_disabled(admin_node: Make) -> None:
    """A second convert -e- of the same mail file: AlreadyDisabled."""
    _, admin = admin_node()
    admin(c.Convert, mailfile="alice", enable=False)
    with pytest.raises(c.AlreadyDisabled, match="already disabled"):
        admin(c.Convert, mailfile="mail/alice.nsf", enable=False)


def test_bad_root(admin_node: Make) -> None:
    """set-root outside 0..255 is BadArguments; the root is unchanged."""
    server, admin = admin_node()
    with pytest.raises(c.BadArguments, match="root must be an integer 0-255"):
        admin(c.SetRoot, root=300)
    assert server.call(lambda: server.node.store.uidvalidity_root) == 1


def test_every_command_logged(admin_node: Make, admin_log: list[str]) -> None:
    """Each command, served or refused, is logged once with who asked and the outcome."""
    _, admin = admin_node()
    admin(c.Convert, mailfile="mail\\alice.nsf", enable=False)
    with pytest.raises(c.AlreadyDisabled):
        admin(c.Convert, mailfile="alice", enable=False)
    admin(c.Status)
    assert admin_log == [
        "admin: convert -e- mail\\alice.nsf by unix socket: ok",
        "admin: convert -e- alice by unix socket: error: mail file alice is already "
        "disabled on n1",
        "admin: status by unix socket: ok",
    ]


def test_users_add_passwd_del_list(admin_node: Make) -> None:
    """users add makes a login and an account, passwd changes it, del removes the
    login (mail kept), list shows each with its IMAP state."""
    server, admin = admin_node()
    assert admin(c.UsersAdd, name="carol", password="pw1")["created"] is True
    with ImapScript(server.host, server.port) as s:
        s.login("carol", "pw1")
        s.ok("SELECT Sent")
    admin(c.UsersPasswd, name="carol", password="pw2")
    with ImapScript(server.host, server.port) as s:
        s.no('LOGIN "carol" "pw1"')
        s.login("carol", "pw2")
    admin(c.UsersDel, name="carol")
    with ImapScript(server.host, server.port) as s:
        s.no('LOGIN "carol" "pw2"')
    users = {u["name"]: u for u in admin(c.UsersList)["users"]}
    assert users["carol"] == {"name": "carol", "login": False, "account": True,
                              "enabled": True}
    assert users["alice"]["login"] is True
    with pytest.raises(c.UnknownMailFile):
        admin(c.UsersDel, name="carol")
    with pytest.raises(c.BadArguments):
        admin(c.UsersAdd, name="bad name", password="x")


def test_status_decodes_uidvalidity(admin_node: Make) -> None:
    """status lists every folder with UIDVALIDITY split into root and counter."""
    _, admin = admin_node(uidvalidity_root=9)
    status = admin(c.Status)
    assert status["root"] == 9 and status["state"] == "ready" and status["pending"] == []
    inbox = next(f for f in status["accounts"]["alice"]["folders"] if f["name"] == "INBOX")
    assert inbox["root"] == 9
    assert inbox["uidvalidity"] == (9 << 24) | inbox["counter"]
    assert inbox["messages"] == 0 and inbox["uidnext"] == 1
    assert status["accounts"]["alice"]["disabled"] is False


def test_admin_endpoint_option_and_default() -> None:
    """--admin and [node] admin set the endpoint; the default is a private UNIX socket
    named after the node; a bad endpoint is a config error naming the option."""
    settings = settings_from({"node": "n7", "admin": "unix:/tmp/x.admin"})
    assert settings.admin_endpoint == "unix:/tmp/x.admin"
    assert admin_description(settings.admin_endpoint, "n7") == "unix:/tmp/x.admin:mode=600"
    assert admin_description(None, "n7") == default_admin_endpoint("n7")
    assert default_admin_endpoint("n7").startswith("unix:clustermail-n7.admin:mode=600")
    with pytest.raises(ConfigError, match="--admin: bad endpoint"):
        settings_from({"admin": "nonsense:1"})


def test_real_node_default_socket(clustermail_node: Callable[..., Any],
                                  make_imap_server: Callable[..., Any]) -> None:
    """A twistd node listens on unix:clustermail-<node>.admin in its working directory
    (mode 0600) and answers Version and convert over it."""
    from twisted.internet import endpoints
    from twisted.protocols import amp

    node = clustermail_node(users=["alice:secret"], extra_args=["--uidvalidity-root=4"])
    path = node.workdir / "clustermail-node1.admin"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    reactor_side = make_imap_server()  # only for its reactor thread

    def connect() -> Any:
        from twisted.internet import reactor

        ep = endpoints.UNIXClientEndpoint(reactor, str(path))
        return endpoints.connectProtocol(ep, amp.AMP())

    proto = reactor_side.call(connect)
    try:
        assert reactor_side.call(proto.callRemote, c.Version, version=1) == {
            "version": 1, "node": "node1", "root": 4}
        with pytest.raises(c.UnknownMailFile):
            reactor_side.call(proto.callRemote, c.Convert, mailfile="zed", enable=False)
        reactor_side.call(proto.callRemote, c.Convert, mailfile="alice", enable=False)
        with ImapScript(node.host, node.port) as s:
            assert b"[UNAVAILABLE]" in s.no('LOGIN "alice" "secret"').tagged
    finally:
        reactor_side.call(lambda: proto.transport.loseConnection())
    assert "admin: convert -e- alice by unix socket: ok" in node.logfile.read_text()


def test_admin_endpoint_in_toml(tmp_path: Any) -> None:
    """``admin`` in a [[node]] table gives that node's endpoint (other tables accept it)."""
    config = tmp_path / "c.toml"
    config.write_text(
        '[cluster]\nsecret = "s3cret-s3cret-s3cret"\n'
        '[[node]]\nname = "n1"\nuidvalidity_root = 1\ncluster = "tcp:7101:interface=127.0.0.1"\n'
        'admin = "unix:n1.admin"\n'
        '[[node]]\nname = "n2"\nuidvalidity_root = 2\ncluster = "tcp:7102:interface=127.0.0.1"\n'
        'admin = "unix:n2.admin"\n')
    settings = settings_from({"config": str(config), "node": "n2"})
    assert settings.admin_endpoint == "unix:n2.admin"
