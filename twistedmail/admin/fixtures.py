"""Admin channel commands of ``clustermail import`` / ``clustermail export`` (issue 6
item 2): the AMP commands and their node-side responders (mixed into AdminProtocol).

    FixturesImport(user, batch_json) -> {"imported", "created", "bytes"}
        batch_json: {"folders": [...], "messages": [{"folder", "flags", "date",
        "source", "data": base64}]}; applied by twistedmail/fixtures/load.py.
    FixturesExport(user, folder?, cursor_json?, max_bytes?) -> one page:
        {"folders": [[name, relative path]], "messages": [{"folder", "uid",
        "uidvalidity", "flags", "date", "size", "data": base64}], "next": cursor|null}

Invariants:
  * Part of admin protocol version 1 (commands.PROTOCOL_VERSION): new commands only;
    an older node answers them with AMP's "unhandled command", which the client
    reports in one line.
  * Batches and pages may exceed AMP's 65535-byte value limit: ``BigBytes`` splits a
    value over keys ``name``, ``name.0``, ``name.1``, ... (count in ``name``).
  * A batch is imported whole (durable in a cluster) or not at all (load.py); every
    refusal is one line: UnknownMailFile (no such account), BadArguments (bad input,
    mail file held elsewhere) or AdminError (cluster unavailable, not durable).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.protocols import amp
from twisted.python.failure import Failure

from twistedmail.admin import commands as c

CHUNK = 0xFFFF  # AMP's longest value (twisted.protocols.amp.MAX_VALUE_LENGTH)
MAX_CHUNKS = 4096  # ~256 MiB: a bound on what one peer may make us buffer
DEFAULT_PAGE = 4 * 1024 * 1024


class BigBytes(amp.Argument):
    """Bytes (or str, sent UTF-8) of any length, split over several AMP keys."""

    def toBox(self, name: bytes, strings: dict[bytes, bytes], objects: dict[str, Any],
              proto: Any) -> None:
        value = objects[name.decode()]
        data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        chunks = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]
        strings[name] = str(len(chunks)).encode()
        for n, chunk in enumerate(chunks):
            strings[name + b".%d" % n] = chunk

    def fromBox(self, name: bytes, strings: dict[bytes, bytes], objects: dict[str, Any],
                proto: Any) -> None:
        count = strings.get(name, b"")
        if not count.isdigit() or not 0 < int(count) <= MAX_CHUNKS:
            raise c.BadArguments(f"{name.decode()}: malformed chunk count {count[:20]!r}")
        try:
            objects[name.decode()] = b"".join(strings[name + b".%d" % n]
                                              for n in range(int(count)))
        except KeyError:
            raise c.BadArguments(f"{name.decode()}: a chunk is missing") from None


class FixturesImport(amp.Command):
    """Create folders and append a batch of messages to ``user``'s mail file."""

    arguments = [(b"user", amp.Unicode()), (b"batch_json", BigBytes()),
                 (b"admin_user", amp.Unicode(optional=True)),
                 (b"admin_password", amp.Unicode(optional=True))]
    response = [(b"result_json", BigBytes())]
    errors = c.ERRORS


class FixturesExport(amp.Command):
    """One page of ``user``'s messages (``folder`` and its inferiors, or all)."""

    arguments = [(b"user", amp.Unicode()), (b"folder", amp.Unicode(optional=True)),
                 (b"cursor_json", amp.Unicode(optional=True)),
                 (b"max_bytes", amp.Integer(optional=True)),
                 (b"admin_user", amp.Unicode(optional=True)),
                 (b"admin_password", amp.Unicode(optional=True))]
    response = [(b"result_json", BigBytes())]
    errors = c.ERRORS


COMMANDS: dict[str, type[amp.Command]] = {"fixtures-import": FixturesImport,
                                          "fixtures-export": FixturesExport}


# --- node side -------------------------------------------------------------------------------


def _admin_error(err: Exception) -> c.AdminError:
    kind = getattr(err, "kind", "bad")
    if kind == "unknown":
        return c.UnknownMailFile(str(err))
    if kind == "unavailable":
        return c.AdminError(str(err))
    return c.BadArguments(str(err))


def parse_batch(raw: bytes) -> tuple[list[str], list[Any]]:
    """(folders, Items) of a batch document; BadArguments if malformed."""
    from twistedmail.fixtures.reader import Item

    try:
        doc = json.loads(raw)
        folders = [str(f) for f in doc.get("folders", [])]
        items = [Item(str(m["folder"]), base64.b64decode(m["data"], validate=True),
                      frozenset(str(f) for f in m.get("flags", [])), _date(m.get("date")),
                      str(m.get("source", "message")))
                 for m in doc.get("messages", [])]
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error) as err:
        raise c.BadArguments(f"malformed import batch ({type(err).__name__}: "
                             f"{str(err)[:100]})") from None
    return folders, items


def _date(text: Any) -> dt.datetime:
    if not text:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    when = dt.datetime.fromisoformat(str(text))
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


class FixturesResponders(amp.CommandLocator):
    """Responders of FixturesImport / FixturesExport (mixed into AdminProtocol)."""

    node: Any
    _run: Callable[..., Deferred[dict[str, Any]]]

    @FixturesImport.responder
    def fixtures_import(self, user: str, batch_json: bytes, admin_user: str | None = None,
                        admin_password: str | None = None) -> Deferred[dict[str, Any]]:
        from twistedmail.fixtures.load import LoadError, load_batch

        def act() -> Deferred[dict[str, Any]]:
            folders, items = parse_batch(batch_json)

            def refused(f: Failure) -> Failure:
                if f.check(LoadError):
                    return Failure(_admin_error(f.value))  # type: ignore[arg-type]
                return f

            d = load_batch(self.node, user, items, folders)
            return d.addCallbacks(lambda r: {"result_json": json.dumps(r, sort_keys=True)},
                                  refused)

        return self._run(f"import {user} ({len(batch_json)} bytes)", admin_user,
                         admin_password, act)

    @FixturesExport.responder
    def fixtures_export(self, user: str, folder: str | None = None,
                        cursor_json: str | None = None, max_bytes: int | None = None,
                        admin_user: str | None = None,
                        admin_password: str | None = None) -> Deferred[dict[str, Any]]:
        from twistedmail.fixtures.load import LoadError, export_page

        def act() -> dict[str, Any]:
            cursor = _cursor(cursor_json)
            limit = max(1, min(max_bytes or DEFAULT_PAGE, 64 * 1024 * 1024))
            try:
                meta, data = export_page(self.node, user, folder, cursor, limit)
            except LoadError as err:
                raise _admin_error(err) from None
            offset = 0
            for m in meta["messages"]:
                m["data"] = base64.b64encode(data[offset:offset + m["size"]]).decode()
                offset += m["size"]
            return {"result_json": json.dumps(meta, sort_keys=True)}

        where = f" --folder {folder}" if folder else ""
        return self._run(f"export {user}{where}", admin_user, admin_password, act)


def _cursor(text: str | None) -> tuple[str, int] | None:
    if not text:
        return None
    try:
        name, uid = json.loads(text)
        return str(name), int(uid)
    except (ValueError, TypeError):
        raise c.BadArguments(f"malformed export cursor {text[:80]!r}") from None
