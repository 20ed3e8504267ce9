"""AMP commands of the management channel (admin contract, issue 4).

Shared by the node side (``twistedmail/admin/channel.py``) and the ``clustermail``
CLI (``twistedmail/admin/client.py``).

Invariants:
  * ``PROTOCOL_VERSION`` is the major version; a client first sends ``Version``
    (with its own ``version``) and a node refuses another major version with
    ``VersionMismatch``.
  * Every command answers one ``result_json`` (a JSON document, UTF-8 text);
    every failure is one of the ``AdminError`` subclasses below, whose text is
    one line meant to be shown as ``clustermail: error: <text>``.
  * Every command takes optional ``admin_user`` / ``admin_password`` (not ``user`` /
    ``password``: UsersAdd already has a ``password``): on a TCP/TLS endpoint
    they must name an admin of the config; on the UNIX socket the file mode
    (0600) is the authorisation and they are ignored.
"""

from __future__ import annotations

from typing import Any

from twisted.protocols import amp

PROTOCOL_VERSION = 1


class AdminError(Exception):
    """A refused admin command; ``str(err)`` is the one-line reason."""


class VersionMismatch(AdminError):
    """The client speaks another major protocol version."""


class PermissionDenied(AdminError):
    """Missing or wrong admin credentials (TCP endpoints)."""


class UnknownMailFile(AdminError):
    """The mail file (account) does not exist on this node."""


class AlreadyDisabled(AdminError):
    """``convert -e-`` of a mail file that is already disabled."""


class BadArguments(AdminError):
    """An argument is out of range or malformed (e.g. a root byte of 300)."""


ERRORS: dict[type[Exception], bytes] = {
    VersionMismatch: b"VERSION_MISMATCH",
    PermissionDenied: b"PERMISSION_DENIED",
    UnknownMailFile: b"UNKNOWN_MAIL_FILE",
    AlreadyDisabled: b"ALREADY_DISABLED",
    BadArguments: b"BAD_ARGUMENTS",
    AdminError: b"ADMIN_ERROR",
}

_CREDENTIALS: list[tuple[bytes, amp.Argument]] = [
    (b"admin_user", amp.Unicode(optional=True)),
    (b"admin_password", amp.Unicode(optional=True)),
]
_RESULT: list[tuple[bytes, amp.Argument]] = [(b"result_json", amp.Unicode())]


def _args(*extra: tuple[bytes, Any]) -> list[tuple[bytes, Any]]:
    return [*extra, *_CREDENTIALS]


class Version(amp.Command):
    """First exchange: -> {version, node, root}.  ``version`` is the client's
    major version (optional for old clients); another one is refused."""

    arguments = _args((b"version", amp.Integer(optional=True)))
    response = [(b"version", amp.Integer()), (b"node", amp.Unicode()), (b"root", amp.Integer())]
    errors = ERRORS


class Convert(amp.Command):
    """``convert -e-`` (enable=False) / ``convert -e`` (enable=True) of a mail file."""

    arguments = _args((b"mailfile", amp.Unicode()), (b"enable", amp.Boolean()))
    response = _RESULT
    errors = ERRORS


class Status(amp.Command):
    """Node, state, roots, members, per-account per-folder UIDVALIDITY."""

    arguments = _args()
    response = _RESULT
    errors = ERRORS


class UsersAdd(amp.Command):
    """Create an account on this node (its folders replicate) or reset its password."""

    arguments = _args((b"name", amp.Unicode()), (b"password", amp.Unicode()))
    response = _RESULT
    errors = ERRORS


class UsersDel(amp.Command):
    """Remove an account's login on this node (its mail is kept)."""

    arguments = _args((b"name", amp.Unicode()))
    response = _RESULT
    errors = ERRORS


class UsersPasswd(amp.Command):
    """Change an account's password on this node."""

    arguments = _args((b"name", amp.Unicode()), (b"password", amp.Unicode()))
    response = _RESULT
    errors = ERRORS


class UsersList(amp.Command):
    """The accounts of this node with their enabled/disabled state."""

    arguments = _args()
    response = _RESULT
    errors = ERRORS


class SetRoot(amp.Command):
    """Store a new UIDVALIDITY root byte (effective at next convert -e / restart)."""

    arguments = _args((b"root", amp.Integer()))
    response = _RESULT
    errors = ERRORS


# --- public-folder referrals and site costs (issue 5 item 5) --------------------------
# ``role`` ("folder-admin" / "cluster-admin", optional: the caller's own role) is the role
# the edit is made as; it may not exceed the caller's (twistedmail/admin/referrals.py).


class ReferralsShow(amp.Command):
    """The referral list a client of ``from_node`` (default this node) gets now."""

    arguments = _args((b"folder", amp.Unicode()), (b"from_node", amp.Unicode(optional=True)))
    response = _RESULT
    errors = ERRORS


class ReferralsSet(amp.Command):
    """Add or change ``server`` at ``cost`` in ``node``'s custom referral list."""

    arguments = _args((b"node", amp.Unicode()), (b"server", amp.Unicode()),
                      (b"cost", amp.Integer()), (b"role", amp.Unicode(optional=True)))
    response = _RESULT
    errors = ERRORS


class ReferralsUnset(amp.Command):
    """Remove ``server`` (absent: the whole list) from ``node``'s custom referral list."""

    arguments = _args((b"node", amp.Unicode()), (b"server", amp.Unicode(optional=True)),
                      (b"role", amp.Unicode(optional=True)))
    response = _RESULT
    errors = ERRORS


class ReferralsRefresh(amp.Command):
    """Rebuild the cost table now (edits become visible)."""

    arguments = _args()
    response = _RESULT
    errors = ERRORS


class SitesLink(amp.Command):
    """Create or change the site link ``site_a``–``site_b`` at ``cost``."""

    arguments = _args((b"site_a", amp.Unicode()), (b"site_b", amp.Unicode()),
                      (b"cost", amp.Integer()), (b"role", amp.Unicode(optional=True)))
    response = _RESULT
    errors = ERRORS


class SitesUnlink(amp.Command):
    """Remove the site link ``site_a``–``site_b``."""

    arguments = _args((b"site_a", amp.Unicode()), (b"site_b", amp.Unicode()),
                      (b"role", amp.Unicode(optional=True)))
    response = _RESULT
    errors = ERRORS


class SitesShow(amp.Command):
    """Sites, links, custom lists and default nodes (the model the next rebuild uses)."""

    arguments = _args()
    response = _RESULT
    errors = ERRORS
