"""``clustermail referrals …`` and ``clustermail sites …``: parsing, requests, output
(issue 5 item 5; the node side is twistedmail/admin/referrals.py).

    referrals show FOLDER [--from NODE]       the list a client of NODE gets now, and why
    referrals set NODE SERVER COST [--role folder-admin|cluster-admin]
    referrals unset NODE [SERVER] [--role …]  (no SERVER: drop NODE's whole custom list)
    referrals refresh                         rebuild the cost table now
    sites link SITE_A SITE_B COST [--role …] | sites unlink SITE_A SITE_B [--role …]
    sites show

Invariants: edits act on the node(s) addressed (``--all-nodes``: every node) and
become visible at the node's next rebuild or ``referrals refresh``; the output
says so.  Refusals are the node's one-line errors (exit status 1).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

ROLE_CHOICES = ("folder-admin", "cluster-admin")


def add_commands(commands: Any, run: Callable[..., int]) -> None:
    """``referrals`` and ``sites`` on the admin subparsers object."""
    referrals = commands.add_parser(
        "referrals", help="public-folder referral lists: show, set, unset, refresh")
    acts = referrals.add_subparsers(dest="referrals_action", required=True, metavar="ACTION")
    show = acts.add_parser("show", help="the referral list a client gets now, and why")
    show.add_argument("folder", metavar="FOLDER", help="a public folder: News or Public/News")
    show.add_argument("--from", dest="from_node", metavar="NODE",
                      help="as a client of NODE would get it (default: the node asked)")
    show.add_argument("--json", action="store_true", help="print the node's JSON answer")
    show.set_defaults(run=run, admin_command="referrals-show")
    put = acts.add_parser("set", help="put SERVER at COST in NODE's custom referral list")
    put.add_argument("node", metavar="NODE")
    put.add_argument("server", metavar="SERVER")
    put.add_argument("cost", metavar="COST", type=int,
                     help="1-100 (folder-admin) or 1-500 (cluster-admin); 500: never referred")
    _role(put)
    put.set_defaults(run=run, admin_command="referrals-set")
    unset = acts.add_parser("unset", help="remove SERVER (or the whole list) from NODE's list")
    unset.add_argument("node", metavar="NODE")
    unset.add_argument("server", metavar="SERVER", nargs="?")
    _role(unset)
    unset.set_defaults(run=run, admin_command="referrals-unset")
    refresh = acts.add_parser("refresh", help="rebuild the cost table now")
    refresh.set_defaults(run=run, admin_command="referrals-refresh")

    sites = commands.add_parser("sites", help="site links and their costs: link, unlink, show")
    steps = sites.add_subparsers(dest="sites_action", required=True, metavar="ACTION")
    link = steps.add_parser("link", help="create or change the link SITE_A-SITE_B")
    link.add_argument("site_a", metavar="SITE_A")
    link.add_argument("site_b", metavar="SITE_B")
    link.add_argument("cost", metavar="COST", type=int)
    _role(link)
    link.set_defaults(run=run, admin_command="sites-link")
    unlink = steps.add_parser("unlink", help="remove the link SITE_A-SITE_B")
    unlink.add_argument("site_a", metavar="SITE_A")
    unlink.add_argument("site_b", metavar="SITE_B")
    _role(unlink)
    unlink.set_defaults(run=run, admin_command="sites-unlink")
    listing = steps.add_parser("show", help="sites, links, custom lists, default nodes")
    listing.add_argument("--json", action="store_true", help="print the node's JSON answer")
    listing.set_defaults(run=run, admin_command="sites-show")


def _role(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--role", choices=ROLE_CHOICES, default=None,
                        help="act as this role (default: the caller's own; the UNIX socket "
                             "is a cluster administrator)")


def request(args: argparse.Namespace) -> tuple[str, dict[str, Any], str]:
    """(client command, AMP arguments, words for messages)."""
    command = args.admin_command
    role = {"role": args.role} if getattr(args, "role", None) else {}
    if command == "referrals-show":
        extra = {"from_node": args.from_node} if args.from_node else {}
        return command, {"folder": args.folder, **extra}, f"referrals show {args.folder}"
    if command == "referrals-set":
        return command, {"node": args.node, "server": args.server, "cost": args.cost, **role}, \
            f"referrals set {args.node} {args.server} {args.cost}"
    if command == "referrals-unset":
        server = {"server": args.server} if args.server else {}
        return command, {"node": args.node, **server, **role}, \
            f"referrals unset {args.node} {args.server or ''}".rstrip()
    if command == "sites-link":
        return command, {"site_a": args.site_a, "site_b": args.site_b, "cost": args.cost,
                         **role}, f"sites link {args.site_a} {args.site_b} {args.cost}"
    if command == "sites-unlink":
        return command, {"site_a": args.site_a, "site_b": args.site_b, **role}, \
            f"sites unlink {args.site_a} {args.site_b}"
    return command, {}, command.replace("-", " ")


def render(node: str, command: str, result: dict[str, Any], head: str) -> str:
    """The text printed for one node's answer."""
    if command == "referrals-show":
        return render_show(node, result)
    if command == "sites-show":
        return render_sites(node, result)
    if command == "referrals-refresh":
        return head + f"cost table rebuilt; next rebuild in {result.get('next_in', 0):.0f} s"
    role = f" (as {result['role']})" if result.get("role") else ""
    return head + f"ok{role}; {_when(result)}"


def _when(result: dict[str, Any]) -> str:
    if not result.get("pending"):
        return "no change to the referral lists"
    return (f"visible at the next rebuild in {result.get('next_in', 0):.0f} s, "
            "or now with: clustermail referrals refresh")


def render_show(node: str, result: dict[str, Any]) -> str:
    """``referrals show``: the header, then one row per replica in list order."""
    from twistedmail.admin.actions import table

    frm, answerer = result.get("from"), result.get("answerer")
    by = f" (answered by its default public-folder node {answerer})" if answerer != frm else ""
    lines = [f"{node}: Public/{result.get('folder')} for clients of {frm}{by}: "
             f"replicas {', '.join(result.get('replicas', []))}; cost table built "
             f"{result.get('built_ago', 0):.0f} s ago, next rebuild in "
             f"{result.get('next_in', 0):.0f} s"]
    if result.get("pending"):
        lines.append("  (edited since the last rebuild: not visible until the next rebuild "
                     "or clustermail referrals refresh)")
    rows = [{"order": r.get("order"), "server": r.get("server"), "cost": r.get("cost"),
             "in": "in" if r.get("included") else "out", "why": r.get("reason")}
            for r in result.get("referrals", [])]
    return "\n".join(lines + table(rows, "  "))


def render_sites(node: str, result: dict[str, Any]) -> str:
    """``sites show``: sites with their nodes, links, custom lists, default nodes."""
    from twistedmail.admin.actions import table

    sites = result.get("sites", {})
    transit = set(result.get("transit", []))
    lines = [f"{node}: {len(sites)} site(s), referral_refresh "
             f"{result.get('referral_refresh', 0):g} s, next rebuild in "
             f"{result.get('next_in', 0):.0f} s"]
    lines += table([{"site": s, "nodes": ", ".join(ns) or ("(transit)" if s in transit else "-")}
                    for s, ns in sites.items()], "  ")
    links = result.get("links", [])
    lines.append("links:" if links else "links: none")
    lines += table([{"site_a": a, "site_b": b, "cost": c} for a, b, c in links], "  ") \
        if links else []
    for owner, entries in result.get("custom", {}).items():
        listed = ", ".join(f"{s} {c}" for s, c in entries.items()) or "(empty: refers nowhere)"
        lines.append(f"custom referral list of {owner}: {listed}")
    for owner, target in result.get("default_node", {}).items():
        lines.append(f"default public-folder node of {owner}: {target}")
    if result.get("pending"):
        lines.append("(edited since the last rebuild: " + _when(result) + ")")
    return "\n".join(lines)
