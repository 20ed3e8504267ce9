"""The dispatch table: command → handler, allowed states, flags.

It is the IMAP state machine (RFC 3501 §3, §6) and the source of CAPABILITY.
``uses_seqs`` marks commands that address messages by sequence number; while
one runs no EXPUNGE may be announced (RFC 3501 §7.4.1), as Dovecot's
COMMAND_FLAG_USES_SEQS does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from twistedmail.imap import commands as c
from twistedmail.imap import compress, notify, referrals
from twistedmail.imap.errors import Bad, Bye, CommandFailed
from twistedmail.imap.handlers import (
    acl,
    append,
    auth,
    copy,
    fetch,
    mailbox,
    metadata,
    misc,
    quota,
    replace,
    rlist,
    search,
    select,
    sort,
    store,
)
from twistedmail.imap.handlers import notify as notify_handler
from twistedmail.imap.session import AUTHENTICATED, NOT_AUTHENTICATED, SELECTED, Session

log = Logger()

ANY = frozenset({NOT_AUTHENTICATED, AUTHENTICATED, SELECTED})
PRE = frozenset({NOT_AUTHENTICATED})
AUTH = frozenset({AUTHENTICATED, SELECTED})
SEL = frozenset({SELECTED})

Handler = Callable[[Session, Any], Any]


@dataclass(frozen=True)
class Spec:
    """How one command is run."""

    handler: Handler
    states: frozenset[str]
    uses_seqs: bool = False


TABLE: dict[str, Spec] = {
    # RFC 3501 §6.1 any state
    "CAPABILITY": Spec(misc.capability, ANY),
    "NOOP": Spec(misc.noop, ANY),
    "LOGOUT": Spec(misc.logout, ANY),
    "ID": Spec(misc.id_, ANY),  # RFC 2971
    "COMPRESS": Spec(compress.compress, ANY),  # RFC 4978 §3 (its example: after STARTTLS)
    # RFC 3501 §6.2 not authenticated
    "STARTTLS": Spec(auth.starttls, PRE),
    "AUTHENTICATE": Spec(auth.authenticate, PRE),
    "LOGIN": Spec(auth.login, PRE),
    # RFC 3501 §6.3 authenticated
    "SELECT": Spec(select.select, AUTH),
    "EXAMINE": Spec(select.select, AUTH),
    "CREATE": Spec(mailbox.create, AUTH),
    "DELETE": Spec(mailbox.delete, AUTH),
    "RENAME": Spec(mailbox.rename, AUTH),
    "SUBSCRIBE": Spec(mailbox.subscribe, AUTH),
    "UNSUBSCRIBE": Spec(mailbox.unsubscribe, AUTH),
    "LIST": Spec(mailbox.list_, AUTH),
    "LSUB": Spec(mailbox.list_, AUTH),
    "RLIST": Spec(rlist.rlist, AUTH),  # RFC 2193 §4.1 (cluster: referrals.py)
    "RLSUB": Spec(rlist.rlist, AUTH),  # RFC 2193 §4.2
    "STATUS": Spec(mailbox.status, AUTH),
    "APPEND": Spec(append.append, AUTH),
    "NAMESPACE": Spec(misc.namespace, AUTH),  # RFC 2342
    "ENABLE": Spec(misc.enable, AUTH),  # RFC 5161
    "IDLE": Spec(misc.idle, AUTH),  # RFC 2177
    "GETMETADATA": Spec(metadata.getmetadata, AUTH),  # RFC 5464
    "SETMETADATA": Spec(metadata.setmetadata, AUTH),
    "NOTIFY": Spec(notify_handler.notify, AUTH),  # RFC 5465
    "SETACL": Spec(acl.setacl, AUTH),  # RFC 4314 §3
    "DELETEACL": Spec(acl.deleteacl, AUTH),
    "GETACL": Spec(acl.getacl, AUTH),
    "LISTRIGHTS": Spec(acl.listrights, AUTH),
    "MYRIGHTS": Spec(acl.myrights, AUTH),
    "GETQUOTA": Spec(quota.getquota, AUTH),  # RFC 9208 §4.1
    "GETQUOTAROOT": Spec(quota.getquotaroot, AUTH),
    "SETQUOTA": Spec(quota.setquota, AUTH),
    # RFC 3501 §6.4 selected
    "CHECK": Spec(select.check, SEL),
    "CLOSE": Spec(select.close, SEL),
    "UNSELECT": Spec(select.unselect, SEL),  # RFC 3691
    "EXPUNGE": Spec(select.expunge, SEL),
    "UID EXPUNGE": Spec(select.uid_expunge, SEL),  # RFC 4315
    "SEARCH": Spec(search.search, SEL, uses_seqs=True),
    "UID SEARCH": Spec(search.search, SEL),
    "SORT": Spec(sort.sort, SEL, uses_seqs=True),  # RFC 5256
    "UID SORT": Spec(sort.sort, SEL),
    "THREAD": Spec(sort.thread, SEL, uses_seqs=True),  # RFC 5256
    "UID THREAD": Spec(sort.thread, SEL),
    "FETCH": Spec(fetch.fetch, SEL, uses_seqs=True),
    "UID FETCH": Spec(fetch.fetch, SEL),
    "STORE": Spec(store.store, SEL, uses_seqs=True),
    "UID STORE": Spec(store.store, SEL),
    "COPY": Spec(copy.copy, SEL, uses_seqs=True),
    "UID COPY": Spec(copy.copy, SEL),
    "MOVE": Spec(copy.copy, SEL),  # RFC 6851 §3.3: MOVE itself sends EXPUNGE
    "UID MOVE": Spec(copy.copy, SEL),
    "REPLACE": Spec(replace.replace, SEL),  # RFC 8508: REPLACE itself sends EXPUNGE
    "UID REPLACE": Spec(replace.replace, SEL),
}

# Everything here is implemented and tested; nothing is advertised otherwise.
BASE_CAPABILITIES = (
    "IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE", "NAMESPACE",
    "UIDPLUS", "MOVE", "UNSELECT", "CHILDREN",
    "LIST-EXTENDED", "LIST-STATUS", "SPECIAL-USE", "CREATE-SPECIAL-USE",  # RFC 5258 5819 6154
    "METADATA", "METADATA-SERVER", "STATUS=SIZE",  # RFC 5464, RFC 8438
    "ACL", "RIGHTS=texk",  # RFC 4314
    "QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE",  # RFC 9208
    "MULTIAPPEND", "CATENATE", "REPLACE", "UTF8=ACCEPT",  # RFC 3502, 4469, 8508, 6855
    "COMPRESS=DEFLATE",  # RFC 4978
    "NOTIFY",  # RFC 5465
    "CONDSTORE", "QRESYNC",  # RFC 7162
    "ESEARCH", "SEARCHRES", "WITHIN",  # RFC 4731, 5182, 5032
    "SORT", "SORT=DISPLAY", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES",  # RFC 5256, 5957
    "BINARY", "PREVIEW", "SAVEDATE", "OBJECTID",  # RFC 3516, 8970, 8514, 8474
)

# RFC 5161: capabilities ENABLE may turn on (each must also be advertised).  Other
# extensions add themselves here; ENABLE answers with the canonical spelling.
ENABLEABLE: set[str] = {"CONDSTORE", "QRESYNC"}  # RFC 7162 §3.1, §3.2.3
ENABLEABLE.add("UTF8=ACCEPT")  # RFC 6855 §3
ENABLEABLE.add("IMAP4rev2")  # RFC 9051 §6.3.1 (switches in rev2.py)


def capabilities(session: Session) -> list[str]:
    """CAPABILITY for the session's current state (RFC 3501 §7.2.1)."""
    caps = list(BASE_CAPABILITIES)
    settings = session.node.settings
    if settings.literal_mode == "minus":  # RFC 7888 §4: never both LITERAL+ and LITERAL-
        caps[caps.index("LITERAL+")] = "LITERAL-"
    caps.append(f"APPENDLIMIT={settings.max_literal}")  # RFC 7889 §3
    caps.extend(referrals.capabilities(session))  # RFC 2193 §3, RFC 2221 §3: cluster only
    if session.state == NOT_AUTHENTICATED:
        if session.conn.tls_available and not session.conn.tls_active:
            caps.append("STARTTLS")
        caps.append("AUTH=SCRAM-SHA-256")  # RFC 7677: no plaintext password, so always
        if session.login_allowed():
            caps.append("AUTH=PLAIN")
        else:
            caps.append("LOGINDISABLED")
    return caps


def command_key(cmd: c.Command) -> str:
    """The table key of a parsed command."""
    if isinstance(cmd, c.Simple):
        return cmd.name
    if isinstance(cmd, c.MailboxCommand):
        return cmd.name
    name = _KEYS[type(cmd)]
    if isinstance(cmd, c.Select):
        return "EXAMINE" if cmd.readonly else "SELECT"
    if isinstance(cmd, c.ListCmd):
        return ("R" if cmd.referral else "") + ("LSUB" if cmd.lsub else "LIST")
    if isinstance(cmd, c.Copy) and cmd.move:
        name = "MOVE"
    if getattr(cmd, "uid", False):
        return "UID " + name
    return name


_KEYS: dict[type, str] = {
    c.Login: "LOGIN", c.Authenticate: "AUTHENTICATE", c.Select: "SELECT",
    c.Rename: "RENAME", c.ListCmd: "LIST", c.Status: "STATUS", c.Append: "APPEND",
    c.Search: "SEARCH", c.Sort: "SORT", c.Thread: "THREAD", c.Fetch: "FETCH",
    c.Store: "STORE", c.Copy: "COPY",
    c.UidExpunge: "UID EXPUNGE", c.Enable: "ENABLE", c.Id: "ID", c.Replace: "REPLACE",
    c.Compress: "COMPRESS",
    c.GetMetadataCmd: "GETMETADATA", c.SetMetadataCmd: "SETMETADATA",
    notify.Notify: "NOTIFY",
}


def execute(session: Session, cmd: c.Command) -> Deferred[None] | None:
    """Run one command; queue its responses in ``session.out``.

    Returns a Deferred when the command completes later (authentication,
    IDLE, continuations), else None once the tagged response is queued."""
    key = command_key(cmd)
    spec = TABLE.get(key)
    try:
        if spec is None:
            raise Bad(f"Unknown command {key}")
        if session.state not in spec.states:
            raise Bad(f"{key} not allowed now", "CLIENTBUG" if spec.states else None)
        result = spec.handler(session, cmd)
    except Exception as err:  # noqa: BLE001 - every failure becomes a response
        _finish_error(session, cmd, spec, err)
        return None
    if isinstance(result, Deferred):
        result.addCallbacks(lambda r: _finish(session, cmd, spec, key, r),
                            lambda f: _finish_error(session, cmd, spec, f.value))
        return result
    _finish(session, cmd, spec, key, result)
    return None


def _finish(session: Session, cmd: c.Command, spec: Spec | None, key: str,
            result: Any) -> None:
    _flush_updates(session, cmd, spec)
    if isinstance(result, CommandFailed):
        _tagged_failure(session, cmd, result)
        return
    if isinstance(result, tuple):  # (text, code, code_args)
        text, code, args = result
        session.out.tagged(cmd.tag, "OK", text, code, args)
    elif result is not False:  # False: the handler wrote the tagged line itself
        session.out.tagged(cmd.tag, "OK", f"{key} completed")


def _finish_error(session: Session, cmd: c.Command, spec: Spec | None,
                  err: BaseException) -> None:
    if isinstance(err, Bye):
        session.out.untagged_status("BYE", err.text, err.code)
        session.conn.close()
        return
    if isinstance(err, CommandFailed):
        if spec is not None and err.status == "NO":
            _flush_updates(session, cmd, spec)
        _tagged_failure(session, cmd, err)
        return
    log.failure("Internal error running {tag}", tag=cmd.tag,
                failure=None if not isinstance(err, Exception) else _as_failure(err))
    session.out.tagged(cmd.tag, "NO", "Internal server error", "SERVERBUG")


def _as_failure(err: Exception) -> Any:
    from twisted.python.failure import Failure

    return Failure(err, type(err), err.__traceback__)


def _tagged_failure(session: Session, cmd: c.Command, err: CommandFailed) -> None:
    session.out.tagged(cmd.tag, err.status, err.text, err.code, err.code_args)


def _flush_updates(session: Session, cmd: c.Command, spec: Spec | None) -> None:
    """Announce pending mailbox changes before the tagged reply (RFC 3501 §7)."""
    notify.before_tagged(session)  # RFC 5465: queued STATUS / LIST
    view = session.view
    if view is None:
        return
    if view.deleted:
        raise_bye = Bye("Selected mailbox was deleted, have to disconnect")
        session.out.untagged_status("BYE", raise_bye.text)
        session.conn.close()
        return
    if view.has_pending():
        allow_expunge = spec is None or not spec.uses_seqs
        view.flush(session.out, allow_expunge, with_uid=getattr(cmd, "uid", False))
