"""``clustermail hash-password`` and ``clustermail tls reload`` (issue 7 item 3).

    clustermail hash-password [--scrypt] [--iterations N]   the stored form, on stdout
    clustermail --node n1 tls reload                        new certificate, no restart

Invariants:
  * hash-password reads the password from the terminal (no echo, twice) or from
    the first line of stdin; never from argv (ps would show it), never logged.
  * ``TlsReload`` is an admin command like the others (channel.py authorises and
    logs it): the node re-reads ``[tls] cert``/``key``; new handshakes get the new
    certificate, established connections keep theirs (twistedmail/tls.py).  A file
    that cannot be read keeps the old certificate and the answer says why.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from twisted.internet.defer import Deferred
from twisted.protocols import amp

from twistedmail.admin import commands as c


class TlsReload(amp.Command):
    """Re-read the node's certificate and key: -> {reloaded, cert, generation|why}."""

    arguments = [(b"admin_user", amp.Unicode(optional=True)),
                 (b"admin_password", amp.Unicode(optional=True))]
    response = [(b"result_json", amp.Unicode())]
    errors = c.ERRORS


COMMANDS: dict[str, type[amp.Command]] = {"tls-reload": TlsReload}


class TlsResponders:
    """Mixed into AdminProtocol (channel.py): the node side of TlsReload."""

    node: Any
    _json: Any  # AdminProtocol._json: authorise (admins only), act, log, answer

    @TlsReload.responder
    def tls_reload(self, admin_user: str | None = None,
                   admin_password: str | None = None) -> Deferred[dict[str, Any]]:
        from twistedmail.tls import reload_certificates

        def act() -> dict[str, Any]:
            result = reload_certificates(self.node.settings)
            if not result["reloaded"]:
                raise c.AdminError(f"tls reload: {result['why']}; old certificate kept")
            return {"node": self.node.settings.node_name, **result}

        return self._json("tls reload", admin_user, admin_password, act)


def add_commands(commands: Any, run_admin: Any) -> None:
    """``tls reload`` on the admin subparsers object."""
    tls = commands.add_parser("tls", help="TLS certificate: reload without a restart")
    steps = tls.add_subparsers(dest="tls_action", required=True, metavar="ACTION")
    reload = steps.add_parser(
        "reload", help="re-read [tls] cert/key; new connections get the new certificate")
    reload.add_argument("--json", action="store_true", help="print the node's JSON answer")
    reload.set_defaults(run=run_admin, admin_command="tls-reload")


def add_local_commands(commands: Any) -> None:
    """``hash-password`` (runs here, talks to no node)."""
    hp = commands.add_parser(
        "hash-password", help="print the stored form of a password for [users]",
        description="Read a password from the terminal (or the first line of stdin) and "
                    "print its stored form for [users] / --user: SCRAM-SHA-256$... "
                    "(LOGIN, PLAIN and SCRAM work) or, with --scrypt, scrypt$... (LOGIN "
                    "and PLAIN only).")
    hp.add_argument("--scrypt", action="store_true",
                    help="a memory-hard scrypt hash (SCRAM logins then fail)")
    hp.add_argument("--iterations", type=int, default=None, metavar="N",
                    help="PBKDF2 iterations of the SCRAM form (default 100000, >= 4096)")
    hp.set_defaults(run=run_hash_password)


def run_hash_password(args: argparse.Namespace, out: TextIO = sys.stdout,
                      stdin: TextIO | None = None) -> int:
    """Read the password, print its stored form."""
    from twistedmail.admin.actions import UsageError
    from twistedmail.passwords import (
        HASH_ITERATIONS,
        MAX_ITERATIONS,
        MIN_ITERATIONS,
        BadPasswordHash,
        hash_password,
        read_password,
    )

    iterations = args.iterations if args.iterations is not None else HASH_ITERATIONS
    if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise UsageError(f"--iterations: must be {MIN_ITERATIONS}-{MAX_ITERATIONS}")
    try:
        password = read_password(stdin)
        stored = hash_password(password, "scrypt" if args.scrypt else "scram", iterations)
    except BadPasswordHash as err:
        raise UsageError(f"hash-password: {err}") from None
    print(stored, file=out)
    return 0

