"""Isolation across a 3-node cluster and the transparent proxy (issue 7 item 4; RFC 4314 §4,
§6; RFC 5530 NONEXISTENT): without ACL rights, another user's folder, or a public folder
whose ACL gives alice nothing, answers every command exactly like a mailbox that does not
exist, on every node, whether it is held there, proxied or referred.

The seed layout (tests/cluster/seed.py): n1..n3 in site1..3; public folder News on n2 and
n3 only, so n1 proxies or refers to it; bob's mail file on n2 and n3 only.  "anyone" has no
right on public folders here, root (an admin) owns them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.seed import SEED_CONFIG, seed_cluster
from twistedmail.imap.dispatch import TABLE
from twistedmail.testing.cluster import Cluster
from twistedmail.testing.script import ImapScript, Result

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
USERS = {"alice": "secret", "bob": "hunter2", "root": "rootpw"}
CONFIG = SEED_CONFIG.replace('folders = ["News"]', 'folders = ["News"]\nrights = ""')
MESSAGE = b"From: b@example.org\r\nSubject: private\r\n\r\nbody\r\n"
NODES = ("n1", "n2", "n3")
# (real folder, a sibling name that does not exist): bob's private folder, a public one
TARGETS = {"bob": ("Other Users/bob/Work", "Other Users/bob/Missing"),
           "public": ("Public/News", "Public/Missing")}

# Every command naming a mailbox, "{}" where the mailbox goes; run in SELECTED state
# (INBOX) so the selected-state ones can name a destination.
MAILBOX_COMMANDS = {
    "SELECT": ["SELECT {}", "SELECT {} (CONDSTORE)"],
    "EXAMINE": ["EXAMINE {}"],
    "CREATE": ["CREATE {}/sub", "CREATE {}"],
    "DELETE": ["DELETE {}"],
    "RENAME": ["RENAME {} Stolen", "RENAME INBOX/x {}"],
    "SUBSCRIBE": ["SUBSCRIBE {}"],
    "UNSUBSCRIBE": ["UNSUBSCRIBE {}"],
    "LIST": ['LIST "" {}', 'LIST "" {}/*', 'LIST "" {}* RETURN (STATUS (MESSAGES))'],
    "LSUB": ['LSUB "" {}', 'LSUB "" {}*'],
    "STATUS": ["STATUS {} (MESSAGES UIDNEXT UIDVALIDITY)", "STATUS {} (SIZE)"],
    "APPEND": ["APPEND {} {{5+}}\r\nhello"],
    "GETMETADATA": ["GETMETADATA {} /private/comment", "GETMETADATA {} /shared/comment"],
    "SETMETADATA": ['SETMETADATA {} (/shared/comment "x")'],
    "NOTIFY": ["NOTIFY SET (mailboxes {} (MessageNew MessageExpunge))"],
    "SETACL": ["SETACL {} alice lrswipkxtea"],
    "DELETEACL": ["DELETEACL {} anyone"],
    "GETACL": ["GETACL {}"],
    "LISTRIGHTS": ["LISTRIGHTS {} alice"],
    "MYRIGHTS": ["MYRIGHTS {}"],
    "GETQUOTAROOT": ["GETQUOTAROOT {}"],
    "COPY": ["COPY 1 {}"],
    "UID COPY": ["UID COPY 1 {}"],
    "MOVE": ["MOVE 1 {}"],
    "UID MOVE": ["UID MOVE 1 {}"],
    "REPLACE": ["REPLACE 1 {} {{5+}}\r\nhello"],
    "UID REPLACE": ["UID REPLACE 1 {} {{5+}}\r\nhello"],
    # last: RLIST / RLSUB make the session referral-aware (RFC 2193 §4.1)
    "RLIST": ['RLIST "" {}', 'RLIST "" {}*'],
    "RLSUB": ['RLSUB "" {}*'],
}
# Commands that name no mailbox (they act on the session or the selected INBOX, which
# is alice's own), so they cannot reach another user's folder; GETQUOTA/SETQUOTA name a
# quota root, which is the owning account ("" for alice: RFC 9208 §4.1) - pinned below.
NO_MAILBOX = {
    "CAPABILITY", "NOOP", "LOGOUT", "ID", "COMPRESS", "STARTTLS", "AUTHENTICATE", "LOGIN",
    "NAMESPACE", "ENABLE", "IDLE", "CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "UID EXPUNGE",
    "SEARCH", "UID SEARCH", "SORT", "UID SORT", "THREAD", "UID THREAD", "FETCH",
    "UID FETCH", "STORE", "UID STORE", "GETQUOTA", "SETQUOTA",
}


def test_every_dispatch_command_is_considered() -> None:
    """A command added to the dispatch table fails here until it is put in one list."""
    assert set(TABLE) == set(MAILBOX_COMMANDS) | NO_MAILBOX
    assert not set(MAILBOX_COMMANDS) & NO_MAILBOX


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The seed layout; bob's Work holds a message; News (no rights for anyone) one too."""
    workdir: Path = tmp_path_factory.mktemp("isolation")
    with seed_cluster(workdir, USERS, CONFIG, node_extra={"admins": ["root"]},
                      accounts={"bob": ["n2", "n3"]}) as c:
        bob = _login(c, "n2", "bob")
        bob.ok("CREATE Work")
        bob.ok(f"APPEND Work {{{len(MESSAGE)}+}}", MESSAGE)
        root = _login(c, "n2", "root")
        root.ok(f'APPEND "Public/News" {{{len(MESSAGE)}+}}', MESSAGE)
        for s in (bob, root):
            s.close()
        c.wait_converged(timeout=60)
        yield c


def _login(c: Cluster, node: str, user: str) -> ImapScript:
    s = ImapScript(*c.imap(node))
    s.ok(f"LOGIN {user} {USERS[user]}")
    return s


def _alice(c: Cluster, node: str, referrals: bool) -> ImapScript:
    """alice on ``node`` with INBOX selected; ``referrals``: a referral-aware session
    (RFC 2193 §4.1: it sent RLIST first)."""
    s = _login(c, node, "alice")
    if referrals:
        s.ok('RLIST "" ""')
    s.ok(f"APPEND INBOX {{{len(MESSAGE)}+}}", MESSAGE)
    s.ok("SELECT INBOX")
    return s


def _quote(name: str) -> str:
    return f'"{name}"'


def _run(s: ImapScript, template: str, name: str) -> Result:
    line = template.replace("{}", _quote(name)).replace("{{", "{").replace("}}", "}")
    if "\r\n" in line:  # a LITERAL+ literal rides along
        head, _, literal = line.partition("\r\n")
        return s.cmd(head, literal.encode())
    return s.cmd(line)


def _normal(result: Result, name: str, placeholder: str) -> list[bytes]:
    """The response lines with the mailbox name (any quoting) and volatile numbers
    replaced, so the answers for two names can be compared."""
    leaf = name.rsplit("/", 1)[-1].encode()
    lines = [*result.untagged, re.sub(rb"^\S+ ", b"TAG ", result.tagged)]
    return [line.replace(name.encode(), placeholder.encode()).replace(leaf, b"LEAF")
            for line in lines]


def _sync(s: ImapScript) -> None:
    """Back to SELECTED INBOX (a command may have left it, e.g. a failed SELECT)."""
    s.ok("SELECT INBOX")


CASES = [pytest.param(target, node, referrals,
                      id=f"{target}-{node}-{'referral-aware' if referrals else 'proxy'}")
         for target in sorted(TARGETS) for node in NODES for referrals in (False, True)]


@pytest.mark.parametrize("target, node, referrals", CASES)
def test_no_rights_answers_as_nonexistent(cluster: Cluster, node: str, target: str,
                                          referrals: bool) -> None:
    """Every mailbox command on bob's Work / the closed public News answers exactly as on
    a missing sibling, on every node, proxied or referral-aware."""
    real, missing = TARGETS[target]
    s = _alice(cluster, node, referrals)
    differences = []
    try:
        for command, templates in MAILBOX_COMMANDS.items():
            for template in templates:
                got = _normal(_run(s, template, real), real, "MBOX")
                _sync(s)
                want = _normal(_run(s, template, missing), missing, "MBOX")
                _sync(s)
                if got != want:
                    differences.append(f"{command}: {template!r}:\n  real    {got}\n"
                                       f"  missing {want}")
    finally:
        s.close()
    assert not differences, "\n".join(differences)


@pytest.mark.parametrize("node", NODES)
def test_listing_shows_nothing_of_others(cluster: Cluster, node: str) -> None:
    """LIST / LSUB / RLIST / RLSUB of everything never name bob's folders nor News."""
    s = _alice(cluster, node, referrals=False)
    try:
        for cmd in ('LIST "" "*"', 'LIST "" "%"', 'LIST "Other Users/" "*"',
                    'LIST "Public/" "*"', 'LSUB "" "*"',
                    'LIST (SUBSCRIBED REMOTE) "" "*" RETURN (CHILDREN STATUS (MESSAGES))'):
            text = b"".join(s.ok(cmd).untagged)
            assert b"bob" not in text and b"News" not in text, (cmd, text)
    finally:
        s.close()


@pytest.mark.parametrize("node", NODES)
def test_rlist_shows_nothing_of_others(cluster: Cluster, node: str) -> None:
    """RLIST / RLSUB of everything never name bob's folders nor the closed News."""
    s = _alice(cluster, node, referrals=False)
    try:
        for cmd in ('RLSUB "" "*"', 'RLIST "" "*"'):
            text = b"".join(s.ok(cmd).untagged)
            assert b"bob" not in text and b"News" not in text, (cmd, text)
    finally:
        s.close()


def test_notify_tells_nothing_of_others(cluster: Cluster) -> None:
    """NOTIFY SET naming bob's folder and "subtree" of Other Users: bob's new mail does
    not reach alice (RFC 5465 §6: only mailboxes she may see)."""
    alice = _login(cluster, "n2", "alice")
    events = "(MessageNew MessageExpunge)"
    alice.ok(f'NOTIFY SET STATUS (mailboxes "Other Users/bob/Work" {events}) '
             f'(subtree "Other Users" {events}) (personal {events})')
    bob = _login(cluster, "n2", "bob")
    bob.ok(f"APPEND Work {{{len(MESSAGE)}+}}", MESSAGE)
    bob.close()
    seen = b"".join(alice.ok("NOOP").untagged + alice.ok("NOOP").untagged)
    assert b"bob" not in seen and b"Work" not in seen, seen
    alice.close()


def test_getquota_of_another_account(cluster: Cluster) -> None:
    """GETQUOTA / SETQUOTA of bob's quota root answer as for an account that does not exist."""
    s = _login(cluster, "n2", "alice")
    for template in ('GETQUOTA "{}"', 'SETQUOTA "{}" (STORAGE 1)'):
        got = _normal(s.cmd(template.replace("{}", "bob")), "bob", "X")
        want = _normal(s.cmd(template.replace("{}", "nobody")), "nobody", "X")
        assert got == want and got[-1].startswith(b"TAG NO"), (got, want)
    s.close()
