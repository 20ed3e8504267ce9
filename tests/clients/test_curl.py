"""curl's IMAP against a real node: LIST, EXAMINE, UID SEARCH ALL, then every message of every
folder fetched by its ``;UIDVALIDITY=V;UID=n`` URL and compared byte for byte."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from .fixtures import (
    ACCOUNT,
    PASSWORD,
    USER,
    connect,
    message_id_of,
    require,
    run,
    server_state,
    wire_name,
)

pytestmark = pytest.mark.clients


def curl(port: int, path: str, *args: str, ok: tuple[int, ...] = (0,)) -> str:
    """``curl imap://127.0.0.1:PORT/PATH ARGS``; returns stdout."""
    url = f"imap://127.0.0.1:{port}/{path}"
    argv = [require("curl"), "-sS", "--max-time", "30", "--user", f"{USER}:{PASSWORD}", url]
    return run([*argv, *args], ok=ok).stdout


def url_path(folder: str) -> str:
    return quote(wire_name(folder), safe="/&-")


def test_curl_lists_searches_and_fetches_every_message(real_node, tmp_path):
    """LIST shows every folder; per folder UID SEARCH ALL gives every UID; one curl run per
    folder fetches all of them (one connection) and each file equals the APPENDed bytes."""
    port = real_node.port
    listing = curl(port, "")
    for folder in ACCOUNT:
        assert f'"/" "{wire_name(folder)}"' in listing or f'"/" {wire_name(folder)}' in listing

    for folder, msgs in ACCOUNT.items():
        examine = curl(port, url_path(folder), "-X", f'EXAMINE "{wire_name(folder)}"')
        uidvalidity = re.search(r"UIDVALIDITY (\d+)", examine)
        assert uidvalidity, examine
        search = curl(port, url_path(folder), "-X", "UID SEARCH ALL").replace("\r", "")
        lines = [line for line in search.splitlines() if line.startswith("* SEARCH")]
        assert len(lines) == 1, search
        uids = [int(u) for u in lines[0].split()[2:]]
        assert len(uids) == len(msgs)

        out = tmp_path / f"f{list(ACCOUNT).index(folder)}"
        out.mkdir()
        config = tmp_path / f"{out.name}.curlrc"
        config.write_text("".join(
            f'url = "imap://127.0.0.1:{port}/{url_path(folder)};'
            f'UIDVALIDITY={uidvalidity.group(1)};UID={uid}"\noutput = "{out}/{uid}.eml"\n'
            for uid in uids))
        run([require("curl"), "-sS", "--max-time", "60", "--user", f"{USER}:{PASSWORD}",
             "-K", str(config)])
        expected = {m.message_id: m.raw for m in msgs}
        for uid in uids:
            data = (out / f"{uid}.eml").read_bytes()
            assert data == expected.pop(message_id_of(data)), (folder, uid)
        assert not expected

    imap = connect(real_node.host, port)  # curl fetches BODY[] (not PEEK): all now \Seen
    assert all("\\Seen" in flags for _, flags in server_state(imap, "Work").values())
    imap.logout()


def test_curl_stale_uidvalidity_is_refused(real_node):
    """A URL with a wrong ;UIDVALIDITY= is refused by curl (exit 78), a missing UID too."""
    curl(real_node.port, "INBOX;UIDVALIDITY=1;UID=1", ok=(78,))
    curl(real_node.port, "INBOX;UID=9999", ok=(78,))
