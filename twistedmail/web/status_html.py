"""The status page drawn: HTML with an inline SVG cluster map (issue 6 item 5).

``render_page(status_data(node), refresh)`` -> one self-contained HTML document:
no script, no external asset; it reloads itself every ``refresh`` seconds
(``<meta http-equiv="refresh">``; 0 = never).

Invariants:
  * Every text from the data is escaped (``html.escape``), in HTML and in SVG.
  * The map: one box per site in a row (transit sites too), this node's peers
    inside their site's box coloured by state (up, suspect, down), the site links
    as edges labelled with their cost (neighbours joined straight, farther sites
    by an arc above the boxes).  Each node shape carries ``data-node`` and
    ``data-state`` so tests and scripts find it.
  * The SVG is well-formed XML (tests parse it).
"""

from __future__ import annotations

from html import escape
from typing import Any

STATE_COLOURS = {  # state -> (fill, stroke)
    "up": ("#dcf2e3", "#2e8b4f"),
    "suspect": ("#fff1cc", "#c98a00"),
    "down": ("#f9dcdc", "#c43c3c"),
}
NODE_W, NODE_H, NODE_GAP = 170, 62, 10
PAD, HEADER, SITE_GAP, MARGIN = 14, 30, 110, 20
SITE_W = NODE_W + 2 * PAD

CSS = """
body{font-family:system-ui,-apple-system,"DejaVu Sans",sans-serif;margin:1.2em;color:#1d2430;
background:#f6f7f9}
h1{font-size:1.4em;margin:0 0 .2em} h2{font-size:1.1em;margin:1.4em 0 .5em}
.sub{color:#5a6372;margin:0 0 1em} .banner{padding:.4em .8em;border-radius:6px;
display:inline-block;margin-bottom:.8em} .ready{background:#dcf2e3} .notready{background:#f9dcdc}
.map{background:#fff;border:1px solid #d8dce3;border-radius:8px;padding:8px;overflow-x:auto}
table{border-collapse:collapse;background:#fff;font-size:.92em}
th,td{border:1px solid #d8dce3;padding:.3em .6em;text-align:left;vertical-align:middle}
th{background:#eef0f4} .num{text-align:right;font-variant-numeric:tabular-nums}
.state{font-weight:600;padding:.05em .5em;border-radius:4px}
.state-up{background:#dcf2e3;color:#1f6b3a} .state-suspect{background:#fff1cc;color:#8a5f00}
.state-down{background:#f9dcdc;color:#9b2525}
.chips{display:flex;flex-wrap:wrap;align-items:center;gap:.3em}
.chip{display:inline-flex;align-items:center;gap:.35em;border:2px solid #8a94a6;
border-radius:999px;padding:.1em .65em;background:#fff;white-space:nowrap}
.chip .rank{font-weight:700} .chip .cost{color:#5a6372;font-size:.85em}
.chip.state-up{border-color:#2e8b4f} .chip.state-suspect{border-color:#c98a00}
.chip.state-down{border-color:#c43c3c} .chip.tied{border-style:dashed}
.chip.excluded{opacity:.55;text-decoration:line-through;border-style:dotted}
.arrow{color:#8a94a6} .legend{font-size:.85em;color:#5a6372;margin-top:.4em}
.err{color:#9b2525}
"""


def render_page(data: dict[str, Any], refresh: int = 5) -> str:
    """The whole page of ``status_data``; reloads every ``refresh`` seconds (0: never)."""
    me = escape(str(data.get("node", "?")))
    meta = f'<meta http-equiv="refresh" content="{int(refresh)}">' if refresh > 0 else ""
    states = {n["name"]: n["state"] for n in data["nodes"]}
    ready = data.get("state") == "ready"
    banner = (f'<div class="banner {"ready" if ready else "notready"}">node {me}: '
              f'{escape(str(data.get("state")))}'
              f'{" — " + escape(data["reason"]) if data.get("reason") else ""}</div>')
    again = f"reloads every {int(refresh)} s" if refresh > 0 else "no automatic reload"
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', meta,
        f"<title>clustermail status — {me}</title><style>{CSS}</style></head><body>",
        f"<h1>Cluster status as node {me} sees it</h1>",
        f'<p class="sub">{escape(str(data.get("mode")))} mode · {len(data["nodes"])} node(s) · '
        f'{again} · <a href="status.json">status.json</a></p>', banner,
        "<h2>Cluster map</h2>", f'<div class="map">{render_map(data)}</div>', _legend(),
        "<h2>Nodes and UIDVALIDITY roots</h2>", _nodes_table(data["nodes"]),
        "<h2>Public folders: referral order from each node</h2>",
        _public(data["public"], states), _refresh_note(data), "</body></html>", ""])


# --- the map ----------------------------------------------------------------------------


def _site_order(data: dict[str, Any]) -> list[str]:
    sites = list(data["sites"])
    for link in data["links"]:  # a link to a site the data did not list still gets a box
        sites += [s for s in (link["a"], link["b"]) if s not in sites]
    return sites


def render_map(data: dict[str, Any]) -> str:
    """The SVG cluster map (see the module's Invariants)."""
    nodes = {n["name"]: n for n in data["nodes"]}
    sites = _site_order(data)
    index = {s: i for i, s in enumerate(sites)}
    spans = [abs(index[lk["a"]] - index[lk["b"]]) for lk in data["links"]]
    top = MARGIN + (30 + 26 * max(spans) if spans and max(spans) > 1 else 10)
    members = {s: [n for n in data["sites"].get(s, []) if n in nodes] for s in sites}
    tallest = max([len(m) for m in members.values()] + [1])
    height = HEADER + tallest * (NODE_H + NODE_GAP) + PAD
    width = 2 * MARGIN + len(sites) * SITE_W + max(0, len(sites) - 1) * SITE_GAP
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="cluster-map" role="img" '
             f'width="{width}" height="{top + height + MARGIN}" '
             f'viewBox="0 0 {width} {top + height + MARGIN}" font-family="sans-serif">',
             f"<title>cluster map: {len(nodes)} node(s) in {len(sites)} site(s)</title>"]
    x_of = {s: MARGIN + i * (SITE_W + SITE_GAP) for i, s in enumerate(sites)}
    for link in data["links"]:
        parts.append(_edge(link, x_of, index, top))
    for site in sites:
        parts.append(_site(site, x_of[site], top, height, members[site], nodes, data))
    parts.append("</svg>")
    return "\n".join(parts)


def _edge(link: dict[str, Any], x_of: dict[str, int], index: dict[str, int], top: int) -> str:
    a, b = sorted((link["a"], link["b"]), key=lambda s: index[s])
    cost = escape(str(link["cost"]))
    label = f'{escape(a)}–{escape(b)} cost {cost}'
    if index[b] - index[a] == 1:  # neighbours: a straight edge between the boxes
        x1, x2, y = x_of[a] + SITE_W, x_of[b], top + HEADER // 2 + 4
        path = f'M {x1} {y} L {x2} {y}'
        lx, ly = (x1 + x2) // 2, y
    else:  # farther: an arc above the boxes in between
        x1, x2 = x_of[a] + SITE_W // 2, x_of[b] + SITE_W // 2
        lift = 30 + 26 * (index[b] - index[a] - 1)
        path = f"M {x1} {top} C {x1} {top - 2 * lift} {x2} {top - 2 * lift} {x2} {top}"
        lx, ly = (x1 + x2) // 2, top - round(1.5 * lift)
    return (f'<g class="link" data-a="{escape(a)}" data-b="{escape(b)}" data-cost="{cost}">'
            f"<title>{label}</title>"
            f'<path d="{path}" fill="none" stroke="#5a6372" stroke-width="2.5"/>'
            f'<rect x="{lx - 26}" y="{ly - 11}" width="52" height="22" rx="11" fill="#fff" '
            f'stroke="#5a6372"/><text x="{lx}" y="{ly + 5}" text-anchor="middle" '
            f'font-size="13" font-weight="bold" fill="#1d2430">{cost}</text></g>')


def _site(site: str, x: int, top: int, height: int, members: list[str],
          nodes: dict[str, dict[str, Any]], data: dict[str, Any]) -> str:
    transit = site in data.get("transit", []) or not members
    name = escape(site)
    dashes = ' stroke-dasharray="6 4"' if transit else ""
    parts = [f'<g class="site" data-site="{name}">',
             f'<rect x="{x}" y="{top}" width="{SITE_W}" height="{height}" rx="10" '
             f'fill="{"#f3f4f7" if transit else "#eef3fb"}" stroke="#7d8aa3" stroke-width="1.5"'
             f"{dashes}/>",
             f'<text x="{x + PAD}" y="{top + 20}" font-size="14" font-weight="bold" '
             f'fill="#33405a">{name}{" (transit)" if transit else ""}</text>']
    for i, member in enumerate(members):
        y = top + HEADER + i * (NODE_H + NODE_GAP)
        parts.append(_node(nodes[member], x + PAD, y))
    parts.append("</g>")
    return "".join(parts)


def _node(node: dict[str, Any], x: int, y: int) -> str:
    state = str(node["state"])
    fill, stroke = STATE_COLOURS.get(state, ("#eeeeee", "#777777"))
    name = escape(str(node["name"]))
    lag = node.get("lag")
    second = f"root {node.get('root')} · " + ("this node" if node.get("self")
                                                 else f"lag {lag if lag is not None else '?'}")
    third = state + ("" if node.get("ready") or state == "down" else " · not ready")
    tip = (f"{name} ({escape(state)}), site {escape(str(node.get('site')))}, "
           f"address {escape(str(node.get('address') or '-'))}")
    return (f'<g class="node state-{escape(state)}" data-node="{name}" '
            f'data-state="{escape(state)}"><title>{tip}</title>'
            f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="8" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="{4 if node.get("self") else 2}"/>'
            f'<circle cx="{x + 16}" cy="{y + 18}" r="6" fill="{stroke}"/>'
            f'<text x="{x + 30}" y="{y + 23}" font-size="15" font-weight="bold" '
            f'fill="#1d2430">{name}</text>'
            f'<text x="{x + 12}" y="{y + 41}" font-size="12" fill="#33405a">'
            f"{escape(second)}</text>"
            f'<text x="{x + 12}" y="{y + 56}" font-size="12" fill="{stroke}">'
            f"{escape(third)}</text></g>")


def _legend() -> str:
    swatches = " ".join(f'<span class="state state-{s}">{s}</span>' for s in STATE_COLOURS)
    return (f'<p class="legend">{swatches} — as this node\'s membership sees each peer; '
            "thick border: this node; lag: changes this node holds that the peer has not "
            "confirmed; edge labels: site link costs.</p>")


# --- the tables -------------------------------------------------------------------------


def _nodes_table(nodes: list[dict[str, Any]]) -> str:
    head = ("<tr><th>node</th><th>site</th><th>state</th><th>UIDVALIDITY root</th>"
            "<th>configured root</th><th>lag</th><th>cluster address</th><th>IMAP</th></tr>")
    rows = []
    for n in nodes:
        state = escape(str(n["state"]))
        lag = "this node" if n.get("self") else n.get("lag")
        rows.append(
            f'<tr data-node="{escape(str(n["name"]))}"><td><b>{escape(str(n["name"]))}</b></td>'
            f"<td>{escape(str(n['site']))}</td>"
            f'<td><span class="state state-{state}">{state}</span></td>'
            f'<td class="num">{escape(str(n.get("root")))}</td>'
            f'<td class="num">{escape(str(n.get("configured_root")))}</td>'
            f'<td class="num">{escape(str(lag))}</td>'
            f"<td>{escape(str(n.get('address') or '-'))}</td>"
            f"<td>{escape(', '.join(n.get('imap') or []))}</td></tr>")
    return f'<table id="roots">{head}{"".join(rows)}</table>'


def _public(folders: list[dict[str, Any]], states: dict[str, str]) -> str:
    if not folders:
        return "<p>No public folders are configured.</p>"
    out = []
    for f in folders:
        rows = []
        for origin, answer in f["from"].items():
            rows.append(f'<tr data-from="{escape(origin)}"><td><b>{escape(origin)}</b></td>'
                        f"<td>{escape(str(answer.get('answerer') or '-'))}</td>"
                        f"<td>{_chips(answer, states)}</td></tr>")
        replicas = ", ".join(escape(r) for r in f["replicas"])
        out.append(f'<table class="folder" data-folder="{escape(f["folder"])}">'
                   f'<caption style="text-align:left;padding:.3em 0"><b>'
                   f'{escape(f["mailbox"])}</b> — replicas: {replicas}</caption>'
                   "<tr><th>client at</th><th>answered by</th><th>referral order</th></tr>"
                   f'{"".join(rows)}</table><br>')
    return "\n".join(out)


def _chips(answer: dict[str, Any], states: dict[str, str]) -> str:
    if answer.get("error"):
        return f'<span class="err">{escape(answer["error"])}</span>'
    chips = []
    for i, r in enumerate(answer["order"]):
        tied = answer["order"][i - 1]["rank"] == r["rank"] if i else False
        if i:
            chips.append('<span class="arrow">=</span>' if tied
                         else '<span class="arrow">→</span>')
        state = escape(states.get(r["server"], "down"))
        chips.append(f'<span class="chip state-{state}{" tied" if r["tied"] else ""}" '
                     f'data-server="{escape(r["server"])}" title="{escape(r["reason"])}">'
                     f'<span class="rank">{r["rank"]}</span>{escape(r["server"])}'
                     f'<span class="cost">cost {escape(str(r["cost"]))}</span></span>')
    for r in answer.get("excluded", []):
        chips.append(f'<span class="chip excluded" data-server="{escape(r["server"])}" '
                     f'title="{escape(r["reason"])}">{escape(r["server"])}'
                     f'<span class="cost">{escape(r["reason"])}</span></span>')
    if not chips:
        return "<i>no replica is referred</i>"
    return f'<div class="chips">{"".join(chips)}</div>'


def _refresh_note(data: dict[str, Any]) -> str:
    table = data.get("referral_table")
    if not table:
        return ""
    pending = " An edit of the costs is pending." if table.get("pending") else ""
    return (f'<p class="legend">Referral costs as of the table built '
            f'{table["built_ago"]:.0f} s ago; next rebuild in {table["next_in"]:.0f} s '
            f'(every {table["referral_refresh"]:.0f} s).{pending} Equal-cost replicas '
            "(dashed, joined by =) are given to IMAP clients in a random order.</p>")
