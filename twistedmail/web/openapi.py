"""The OpenAPI 3.1 document of the HTTP API (served at ``/api/openapi.json``).

Invariants:
  * It describes exactly ``twistedmail.web.api.ROUTES``: every documented operation
    is a route and every route is documented (tests/web/test_openapi.py checks both,
    validates the document with openapi-spec-validator and every answer of the tests
    against the documented status codes and schemas).
  * Paths are relative to the server URL ``/api/v1``.
"""

from __future__ import annotations

from typing import Any

SERVER = "/api/v1"
JSON = "application/json"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("twistedmail")
    except PackageNotFoundError:
        return "0"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


def _str(description: str = "") -> dict[str, Any]:
    return {"type": "string", **({"description": description} if description else {})}


INT = {"type": "integer"}
STRINGS = {"type": "array", "items": {"type": "string"}}
STR_OR_LIST = {"oneOf": [{"type": "string"}, STRINGS]}

SCHEMAS: dict[str, Any] = {
    "Error": _obj(["error"], error=_str("what went wrong, one line"),
                  code=_str("delivery refusal code, e.g. NONEXISTENT, TOOBIG, UNAVAILABLE"),
                  delivered={"type": "array", "items": _ref("Delivery")}),
    "Account": _obj(["name", "login", "account", "enabled"], name=_str(),
                    login={"type": "boolean", "description": "can log in on this node"},
                    account={"type": "boolean", "description": "its mail file is here"},
                    enabled={"type": "boolean", "description": "IMAP enabled (convert)"}),
    "AccountList": _obj(["node", "accounts"], node=_str(),
                        accounts={"type": "array", "items": _ref("Account")}),
    "NewAccount": _obj(["name", "password"], name=_str(), password=_str()),
    "AccountCreated": _obj(["node", "user", "created"], node=_str(), user=_str(),
                           created={"type": "boolean",
                                    "description": "false: it existed, password reset"}),
    "AccountDeleted": _obj(["node", "user", "deleted"], node=_str(), user=_str(),
                           deleted={"type": "boolean"}),
    "AccountReset": _obj(["node", "user", "messages_removed", "mailboxes_deleted"],
                         node=_str(), user=_str(), messages_removed=INT,
                         mailboxes_deleted=STRINGS),
    "Mailbox": _obj(["name", "messages", "unseen", "recent", "size", "uidvalidity",
                     "uidnext", "special_use"], name=_str(), messages=INT, unseen=INT,
                    recent=INT, size=INT, uidvalidity=INT, uidnext=INT, special_use=STRINGS),
    "MailboxList": _obj(["user", "mailboxes"], user=_str(),
                        mailboxes={"type": "array", "items": _ref("Mailbox")}),
    "MessageSummary": _obj(["uid", "size", "flags", "internaldate", "subject", "from", "to",
                            "cc", "date", "message_id"],
                           uid=INT, size=INT, flags=STRINGS,
                           internaldate={"type": "string", "format": "date-time"},
                           subject=_str(), **{"from": _str()}, to=_str(), cc=_str(),
                           date=_str(), message_id=_str()),
    "MessageList": _obj(["user", "mailbox", "total", "offset", "messages"], user=_str(),
                        mailbox=_str(), total=INT, offset=INT,
                        messages={"type": "array", "items": _ref("MessageSummary")}),
    "Purged": _obj(["user", "mailbox", "messages_removed"], user=_str(), mailbox=_str(),
                   messages_removed=INT),
    "NewMessage": {
        "type": "object", "required": ["to"],
        "description": "Either the fields (from, cc, subject, text, html, headers, date), "
                       "built into a MIME message by Python's email package, or raw.",
        "properties": {
            "to": {**STR_OR_LIST, "description": "user[+folder][@domain], one or a list"},
            "from": _str("default twistedmail-api@<node>"), "cc": STR_OR_LIST,
            "subject": _str(), "text": _str("text/plain body"),
            "html": _str("text/html body (with text: multipart/alternative)"),
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "date": _str("RFC 5322 date (default now)"),
            "flags": STRINGS,
            "raw": _str("the whole RFC 5322 message (instead of the fields)")}},
    "Delivery": _obj(["recipient", "user", "mailbox", "uidvalidity", "uid", "node"],
                     recipient=_str(), user=_str(), mailbox=_str(), uidvalidity=INT, uid=INT,
                     node=_str("the node that stored it")),
    "Sent": _obj(["delivered", "size"], size=INT,
                 delivered={"type": "array", "items": _ref("Delivery")}),
    "ClusterStatus": {"type": "object", "required": ["node"],
                      "description": "The status page's data, as /status.json.",
                      "properties": {"node": _str()}},
}

ERRORS = {
    "400": "bad request (the error says what)",
    "401": "missing or wrong bearer token (WWW-Authenticate: Bearer)",
    "403": "no token configured on the node: the API is off",
    "404": "no such account, mailbox, message or recipient",
    "405": "method not allowed here (Allow lists those that are)",
    "409": "the mail file is held on other nodes (the error names them), or refused",
    "413": "body or message over the size limit",
    "415": "wrong Content-Type",
    "422": "delivery refused for good",
    "503": "not now (cluster not ready, too few replicas): retry after Retry-After seconds",
}


def _answer(description: str, schema: str, content_type: str = JSON) -> dict[str, Any]:
    return {"description": description, "content": {content_type: {"schema": _ref(schema)}}}


def _op(summary: str, ok: dict[str, Any], errors: str, **extra: Any) -> dict[str, Any]:
    """One operation: the success answers ``ok`` and the error codes listed."""
    responses = dict(ok)
    for code in ["400", "401", "403", *errors.split()]:
        responses[code] = {**_answer(ERRORS[code], "Error")}
        if code == "503":
            responses[code]["headers"] = {"Retry-After": {"schema": INT}}
    return {"summary": summary, "responses": responses, **extra}


def _param(name: str, description: str, where: str = "path", **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path",
            "description": description, "schema": schema or {"type": "string"}}


NAME = _param("name", "account (user) name")
MAILBOX = _param("mailbox", "mailbox name, '/' as %2F: Lists%2FWork")
UID = _param("uid", "message UID", type="integer", minimum=1)


def _json_body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": _ref(schema)}}}


PATHS: dict[str, Any] = {
    "/accounts": {
        "get": _op("Logins and mail files on this node",
                   {"200": _answer("the accounts", "AccountList")}, ""),
        "post": _op("Create an account (or reset its password), as clustermail users add",
                    {"201": _answer("created", "AccountCreated"),
                     "200": _answer("existed: password reset", "AccountCreated")},
                    "409 415 503", requestBody=_json_body("NewAccount")),
    },
    "/accounts/{name}": {
        "parameters": [NAME],
        "delete": _op("Remove the login on this node; the mail file stays "
                      "(clustermail users del)",
                      {"200": _answer("deleted", "AccountDeleted")}, "404"),
    },
    "/accounts/{name}/reset": {
        "parameters": [NAME],
        "post": _op("Empty every folder and delete all but INBOX and the special-use ones",
                    {"200": _answer("reset", "AccountReset")}, "404 409 503"),
    },
    "/accounts/{name}/mailboxes": {
        "parameters": [NAME],
        "get": _op("Mailboxes with their counts",
                   {"200": _answer("the mailboxes", "MailboxList")}, "404 409"),
    },
    "/accounts/{name}/mailboxes/{mailbox}/messages": {
        "parameters": [NAME, MAILBOX],
        "get": _op("Message summaries in UID order",
                   {"200": _answer("the messages", "MessageList")}, "404 409",
                   parameters=[_param("limit", "at most this many (default 100)", "query",
                                      type="integer", minimum=1, maximum=1000),
                               _param("offset", "skip this many", "query", type="integer",
                                      minimum=0)]),
        "delete": _op("Purge: expunge every message of the mailbox",
                      {"200": _answer("purged", "Purged")}, "404 409 503"),
    },
    "/accounts/{name}/mailboxes/{mailbox}/messages/{uid}": {
        "parameters": [NAME, MAILBOX, UID],
        "get": _op("One message as stored",
                   {"200": {"description": "the message",
                            "content": {"message/rfc822": {"schema": {"type": "string"}}}}},
                   "404 409"),
    },
    "/messages": {
        "post": _op(
            "Send (inject) a message through the delivery path (as LMTP/SMTP)",
            {"201": _answer("delivered to every recipient", "Sent")},
            "404 413 415 422 503",
            parameters=[_param("to", "recipient (message/rfc822 bodies), repeatable",
                               "query"),
                        _param("flag", "flag to set, repeatable (message/rfc822)", "query")],
            requestBody={"required": True, "content": {
                JSON: {"schema": _ref("NewMessage")},
                "message/rfc822": {"schema": {"type": "string"}}}}),
    },
    "/cluster/status": {
        "get": _op("The node's and the cluster's status (as /status.json)",
                   {"200": _answer("the status", "ClusterStatus")}, ""),
    },
}


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "twistedmail HTTP API", "version": _version(),
                 "description": "Accounts, mailboxes, messages and cluster status of a "
                                "twistedmail node. Every operation needs "
                                "'Authorization: Bearer <token>' (--http-token)."},
        "servers": [{"url": SERVER}],
        "security": [{"bearer": []}],
        "paths": PATHS,
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
