"""Mailbox and login referrals (RFC 2193 MAILBOX-REFERRALS, RFC 2221 LOGIN-REFERRALS).

Issue 5 item 4, DESIGN.md §5 (seed 003): a public folder with no replica on this node
is answered, for a referral-aware session, with ``NO [REFERRAL url ...]`` naming its
replicas in referral-list order (``node.cluster.referrals``); a login whose mail file
is held elsewhere gets ``NO [REFERRAL imap://user;AUTH=*@host:port/ ...]``.

Invariants:
  * Single-node mode (``settings.cluster is None``): nothing here changes anything and
    no referral capability is advertised.
  * A session is referral-aware once it sent RLIST or RLSUB (RFC 2193 §4.1, §4.2), or
    from the start when the config says ``[public] refer = true``.  Other sessions keep
    the local behaviour (the transparent proxy comes later).
  * Every URL is built by ``imapurl.build_url`` and checked by ``referral_code``; a
    replica whose IMAP address is unknown (no tcp endpoint with a port) is left out and
    logged; no URL at all is ``NO [UNAVAILABLE]``, never a half-built referral.
  * LOGIN-REFERRALS follow the credential check (auth.py), so a wrong password learns
    nothing about where a mail file lives.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from twisted.logger import Logger

from twistedmail.cluster.costs import CostError
from twistedmail.imap.errors import No
from twistedmail.imap.imapurl import build_url, referral_code
from twistedmail.imap.namespaces import PUBLIC
from twistedmail.imap.session import Session
from twistedmail.observe import metrics

log = Logger()
PREFIX = PUBLIC + "/"
UNAVAILABLE = "UNAVAILABLE"  # RFC 5530 §3
CAPABILITIES = ("MAILBOX-REFERRALS", "LOGIN-REFERRALS")  # RFC 2193 §3, RFC 2221 §3
_TCP = re.compile(r"tcp6?:(?:port=)?(\d+)((?::[A-Za-z]+=[^:]*)*)\Z")
_WILDCARD = ("0.0.0.0", "::", "")


def spec_of(session: Session) -> Any | None:
    """The node's ClusterSpec, or None in single-node mode."""
    return getattr(session.node.settings, "cluster", None)


def capabilities(session: Session) -> tuple[str, ...]:
    """The referral capabilities to advertise: only in cluster mode."""
    return CAPABILITIES if spec_of(session) is not None else ()


def aware(session: Session) -> bool:
    """Whether ``session`` gets referrals (RLIST/RLSUB seen, or ``[public] refer``)."""
    spec = spec_of(session)
    if spec is None:
        return False
    return bool(getattr(session, "referral_aware", False) or getattr(spec, "public_refer", False))


def imap_address(spec: Any, node: str) -> tuple[str, int] | None:
    """Where clients reach ``node``'s IMAP: its first ``tcp:PORT`` endpoint with a real
    port; a wildcard interface falls back to the host peers dial it at (cluster_address)."""
    ns = spec.node(node)
    for desc in ns.imap:
        m = _TCP.match(desc)
        if m is None or int(m.group(1)) == 0:
            continue
        options = dict(opt.split("=", 1) for opt in m.group(2).split(":") if opt)
        host = options.get("interface", "")
        return (ns.host if host in _WILDCARD else host), int(m.group(1))
    return None


def _urls(spec: Any, nodes: Iterable[str], mailbox: str | None,
          user: str | None = None) -> list[str]:
    out = []
    for node in nodes:
        address = imap_address(spec, node)
        if address is None:
            log.warn("referral: node {node} has no IMAP tcp endpoint with a port; left out",
                     node=node)
            continue
        out.append(build_url(address[0], address[1], mailbox, user=user))
    return out


def public_folder(spec: Any, name: str) -> str | None:
    """The configured public folder ``name`` (``Public/X`` or below it) belongs to."""
    if not name.startswith(PREFIX):
        return None
    bare = name[len(PREFIX):]
    hits = [f for f in spec.public_replicas if bare == f or bare.startswith(f + "/")]
    return max(hits, key=len) if hits else None


def remote_public(session: Session, name: str) -> str | None:
    """The configured public folder ``name`` is (or is under) when this node holds
    no replica of it, else None; None in single-node mode (contract A)."""
    spec = spec_of(session)
    if spec is None:
        return None
    folder = public_folder(spec, name)
    if folder is None or spec.me.name in spec.public_replicas[folder]:
        return None
    return folder


def _hidden(session: Session, folder: str) -> bool:
    from twistedmail.imap.namespaces import hidden_public, public_account

    return hidden_public(session, public_account(folder))


def check_mailbox(session: Session, name: str) -> None:
    """RFC 2193 §4: ``NO [REFERRAL ...]`` when ``name`` is a public folder with no
    replica here and the session is referral-aware; otherwise nothing."""
    spec = spec_of(session)
    if spec is None or not aware(session):
        return
    folder = public_folder(spec, name)
    if folder is None or spec.me.name in spec.public_replicas[folder]:
        return
    cluster = getattr(session.node, "cluster", None)
    if cluster is None or _hidden(session, folder):
        return  # a folder the user may not see is answered as a missing one
    try:
        nodes = [r.server for r in cluster.referrals(folder)]
        urls = _urls(spec, nodes, name)
    except (CostError, ValueError) as err:  # never a traceback to the client
        log.warn("referral for {name}: {err}", name=name, err=err)
        raise No(f"{name} has no replica this node can refer to", UNAVAILABLE) from None
    if not urls:
        raise No(f"{name} has no replica this node can refer to", UNAVAILABLE)
    code, args = referral_code(urls)
    metrics.referral(session.node, nodes[0], "mailbox")
    raise No(f"{name} is held on {', '.join(nodes)}", code, args)


def check_login(session: Session, user: str) -> None:
    """RFC 2221 §4.1: ``NO [REFERRAL imap://user;AUTH=*@host:port/ ...]`` when
    ``user``'s mail file is not held here: the holders in cost order."""
    spec = spec_of(session)
    if spec is None or spec.holds(user):
        return
    holders = spec.holders(user)
    text = f"mail file of {user} is not on node {spec.me.name} (held on {', '.join(holders)})"
    public = getattr(getattr(session.node, "cluster", None), "public", None)
    if public is None:
        raise No(text, UNAVAILABLE)
    try:
        ordered = [r.server for r in
                   public.table.referral_list(holders, spec.me.name, public.rng)]
        urls = _urls(spec, ordered, None, user)
    except (CostError, ValueError) as err:  # never a traceback to the client
        log.warn("login referral for {user}: {err}", user=user, err=err)
        raise No(text, UNAVAILABLE) from None
    if not urls:
        raise No(text, UNAVAILABLE)
    code, args = referral_code(urls)
    metrics.referral(session.node, ordered[0], "login")
    raise No(text, code, args)


def public_names(session: Session) -> list[str]:
    """Every configured public folder as a client name (``Public/X``), for RLIST."""
    spec = spec_of(session)
    return [] if spec is None else sorted(PREFIX + f for f in spec.public_replicas)
