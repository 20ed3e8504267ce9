"""``clustermail import`` / ``clustermail export`` (issue 6 item 2); the node side is
twistedmail/admin/fixtures.py.

    clustermail --node n1 import USER PATH [--folder F]   .eml, mbox, Maildir trees
    clustermail --node n1 export USER DIR [--folder F]    Maildir, flags in the names

Invariants:
  * The files are read and checked here first (twistedmail/fixtures/reader.py): bad
    input is one line, exit status 1, before anything reaches the node.
  * An import goes in batches (bounded in bytes and messages); each is imported
    whole or not at all and, in a cluster, answered only once durable.  On a refusal
    the error line says how many messages of earlier batches are in (never "ok").
  * An export writes only into a new or empty DIR, page by page.
  * A progress bar (tqdm, on stdout) appears on long runs, only when stdout is a tty.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from twistedmail.admin.client import AdminClient, AdminClientError
from twistedmail.fixtures.reader import FixtureError, Item, Tree, read_path

BATCH_BYTES = 2 * 1024 * 1024
BATCH_MESSAGES = 500
MAX_PAGES = 1_000_000  # bound on an export's pages (each at least one message)


def add_commands(commands: Any, run: Any = None) -> None:
    """``import`` and ``export`` on the admin subparsers object."""
    imp = commands.add_parser(
        "import", help="load .eml files, mbox files and Maildir trees into an account",
        description="Read PATH (a file, or a directory tree: subdirectories and mbox files "
                    "are folders, Maildir flags come from ':2,<flags>' names) and append "
                    "its messages to USER's folders on the node, creating missing folders.")
    imp.add_argument("user", metavar="USER")
    imp.add_argument("path", metavar="PATH")
    imp.add_argument("--folder", metavar="F",
                     help="the folder PATH maps to (default: the account root; a single "
                          "file, and a tree's own messages, go to INBOX)")
    imp.add_argument("--batch-bytes", type=int, default=BATCH_BYTES, metavar="N",
                     help=f"bytes of mail per request (default {BATCH_BYTES})")
    imp.set_defaults(run=run_import, admin_command="fixtures-import")
    exp = commands.add_parser(
        "export", help="write an account's folders as Maildir (flags in the file names)",
        description="Write USER's folders (or --folder F and its inferiors) as Maildir "
                    "directories under DIR (new or empty): folder A/B at DIR/A/B.")
    exp.add_argument("user", metavar="USER")
    exp.add_argument("dir", metavar="DIR")
    exp.add_argument("--folder", metavar="F",
                     help="only F (written at DIR) and its inferiors (at DIR/<sub>)")
    exp.set_defaults(run=run_export, admin_command="fixtures-export")


def _one_target(args: argparse.Namespace, verb: str) -> str:
    from twistedmail.admin import actions

    if getattr(args, "all_nodes", False):
        raise actions.UsageError(f"{verb} talks to one node (the cluster replicates): "
                                 "say --node NAME or --admin ENDPOINT, not --all-nodes")
    return actions.targets(args)[0].endpoint


def _client(args: argparse.Namespace, client: AdminClient | None) -> AdminClient:
    from twistedmail.admin import actions

    return client or actions.make_client(args)


def progress(out: TextIO, total: int, unit: str) -> Any:
    """A tqdm bar on ``out`` when it is a tty (shown after 1 s), else a silent stand-in."""
    isatty = getattr(out, "isatty", None)
    if isatty is None or not isatty():
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, file=out, delay=1.0, leave=False,
                dynamic_ncols=True)


class _NoBar:
    def update(self, n: int = 1) -> None:
        return None

    def close(self) -> None:
        return None


# --- import ------------------------------------------------------------------------------------


def batches(tree: Tree, limit: int) -> Iterator[list[Item]]:
    """The items in order, cut into batches of at most ``limit`` bytes (one message
    at least) and BATCH_MESSAGES messages."""
    batch: list[Item] = []
    size = 0
    for item in tree.items:
        if batch and (size + len(item.data) > limit or len(batch) >= BATCH_MESSAGES):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += len(item.data)
    if batch:
        yield batch


def batch_json(folders: Sequence[str], items: Sequence[Item]) -> bytes:
    """The FixturesImport document of one batch."""
    return json.dumps({"folders": list(folders), "messages": [
        {"folder": i.folder, "flags": sorted(i.flags), "date": i.date.isoformat(),
         "source": i.source, "data": base64.b64encode(i.data).decode()} for i in items
    ]}).encode()


def run_import(args: argparse.Namespace, out: TextIO = sys.stdout,
               client: AdminClient | None = None) -> int:
    """Read PATH, then send it batch by batch; print one summary line."""
    from twistedmail.fixtures.load import LoadError, check_flags, check_folder

    endpoint = _one_target(args, "import")
    if args.batch_bytes < 1:
        raise AdminClientError("--batch-bytes: must be at least 1")
    try:
        tree = read_path(args.path, args.folder)
        for folder in tree.folders:
            check_folder(folder)
        for item in tree.items:
            check_flags(item.flags, item.source)
    except (FixtureError, LoadError) as err:
        raise AdminClientError(f"import: {err}") from None
    client = _client(args, client)
    total, done, created, node = len(tree.items), 0, 0, "?"
    parts = list(batches(tree, args.batch_bytes)) or [[]]
    bar = progress(out, total, "msg")
    try:
        for n, batch in enumerate(parts):
            folders = tree.folders if n == 0 else []
            try:
                answer = client.call(endpoint, "fixtures-import", user=args.user,
                                     batch_json=batch_json(folders, batch))
            except AdminClientError as err:
                kept = f"{done} of {total} message(s) imported by earlier batches; " \
                    if done else "nothing imported; "
                raise AdminClientError(f"import {args.user}: {err} ({kept}batch {n + 1} of "
                                       f"{len(parts)} not imported)") from None
            node = answer.node
            done += int(answer.result.get("imported", 0))
            created += len(answer.result.get("created", []))
            bar.update(len(batch))
    finally:
        bar.close()
    filled = len({i.folder for i in tree.items})
    print(f"{node}: import {args.user}: {done} message(s) into {filled} folder(s), "
          f"{created} folder(s) created", file=out)
    return 0


# --- export ------------------------------------------------------------------------------------


def run_export(args: argparse.Namespace, out: TextIO = sys.stdout,
               client: AdminClient | None = None) -> int:
    """Page through USER's messages and write them as Maildir under DIR."""
    from twistedmail.fixtures.writer import MaildirWriter

    endpoint = _one_target(args, "export")
    root = Path(args.dir)
    try:
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise AdminClientError(f"export: {root} is not an empty directory (export "
                                   "writes into a new or empty one)")
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise AdminClientError(f"export: {root}: {err.strerror or err}") from None
    client = _client(args, client)
    writer = MaildirWriter(root)
    cursor: str | None = None
    written, node, bar = 0, "?", _NoBar()
    relative: dict[str, str] = {}
    try:
        for _ in range(MAX_PAGES):
            extra = {"folder": args.folder} if args.folder else {}
            if cursor is not None:
                extra["cursor_json"] = cursor
            answer = client.call(endpoint, "fixtures-export", user=args.user, **extra)
            node, page = answer.node, answer.result
            if not relative:
                relative = {name: rel for name, rel in page.get("folders", [])}
                for rel in relative.values():
                    writer.folder(rel)
                bar = progress(out, 0, "msg")
            for m in page.get("messages", []):
                writer.write(relative[m["folder"]], base64.b64decode(m["data"]),
                             frozenset(m["flags"]), dt.datetime.fromisoformat(m["date"]),
                             f"{m['uidvalidity']}_{m['uid']}")
                written += 1
                bar.update(1)
            if page.get("next") is None:
                break
            cursor = json.dumps(page["next"])
        writer.close()
    except (FixtureError, AdminClientError) as err:
        raise AdminClientError(f"export {args.user}: {err} ({written} message(s) written "
                               f"to {root} before)") from None
    finally:
        bar.close()
    dropped = f"; {writer.dropped_keywords} keyword(s) over 26 a folder not kept" \
        if writer.dropped_keywords else ""
    print(f"{node}: export {args.user}: {written} message(s) in {len(relative)} folder(s) "
          f"written to {root}{dropped}", file=out)
    return 0
