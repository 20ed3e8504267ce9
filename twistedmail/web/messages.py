"""Messages for and from the HTTP API: building one from JSON fields (stdlib ``email``),
summarising a stored one, checking recipient lists; and the API's error type.

Invariants:
  * A built message is RFC 5322 with CRLF line ends (``policy.SMTP``), has Date and
    Message-ID, and UTF-8 text is MIME-encoded by ``email`` (RFC 2047 / RFC 2045);
    a header value with a line break is refused (no header injection).
  * Summaries never fail on a malformed stored message: headers that cannot be
    decoded are given as "".
"""

from __future__ import annotations

import datetime as dt
import email.utils
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

MAX_RECIPIENTS = 100
SUMMARY_HEADERS = ("subject", "from", "to", "cc", "date", "message-id")
CONTENT_FIELDS = ("from", "cc", "subject", "text", "html", "headers", "date")


class ApiError(Exception):
    """An API refusal: HTTP ``status`` and the JSON ``{"error": error, **extra}``."""

    def __init__(self, status: int, error: str, headers: tuple[tuple[str, str], ...] = (),
                 retry_after: int | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.headers = headers
        self.retry_after = retry_after
        self.extra = extra or {}


def str_list(value: Any, name: str) -> list[str]:
    """``value`` as a list of strings (a string alone is a list of one); None is []."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ApiError(400, f"{name} must be a string or a list of strings")


def recipients_of(value: Any) -> list[str]:
    """The recipient addresses (``user[+folder][@domain]``), 1..MAX_RECIPIENTS."""
    recipients = [r.strip() for r in str_list(value, "to") if r.strip()]
    if not recipients:
        raise ApiError(400, "say who gets the message: to (one address or a list)")
    if len(recipients) > MAX_RECIPIENTS:
        raise ApiError(400, f"at most {MAX_RECIPIENTS} recipients")
    return recipients


def _header(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string")
    if "\r" in value or "\n" in value:
        raise ApiError(400, f"{name} must be one line")
    return value


def build_message(body: dict[str, Any], node_name: str) -> bytes:
    """The RFC 5322 bytes for the JSON fields of a send request (see the OpenAPI doc)."""
    if "raw" in body:
        return _raw(body)
    msg = EmailMessage()
    msg["From"] = _header(body.get("from", f"twistedmail-api@{node_name}"), "from")
    msg["To"] = ", ".join(_header(r, "to") for r in recipients_of(body.get("to")))
    cc = str_list(body.get("cc"), "cc")
    if cc:
        msg["Cc"] = ", ".join(_header(r, "cc") for r in cc)
    msg["Subject"] = _header(body.get("subject", ""), "subject")
    msg["Date"] = _header(body.get("date", email.utils.format_datetime(
        dt.datetime.now(dt.UTC))), "date")
    msg["Message-ID"] = email.utils.make_msgid(domain=node_name or None)
    headers = body.get("headers") or {}
    if not isinstance(headers, dict):
        raise ApiError(400, "headers must be an object of name: value")
    for name, value in headers.items():
        if not name or any(c in name for c in ": \r\n"):
            raise ApiError(400, f"bad header name {name!r}")
        msg[name] = _header(value, f"header {name}")
    text, html = body.get("text"), body.get("html")
    if text is None and html is None:
        text = ""
    if text is not None:
        msg.set_content(_text(text, "text"))
    if html is not None:
        if text is None:
            msg.set_content(_text(html, "html"), subtype="html")
        else:
            msg.add_alternative(_text(html, "html"), subtype="html")
    try:
        return msg.as_bytes(policy=policy.SMTP)
    except (ValueError, TypeError, UnicodeError) as err:
        raise ApiError(400, f"cannot build the message: {err}") from None


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string")
    return value


def _raw(body: dict[str, Any]) -> bytes:
    """``{"raw": "<RFC 5322 text>"}``: the text as UTF-8 with CRLF line ends."""
    extra = [f for f in CONTENT_FIELDS if f in body]
    if extra:
        raise ApiError(400, f"raw is the whole message: drop {', '.join(extra)}")
    raw = _text(body["raw"], "raw")
    return raw.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def message_summary(record: Any) -> dict[str, Any]:
    """UID, size, flags, internal date and the main headers of a stored message."""
    summary: dict[str, Any] = {
        "uid": record.uid, "size": record.size, "flags": sorted(record.flags),
        "internaldate": record.internaldate.isoformat()}
    summary.update(_headers(record.blob.data))
    return summary


def _headers(data: bytes) -> dict[str, str]:
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    try:
        msg = BytesParser(policy=policy.default).parsebytes(head, headersonly=True)
    except Exception:  # noqa: BLE001 - a malformed message still gets a summary
        return {name.replace("-", "_"): "" for name in SUMMARY_HEADERS}
    out = {}
    for name in SUMMARY_HEADERS:
        try:
            value = msg.get(name)
            out[name.replace("-", "_")] = "" if value is None else str(value)
        except Exception:  # noqa: BLE001 - undecodable header
            out[name.replace("-", "_")] = ""
    return out
