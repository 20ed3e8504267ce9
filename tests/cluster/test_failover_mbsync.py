"""mbsync (Debian ``isync``) fails over between cluster nodes (issue 3 items 4 and 9).

mbsync syncs a Maildir against n1 (several folders, 50 messages), n1 is killed -9, and the
same config pointed at n2 is run again.  mbsync refuses a new UIDVALIDITY unless the
messages keep their UIDs ("Unable to recover from UIDVALIDITY change", exit 1; shared
clients README §2); with the cluster's UID alignment it must recover by itself, keep every
message once, push the local change it had made, and then pull mail appended after failover.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.clients.fixtures import (
    ACCOUNT,
    PASSWORD,
    USER,
    maildir_flags,
    maildir_messages,
    set_maildir_flags,
    system_flags,
    wire_name,
)
from tests.clients.mbsync import mbsyncrc, sync
from twistedmail.testing.cluster import Cluster

from .failover import FAST, by_message_id, load, message, mid

pytestmark = [pytest.mark.e2e, pytest.mark.clients, pytest.mark.slow]
SIZES = {"INBOX": 25, "Archive": 15, "Work": 10}  # 50 messages, attachments up to 120 KB
RECOVERED = re.compile(r"far side box (\S+): Recovered from change of UIDVALIDITY")


def dataset() -> dict[str, list[tuple[bytes, tuple[str, ...]]]]:
    """The first messages of each fixtures.ACCOUNT folder, with their flags."""
    return {f: [(m.raw, m.flags) for m in ACCOUNT[f][:n]] for f, n in SIZES.items()}


def rc(tmp: Path, c: Cluster, node: str) -> Path:
    """One mbsync config per node (only the port differs); one Maildir and sync state."""
    port = c.imap(node)[1]
    return mbsyncrc(tmp, port, name=f"mbsyncrc-{port}")


def uid_maps(c: Cluster, node: str) -> dict[str, dict[str, int]]:
    """Folder -> Message-ID -> UID on ``node`` (every message exactly once)."""
    maps = {}
    for folder in SIZES:
        _uv, msgs = by_message_id(c, node, USER, folder)
        assert all(len(copies) == 1 for copies in msgs.values()), (node, folder, msgs)
        maps[folder] = {m: copies[0][0] for m, copies in msgs.items()}
    return maps


def far_uidvalidity(mail: Path, folder: str) -> int:
    """The far side UIDVALIDITY mbsync recorded for ``folder`` (its .mbsyncstate)."""
    state = (mail / wire_name(folder) / ".mbsyncstate").read_text()
    found = re.search(r"^FarUidValidity (\d+)$", state, re.M)
    assert found, state[:300]
    return int(found.group(1))


def test_mbsync_recovers_from_failover_by_itself(make_cluster, tmp_path):
    """After kill -9 of n1, mbsync pointed at n2 prints "Recovered from change of
    UIDVALIDITY", exits 0, keeps every message once, pushes its local flag change to n2,
    and a message appended on n2 after failover arrives on the next run."""
    c = make_cluster(users={USER: PASSWORD}, cluster_options=FAST)
    load(c, "n1", USER, dataset())
    mail = tmp_path / "mail"
    out = sync(rc(tmp_path, c, "n1"), verbose=True)
    assert "change of UIDVALIDITY" not in out, out[-2000:]
    for folder, msgs in dataset().items():
        local = maildir_messages(mail / wire_name(folder))
        assert len(local) == len(msgs), (folder, len(local))
        for raw, flags in msgs:
            ident = re.search(rb"(?mi)^Message-ID:\s*(<[^>]+>)", raw).group(1).decode()
            assert maildir_flags(local[ident].flags) == system_flags(flags), (folder, ident)
        assert far_uidvalidity(mail, folder) >> 24 == 1
    changed = ACCOUNT["INBOX"][1]  # flagged locally before the failover, synced after it
    assert "\\Flagged" not in changed.flags
    inbox = maildir_messages(mail / "INBOX")
    set_maildir_flags(inbox[changed.message_id], inbox[changed.message_id].flags + "F")

    c.wait_converged(timeout=30)
    on_n1 = uid_maps(c, "n1")
    c.kill("n1")
    on_n2 = uid_maps(c, "n2")
    differ = {f: {m: (on_n1[f][m], on_n2[f].get(m)) for m in on_n1[f]
                  if on_n1[f][m] != on_n2[f].get(m)} for f in SIZES}
    assert not any(differ.values()), f"UIDs differ, (n1 UID, n2 UID) by folder: {differ}"

    out = sync(rc(tmp_path, c, "n2"), verbose=True)
    recovered = set(RECOVERED.findall(out))
    assert {"INBOX", "Archive", "Work"} <= recovered, out[-3000:]
    assert "Unable to recover" not in out, out[-3000:]
    for folder, msgs in dataset().items():
        assert len(maildir_messages(mail / wire_name(folder))) == len(msgs), folder
        assert far_uidvalidity(mail, folder) >> 24 == 2, folder
    _uv, n2_inbox = by_message_id(c, "n2", USER, "INBOX")
    assert "\\Flagged" in n2_inbox[changed.message_id][0][1]

    assert c.append("n2", USER, "INBOX", message("after-failover", 0))
    out = sync(rc(tmp_path, c, "n2"), verbose=True)
    assert "change of UIDVALIDITY" not in out, out[-2000:]  # the new UIDVALIDITY was recorded
    inbox = maildir_messages(mail / "INBOX")  # asserts: no Message-ID twice
    assert mid("after-failover", 0) in inbox
    assert len(inbox) == SIZES["INBOX"] + 1
    c.wait_converged(timeout=30)
    c.invariants.check()
