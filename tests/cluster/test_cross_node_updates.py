"""Live sessions see what other nodes change (issue 3 item 6), against a real 3-node cluster.

A session on one node with INBOX selected, idling (RFC 2177) or polling with NOOP, gets the
untagged EXISTS / FETCH / EXPUNGE (RFC 3501 §7.3.1, §7.4) for an APPEND, STORE, EXPUNGE,
UID EXPUNGE or MOVE made on another node; with CONDSTORE the FETCH carries MODSEQ (RFC 7162
§3.1.4.1), with QRESYNC an expunge is announced as VANISHED (RFC 7162 §3.2.10).  Messages
are matched across nodes by EMAILID (RFC 8474): UIDs are per replica.

Every wait is bounded in lines and seconds; nothing is timed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import pytest

from twistedmail.testing.cluster import Cluster
from twistedmail.testing.script import ImapScript

from .failover import wait_for

pytestmark = pytest.mark.e2e

WAIT = 20.0  # seconds a replicated change may take to reach a session (a bound, not a figure)
MAX_LINES = 200  # untagged lines a wait reads at most before giving up
FETCH_EMAILID = re.compile(rb"^\* (\d+) FETCH \(.*EMAILID \(([^)\s]+)\)")
FETCH_UID = re.compile(rb"^\* (\d+) FETCH \(.*UID (\d+)")


def message(n: int) -> bytes:
    """A small unique message."""
    return (f"From: a@example.org\r\nSubject: cross-node {n}\r\n"
            f"Message-ID: <cross.{n}@example.org>\r\n\r\nbody {n}\r\n").encode()


@pytest.fixture
def connect(cluster: Cluster) -> Iterator[Callable[[str], ImapScript]]:
    """Factory: ``connect("n2")`` is a raw session logged in as alice on that node."""
    scripts: list[ImapScript] = []

    def open_session(name: str) -> ImapScript:
        script = ImapScript(*cluster.imap(name))
        scripts.append(script)
        script.login()
        return script

    yield open_session
    for script in scripts:
        script.close()


# --- helpers ------------------------------------------------------------------------------------


def append(script: ImapScript, n: int, folder: str = "INBOX") -> None:
    """APPEND message ``n`` (answered OK: durable on the cluster's ack replicas)."""
    body = message(n)
    script.ok(f"APPEND {folder} {{{len(body)}}}", body)


def seed(cluster: Cluster, connect: Callable[[str], ImapScript], count: int) -> ImapScript:
    """Append ``count`` messages on n1, wait until every node shows them; n1's session."""
    writer = connect("n1")
    for n in range(1, count + 1):
        append(writer, n)
    cluster.wait_converged(timeout=WAIT)
    return writer


def emailids(script: ImapScript) -> list[str]:
    """EMAILIDs of the selected mailbox, in message sequence order."""
    result = script.ok("FETCH 1:* (EMAILID)")
    found = {int(m[1]): m[2].decode() for line in result.untagged
             if (m := FETCH_EMAILID.match(line))}
    return [found[i] for i in sorted(found)]


def uids(script: ImapScript) -> list[int]:
    """UIDs of the selected mailbox, in message sequence order."""
    result = script.ok("FETCH 1:* (UID)")
    found = {int(m[1]): int(m[2]) for line in result.untagged if (m := FETCH_UID.match(line))}
    return [found[i] for i in sorted(found)]


def idle(script: ImapScript) -> str:
    """Start IDLE (RFC 2177) and wait for the continuation; the tag DONE will end."""
    tag = script.next_tag()
    script.send(f"{tag} IDLE")
    script.expect_continuation()
    return tag


def done(script: ImapScript, tag: str) -> list[bytes]:
    """End IDLE with DONE; the untagged lines before its tagged OK."""
    script.send("DONE")
    result = script.read_until_tagged(tag, timeout=WAIT)
    assert result.status == "OK", result.tagged
    return result.untagged


def wait_line(script: ImapScript, pattern: bytes, seen: list[bytes] | None = None) -> bytes:
    """Read untagged lines (into ``seen``) until one matches ``pattern``; bounded."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + WAIT
    for _ in range(MAX_LINES):
        line = script.read_line(timeout=max(0.1, deadline - time.monotonic()))
        if seen is not None:
            seen.append(line)
        if regex.search(line):
            return line
    raise script.failure(f"no line matching {pattern!r} within {MAX_LINES} lines")


def noop_until(script: ImapScript, pattern: bytes, seen: list[bytes]) -> bytes:
    """NOOP until a NOOP's untagged lines (collected in ``seen``) match ``pattern``."""
    regex = re.compile(pattern)

    def probe() -> bytes | None:
        lines = script.ok("NOOP").untagged
        seen.extend(lines)
        return next((line for line in lines if regex.search(line)), None)

    line: bytes = wait_for(f"NOOP showing {pattern!r}", probe, timeout=WAIT)
    return line


def selected(connect: Callable[[str], ImapScript], name: str, enable: str = "") -> ImapScript:
    """A session on ``name`` (with ``ENABLE enable`` first when given) that selected INBOX."""
    script = connect(name)
    if enable:
        script.ok(f"ENABLE {enable}")
    script.ok("SELECT INBOX")
    return script


def expunge_on(writer: ImapScript, how: str, seq: int) -> None:
    """Remove message ``seq`` of n1's selected INBOX by EXPUNGE, UID EXPUNGE or MOVE."""
    if how == "MOVE":
        writer.ok("CREATE Moved")
        writer.ok(f"MOVE {seq} Moved")
        return
    writer.ok(f"STORE {seq} +FLAGS.SILENT (\\Deleted)")
    if how == "EXPUNGE":
        writer.ok("EXPUNGE")
    else:
        writer.ok(f"UID EXPUNGE {uids(writer)[seq - 1]}")


# --- IDLE ---------------------------------------------------------------------------------------


def test_idle_sees_append_made_on_another_node(cluster, connect):
    """An APPEND on n1 reaches a session idling in INBOX on n2 as `* n EXISTS`."""
    watcher = selected(connect, "n2")
    tag = idle(watcher)
    writer = connect("n1")
    append(writer, 1)
    assert wait_line(watcher, rb"EXISTS") == b"* 1 EXISTS"
    append(writer, 2)
    assert wait_line(watcher, rb"EXISTS") == b"* 2 EXISTS"
    done(watcher, tag)
    writer.ok("SELECT INBOX")
    assert emailids(watcher) == emailids(writer)


def test_idle_sees_store_made_on_n1_and_on_n3(cluster, connect):
    """A STORE on n1, then one on n3, reach an idling n2 session as `* n FETCH (FLAGS ...)`."""
    writer = seed(cluster, connect, 2)
    writer.ok("SELECT INBOX")
    target = emailids(writer)[1]
    watcher = selected(connect, "n2")
    seq = emailids(watcher).index(target) + 1
    tag = idle(watcher)
    writer.ok("STORE 2 +FLAGS.SILENT (\\Seen)")
    line = wait_line(watcher, rb"^\* %d FETCH .*\\Seen" % seq)
    assert b"\\Flagged" not in line
    third = selected(connect, "n3")
    third.ok(f"STORE {emailids(third).index(target) + 1} +FLAGS.SILENT (\\Flagged)")
    line = wait_line(watcher, rb"^\* %d FETCH .*\\Flagged" % seq)
    assert b"\\Seen" in line
    done(watcher, tag)


@pytest.mark.parametrize("how", ["EXPUNGE", "UID EXPUNGE", "MOVE"])
def test_idle_sees_expunge_made_on_another_node(cluster, connect, how):
    """An EXPUNGE / UID EXPUNGE / MOVE on n1 reaches an idling n2 session as `* n EXPUNGE`."""
    writer = seed(cluster, connect, 3)
    writer.ok("SELECT INBOX")
    gone = emailids(writer)[1]
    watcher = selected(connect, "n2")
    before = emailids(watcher)
    tag = idle(watcher)
    expunge_on(writer, how, 2)
    assert wait_line(watcher, rb"EXPUNGE") == b"* %d EXPUNGE" % (before.index(gone) + 1)
    done(watcher, tag)
    assert emailids(watcher) == [e for e in before if e != gone] == emailids(writer)


def test_idle_session_sees_new_folder_through_list(cluster, connect):
    """A folder created on n1 while an n3 session idles shows in that session's LIST after."""
    watcher = selected(connect, "n3")
    tag = idle(watcher)
    connect("n1").ok("CREATE Projects")
    other = connect("n3")
    wait_for("Projects on n3", lambda: other.ok('LIST "" Projects').matching(rb"Projects"), WAIT)
    untagged = done(watcher, tag)
    assert not [line for line in untagged if line.startswith(b"* BYE")]
    assert watcher.ok('LIST "" "*"').matching(rb'^\* LIST \([^)]*\) "/" "?Projects"?$')
    watcher.ok("NOOP")


# --- NOOP ---------------------------------------------------------------------------------------


def test_noop_sees_append_store_and_expunge_from_another_node(cluster, connect):
    """A selected n2 session NOT idling gets EXISTS, FETCH and EXPUNGE for n1's changes on NOOP."""
    watcher = selected(connect, "n2")
    writer = connect("n1")
    seen: list[bytes] = []
    append(writer, 1)
    append(writer, 2)
    assert noop_until(watcher, rb"^\* 2 EXISTS$", seen)
    writer.ok("SELECT INBOX")
    assert emailids(watcher) == emailids(writer)
    writer.ok("STORE 1 +FLAGS.SILENT (\\Answered)")
    assert noop_until(watcher, rb"^\* 1 FETCH .*\\Answered", seen)
    writer.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    writer.ok("EXPUNGE")
    assert noop_until(watcher, rb"EXPUNGE", seen) == b"* 1 EXPUNGE"
    assert emailids(watcher) == emailids(writer)


# --- CONDSTORE / QRESYNC ------------------------------------------------------------------------


def test_condstore_fetch_from_another_node_carries_modseq(cluster, connect):
    """With CONDSTORE enabled, n1's STORE reaches an idling n2 session as FETCH with MODSEQ."""
    writer = seed(cluster, connect, 1)
    writer.ok("SELECT INBOX")
    watcher = connect("n2")
    watcher.ok("ENABLE CONDSTORE")
    opened = watcher.ok("SELECT INBOX")
    highest = re.search(rb"\[HIGHESTMODSEQ (\d+)\]", b"\n".join(opened.untagged))
    assert highest is not None, opened.untagged
    tag = idle(watcher)
    writer.ok("STORE 1 +FLAGS.SILENT (\\Seen)")
    line = wait_line(watcher, rb"^\* 1 FETCH .*\\Seen")
    modseq = re.search(rb"MODSEQ \((\d+)\)", line)
    assert modseq is not None, line
    assert int(modseq[1]) > int(highest[1])
    done(watcher, tag)


def test_qresync_expunge_from_another_node_arrives_as_vanished(cluster, connect):
    """With QRESYNC enabled, n1's EXPUNGE reaches an idling n2 session as `* VANISHED uid`."""
    writer = seed(cluster, connect, 2)
    writer.ok("SELECT INBOX")
    gone = emailids(writer)[0]
    watcher = selected(connect, "n2", enable="QRESYNC")
    uid = uids(watcher)[emailids(watcher).index(gone)]
    tag = idle(watcher)
    seen: list[bytes] = []
    writer.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    writer.ok("EXPUNGE")
    assert wait_line(watcher, rb"^\* VANISHED", seen) == b"* VANISHED %d" % uid
    assert not [line for line in seen if line.endswith(b" EXPUNGE")]
    done(watcher, tag)
    assert emailids(watcher) == emailids(writer)
