"""mbsync (Debian ``isync``) config and run, shared by the client tests and the cluster
failover test: the recipe from shared/clients, with Create Both and Expunge Both."""

from __future__ import annotations

from pathlib import Path

from .fixtures import PASSWORD, USER, require, run


def mbsyncrc(tmp: Path, port: int, name: str = "mbsyncrc") -> Path:
    """Write ``tmp/name`` for a node on 127.0.0.1:``port``; the Maildir is ``tmp/mail``
    (created if missing, so several configs can share one Maildir and sync state)."""
    mail = tmp / "mail"
    mail.mkdir(exist_ok=True)
    rc = tmp / name
    rc.write_text(f"""IMAPAccount test
Host 127.0.0.1
Port {port}
User {USER}
Pass {PASSWORD}
SSLType None
AuthMechs LOGIN
Timeout 20

IMAPStore remote
Account test

MaildirStore local
Path {mail}/
Inbox {mail}/INBOX
SubFolders Verbatim

Channel test
Far :remote:
Near :local:
Patterns *
Create Both
Sync All
SyncState *
Expunge Both
CopyArrivalDate yes
""")
    return rc


def sync(rc: Path, verbose: bool = False) -> str:
    """Run mbsync once over every channel of ``rc`` (``-V`` when ``verbose``); exit status 0
    required; its stdout and stderr."""
    argv = [require("mbsync"), *(["-V"] if verbose else []), "-c", str(rc), "-a"]
    result = run(argv)
    return result.stdout + result.stderr
