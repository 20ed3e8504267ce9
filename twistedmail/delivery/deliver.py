"""Putting one message into a mailbox from outside IMAP: LMTP, SMTP, the HTTP API's
"send", fixtures (issue 6).  The one place that decides where mail goes and when it is
safe to say "delivered".

Invariants:
  * Same durability rule as APPEND (DESIGN.md §4): the Deferred fires only once
    ``ack_replicas`` nodes hold the message (``node.cluster.durable``); otherwise the
    message is expunged again and the failure is temporary (``DeliveryError.temporary``),
    so an SMTP/LMTP sender retries.  Nothing is ever half-delivered.
  * Permanent refusals (unknown user, no such folder, too big, empty) are
    ``DeliveryError`` with ``temporary=False`` and a one-line text.
  * ``user+folder`` addressing: ``split_recipient("bob+Lists/Work@x")`` ->
    ("bob", "Lists/Work"); a missing folder is a permanent refusal, never created.
  * A mail file this node does not hold (cluster ``[accounts]`` placement) is delivered
    on the first reachable holder in cost order by an IMAP APPEND over the proxy login
    (twistedmail/cluster/proxy.py), with that node's durability; unreachable: temporary.
  * Past the node's memory ceiling (twistedmail/limits.py) a delivery is refused as
    temporary with code "NOMEMORY" (SMTP/LMTP 452 4.3.1, HTTP 503): retried, never lost.
  * No Twisted import beyond Deferred/inlineCallbacks; no IMAP session is needed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.logger import Logger

from twistedmail.store import Append, Expunge, MessagesAdded, StoreError

log = Logger()
INBOX = "INBOX"


class DeliveryError(Exception):
    """A refused delivery: ``temporary`` (retry later, 4xx) or permanent (5xx)."""

    def __init__(self, text: str, temporary: bool = False, code: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.temporary = temporary
        self.code = code  # e.g. "TOOBIG", "NONEXISTENT", "UNAVAILABLE", "OVERQUOTA"


@dataclass(frozen=True)
class Delivered:
    """Where the message went."""

    user: str
    mailbox: str
    uidvalidity: int
    uid: int
    node: str  # the node that stored it (this one, or a holder reached by proxy)


def split_recipient(address: str) -> tuple[str, str]:
    """(user, folder) of ``user[+folder][@domain]``; folder defaults to INBOX."""
    local = address.strip().strip("<>").rsplit("@", 1)[0]
    user, _, folder = local.partition("+")
    return user, (folder or INBOX)


def known_user(node: Any, user: str) -> bool:
    """Whether ``user`` is an account of the cluster/node (can log in)."""
    return user in node.usernames()


def check_recipient(node: Any, address: str) -> tuple[str, str]:
    """(user, folder) for RCPT TO, or a permanent DeliveryError (SMTP 550)."""
    user, folder = split_recipient(address)
    if not user or not known_user(node, user):
        raise DeliveryError(f"no such user {user!r}", code="NONEXISTENT")
    spec = getattr(node.settings, "cluster", None)
    if spec is None or spec.holds(user):
        try:
            node.store.mailbox(user, folder)
        except StoreError:
            raise DeliveryError(f"no folder {folder!r} for {user}", code="NONEXISTENT") from None
    return user, folder


def deliver(node: Any, address: str, data: bytes, flags: Iterable[str] = (),
            date: dt.datetime | None = None) -> Deferred[Delivered]:
    """Store ``data`` for recipient ``address`` (``user[+folder][@domain]``)."""
    try:
        user, folder = check_recipient(node, address)
        _check_size(node, data)
    except DeliveryError as err:
        d: Deferred[Delivered] = Deferred()
        d.errback(err)
        return d
    spec = getattr(node.settings, "cluster", None)
    if spec is not None and not spec.holds(user):
        return _deliver_remote(node, spec, user, folder, data, tuple(flags), date)
    from twistedmail import limits

    if not limits.of(node).memory_room(len(data), "delivery", user):
        return _failed(DeliveryError(limits.MEMORY_TEXT, temporary=True, code="NOMEMORY"))
    return _deliver_here(node, user, folder, data, frozenset(flags), date)


def _check_size(node: Any, data: bytes) -> None:
    if not data:
        raise DeliveryError("empty message")
    limit = node.settings.max_literal
    if len(data) > limit:  # the APPENDLIMIT applies to every way in (RFC 7889 §3)
        raise DeliveryError(f"message is over the {limit} byte limit", code="TOOBIG")


def _check_quota(node: Any, user: str, size: int) -> None:
    """OVERQUOTA (temporary: 452 4.2.2) as for APPEND (RFC 9208 §4.3); the store itself
    does not check quotas, the IMAP handlers do (imap/handlers/quota.py)."""
    from twistedmail.store import quota

    settings = node.settings
    limits = {quota.STORAGE: getattr(settings, "quota_storage", 0),
              quota.MESSAGE: getattr(settings, "quota_messages", 0)}
    resource = quota.exceeded(node.store, user, size, 1, limits)
    if resource is not None:
        raise DeliveryError(f"quota exceeded ({resource})", temporary=True, code="OVERQUOTA")


def _deliver_here(node: Any, user: str, folder: str, data: bytes, flags: frozenset[str],
                  date: dt.datetime | None) -> Deferred[Delivered]:
    cluster = getattr(node, "cluster", None)
    try:
        if cluster is not None:
            if not cluster.ready:
                raise DeliveryError(f"node not ready: {cluster.reason or 'catching up'}",
                                    temporary=True, code="UNAVAILABLE")
            cluster.check_writable(user)
        _check_quota(node, user, len(data))
        op = Append.new(node.store, user, folder, data, flags=flags, internaldate=date)
        changes = node.store.apply(op)
    except DeliveryError as err:
        return _failed(err)
    except StoreError as err:  # quota, folder gone meanwhile, ...
        temporary = err.code == "OVERQUOTA"
        return _failed(DeliveryError(str(err) or "refused by the store", temporary, err.code))
    except Exception as err:  # noqa: BLE001 - ClusterUnavailable and friends: retry later
        return _failed(DeliveryError(str(err) or "cluster unavailable", True, "UNAVAILABLE"))
    uid = next(ch.uids[-1] for ch in changes if isinstance(ch, MessagesAdded))
    box = node.store.mailbox(user, folder)
    done = Delivered(user, folder, box.uidvalidity, uid, node.settings.node_name)
    if cluster is None:
        return succeed(done)
    record = box.get(uid)
    assert record is not None
    instance = record.instance_id
    d: Deferred[Any] = cluster.durable(user)

    def undo(failure: Any) -> Delivered:
        _undo(node, box.id, instance)
        raise DeliveryError(f"{failure.getErrorMessage() or 'too few replicas'}; not delivered",
                            temporary=True, code="UNAVAILABLE")

    return d.addCallbacks(lambda _: done, undo)


def _undo(node: Any, box_id: str, instance: tuple[str, int]) -> None:
    box = node.store.mailbox_by_id(box_id)
    if box is None:
        return
    uids = tuple(r.uid for r in box.records() if r.instance_id == instance)
    if uids:
        try:
            node.store.apply(Expunge(box.user, box.name, uids))
        except StoreError:
            log.failure("undoing a delivery in {box}", box=box.name)


_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")


@inlineCallbacks
def _deliver_remote(node: Any, spec: Any, user: str, folder: str, data: bytes,
                    flags: tuple[str, ...], date: dt.datetime | None
                    ) -> Generator[Deferred[Any], Any, Delivered]:
    """APPEND on the first reachable holder (proxy login), else a temporary error."""
    from twistedmail.cluster.proxy import open_backend, status_of
    from twistedmail.imap.fetchrender import internaldate
    from twistedmail.imap.referrals import imap_address
    from twistedmail.imap.responses import MailboxName, encode, flag_list

    cluster = getattr(node, "cluster", None)
    public = getattr(cluster, "public", None)
    holders = list(spec.holders(user))
    if public is not None:
        holders = [r.server for r in public.table.referral_list(holders, spec.me.name,
                                                                public.rng)]
    head = b"APPEND " + encode(MailboxName.of(folder)) + b" " + flag_list(flags)
    if date is not None:
        head += b" " + internaldate(date)
    errors = []
    for holder in holders:
        address = imap_address(spec, holder)
        if address is None:
            errors.append(f"{holder}: no IMAP address")
            continue
        try:
            backend = yield open_backend(node.reactor, holder, address, spec.secret, user,
                                         spec.me.name)
        except Exception as err:  # noqa: BLE001 - next holder
            errors.append(f"{holder}: {err}")
            continue
        try:
            tagged = yield backend.run([head + b" {%d}" % len(data), b""], (data,))
        except Exception as err:  # noqa: BLE001 - lost mid-APPEND: may have landed
            raise DeliveryError(f"{holder} lost during delivery ({err}); retry",
                                temporary=True, code="UNAVAILABLE") from None
        finally:
            backend.close()
        m = _APPENDUID.search(tagged)
        if status_of(tagged) == "OK" and m is not None:
            return Delivered(user, folder, int(m.group(1)), int(m.group(2)), holder)
        text = tagged.decode("utf-8", "replace").split(" ", 2)[-1].strip()
        temporary = b"[UNAVAILABLE]" in tagged or b"[OVERQUOTA]" in tagged
        raise DeliveryError(f"{holder}: {text}", temporary=temporary)
    raise DeliveryError(f"no holder of {user}'s mail file reachable ({'; '.join(errors)})",
                        temporary=True, code="UNAVAILABLE")


def _failed(err: DeliveryError) -> Deferred[Delivered]:
    d: Deferred[Delivered] = Deferred()
    d.errback(err)
    return d
