"""Every admin command refuses an unauthenticated peer on a TCP endpoint (issue 7 item 3):
the list is taken from the client's command table, so a new command is covered at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from twisted.protocols import amp

from twistedmail.admin import commands as c
from twistedmail.admin.client import COMMANDS

from .conftest import Admin

Make = Callable[..., tuple[Any, Admin]]
DUMMY: dict[type, Any] = {amp.Unicode: "alice", amp.Integer: 1, amp.Boolean: False,
                          amp.String: b"{}"}


def _arguments(command: type[amp.Command]) -> dict[str, Any]:
    """Well-formed values for the command's required arguments (credentials left out)."""
    out: dict[str, Any] = {}
    for name, argument in command.arguments:
        if argument.optional or name.startswith(b"admin_"):
            continue
        value = next((v for kind, v in DUMMY.items() if isinstance(argument, kind)), b"1")
        out[name.decode()] = value
    return out


@pytest.mark.parametrize("name", sorted(COMMANDS))
@pytest.mark.parametrize("creds", [{}, {"admin_user": "root", "admin_password": "wrong"},
                                   {"admin_user": "alice", "admin_password": "secret"}],
                         ids=["none", "wrong-password", "not-an-admin"])
def test_command_refused_without_admin_credentials(admin_node: Make, name: str,
                                                   creds: dict[str, str]) -> None:
    """Without the credentials of an admin, the command is refused before it acts."""
    _, admin = admin_node(tcp=True)
    command = COMMANDS[name]
    with pytest.raises(c.AdminError) as refused:
        admin.raw(command, **_arguments(command), **creds)
    assert isinstance(refused.value, c.PermissionDenied), (name, refused.value)
    assert admin(c.Status, admin_user="root", admin_password="rootpw")["node"] == "n1"
