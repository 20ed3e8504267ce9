"""Stored password forms (twistedmail/passwords.py), the checker using them, the
settings keeping no plaintext, and ``clustermail hash-password`` (issue 7 item 3)."""

from __future__ import annotations

import io
import types

import pytest
import scramp
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher

from twistedmail.admin.secrets_cli import run_hash_password
from twistedmail.auth import PasswordChecker, ScramKeys
from twistedmail.config import ConfigError, NodeSettings, settings_from
from twistedmail.imap.scram import ScramServer
from twistedmail.node import Node
from twistedmail.passwords import BadPasswordHash, check_stored_form, hash_password

PASSWORD = "Corr3ct-H0rse"


def result(d):
    """The result of an already-fired Deferred (its failure raised)."""
    out: list = []
    d.addBoth(out.append)
    if hasattr(out[0], "raiseException"):
        out[0].raiseException()
    return out[0]


def scram_login(checker: PasswordChecker, user: str, password: str) -> str:
    """A full SCRAM-SHA-256 exchange by an independent client (scramp)."""
    client = scramp.ScramClient(["SCRAM-SHA-256"], user, password)
    server = ScramServer(checker.scram_salt)
    client.set_server_first(server.first(client.get_client_first().encode()).decode())
    return result(checker.requestAvatarId(server.final(client.get_client_final().encode())))


def test_scram_form_serves_plain_and_scram() -> None:
    """A SCRAM-SHA-256$ form: LOGIN and SCRAM both work; the wrong password fails both."""
    stored = hash_password(PASSWORD, iterations=4096)
    assert stored.startswith("SCRAM-SHA-256$4096:") and PASSWORD not in stored
    checker = PasswordChecker({"alice": stored})
    assert result(checker.requestAvatarId(UsernamePassword(b"alice", PASSWORD.encode()))) \
        == "alice"
    assert scram_login(checker, "alice", PASSWORD) == "alice"
    with pytest.raises(UnauthorizedLogin):
        result(checker.requestAvatarId(UsernamePassword(b"alice", b"wrong")))
    with pytest.raises(UnauthorizedLogin):
        scram_login(checker, "alice", "wrong")
    assert checker.stored_form("alice") == stored


def test_scrypt_form_serves_plain_only() -> None:
    """A scrypt$ form: LOGIN works, a wrong password fails, SCRAM fails even when right."""
    stored = hash_password(PASSWORD, scheme="scrypt")
    assert stored.startswith("scrypt$15$8$1$") and PASSWORD not in stored
    checker = PasswordChecker({"carol": stored})
    assert result(checker.requestAvatarId(UsernamePassword(b"carol", PASSWORD.encode()))) \
        == "carol"
    with pytest.raises(UnauthorizedLogin):
        result(checker.requestAvatarId(UsernamePassword(b"carol", b"Corr3ct-H0rsE")))
    with pytest.raises(UnauthorizedLogin):
        scram_login(checker, "carol", PASSWORD)


@pytest.mark.parametrize("value, problem", [
    ("SCRAM-SHA-256$4096:c2FsdA==", "SCRAM-SHA-256$<iterations>"),
    ("SCRAM-SHA-256$12:c2FsdA==$" + "A" * 43 + "=" + ":" + "A" * 43 + "=", "iterations must be"),
    ("SCRAM-SHA-256$4096:c2FsdA==$QUFB:QUFB", "32 bytes"),
    ("SCRAM-SHA-256$4096:!!$" + "A" * 43 + "=" + ":" + "A" * 43 + "=", "not base64"),
    ("scrypt$15$8$1$c2FsdA==", "scrypt form is"),
    ("scrypt$40$8$1$c2FsdA==$aGFzaA==", "log2 n must be"),
    ("scrypt$15$64$64$c2FsdA==$aGFzaA==", "r * p"),
])
def test_malformed_stored_forms_refused(value: str, problem: str) -> None:
    """A value claiming a hashed form must parse; the error is one line naming the fault."""
    with pytest.raises(BadPasswordHash, match=problem.replace("$", r"\$").replace("*", r"\*")):
        check_stored_form(value)


def test_config_rejects_bad_hash_with_key(tmp_path) -> None:
    """[users] alice = "scrypt$garbage" is a ConfigError naming users.alice."""
    path = tmp_path / "c.toml"
    path.write_text('[users]\nalice = "scrypt$garbage"\n')
    with pytest.raises(ConfigError, match=r"^users\.alice: scrypt form is"):
        settings_from({"config": str(path)})


def test_node_settings_keep_no_plaintext() -> None:
    """After the node is built, settings.users holds stored forms only, which still log in;
    the plaintext ones are named (never shown) in one warning."""
    lines: list[str] = []
    observer = lambda event: lines.append(formatEvent(event))  # noqa: E731
    globalLogPublisher.addObserver(observer)
    try:
        node = Node(NodeSettings(users={"alice": PASSWORD, "bob": hash_password("b0b-pw")}),
                    reactor=Clock())
    finally:
        globalLogPublisher.removeObserver(observer)
    assert PASSWORD not in repr(vars(node.settings))
    assert all(v.startswith("SCRAM-SHA-256$") for v in node.settings.users.values())
    assert result(node.authenticate("alice", PASSWORD)) == "alice"
    assert result(node.authenticate("bob", "b0b-pw")) == "bob"
    warned = [line for line in lines if "configured in plaintext" in line]
    assert len(warned) == 1 and "(alice)" in warned[0] and PASSWORD not in "".join(lines)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_hash_password_reads_stdin_not_argv() -> None:
    """hash-password prints a stored form of the stdin line that checks against it."""
    out = io.StringIO()
    args = types.SimpleNamespace(scrypt=False, iterations=4096)
    assert run_hash_password(args, out, io.StringIO(PASSWORD + "\n")) == 0
    stored = out.getvalue().strip()
    keys = ScramKeys.decode(stored)
    assert ScramKeys.derive(PASSWORD, keys.salt, 4096).stored_key == keys.stored_key


def test_hash_password_tty_prompts_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal the password is typed twice without echo; a mismatch is refused."""
    from twistedmail.admin.actions import UsageError

    answers = iter(["one", "two"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    args = types.SimpleNamespace(scrypt=True, iterations=None)
    with pytest.raises(UsageError, match="the two passwords differ"):
        run_hash_password(args, io.StringIO(), _Tty())


def test_hash_password_has_no_password_argument() -> None:
    """The command line cannot carry the password (argv is visible in ps)."""
    from twistedmail.admin.actions import UsageError
    from twistedmail.admin.cli import build_parser

    with pytest.raises(UsageError):
        build_parser().parse_args(["hash-password", "secret"])
