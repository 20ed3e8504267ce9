"""The admin subcommands of ``clustermail`` (admin contract, issue 4): parsing,
picking the target nodes, running a command on them and printing the answers.

    clustermail [--admin ENDPOINT | --node NAME [--config FILE]] [--all-nodes] COMMAND
    COMMAND: convert -e- MAILFILE | convert -e MAILFILE | status [--json]
             | users add NAME PASSWORD | users del NAME | users passwd NAME PASSWORD
             | users list [--json] | set-root N | load convert ... | console

Invariants:
  * Every failure is a one-line :class:`AdminClientError` (exit status 1) or a
    :class:`UsageError` (bad arguments, exit status 2); never a traceback.
  * ``--all-nodes`` runs the command on every node of the config, one after the
    other, and succeeds only if every node confirmed; the error names the nodes
    that did not (and why), after the confirmations were printed.
  * A node's admin endpoint: ``--admin``; else ``admin`` of its ``[[node]]`` table;
    else ``unix:clustermail-<name>.admin``.  Relative UNIX paths are resolved
    against ``--dir``, else the config file's directory, else the working directory.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TextIO

from twistedmail.admin.client import AdminClient, AdminClientError, Answer, Credentials

DEFAULT_DIR = "clustermail-local"
DEFAULT_CONFIG = "cluster.toml"
PASSWORD_ENV = "CLUSTERMAIL_ADMIN_PASSWORD"


class UsageError(Exception):
    """Bad command-line arguments (exit status 2)."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one-line :class:`UsageError` s."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see: {self.prog} --help)")


@dataclass(frozen=True)
class Target:
    """One node to talk to: its name (from the config, or "" if not known yet)."""

    name: str
    endpoint: str


# --- parsing --------------------------------------------------------------------------


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """The global options choosing the node(s) and how to reach them."""
    g = parser.add_argument_group("admin target (for the admin commands)")
    g.add_argument("--admin", metavar="ENDPOINT",
                   help="the node's admin endpoint: unix:PATH, tcp:HOST:PORT, ssl:HOST:PORT")
    g.add_argument("--node", metavar="NAME", help="the node NAME of the config")
    g.add_argument("--config", metavar="FILE",
                   help=f"the cluster config (default DIR/{DEFAULT_CONFIG} if it exists)")
    g.add_argument("--dir", dest="admin_dir", metavar="DIR", default=None,
                   help=f"where relative admin sockets and the config are (default the "
                        f"config's directory, else ./{DEFAULT_DIR} if it exists)")
    g.add_argument("--all-nodes", action="store_true",
                   help="run the command on every node of the config")
    g.add_argument("--admin-user", metavar="NAME", help="admin name (TCP/TLS endpoints)")
    g.add_argument("--admin-password", metavar="PASSWORD",
                   help=f"admin password (TCP/TLS; or set ${PASSWORD_ENV})")
    g.add_argument("--cacert", metavar="PEM", help="CA certificate of an ssl: endpoint")
    g.add_argument("--admin-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="per node bound on connect + command (default 10)")


def add_admin_commands(commands: Any) -> None:
    """convert, status, users, set-root and load, on a subparsers object."""
    convert = commands.add_parser(
        "convert", help="disable (-e-) or re-enable (-e) IMAP for a mail file",
        description="convert -e- MAILFILE: IMAP disabled for the mail file on the node. "
                    "convert -e MAILFILE: new UIDVALIDITY for every folder from the node's "
                    "current root, UIDs renumbered 1..n, IMAP enabled again.")
    mode = convert.add_mutually_exclusive_group(required=True)
    mode.add_argument("-e-", dest="disable", action="store_true", help="disable IMAP")
    mode.add_argument("-e", dest="enable", action="store_true",
                      help="regenerate UIDVALIDITY and enable IMAP")
    convert.add_argument("mailfile", metavar="MAILFILE",
                         help=r"the account: alice, alice.nsf, mail\alice.nsf or mail/alice.nsf")
    convert.set_defaults(run=run_admin, admin_command="convert")

    status = commands.add_parser("status", help="members, state, roots, folders' UIDVALIDITY")
    status.add_argument("--json", action="store_true", help="print the node's JSON answer")
    status.set_defaults(run=run_admin, admin_command="status")

    users = commands.add_parser("users", help="accounts on the node: add, del, passwd, list")
    actions = users.add_subparsers(dest="users_action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="create an account (its folders replicate)")
    add.add_argument("name", metavar="NAME")
    add.add_argument("password", metavar="PASSWORD")
    add.set_defaults(run=run_admin, admin_command="users-add")
    delete = actions.add_parser("del", help="remove an account's login (mail is kept)")
    delete.add_argument("name", metavar="NAME")
    delete.set_defaults(run=run_admin, admin_command="users-del")
    passwd = actions.add_parser("passwd", help="change an account's password")
    passwd.add_argument("name", metavar="NAME")
    passwd.add_argument("password", metavar="PASSWORD")
    passwd.set_defaults(run=run_admin, admin_command="users-passwd")
    listing = actions.add_parser("list", help="the accounts and whether IMAP is enabled")
    listing.add_argument("--json", action="store_true", help="print the node's JSON answer")
    listing.set_defaults(run=run_admin, admin_command="users-list")

    root = commands.add_parser(
        "set-root", help="store a new UIDVALIDITY root byte (used at the next convert -e)")
    root.add_argument("root", metavar="N", type=int, help="the root byte, 0-255")
    root.set_defaults(run=run_admin, admin_command="set-root")

    load = commands.add_parser(
        "load", help=r"Domino console form: load convert -e- mail\alice.nsf")
    load.add_argument("task", metavar="TASK", help="convert")
    load.add_argument("rest", nargs=argparse.REMAINDER, metavar="ARGS")
    load.set_defaults(run=run_load)
    from twistedmail.admin import referrals_cli

    referrals_cli.add_commands(commands, run_admin)
    from twistedmail.admin import fixtures_cli

    fixtures_cli.add_commands(commands)
    from twistedmail.admin import secrets_cli

    secrets_cli.add_commands(commands, run_admin)  # tls reload (issue 7)


def command_parser(prog: str = "") -> Parser:
    """A parser of the admin commands alone (the console parses each line with it)."""
    parser = Parser(prog=prog or "clustermail", add_help=False)
    add_admin_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return parser


def run_load(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """``load convert ...``: the Domino console form of ``convert``."""
    if args.task.lower() != "convert":
        raise UsageError(f"load: unknown task {args.task!r} (only convert is known)")
    sub = command_parser("clustermail load").parse_args(["convert", *args.rest])
    merged = argparse.Namespace(**{**vars(args), **vars(sub)})
    return run_admin(merged, out)


def split_line(line: str) -> list[str]:
    """Shell-like words of a console line, backslashes kept (``mail\\alice.nsf``)."""
    lexer = shlex.shlex(line, posix=True)
    lexer.whitespace_split = True
    lexer.escape = ""
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError as err:
        raise UsageError(f"{err}") from None


# --- targets ----------------------------------------------------------------------------


def _config_path(args: argparse.Namespace) -> Path | None:
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise AdminClientError(f"--config: no such file {path}")
        return path
    for directory in (args.admin_dir, DEFAULT_DIR):
        if directory and (Path(directory) / DEFAULT_CONFIG).is_file():
            return Path(directory) / DEFAULT_CONFIG
    return None


def _node_tables(path: Path) -> list[dict[str, Any]]:
    try:
        cfg = tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise AdminClientError(f"--config: cannot read {path} ({err})") from None
    raw = cfg.get("node", [])
    tables = [raw] if isinstance(raw, dict) else raw
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise AdminClientError(f"--config: {path}: node must be a [node] or [[node]] table")
    named = [t for t in tables if isinstance(t.get("name"), str)]
    if not named:
        raise AdminClientError(f"--config: {path} names no node")
    return named


def base_dir(args: argparse.Namespace) -> Path:
    """Where relative UNIX socket paths are: --dir, the config's directory, or cwd."""
    if args.admin_dir:
        return Path(args.admin_dir).resolve()
    config = _config_path(args)
    return config.resolve().parent if config else Path.cwd()


def targets(args: argparse.Namespace) -> list[Target]:
    """The node(s) the command goes to (see the module's Invariants)."""
    if args.admin:
        if args.all_nodes:
            raise UsageError("--admin names one node; --all-nodes takes every node of --config")
        return [Target(args.node or "", args.admin)]
    config = _config_path(args)
    if config is None:
        if args.node and not args.all_nodes:
            return [Target(args.node, f"unix:clustermail-{args.node}.admin")]
        raise UsageError("say which node: --admin ENDPOINT, --node NAME [--config FILE] or "
                         "--all-nodes --config FILE")
    nodes = [Target(t["name"], str(t.get("admin") or f"unix:clustermail-{t['name']}.admin"))
             for t in _node_tables(config)]
    if args.all_nodes:
        return nodes
    if args.node:
        chosen = [n for n in nodes if n.name == args.node]
        if not chosen:
            known = ", ".join(n.name for n in nodes)
            raise AdminClientError(f"--node: no node named {args.node!r} in {config} "
                                   f"(known: {known})")
        return chosen
    if len(nodes) == 1:
        return nodes
    raise UsageError(f"{config} has {len(nodes)} nodes: say --node NAME or --all-nodes")


def make_client(args: argparse.Namespace) -> AdminClient:
    """An AdminClient with the credentials and bounds of the command line."""
    password = args.admin_password or os.environ.get(PASSWORD_ENV) or None
    return AdminClient(timeout=args.admin_timeout, base=base_dir(args), cacert=args.cacert,
                       credentials=Credentials(args.admin_user, password))


# --- running ----------------------------------------------------------------------------


def request(args: argparse.Namespace) -> tuple[str, dict[str, Any], str]:
    """(client command, AMP arguments, words for messages) of parsed ``args``."""
    command = args.admin_command
    if command == "convert":
        flag = "-e" if args.enable else "-e-"
        return command, {"mailfile": args.mailfile, "enable": bool(args.enable)}, \
            f"convert {flag} {args.mailfile}"
    if command == "set-root":
        return command, {"root": args.root}, f"set-root {args.root}"
    if command in ("users-add", "users-passwd"):
        words = f"users {command[6:]} {args.name}"
        return command, {"name": args.name, "password": args.password}, words
    if command == "users-del":
        return command, {"name": args.name}, f"users del {args.name}"
    if command.startswith(("referrals-", "sites-")):
        from twistedmail.admin import referrals_cli

        return referrals_cli.request(args)
    return command, {}, command.replace("-", " ")


def run_admin(args: argparse.Namespace, out: TextIO = sys.stdout,
              client: AdminClient | None = None) -> int:
    """Run the parsed admin command on its target node(s); print each answer."""
    command, arguments, words = request(args)
    nodes = targets(args)
    client = client or make_client(args)
    failed: list[str] = []
    for node in nodes:
        try:
            answer = client.call(node.endpoint, command, **arguments)
        except AdminClientError as err:
            if len(nodes) == 1:
                raise
            failed.append(f"{node.name} ({err})")
            continue
        if node.name and answer.node != node.name:
            failed.append(f"{node.name} (its admin endpoint answers as node {answer.node})")
            continue
        print(render(args, answer, words), file=out)
    if failed:
        raise AdminClientError(f"{words}: not confirmed by {len(failed)} of {len(nodes)} "
                               f"node(s): {'; '.join(failed)}")
    return 0


# --- output -----------------------------------------------------------------------------


def render(args: argparse.Namespace, answer: Answer, words: str) -> str:
    """The text printed for one node's answer."""
    result = answer.result
    if getattr(args, "json", False):
        return json.dumps(result, indent=1, sort_keys=True)
    if not isinstance(result, dict):
        return f"{answer.node}: {words}: {json.dumps(result)}"
    head = f"{answer.node}: {words}: "
    command = args.admin_command
    if command.startswith(("referrals-", "sites-")):
        from twistedmail.admin import referrals_cli

        return referrals_cli.render(answer.node, command, result, head)
    if command == "status":
        return render_status(answer.node, result)
    if command == "users-list":
        return render_users(answer.node, result)
    if command == "convert" and result.get("enabled"):
        folders = result.get("folders", [])
        lines = [head + f"IMAP enabled; {len(folders)} folder(s) regenerated, "
                 f"{result.get('sessions_closed', 0)} session(s) told to select again"]
        rows = [{"folder": f.get("name"), "uidvalidity": f.get("uidvalidity"),
                 "root": f.get("root"), "counter": f.get("counter"),
                 "messages": f.get("messages")} for f in folders]
        return "\n".join(lines + (table(rows, "  ") if rows else []))
    if command == "convert":
        return head + (f"IMAP disabled for mail file {result.get('mailfile')}; "
                       f"{result.get('sessions_closed', 0)} session(s) closed")
    if command == "set-root":
        pending = ", ".join(result.get("pending") or []) or "none"
        return head + (f"root {result.get('previous')} -> {result.get('root')}; "
                       f"mail files still on an older root (run convert -e): {pending}")
    if command == "users-add":
        return head + ("created" if result.get("created", True) else "password reset")
    return head + "ok"


def render_users(node: str, result: dict[str, Any]) -> str:
    """``users list``: one account a line: login, mail file, IMAP state on the node."""
    users = [u if isinstance(u, dict) else {"name": u} for u in result.get("users", [])]
    rows = [{"name": u.get("name", "?"), "login": u.get("login", True),
             "mail file": u.get("account", True),
             "imap": "enabled" if u.get("enabled", not u.get("disabled")) else "disabled"}
            for u in users]
    return "\n".join([f"{node}: {len(users)} account(s)", *(table(rows, "  ") if rows else [])])


def render_status(node: str, result: dict[str, Any]) -> str:
    """``status``: the node's state and roots, its members, every folder decoded."""
    root, configured = result.get("root"), result.get("configured_root")
    roots = f"root {root}" + (f" (configured {configured})" if configured != root else "")
    reason = f" ({result['reason']})" if result.get("reason") else ""
    lines = [f"node {node}: {result.get('state', '?')}{reason}, {roots}"]
    pending = result.get("pending") or []
    if pending:
        lines.append(f"older root, applied at their next convert -e: {', '.join(pending)}")
    relay = result.get("relay")
    if relay:
        sends_to = ", ".join(relay.get("sends_to") or []) or "nobody (no live peer)"
        lines.append(f"changes sent at once to: {sends_to} (fanout {relay.get('fanout')})")
    members = result.get("members") or {}
    if members:
        lines.append("members:")
        rows = [{"node": name, **{k: v for k, v in info.items() if k != "incarnation"}}
                for name, info in members.items()]
        lines += table(rows, "  ")
    for user, account in (result.get("accounts") or {}).items():
        state = "IMAP disabled" if account.get("disabled") else "IMAP enabled"
        lines.append(f"mail file {user}: {state}")
        rows = [{"folder": f.get("name"), "uidvalidity": f.get("uidvalidity"),
                 "root": f.get("root"), "counter": f.get("counter"),
                 "messages": f.get("messages"), "uidnext": f.get("uidnext")}
                for f in account.get("folders", [])]
        lines += table(rows, "  ") if rows else ["  (no folders)"]
    return "\n".join(lines)


def table(rows: Sequence[dict[str, Any]], indent: str = "") -> list[str]:
    """Aligned columns (the union of the records' keys, in first-seen order)."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    cells = [[c.upper() for c in columns]] + [[_cell(r.get(c, "")) for c in columns]
                                              for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
            for line in cells]


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)
