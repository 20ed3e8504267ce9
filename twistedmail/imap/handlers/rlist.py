"""RLIST and RLSUB (RFC 2193 §4.1, §4.2): LIST / LSUB that also name remote mailboxes.

Issuing either makes the session referral-aware (twistedmail/imap/referrals.py): from
then on a public folder with no replica here is answered with ``NO [REFERRAL ...]``.
The remote mailboxes RFC 2193 §4.1 asks RLIST for ("both local and remote mailboxes")
are the configured public folders held elsewhere; LIST already shows each one this user
may see as a directory entry (namespaces.directory), so RLIST answers exactly as LIST
does: a folder the user may not see is never named (RFC 4314 §4, no existence leak)."""

from __future__ import annotations

from dataclasses import replace

from twistedmail.imap import commands as c
from twistedmail.imap.handlers.mailbox import list_
from twistedmail.imap.session import Session


def rlist(session: Session, cmd: c.ListCmd) -> None:
    """RLIST / RLSUB: the LIST / LSUB answer; the session becomes referral-aware."""
    session.referral_aware = True
    list_(session, replace(cmd, referral=False))
