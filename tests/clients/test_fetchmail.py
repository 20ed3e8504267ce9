"""fetchmail (Debian ``fetchmail``) against a real node: every unseen message of every folder
is delivered through an MDA exactly once, seen ones never; a second run fetches nothing."""

from __future__ import annotations

import getpass
from collections import Counter
from pathlib import Path

import pytest

from .fixtures import (
    ACCOUNT,
    PASSWORD,
    USER,
    body_hash,
    connect,
    lf,
    message_id_of,
    require,
    run,
    server_state,
    wire_name,
)

pytestmark = pytest.mark.clients


def fetchmailrc(tmp: Path, port: int, out: Path) -> Path:
    """The recipe from shared/clients: keep, no TLS, one file per message through an MDA."""
    folders = ",".join(f'"{wire_name(f)}"' for f in ACCOUNT)
    rc = tmp / "fetchmailrc"
    rc.write_text(f"""set no syslog
set logfile {tmp}/fetchmail.log
set idfile {tmp}/fetchids
poll 127.0.0.1 service {port} protocol imap auth password timeout 20
  user "{USER}" password "{PASSWORD}" is "{getpass.getuser()}" here
  folder {folders}
  keep
  no rewrite
  sslproto '' no sslcertck
  mda "/bin/sh -c 'cat > $(mktemp {out}/msg.XXXXXXXX)'"
""")
    rc.chmod(0o600)  # fetchmail refuses a run control file others can read
    return rc


def fetch(rc: Path, tmp: Path, ok: tuple[int, ...]) -> int:
    env = {"FETCHMAILHOME": str(tmp), "HOME": str(tmp)}
    return run([require("fetchmail"), "-f", str(rc), "-v", "--nodetach"], ok=ok,
               env=env).returncode


def original(data: bytes) -> bytes:
    """A delivered file without the Received: header fetchmail puts on top (LF endings)."""
    data = lf(data)
    assert data.startswith(b"Received: "), data[:200]
    end = 0
    while True:  # the header and its continuation lines
        end = data.index(b"\n", end) + 1
        if data[end:end + 1] not in (b" ", b"\t"):
            return data[end:]


def test_fetchmail_delivers_each_unseen_message_once(real_node, tmp_path):
    """All unseen messages of all five folders (incl. the non-ASCII one) arrive exactly once,
    byte for byte after fetchmail's Received: line; the server marks them \\Seen."""
    out = tmp_path / "out"
    out.mkdir()
    rc = fetchmailrc(tmp_path, real_node.port, out)
    assert fetch(rc, tmp_path, ok=(0,)) == 0

    unseen = {m.message_id: m for msgs in ACCOUNT.values() for m in msgs if not m.seen}
    delivered = [p.read_bytes() for p in sorted(out.iterdir())]
    counts = Counter(message_id_of(data) for data in delivered)
    assert set(counts) == set(unseen)
    assert all(n == 1 for n in counts.values()), counts.most_common(3)
    for data in delivered:
        msg = unseen[message_id_of(data)]
        assert body_hash(data) == body_hash(msg.raw)
        assert original(data) == lf(msg.raw), msg.message_id

    imap = connect(real_node.host, real_node.port)
    for folder in ACCOUNT:
        assert all("\\Seen" in flags for _, flags in server_state(imap, folder).values())
    imap.logout()

    assert fetch(rc, tmp_path, ok=(1,)) == 1  # 1: no mail
    assert len(list(out.iterdir())) == len(unseen)
