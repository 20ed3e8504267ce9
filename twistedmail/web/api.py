"""The JSON HTTP API under ``/api/v1`` (issue 6 item 3): accounts, mailboxes,
messages, send (inject) and cluster status.  Routes are in ``ROUTES``; the OpenAPI
document (twistedmail/web/openapi.py) describes exactly these.

Invariants:
  * Every answer is JSON (``{"error": "..."}`` on failure) with a fitting status, except
    a raw message download (``message/rfc822``); never a traceback: an unexpected
    exception is logged with its traceback and answered 500 "internal error".
  * Authorisation first (twistedmail/web/auth.py), then routing (404 no route, 405 with
    ``Allow``), then the body limit (413, twistedmail/web/service.py ``LimitedRequest``).
  * Account create / delete reuse the admin channel's node-side functions
    (twistedmail/admin/mailfiles.py ``MailFiles``): a login is per node, the account's
    folders replicate to the holders of its mail file exactly as ``clustermail users``.
  * Writes (create, reset, purge) in a cluster need a ready node that holds the mail
    file (else 409 naming the holders) and ``check_writable``; they answer once
    ``cluster.durable(user)`` fired, else 503 + ``Retry-After`` (each is idempotent,
    so retrying is safe).
  * Every write (not GET) is one ``admin.command`` event (twistedmail/observe/events.py),
    command ``http METHOD PATH``, with its result; no token or body is logged.
  * Send goes through ``twistedmail.delivery.deliver.deliver`` only: its temporary
    refusals -> 503 + Retry-After, permanent ones -> 4xx (404 unknown recipient or
    folder, 413 too big, 422 otherwise).  Every recipient is checked before any
    delivery.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import resource, server

from twistedmail.web import auth
from twistedmail.web.messages import (
    ApiError,
    build_message,
    message_summary,
    recipients_of,
    str_list,
)

log = Logger()
RETRY_AFTER = 30  # seconds a client should wait after a 503 (RFC 9110 §10.2.3)
MAX_LIMIT = 1000
STANDARD_FOLDERS = frozenset({"INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"})


@dataclass(frozen=True)
class Raw:
    """A non-JSON answer: bytes and their content type."""

    data: bytes
    content_type: str


@dataclass
class Call:
    """One API request as the handlers see it."""

    node: Any
    request: Any
    params: dict[str, str]

    def query(self, name: str) -> list[str]:
        """Every value of query parameter ``name``."""
        raw = self.request.uri.split(b"?", 1)
        if len(raw) < 2:
            return []
        values = parse_qs(raw[1].decode("utf-8", "replace"), keep_blank_values=True)
        return values.get(name, [])

    def body(self) -> bytes:
        """The request body."""
        content = self.request.content
        content.seek(0)
        data: bytes = content.read()
        return data

    def content_type(self) -> str:
        """The media type of the body, lower-case, without parameters."""
        value = self.request.getHeader(b"content-type") or b""
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        return text.split(";", 1)[0].strip().lower()

    def json(self) -> dict[str, Any]:
        """The body as a JSON object, else 400 / 415."""
        if self.content_type() not in ("application/json", ""):
            raise ApiError(415, "send the body as application/json")
        try:
            value = json.loads(self.body() or b"{}")
        except (ValueError, UnicodeDecodeError) as err:
            raise ApiError(400, f"the body is not valid JSON ({err})") from None
        if not isinstance(value, dict):
            raise ApiError(400, "the body must be a JSON object")
        return value


Handler = Callable[[Call], Any]


@dataclass(frozen=True)
class Route:
    """``method`` on ``/api/v1/<path>``; ``{name}`` segments become ``Call.params``."""

    method: str
    path: str
    handler: Handler

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.path.strip("/").split("/"))

    def match(self, segments: list[str]) -> dict[str, str] | None:
        """The path parameters if ``segments`` fit this route's path, else None."""
        mine = self.segments
        if len(mine) != len(segments):
            return None
        params: dict[str, str] = {}
        for pattern, value in zip(mine, segments, strict=True):
            if pattern.startswith("{"):
                if not value:
                    return None
                params[pattern[1:-1]] = value
            elif pattern != value:
                return None
        return params


# --- helpers ------------------------------------------------------------------------


def _mailfiles(node: Any) -> Any:
    from twistedmail.admin.mailfiles import MailFiles

    return MailFiles.of(node)


def _admin_call(action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run a MailFiles action; its AdminErrors become 404 / 400."""
    from twistedmail.admin.commands import AdminError, UnknownMailFile

    try:
        return action()
    except UnknownMailFile as err:
        raise ApiError(404, str(err)) from None
    except AdminError as err:
        raise ApiError(400, str(err)) from None


def _spec(node: Any) -> Any:
    return getattr(node.settings, "cluster", None)


def _require_holder(node: Any, user: str) -> None:
    """409 when this cluster node does not hold ``user``'s mail file."""
    spec = _spec(node)
    if spec is not None and not spec.holds(user):
        raise ApiError(409, f"the mail file of {user} is not held on node "
                            f"{spec.me.name}; ask one of: {', '.join(spec.holders(user))}")


def _account(node: Any, user: str) -> str:
    """``user`` if its mail file is here (404 unknown, 409 held elsewhere)."""
    if user.startswith("#"):
        raise ApiError(404, f"no account {user!r}")
    _require_holder(node, user)
    if not node.store.has_account(user):
        raise ApiError(404, f"no account {user!r} on node {node.settings.node_name}")
    return user


def _mailbox(node: Any, user: str, name: str) -> Any:
    from twistedmail.store import StoreError

    _account(node, user)
    try:
        return node.store.mailbox(user, name)
    except StoreError:
        raise ApiError(404, f"no mailbox {name!r} for {user}") from None


def _check_writable(node: Any, user: str) -> None:
    """503 when the cluster cannot take a write for ``user`` now."""
    cluster = getattr(node, "cluster", None)
    if cluster is None:
        return
    if not cluster.ready:
        raise ApiError(503, f"node not ready: {cluster.reason or 'catching up'}",
                       retry_after=RETRY_AFTER)
    try:
        cluster.check_writable(user)
    except Exception as err:  # noqa: BLE001 - ClusterUnavailable: retry later
        raise ApiError(503, str(err) or "the cluster cannot take writes now",
                       retry_after=RETRY_AFTER) from None


def _when_durable(node: Any, user: str, answer: Any) -> Any:
    """``answer`` once the change is on enough replicas (at once without a cluster)."""
    cluster = getattr(node, "cluster", None)
    if cluster is None:
        return answer
    d: Deferred[Any] = cluster.durable(user)

    def failed(f: Failure) -> None:
        raise ApiError(503, f"{f.getErrorMessage() or 'too few replicas'}: applied on node "
                            f"{node.settings.node_name} but not yet confirmed by enough "
                            "replicas; retrying is safe", retry_after=RETRY_AFTER)

    return d.addCallbacks(lambda _: answer, failed)


def _apply(node: Any, op: Any) -> None:
    from twistedmail.store import StoreError

    try:
        node.store.apply(op)
    except StoreError as err:
        raise ApiError(409, str(err) or "refused by the store") from None


# --- handlers -------------------------------------------------------------------------


def list_accounts(call: Call) -> dict[str, Any]:
    """GET /accounts: logins and mail files on this node (``clustermail users list``)."""
    listing = _mailfiles(call.node).users_list()
    return {"node": listing["node"], "accounts": listing["users"]}


def create_account(call: Call) -> Any:
    """POST /accounts: a login here and the account (``clustermail users add``)."""
    body = call.json()
    name, password = body.get("name"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str):
        raise ApiError(400, 'send {"name": "...", "password": "..."}')
    _require_holder(call.node, name)
    _check_writable(call.node, name)
    result = _admin_call(lambda: _mailfiles(call.node).users_add(name, password))
    status = 201 if result.get("created") else 200
    return _when_durable(call.node, name, (status, result))


def delete_account(call: Call) -> dict[str, Any]:
    """DELETE /accounts/{name}: the login here goes, the mail file stays
    (``clustermail users del``)."""
    name = call.params["name"]
    return _admin_call(lambda: _mailfiles(call.node).users_del(name))


def reset_account(call: Call) -> Any:
    """POST /accounts/{name}/reset: as freshly created: every message expunged,
    folders other than INBOX and the standard special-use ones deleted."""
    from twistedmail.store import DeleteMailbox, Expunge

    node, user = call.node, _account(call.node, call.params["name"])
    _check_writable(node, user)
    deleted, removed = [], 0
    boxes = sorted(node.store.mailboxes(user), key=lambda b: b.name.count("/"), reverse=True)
    for box in boxes:
        if box.name in STANDARD_FOLDERS:
            uids = tuple(box.uids())
            if uids:
                _apply(node, Expunge(user, box.name, uids))
                removed += len(uids)
        else:
            removed += len(box.uids())
            _apply(node, DeleteMailbox(user, box.name))
            deleted.append(box.name)
    answer = {"node": node.settings.node_name, "user": user, "messages_removed": removed,
              "mailboxes_deleted": sorted(deleted)}
    return _when_durable(node, user, answer)


def list_mailboxes(call: Call) -> dict[str, Any]:
    """GET /accounts/{name}/mailboxes: every folder with its counts."""
    user = _account(call.node, call.params["name"])
    boxes = [{"name": b.name, "messages": len(b), "unseen": b.unseen_count(),
              "recent": len(b.recent_uids), "size": b.total_size,
              "uidvalidity": b.uidvalidity, "uidnext": b.uidnext,
              "special_use": sorted(b.special_use)}
             for b in sorted(call.node.store.mailboxes(user), key=lambda b: b.name)]
    return {"user": user, "mailboxes": boxes}


def list_messages(call: Call) -> dict[str, Any]:
    """GET /accounts/{name}/mailboxes/{mailbox}/messages: summaries in UID order."""
    box = _mailbox(call.node, call.params["name"], call.params["mailbox"])
    limit = _int_param(call, "limit", 100, 1, MAX_LIMIT)
    offset = _int_param(call, "offset", 0, 0, 2**31)
    uids = box.uids()[offset:offset + limit]
    return {"user": box.user, "mailbox": box.name, "total": len(box), "offset": offset,
            "messages": [message_summary(box.record(uid)) for uid in uids]}


def get_message(call: Call) -> Raw:
    """GET .../messages/{uid}: the message as stored (message/rfc822)."""
    box = _mailbox(call.node, call.params["name"], call.params["mailbox"])
    try:
        uid = int(call.params["uid"])
    except ValueError:
        raise ApiError(400, f"bad UID {call.params['uid']!r}") from None
    record = box.get(uid)
    if record is None:
        raise ApiError(404, f"no message with UID {uid} in {box.name}")
    return Raw(record.blob.data, "message/rfc822")


def purge_mailbox(call: Call) -> Any:
    """DELETE /accounts/{name}/mailboxes/{mailbox}/messages: expunge every message."""
    from twistedmail.store import Expunge

    box = _mailbox(call.node, call.params["name"], call.params["mailbox"])
    _check_writable(call.node, box.user)
    uids = tuple(box.uids())
    if uids:
        _apply(call.node, Expunge(box.user, box.name, uids))
    answer = {"user": box.user, "mailbox": box.name, "messages_removed": len(uids)}
    return _when_durable(call.node, box.user, answer)


def send_message(call: Call) -> Deferred[Any]:
    """POST /messages: deliver a raw RFC 5322 body (message/rfc822, recipients in
    ``?to=``) or a message built from JSON fields, to every recipient."""
    if call.content_type() == "message/rfc822":
        recipients = recipients_of(call.query("to"))
        flags = tuple(call.query("flag"))
        data = _crlf(call.body())
    else:
        body = call.json()
        recipients = recipients_of(body.get("to"))
        flags = tuple(str_list(body.get("flags"), "flags"))
        data = build_message(body, call.node.settings.node_name)
    return _deliver_all(call.node, recipients, data, flags)


def cluster_status(call: Call) -> dict[str, Any]:
    """GET /cluster/status: the status page's data (``/status.json``)."""
    from twistedmail.web.status import status_data

    return status_data(call.node)


ROUTES: tuple[Route, ...] = (
    Route("GET", "accounts", list_accounts),
    Route("POST", "accounts", create_account),
    Route("DELETE", "accounts/{name}", delete_account),
    Route("POST", "accounts/{name}/reset", reset_account),
    Route("GET", "accounts/{name}/mailboxes", list_mailboxes),
    Route("GET", "accounts/{name}/mailboxes/{mailbox}/messages", list_messages),
    Route("DELETE", "accounts/{name}/mailboxes/{mailbox}/messages", purge_mailbox),
    Route("GET", "accounts/{name}/mailboxes/{mailbox}/messages/{uid}", get_message),
    Route("POST", "messages", send_message),
    Route("GET", "cluster/status", cluster_status),
)


def _int_param(call: Call, name: str, default: int, low: int, high: int) -> int:
    values = call.query(name)
    if not values:
        return default
    try:
        value = int(values[-1])
    except ValueError:
        raise ApiError(400, f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}")
    return value


def _crlf(data: bytes) -> bytes:
    """Bare LF line ends as CRLF (RFC 5322 §2.1), as an SMTP server would store them."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@inlineCallbacks
def _deliver_all(node: Any, recipients: list[str], data: bytes, flags: tuple[str, ...]
                 ) -> Generator[Deferred[Any], Any, tuple[int, dict[str, Any]]]:
    """Check every recipient, then deliver to each in turn (see Invariants)."""
    from twistedmail.delivery.deliver import DeliveryError, check_recipient, deliver

    try:
        for address in recipients:
            check_recipient(node, address)
    except DeliveryError as err:
        raise _delivery_error(err, []) from None
    done: list[dict[str, Any]] = []
    for address in recipients:
        try:
            where = yield deliver(node, address, data, flags)
        except DeliveryError as err:
            raise _delivery_error(err, done) from None
        done.append({"recipient": address, "user": where.user, "mailbox": where.mailbox,
                     "uidvalidity": where.uidvalidity, "uid": where.uid, "node": where.node})
    return 201, {"delivered": done, "size": len(data)}


def _delivery_error(err: Any, done: list[dict[str, Any]]) -> ApiError:
    extra = {"delivered": done, "code": err.code}
    if err.temporary:
        return ApiError(503, err.text, retry_after=RETRY_AFTER, extra=extra)
    status = {"NONEXISTENT": 404, "TOOBIG": 413}.get(err.code or "", 422)
    return ApiError(status, err.text, extra=extra)


# --- the resource -----------------------------------------------------------------------


class ApiResource(resource.Resource):
    """``/api/v1``: authorisation, routing and JSON answers (see Invariants)."""

    isLeaf = True

    def __init__(self, node: Any, routes: tuple[Route, ...] = ROUTES) -> None:
        super().__init__()
        self.node = node
        self.routes = routes

    def render(self, request: Any) -> bytes | int:
        try:
            answer = self._dispatch(request)
        except Exception:  # noqa: BLE001 - one JSON error, logged (Invariants)
            return self._fail(request, Failure())
        if isinstance(answer, Deferred):
            finished = request.notifyFinish()
            gone: list[bool] = []
            finished.addErrback(lambda _: gone.append(True))
            answer.addCallback(lambda a: gone or self._finish(request, self._write(request, a)))
            answer.addErrback(lambda f: gone or self._finish(request, self._fail(request, f)))
            return server.NOT_DONE_YET
        return self._write(request, answer)

    def _dispatch(self, request: Any) -> Any:
        refusal = auth.check(self.node.settings.http_token, request.getHeader(b"authorization"))
        if refusal is not None:
            raise ApiError(refusal.status, refusal.error, headers=refusal.headers)
        segments = [s.decode("utf-8", "replace") for s in request.postpath]
        while segments and not segments[-1]:
            segments.pop()
        method = request.method.decode("ascii", "replace").upper()
        method = "GET" if method == "HEAD" else method
        allowed = []
        for route in self.routes:
            params = route.match(segments)
            if params is None:
                continue
            if route.method != method:
                allowed.append(route.method)
                continue
            if getattr(request, "body_too_big", False):
                limit = getattr(request, "body_limit", 0)
                raise ApiError(413, f"the request body is over the {limit} byte limit")
            return route.handler(Call(self.node, request, params))
        if allowed:
            raise ApiError(405, f"{method} is not allowed here (allowed: "
                                f"{', '.join(sorted(set(allowed)))})",
                           headers=(("Allow", ", ".join(sorted(set(allowed)))),))
        raise ApiError(404, "no such API route (see /api/openapi.json)")

    def _write(self, request: Any, answer: Any) -> bytes:
        status = 200
        if isinstance(answer, tuple):
            status, answer = answer
        _note(self.node, request, "ok")
        if isinstance(answer, Raw):
            request.setResponseCode(status)
            request.setHeader(b"content-type", answer.content_type.encode())
            return answer.data
        return json_answer(request, status, answer)

    def _fail(self, request: Any, f: Failure) -> bytes:
        if f.check(ApiError):
            err: ApiError = f.value  # type: ignore[assignment]
            for name, value in err.headers:
                request.setHeader(name.encode(), value.encode())
            if err.retry_after is not None:
                request.setHeader(b"retry-after", str(err.retry_after).encode())
            result = "denied" if err.status in (401, 403) else "error"
            _note(self.node, request, result, f"{err.status} {err.error}")
            return json_answer(request, err.status, {"error": err.error, **err.extra})
        log.failure("HTTP API {method} {path}: internal error", f,
                    method=request.method, path=request.path)
        _note(self.node, request, "internal error", str(f.value).splitlines()[0][:200])
        return json_answer(request, 500, {"error": "internal error (logged on the node)"})

    @staticmethod
    def _finish(request: Any, data: bytes) -> None:
        request.write(data)
        request.finish()


def _note(node: Any, request: Any, result: str, error: str | None = None) -> None:
    """One ``admin.command`` event per API write (GETs are in the access log only)."""
    from twistedmail.observe.events import event, peer_of

    if request.method in (b"GET", b"HEAD"):
        return
    command = f"http {request.method.decode('ascii', 'replace')} " \
              f"{request.path.decode('utf-8', 'replace')}"
    event("admin.command", command=command, caller=f"http api from {peer_of(request.transport)}",
          role="none" if result == "denied" else "api-token", result=result, error=error,
          node=node.settings.node_name)


def json_answer(request: Any, status: int, value: Any) -> bytes:
    """Set the status and JSON content type; the encoded body."""
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps(value, sort_keys=True).encode("utf-8") + b"\n"
