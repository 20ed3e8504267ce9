"""Node side of ``clustermail referrals …`` / ``clustermail sites …`` (issue 5 item 5).

``ReferralResponders`` is mixed into ``AdminProtocol`` (twistedmail/admin/channel.py):
the AMP responders of commands.ReferralsShow … SitesShow, acting on the node's
``ClusterNode.public`` (twistedmail/cluster/public.py).

Invariants:
  * The caller's role: on the UNIX socket (file mode 0600) a cluster
    administrator; on TCP/TLS a user listed in ``admins`` is a cluster
    administrator, a user holding the RFC 4314 "a" right on any public folder
    is a folder administrator (costs are not per folder), anyone else is
    refused.  A password that does not check is refused first.
  * An edit is made as the requested ``role`` (default: the caller's own); a
    folder administrator may not act as a cluster administrator.  The cost
    range is the acting role's (1-100 or 1-500, costs.check_cost).
  * Every refusal is one line: PermissionDenied (role) or BadArguments (unknown
    folder, node or site; cost out of range; not a cluster node).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.protocols import amp
from twisted.python.failure import Failure

from twistedmail.admin import commands as c
from twistedmail.cluster.costs import CostError, Role
from twistedmail.cluster.public import PublicReferrals

ROLES = {"folder-admin": Role.FOLDER_ADMIN, "cluster-admin": Role.CLUSTER_ADMIN}
Action = Callable[[Role, PublicReferrals], dict[str, Any]]


def role_name(role: Role) -> str:
    """``folder-admin`` / ``cluster-admin``."""
    return next(name for name, r in ROLES.items() if r is role)


def acting_role(caller: Role, requested: str | None) -> Role:
    """The role an edit is made as: ``requested`` if the caller may take it."""
    if requested is None:
        return caller
    if requested not in ROLES:
        raise c.BadArguments(f"--role: must be folder-admin or cluster-admin, got {requested!r}")
    role = ROLES[requested]
    if role is Role.CLUSTER_ADMIN and caller is not Role.CLUSTER_ADMIN:
        raise c.PermissionDenied("permission denied: a folder administrator may not act as "
                                 "cluster administrator")
    return role


def folder_admin(node: Any, user: str) -> bool:
    """Whether ``user`` holds the "a" right (RFC 4314 §2.1) on some public folder."""
    from twistedmail.imap.namespaces import is_public_owner
    from twistedmail.store.acl import effective

    store = node.store
    for owner in store.users():  # "#public" and every "#public:F" held here
        if is_public_owner(owner) and any("a" in effective(box.acl, user)
                                          for box in store.mailboxes(owner)):
            return True
    return False


def public_of(node: Any) -> PublicReferrals:
    """The node's referral data; BadArguments on a node that is not in a cluster."""
    cluster = getattr(node, "cluster", None)
    if cluster is None:
        raise c.BadArguments(f"node {node.settings.node_name} is not in a cluster: it has no "
                             "public-folder replicas or costs")
    public: PublicReferrals = cluster.public
    return public


def show(public: PublicReferrals, folder: str, from_node: str | None) -> dict[str, Any]:
    """``referrals show``: the list a client gets now, with every replica's why."""
    frm = from_node or public.me
    rows = public.explain(folder, frm)
    order = 0
    out = []
    for r in rows:
        order += r.included
        out.append({"order": order if r.included else None, "server": r.server,
                    "cost": r.cost, "included": r.included, "reason": r.reason})
    return {"folder": public.folder(folder), "from": frm, "answerer": public.table.answerer(frm),
            "replicas": list(public.replicas_of(folder)), "referrals": out,
            "pending": public.pending(), **public.timing()}


class ReferralResponders(amp.CommandLocator):
    """Responders of the referral and site commands (mixed into AdminProtocol)."""

    node: Any
    _is_unix: Callable[[], bool]
    _run: Callable[..., Deferred[dict[str, Any]]]

    def _caller_role(self, user: str | None, password: str | None) -> Deferred[Role]:
        if self._is_unix():
            return defer.succeed(Role.CLUSTER_ADMIN)
        denied = c.PermissionDenied("permission denied: wrong or missing admin credentials")
        if not user or password is None:
            return defer.fail(denied)

        def role(name: str) -> Role:
            if user in self.node.settings.admins:
                return Role.CLUSTER_ADMIN
            if folder_admin(self.node, name):
                return Role.FOLDER_ADMIN
            raise c.PermissionDenied(f"permission denied: {user} is not an admin and holds "
                                     "the 'a' right on no public folder")

        def refused(_: Failure) -> Role:
            raise denied

        d: Deferred[Role] = self.node.authenticate(user, password).addCallbacks(role, refused)
        return d

    def _role_authorise(self, user: str | None, password: str | None) -> Deferred[None]:
        """Either role will do (``Version``, which every client sends first)."""
        return self._caller_role(user, password).addCallback(lambda _: None)

    def _as_role(self, what: str, user: str | None, password: str | None,
                 requested: str | None, action: Action) -> Deferred[dict[str, Any]]:
        held: list[Role] = []

        def authorise(u: str | None, p: str | None) -> Deferred[None]:
            return self._caller_role(u, p).addCallback(held.append)

        def act() -> dict[str, Any]:
            role = acting_role(held[0], requested)
            try:
                result = action(role, public_of(self.node))
            except CostError as err:
                raise c.BadArguments(str(err)) from None
            return {"result_json": json.dumps(result, sort_keys=True)}

        return self._run(what, user, password, act, authorise=authorise)

    @c.ReferralsShow.responder
    def referrals_show(self, folder: str, from_node: str | None = None,
                       admin_user: str | None = None,
                       admin_password: str | None = None) -> Deferred[dict[str, Any]]:
        return self._as_role(f"referrals show {folder}", admin_user, admin_password, None,
                             lambda role, p: show(p, folder, from_node))

    @c.ReferralsSet.responder
    def referrals_set(self, node: str, server: str, cost: int, role: str | None = None,
                      admin_user: str | None = None,
                      admin_password: str | None = None) -> Deferred[dict[str, Any]]:
        def act(who: Role, p: PublicReferrals) -> dict[str, Any]:
            p.set_referral(node, server, cost, who)
            return {"node": node, "server": server, "cost": cost, "role": who.value,
                    "pending": p.pending(), **p.timing()}

        return self._as_role(f"referrals set {node} {server} {cost}", admin_user,
                             admin_password, role, act)

    @c.ReferralsUnset.responder
    def referrals_unset(self, node: str, server: str | None = None, role: str | None = None,
                        admin_user: str | None = None,
                        admin_password: str | None = None) -> Deferred[dict[str, Any]]:
        def act(who: Role, p: PublicReferrals) -> dict[str, Any]:
            p.unset_referral(node, server, who)
            return {"node": node, "server": server, "role": who.value,
                    "pending": p.pending(), **p.timing()}

        return self._as_role(f"referrals unset {node} {server or '(all)'}", admin_user,
                             admin_password, role, act)

    @c.ReferralsRefresh.responder
    def referrals_refresh(self, admin_user: str | None = None,
                          admin_password: str | None = None) -> Deferred[dict[str, Any]]:
        def act(who: Role, p: PublicReferrals) -> dict[str, Any]:
            p.refresh()
            return {"pending": p.pending(), **p.timing()}

        return self._as_role("referrals refresh", admin_user, admin_password, None, act)

    @c.SitesLink.responder
    def sites_link(self, site_a: str, site_b: str, cost: int, role: str | None = None,
                   admin_user: str | None = None,
                   admin_password: str | None = None) -> Deferred[dict[str, Any]]:
        def act(who: Role, p: PublicReferrals) -> dict[str, Any]:
            p.set_link(site_a, site_b, cost, who)
            return {"site_a": site_a, "site_b": site_b, "cost": cost, "role": who.value,
                    "pending": p.pending(), **p.timing()}

        return self._as_role(f"sites link {site_a} {site_b} {cost}", admin_user,
                             admin_password, role, act)

    @c.SitesUnlink.responder
    def sites_unlink(self, site_a: str, site_b: str, role: str | None = None,
                     admin_user: str | None = None,
                     admin_password: str | None = None) -> Deferred[dict[str, Any]]:
        def act(who: Role, p: PublicReferrals) -> dict[str, Any]:
            p.unset_link(site_a, site_b, who)
            return {"site_a": site_a, "site_b": site_b, "role": who.value,
                    "pending": p.pending(), **p.timing()}

        return self._as_role(f"sites unlink {site_a} {site_b}", admin_user, admin_password,
                             role, act)

    @c.SitesShow.responder
    def sites_show(self, admin_user: str | None = None,
                   admin_password: str | None = None) -> Deferred[dict[str, Any]]:
        return self._as_role("sites show", admin_user, admin_password, None,
                             lambda role, p: p.describe())
