"""Authentication through twisted.cred: avatar, realm, password checker, portal.

User names are case-sensitive.  Passwords are kept in memory as given and
compared in constant time; a later milestone stores hashes instead.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm, Portal
from twisted.internet import defer
from zope.interface import Attribute, Interface, implementer

# Compared against when the user is unknown, so that a miss costs what a hit costs.
_DUMMY = b"\x00" * 32


class IMailUser(Interface):
    """An authenticated mail user: the avatar an IMAP session acts as."""

    name = Attribute("The canonical user name (str).")


@implementer(IMailUser)
class MailUser:
    """The avatar of one logged-in user."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"MailUser({self.name!r})"


def _logout() -> None:
    """Nothing to release when a MailUser logs out."""


@implementer(IRealm)
class Realm:
    """Hands out MailUser avatars for authenticated user names."""

    def requestAvatar(self, avatarId: Any, mind: Any, *interfaces: Any) -> tuple[Any, ...]:
        if IMailUser not in interfaces:
            raise NotImplementedError("this realm only provides IMailUser")
        name = avatarId.decode("utf-8") if isinstance(avatarId, bytes) else avatarId
        return IMailUser, MailUser(name), _logout


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def _bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value


@implementer(ICredentialsChecker)
class PasswordChecker:
    """Checks IUsernamePassword credentials against an in-memory user table."""

    credentialInterfaces = (IUsernamePassword,)

    def __init__(self, users: Mapping[str, str] | None = None) -> None:
        self._users: dict[str, bytes] = {}
        for name, password in (users or {}).items():
            self.add_user(name, password)

    def add_user(self, name: str, password: str) -> None:
        """Add a user, or change the password of an existing one."""
        self._users[name] = _bytes(password)

    def usernames(self) -> list[str]:
        """The known user names, sorted."""
        return sorted(self._users)

    def requestAvatarId(self, credentials: Any) -> defer.Deferred[Any]:
        name = _text(credentials.username)
        stored = self._users.get(name)
        given = _bytes(credentials.password)
        matches = hmac.compare_digest(given, _DUMMY if stored is None else stored)
        if stored is None or not matches:
            return defer.fail(UnauthorizedLogin("bad user name or password"))
        return defer.succeed(name)  # the avatar id: the user name, as str


def build_portal(users: Mapping[str, str]) -> Portal:
    """A Portal whose checker knows ``users`` (name -> password) and yields MailUsers."""
    return Portal(Realm(), [PasswordChecker(users)])
