"""Thunderbird (Debian ``thunderbird``, ESR) headless against a real node: the full offline
sync of the test account checked message by message in Thunderbird's own store (mbox files)
and database (over Marionette), IDLE push of a new message, and flag changes both ways.

The profile is made fresh for every test from ``user.js`` plus the stored password in
``thunderbird/`` (``key4.db`` + ``logins.json``: origin ``imap://127.0.0.1``, user ``test``,
password ``test``; the port is not part of the key).  Recipe: shared/clients README §1.
"""

from __future__ import annotations

import contextlib
import imaplib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from .fixtures import ACCOUNT, Msg, quoted, server_state
from .marionette import Marionette

pytestmark = pytest.mark.clients

TB_USER = TB_PASSWORD = "test"  # what thunderbird/logins.json holds
TEMPLATE = Path(__file__).with_name("thunderbird")
SYNC_TIMEOUT = 90.0  # launch to every body stored (measured: ~12 s)
PUSH_TIMEOUT = 30.0  # a change on the server seen by an idle Thunderbird (check_time: 10 min)
QUIT_TIMEOUT = 20.0
T = TypeVar("T")
NOISE = re.compile(r"Gtk-CRITICAL|Gtk-WARNING|glib warning|GLib-GObject|Fontconfig|^\(thunderbird")

# nsMsgMessageFlags
READ, REPLIED, MARKED, OFFLINE = 0x1, 0x2, 0x4, 0x80


def user_js(port: int, marionette_port: int) -> str:
    """One IMAP account (plain socket, cleartext password, keep messages offline) plus
    Local Folders, no wizards or network noise, new-mail polling far slower than the test."""
    prefs: dict[str, Any] = {
        "mail.accountmanager.accounts": "account1,account2",
        "mail.accountmanager.defaultaccount": "account1",
        "mail.accountmanager.localfoldersserver": "server2",
        "mail.account.account1.server": "server1",
        "mail.account.account1.identities": "id1",
        "mail.account.account2.server": "server2",
        "mail.identity.id1.fullName": "Test User",
        "mail.identity.id1.useremail": "test@test.example",
        "mail.identity.id1.valid": True,
        "mail.server.server1.type": "imap",
        "mail.server.server1.hostname": "127.0.0.1",
        "mail.server.server1.port": port,
        "mail.server.server1.userName": TB_USER,
        "mail.server.server1.name": "test@127.0.0.1",
        "mail.server.server1.socketType": 0,  # plain, no STARTTLS
        "mail.server.server1.authMethod": 3,  # cleartext password
        "mail.server.server1.directory-rel": "[ProfD]ImapMail/127.0.0.1",
        "mail.server.server1.login_at_startup": True,
        "mail.server.server1.check_new_mail": True,
        "mail.server.server1.check_time": 10,  # minutes: IDLE, not polling, must push
        "mail.server.server1.check_all_folders_for_new": True,
        "mail.server.server1.offline_download": True,  # "keep messages on this computer"
        "mail.server.server1.autosync_offline_stores": True,
        "mail.server.server2.type": "none",
        "mail.server.server2.hostname": "Local Folders",
        "mail.server.server2.userName": "nobody",
        "mail.server.server2.name": "Local Folders",
        "mail.server.server2.directory-rel": "[ProfD]Mail/Local Folders",
        "mail.provider.enabled": False,
        "mail.shell.checkDefaultClient": False,
        "mailnews.start_page.enabled": False,
        "mail.rights.override": True,
        "mail.rights.version": 1,
        "app.update.enabled": False,
        "app.update.auto": False,
        "app.donation.eoy.version.viewed": 999,
        "datareporting.policy.dataSubmissionEnabled": False,
        "datareporting.healthreport.uploadEnabled": False,
        "toolkit.telemetry.enabled": False,
        "extensions.update.enabled": False,
        "network.captive-portal-service.enabled": False,
        "network.connectivity-service.enabled": False,
        "mail.biff.show_alert": False,
        "mail.biff.play_sound": False,
        "marionette.port": marionette_port,
    }
    return "".join(f'user_pref("{k}", {json.dumps(v)});\n' for k, v in prefs.items())


# Thunderbird's database, per folder: its path ("Café/Ünïcode"), its mbox file, the
# UIDVALIDITY it holds, and for every header [Message-ID without <>, UID, nsMsgMessageFlags].
JS_FOLDERS = r"""
const {MailServices} = ChromeUtils.importESModule("resource:///modules/MailServices.sys.mjs");
const server = MailServices.accounts.getIncomingServer("server1");
const out = {};
for (const f of server.rootFolder.descendants) {
  const names = [];
  for (let p = f; p && !p.isServer; p = p.parent) names.unshift(p.name);
  let uv = null;
  try { uv = f.msgDatabase.dBFolderInfo.getUint32Property("UIDValidity", 0); } catch (e) {}
  const msgs = [];
  for (const h of f.messages) msgs.push([h.messageId, h.messageKey, h.flags]);
  out[names.join("/")] = {file: f.filePath ? f.filePath.path : null, uidvalidity: uv, msgs};
}
return out;
"""

JS_DELETE = r"""
const {MailServices} = ChromeUtils.importESModule("resource:///modules/MailServices.sys.mjs");
const inbox = MailServices.accounts.getIncomingServer("server1").rootFolder
  .getChildNamed("INBOX");
for (const h of inbox.messages) {
  if (h.messageId === arguments[0]) {
    const key = h.messageKey;
    inbox.deleteMessages([h], null, false, false, null, false);  // the user's Delete key
    return key;
  }
}
return null;
"""

JS_MARK_READ = r"""
const {MailServices} = ChromeUtils.importESModule("resource:///modules/MailServices.sys.mjs");
const inbox = MailServices.accounts.getIncomingServer("server1").rootFolder
  .getChildNamed("INBOX");
for (const h of inbox.messages) {
  if (h.messageId === arguments[0]) { inbox.markMessagesRead([h], true); return h.messageKey; }
}
return null;
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mbox_ids(path: Path) -> list[str]:
    """Message-IDs of the messages in a Thunderbird mbox file, in order, with repeats."""
    data = path.read_bytes() if path.exists() else b""
    ids = []
    for msg in re.split(rb"(?m)^From ", data)[1:]:
        match = re.search(rb"(?mi)^Message-ID:\s*(\S+)", msg.split(b"\r\n\r\n", 1)[0])
        ids.append(match.group(1).decode() if match else "<none>")
    return ids


@dataclass
class Thunderbird:
    """A running headless Thunderbird with a Marionette session in chrome context."""

    profile: Path
    proc: subprocess.Popen[bytes]
    log: Path
    mn: Marionette | None = None

    def tail(self, lines: int = 40) -> str:
        """The end of Thunderbird's own log (IMAP protocol, MOZ_LOG) without GTK noise."""
        out = []
        for path in (self.log, self.imap_log):
            text = path.read_text(errors="replace") if path.exists() else ""
            kept = [ln for ln in text.splitlines() if ln.strip() and not NOISE.search(ln)]
            out.append(f"--- {path.name} (last {lines} lines)\n" + "\n".join(kept[-lines:]))
        return "\n".join(out)

    @property
    def imap_log(self) -> Path:
        return self.log.with_name("imap.moz_log")

    def folders(self) -> dict[str, dict[str, Any]]:
        assert self.mn is not None
        result: dict[str, dict[str, Any]] = self.mn.js(JS_FOLDERS)
        return result

    def wait(self, what: str, probe: Callable[[], T | None], timeout: float) -> T:
        """Poll ``probe`` until it returns a value; fail with the store's state and the log
        tail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"thunderbird exited {self.proc.returncode} waiting for {what}\n"
                            f"{self.tail()}", pytrace=False)
            found = probe()
            if found is not None:
                return found
            time.sleep(0.5)
        pytest.fail(f"timeout ({timeout:.0f} s) waiting for {what}\n"
                    f"Thunderbird's folders: {self.summary()}\n{self.tail()}", pytrace=False)

    def summary(self) -> str:
        """Per folder: headers in the database / messages in the mbox file."""
        try:
            folders = self.folders()
        except Exception as exc:  # the report must not hide the real failure
            return f"(marionette: {exc})"
        return ", ".join(
            f"{name}: db {len(info['msgs'])} / mbox "
            f"{len(mbox_ids(Path(info['file']))) if info['file'] else '-'}"
            for name, info in folders.items())

    def stop(self) -> None:
        """Quit through Marionette; kill the process group if it has not exited in time."""
        if self.mn is not None:
            self.mn.quit(QUIT_TIMEOUT)
            self.mn.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(QUIT_TIMEOUT)
        with contextlib.suppress(ProcessLookupError):  # also any child left in its group
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def launch(profile: Path, port: int) -> Thunderbird:
    """A fresh profile from user.js and the stored password; thunderbird --headless."""
    program = shutil.which("thunderbird")
    if program is None:
        pytest.fail("thunderbird is not installed: `apt-get install --no-install-recommends "
                    "thunderbird` (.ci/run installs it in CI)", pytrace=False)
    profile.mkdir()
    for name in ("key4.db", "logins.json"):
        shutil.copy(TEMPLATE / name, profile / name)
    mport = free_port()
    (profile / "user.js").write_text(user_js(port, mport))
    home = profile.parent / "home"  # keeps caches and dotfiles out of the real $HOME
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    log = profile.parent / "thunderbird.log"
    env.update(MOZ_HEADLESS="1", MOZ_REMOTE_ALLOW_SYSTEM_ACCESS="1", HOME=str(home),
               MOZ_LOG="timestamp,sync,IMAP:4", MOZ_LOG_FILE=str(log.with_name("imap.moz_log")))
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [program, "--headless", "--no-remote", "--profile", str(profile), "--marionette",
             "--remote-allow-system-access"],
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    tb = Thunderbird(profile, proc, log)
    try:
        tb.mn = Marionette(mport, connect_timeout=SYNC_TIMEOUT)
        tb.mn.start_chrome()
    except Exception:
        tb.stop()
        raise
    return tb


@contextlib.contextmanager
def running(tmp: Path, port: int) -> Iterator[Thunderbird]:
    """``launch`` on ``tmp/profile``; at the end Thunderbird is quit (or killed) and its
    profile, home and IMAP logs are removed."""
    tb = launch(tmp / "profile", port)
    try:
        yield tb
    finally:
        tb.stop()
        shutil.rmtree(tmp / "profile", ignore_errors=True)
        shutil.rmtree(tmp / "home", ignore_errors=True)
        for log in tmp.glob("imap*.moz_log"):  # ~7 MB; its tail is in a failure report
            log.unlink()


def load_account(host: str, port: int) -> None:
    """fixtures.ACCOUNT APPENDed for the user the stored Thunderbird password belongs to."""
    imap = server_session(host, port)
    try:
        for folder, msgs in ACCOUNT.items():
            if folder != "INBOX":
                typ, data = imap.create(quoted(folder))
                assert typ == "OK" or b"ALREADYEXISTS" in data[0], (folder, data)
                # Thunderbird shows only subscribed folders (LIST (SUBSCRIBED), RFC 5258)
                assert imap.subscribe(quoted(folder))[0] == "OK", folder
            for m in msgs:
                typ, data = imap.append(quoted(folder), "(" + " ".join(m.flags) + ")",
                                        f'"{m.date}"', m.raw)
                assert typ == "OK", (folder, m.index, data)
    finally:
        imap.logout()


def server_session(host: str, port: int) -> imaplib.IMAP4:
    imap = imaplib.IMAP4(host, port, timeout=30)
    imap.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    imap.login(TB_USER, TB_PASSWORD)
    return imap


@pytest.fixture
def tb_node(clustermail_node):
    """A real node with fixtures.ACCOUNT loaded for user ``test``."""
    node = clustermail_node(users=[f"{TB_USER}:{TB_PASSWORD}"])
    load_account(node.host, node.port)
    return node


@pytest.fixture
def thunderbird(tb_node, tmp_path) -> Iterator[Thunderbird]:
    """Thunderbird started on a fresh profile; quit (or killed) and removed at teardown."""
    with running(tmp_path, tb_node.port) as tb:
        yield tb


def synced(tb: Thunderbird) -> dict[str, dict[str, Any]]:
    """Wait until every folder's mbox file holds each fixture Message-ID and its database
    has every header marked Offline (body stored); Thunderbird's database as it is then."""

    def probe() -> dict[str, dict[str, Any]] | None:
        folders = tb.folders()
        for name, msgs in ACCOUNT.items():
            info = folders.get(name)
            if not info or not info["file"] or len(info["msgs"]) < len(msgs):
                return None
            if not all(flags & OFFLINE for _mid, _uid, flags in info["msgs"]):
                return None
            if set(mbox_ids(Path(info["file"]))) != {m.message_id for m in msgs}:
                return None
        return folders

    return tb.wait("the offline sync of every folder", probe, SYNC_TIMEOUT)


def db_flags(msg: Msg) -> int:
    """nsMsgMessageFlags Thunderbird should hold for a fixture message."""
    flags = {"\\Seen": READ, "\\Answered": REPLIED, "\\Flagged": MARKED}
    return sum(bit for name, bit in flags.items() if name in msg.flags)


def test_thunderbird_full_offline_sync(thunderbird):
    """Every message of every folder (the non-ASCII ones too) is in Thunderbird's mbox store
    and its database exactly once, body stored offline, with the server's flags."""
    folders = synced(thunderbird)
    for name, msgs in ACCOUNT.items():
        expected = {m.message_id: m for m in msgs}
        stored = Counter(mbox_ids(Path(folders[name]["file"])))
        assert stored == Counter(list(expected)), (name, stored - Counter(list(expected)))
        headers = {f"<{mid}>": (uid, flags) for mid, uid, flags in folders[name]["msgs"]}
        assert len(headers) == len(folders[name]["msgs"]) == len(msgs), name
        assert set(headers) == set(expected), name
        for mid, (_uid, flags) in headers.items():
            assert flags & OFFLINE, (name, mid, "body not stored offline")
            mask = READ | REPLIED | MARKED
            assert flags & mask == db_flags(expected[mid]), (name, mid, hex(flags))


NEW_MAIL = (b"From: Push <push@example.org>\r\nTo: test@test.example\r\n"
            b"Subject: pushed by IDLE\r\nMessage-ID: <idle-push@x.test>\r\n"
            b"Date: Sun, 01 Mar 2026 10:00:00 +0000\r\n\r\nnew mail while Thunderbird idles\r\n")


def inbox_flags(tb: Thunderbird, message_id: str) -> int | None:
    """nsMsgMessageFlags of ``message_id`` in Thunderbird's INBOX database (None: absent)."""
    for mid, _uid, flags in tb.folders()["INBOX"]["msgs"]:
        if f"<{mid}>" == message_id:
            return int(flags)
    return None


def test_thunderbird_idle_push_and_flags_both_ways(thunderbird, tb_node):
    """With Thunderbird idle, a message APPENDed and flags changed by another session reach
    its database by IDLE push (polling is 10 min); a message it marks read gets \\Seen; a
    message it deletes leaves the server's INBOX."""
    synced(thunderbird)
    msgs = ACCOUNT["INBOX"]
    flag_me, unseen_me, read_me = msgs[1], msgs[0], msgs[4]
    assert not flag_me.flags and unseen_me.seen and not read_me.seen
    imap = server_session(tb_node.host, tb_node.port)
    try:
        assert imap.append("INBOX", None, None, NEW_MAIL)[0] == "OK"

        def pushed() -> bool | None:  # in the database and its body in the mbox file
            inbox = thunderbird.folders()["INBOX"]
            in_db = any(mid == "idle-push@x.test" for mid, _uid, _flags in inbox["msgs"])
            in_mbox = "<idle-push@x.test>" in mbox_ids(Path(inbox["file"]))
            return True if in_db and in_mbox else None

        thunderbird.wait("the APPENDed message pushed by IDLE", pushed, PUSH_TIMEOUT)

        uid = {mid: u for mid, (u, _f) in server_state(imap, "INBOX").items()}
        imap.select("INBOX")
        assert imap.uid("STORE", str(uid[flag_me.message_id]), "+FLAGS", "(\\Flagged)")[0] == "OK"
        assert imap.uid("STORE", str(uid[unseen_me.message_id]), "-FLAGS", "(\\Seen)")[0] == "OK"
        imap.unselect()

        def pushed_flags() -> bool | None:
            flagged = inbox_flags(thunderbird, flag_me.message_id) or 0
            unseen = inbox_flags(thunderbird, unseen_me.message_id) or READ
            return True if flagged & MARKED and not unseen & READ else None

        thunderbird.wait("\\Flagged and -\\Seen pushed by IDLE", pushed_flags, PUSH_TIMEOUT)

        assert thunderbird.mn is not None
        key = thunderbird.mn.js(JS_MARK_READ, read_me.message_id.strip("<>"))
        assert key == uid[read_me.message_id], key

        def server_seen() -> bool | None:
            return True if "\\Seen" in server_state(imap, "INBOX")[read_me.message_id][1] else None

        thunderbird.wait("Thunderbird's mark-read STOREd as \\Seen", server_seen, PUSH_TIMEOUT)

        gone = msgs[5]
        assert thunderbird.mn.js(JS_DELETE, gone.message_id.strip("<>")) is not None

        def server_expunged() -> bool | None:  # moved to Trash: no longer in the server's INBOX
            return True if gone.message_id not in server_state(imap, "INBOX") else None

        thunderbird.wait("Thunderbird's delete expunged from the server's INBOX",
                         server_expunged, PUSH_TIMEOUT)
    finally:
        imap.logout()
