"""RLIST and RLSUB (RFC 2193 §4.1, §4.2): LIST / LSUB that also name remote mailboxes.

Issuing either makes the session referral-aware (twistedmail/imap/referrals.py): from
then on a public folder with no replica here is answered with ``NO [REFERRAL ...]``.
RLIST adds the configured public folders this node has no copy of (RFC 2193 §4.1:
"both local and remote mailboxes"), as plain LIST rows, after the local ones, unless
LIST already showed them as directory entries (namespaces.directory): once each."""

from __future__ import annotations

from dataclasses import replace

from twistedmail.imap import commands as c
from twistedmail.imap import listing, referrals
from twistedmail.imap.handlers.mailbox import list_
from twistedmail.imap.namespaces import directory, visible
from twistedmail.imap.responses import Atom, MailboxName
from twistedmail.imap.session import Session


def rlist(session: Session, cmd: c.ListCmd) -> None:
    """RLIST / RLSUB: the LIST / LSUB answer, plus remote public folders for RLIST."""
    session.referral_aware = True
    list_(session, replace(cmd, referral=False))
    patterns = [p for p in (cmd.patterns or (cmd.pattern,)) if p]
    if cmd.lsub or not patterns:
        return
    regexes = [listing.pattern_regex(listing.join(cmd.reference, p)) for p in patterns]
    local = {name for name, _ in visible(session)} | set(directory(session))
    for name in referrals.public_names(session):
        if name not in local and any(rx.fullmatch(name) for rx in regexes):
            session.out.untagged(Atom("LIST"), [], listing.DELIM, MailboxName.of(name))
