"""The topology as an SVG drawing, laid out by Graphviz (`dot`).

Each node is a box (a shape per role) listing its interfaces with their addresses, and every
link ends at the row of the interface it belongs to: the labels are inside the nodes, where
Graphviz sizes and places them, so no label can land on a line or on another label. Columns
run left to right from a LAN host, so hosts sit at the edges and the path in the middle; a
bridged segment (a link with more than two ends) is a small node of its own; IPsec tunnels
are dashed edges between the gateways that have a connection to each other.

Names and addresses come from scenario files, which are untrusted: everything written into
the DOT text is quoted or escaped, and `dot` runs with an argv, never through a shell.
"""
from __future__ import annotations

import html
import ipaddress
import re
import subprocess
from collections import deque
from dataclasses import dataclass

from lab import preflight
from lab.report import ladder
from lab.schema.load import LoadedScenario
from lab.schema.topology import Link, Topology

# Role -> (Graphviz shape, extra style, fill, outline); a legend in the report explains them.
SHAPES = {
    "host": ("box", "rounded", "#ffffff", "#6b7785"),
    "router": ("cylinder", "", "#e8eef7", "#4a6690"),
    "nat": ("box", "", "#fdf3e1", "#a66a00"),
    "ipsec": ("box3d", "", "#e3f1e5", "#2e7d32"),
}
# No margin left and right, so a line ends where its interface row meets the outline; the
# cylinder's caps need room above and below the name and the last row.
MARGINS = {"router": "0,0.17"}
FAULT_COLOUR = "#c62828"
BOX3D_DEPTH = 4  # points: how far Graphviz draws a box3d's front face inside the node
TUNNEL_COLOUR = "#2e7d32"
DOT_TIMEOUT_S = 20


@dataclass(frozen=True)
class Tunnel:
    """Two gateways with a connection to each other; `transport` as drawn on the edge."""

    a: str
    b: str
    transport: str


def quote(text: str) -> str:
    """A DOT double-quoted string that shows `text` literally: a backslash would start one of
    Graphviz's label escapes (\\N, \\G, \\l) and a quote would end the string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "\\n") + '"'


def _text(text: str) -> str:
    """Text inside an HTML-like DOT label: entities for &, <, > and quotes."""
    return html.escape(text, quote=True)


def _vertex(kind: str, name: str) -> str:
    # nodes and segments live in one DOT namespace: prefixes keep a segment named like a node apart
    return quote(f"{kind}:{name}")


def _neighbours(topo: Topology) -> dict[str, set[str]]:
    """Adjacency of nodes and bridged segments (a segment is a vertex its members attach to)."""
    graph: dict[str, set[str]] = {n: set() for n in topo.nodes}
    for link in topo.links:
        ends = [e.node for e in link.ends]
        if len(ends) > 2:
            graph.setdefault(f"segment:{link.name}", set())
            ends = [f"segment:{link.name}"] + ends
            pairs = [(ends[0], other) for other in ends[1:]]
        else:
            pairs = [(ends[0], ends[1])]
        for a, b in pairs:
            graph[a].add(b)
            graph[b].add(a)
    return graph


def _distances(graph: dict[str, set[str]], root: str) -> dict[str, int]:
    dist, queue = {root: 0}, deque([root])
    while queue:
        here = queue.popleft()
        for nxt in sorted(graph[here]):
            if nxt not in dist:
                dist[nxt] = dist[here] + 1
                queue.append(nxt)
    return dist


def ranks(topo: Topology) -> dict[str, int]:
    """The column of every node and segment (`segment:NAME`), left to right.

    Breadth-first from the host that has the most other hosts at the far end, so hosts end up
    at both edges rather than one LAN host in the middle of the path; the first node of the
    file goes on the left, as its author listed it first."""
    graph = _neighbours(topo)
    hosts = [n for n, node in topo.nodes.items() if node.role == "host"] or list(topo.nodes)

    def hosts_at_far_end(root: str) -> int:
        dist = _distances(graph, root)
        far = max(dist.values())
        return sum(1 for h in hosts if dist.get(h) == far)

    root = max(hosts, key=lambda h: (hosts_at_far_end(h), -hosts.index(h)))
    dist = _distances(graph, root)
    # a part not connected to the root starts its own columns at 0
    for vertex in graph:
        if vertex not in dist:
            dist.update(_distances(graph, vertex))
    far = max(dist.values())
    first = next(iter(topo.nodes))
    if dist[first] * 2 > far:
        dist = {v: far - d for v, d in dist.items()}
    return dist


def _owners(topo: Topology) -> dict[str, str]:
    """Address (without prefix length) -> the node it is configured on."""
    return {str(ipaddress.ip_interface(a).ip): end.node for link in topo.links for end in link.ends for a in end.addr}


def tunnels(sc: LoadedScenario) -> list[Tunnel]:
    """Gateway pairs with a connection between them, found from either side's remote_addrs
    (through the TCP relay's tunnels where charon talks to a loopback relay address)."""
    owner = _owners(sc.topology)
    found: dict[frozenset[str], Tunnel] = {}
    for gw, config in sc.gateways.items():
        encap = sc.tcp_encap.get(gw)
        relays = {t.relay: t for t in encap.tunnels} if encap else {}
        for conn in config.connections.values():
            for addr in conn.remote_addrs:
                relay = relays.get(addr)
                wire = relay.remote if relay else addr  # a listening relay tunnel names no peer
                peer = owner.get(str(wire)) if wire else None
                if peer in sc.gateways and peer != gw and frozenset((gw, peer)) not in found:
                    found[frozenset((gw, peer))] = Tunnel(gw, peer, _transport(sc, gw, peer))
    return list(found.values())


def _transport(sc: LoadedScenario, a: str, b: str) -> str:
    encap = sc.tcp_encap.get(a) or sc.tcp_encap.get(b)
    if encap is None:
        return "IPsec"
    return f"IPsec · TCP {encap.tcp_port}" if encap.mode == "tcp" else f"IPsec · UDP/TCP {encap.tcp_port}"


def _interface_cell(port: str, intf: str, addrs: list[str], mtu: int | None, align: str) -> str:
    lines = [f'<FONT COLOR="#37474f"><B>{_text(intf)}</B></FONT>'] + [_text(a) for a in addrs]
    if mtu:
        lines.append(f'<FONT COLOR="#8d6e00">mtu {mtu}</FONT>')
    # a row per line: Graphviz spaces <BR/> lines by the font size, closer than a browser's
    # text boxes are tall, and rows by the text's full height
    rows = "".join(f'<TR><TD ALIGN="{align}" CELLPADDING="0">{line}</TD></TR>' for line in lines)
    return (f'<TD PORT="{port}" ALIGN="{align}" CELLPADDING="4">'
            f'<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0">{rows}</TABLE></TD>')


def _node_label(name: str, role: str, cells: list[str], fault: bool) -> str:
    """The node's name (and what it runs), then one row per interface. A box3d's front face
    ends BOX3D_DEPTH short of the node's right edge: a spacer column keeps rows inside it."""
    spacer = f'<TD WIDTH="{BOX3D_DEPTH}"></TD>' if role == "ipsec" else ""
    span = f' COLSPAN="{2 if spacer else 1}"'
    name_html = f"<B>{_text(name)}</B>"
    if fault:
        name_html = f'<FONT COLOR="{FAULT_COLOUR}">{name_html}</FONT>'
    rows = [f'<TR><TD{span} CELLPADDING="3">{name_html}</TD></TR>']
    subtitle = {"ipsec": "strongSwan", "nat": "NAT"}.get(role)
    if subtitle:
        rows.append(f'<TR><TD{span} CELLPADDING="0"><FONT POINT-SIZE="8" COLOR="#5f6b76">{subtitle}</FONT></TD></TR>')
    rows += [f"<TR>{cell}{spacer}</TR>" for cell in cells]
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2">{"".join(rows)}</TABLE>>'


@dataclass
class _End:
    """One end of a drawn line: a node's interface row, or a segment."""

    vertex: str  # DOT id
    port: str | None  # the interface row; None on a segment
    column: int
    name: str  # as the line's tooltip shows it: "gw1 wan", "hqlan"


def _ends(topo: Topology, rank: dict[str, int]) -> tuple[dict[str, list[str]], list[tuple[_End, _End]]]:
    """Per node its interface rows (those facing left first), and the lines between them."""
    rows: dict[str, list[tuple[bool, str]]] = {n: [] for n in topo.nodes}
    lines: list[tuple[_End, _End]] = []
    for i, link in enumerate(topo.links):
        ends = []
        for j, end in enumerate(link.ends):
            faces_left = _far_side(link, end.node, rank) < rank[end.node]
            rows[end.node].append((not faces_left, _interface_cell(
                f"l{i}e{j}", end.intf, list(end.addr), end.mtu, "LEFT" if faces_left else "RIGHT")))
            ends.append(_End(_vertex("node", end.node), f"l{i}e{j}", rank[end.node], f"{end.node} {end.intf}"))
        if len(link.ends) > 2:
            segment = _End(_vertex("segment", link.name), None, rank[f"segment:{link.name}"], link.name)
            lines += [(end, segment) for end in ends]
        else:
            lines.append((ends[0], ends[1]))
    return {n: [cell for _, cell in sorted(v, key=lambda x: x[0])] for n, v in rows.items()}, lines


def _far_side(link: Link, node: str, rank: dict[str, int]) -> int:
    """The column of what this node's end of the link connects to (the segment, or the peer)."""
    if len(link.ends) > 2:
        return rank[f"segment:{link.name}"]
    return next(rank[e.node] for e in link.ends if e.node != node)


def _attach(end: _End, other: _End) -> str:
    """Where a line meets a node: its interface row, on the side facing the other end."""
    if end.port is None:
        return end.vertex
    return f'{end.vertex}:"{end.port}":{"w" if other.column < end.column else "e"}'


def _node(name: str, role: str, cells: list[str], fault: bool) -> str:
    shape, style, fill, outline = SHAPES[role]
    styles = ",".join(s for s in (style, "filled") if s)
    return (f"  {_vertex('node', name)} [shape={shape}, style={quote(styles)}, fillcolor={quote(fill)}, "
            f"color={quote(FAULT_COLOUR if fault else outline)}, penwidth={3 if fault else 1.3}, "
            f"peripheries={2 if role == 'nat' else 1}, margin={quote(MARGINS.get(role, '0,0.05'))}, "
            f"class={quote(f'role-{role}' + (' fault' if fault else ''))}, tooltip={quote(name)}, "
            f"label={_node_label(name, role, cells, fault)}];")


def _segment(name: str) -> str:
    return (f"  {_vertex('segment', name)} [shape=box, style=\"rounded,dashed,filled\", fillcolor=\"#f5f5f5\", "
            f"color=\"#8a8a8a\", fontsize=8, margin=\"0.06,0.03\", class=\"segment\", tooltip={quote(name)}, "
            f"label={quote(name)}];")


def _line(a: _End, b: _End) -> str:
    if a.column > b.column:
        a, b = b, a  # lines run left to right, so dot keeps the columns
    return f"  {_attach(a, b)} -> {_attach(b, a)} [tooltip={quote(f'{a.name} — {b.name}')}];"


def _tunnel(tunnel: Tunnel, rank: dict[str, int]) -> str:
    # weight 0: the tunnel is drawn through the columns between, but does not pull them together
    a, b = sorted((tunnel.a, tunnel.b), key=lambda n: rank[n])
    return (f"  {_vertex('node', a)} -> {_vertex('node', b)} [weight=0, style=dashed, color={quote(TUNNEL_COLOUR)}, "
            f"penwidth=2, fontcolor={quote(TUNNEL_COLOUR)}, class=\"tunnel\", "
            f"tooltip={quote(f'{a} — {b}: {tunnel.transport}')}, label={quote(tunnel.transport)}];")


def dot_source(sc: LoadedScenario, faulty: set[str]) -> str:
    """The DOT text of the drawing (every name quoted or escaped)."""
    topo = sc.topology
    rank = ranks(topo)
    rows, lines = _ends(topo, rank)
    out = ["digraph topology {",
           '  graph [rankdir=LR, ranksep=0.42, nodesep=0.22, newrank=true, bgcolor="transparent", pad=0.08];',
           '  node [fontname="DejaVu Sans Mono", fontsize=9, penwidth=1.3];',
           '  edge [arrowhead=none, penwidth=1.6, color="#607080", fontname="DejaVu Sans Mono", fontsize=9];']
    for column in sorted(set(rank.values())):
        members = " ".join(_vertex(*v.split(":")) if ":" in v else _vertex("node", v)
                           for v, r in sorted(rank.items()) if r == column)
        out.append(f"  {{ rank=same; {members} }}")
    out += [_node(name, node.role, rows[name], name in faulty) for name, node in topo.nodes.items()]
    out += [_segment(link.name) for link in topo.links if len(link.ends) > 2]
    out += [_line(a, b) for a, b in lines]
    out += [_tunnel(t, rank) for t in tunnels(sc)]
    return "\n".join(out + ["}"]) + "\n"


def render(dot_text: str) -> str:
    """dot's SVG made embeddable: no XML prologue or comments, scaled to its container (never
    wider than drawn, so it stays sharp on a wide screen, and never below ladder.MIN_SCALE of
    that: on a phone it keeps its text size and scrolls sideways in its frame)."""
    svg = subprocess.run([preflight.program("dot"), "-Tsvg"], input=dot_text, capture_output=True, text=True,
                         check=True, timeout=DOT_TIMEOUT_S).stdout
    svg = svg[svg.index("<svg"):]
    # comments, and titles naming dot's internal ids ("node:gw1:e->node:inet:w"): hover
    # shows the tooltips set in the DOT text instead
    svg = re.sub(r"<!--.*?-->\n?|<title>[^<]*</title>\n?", "", svg, flags=re.S)
    width = re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg)
    # dot draws in points (4/3 px); a quarter larger than that reads like the text around it
    natural_px = float(width.group(1)) * 4 / 3 * 1.25
    return re.sub(r'<svg width="[\d.]+pt" height="[\d.]+pt"',
                  f'<svg id="topology" width="100%" style="max-width: {natural_px:.0f}px; '
                  f'min-width: {natural_px * ladder.MIN_SCALE:.0f}px"', svg, count=1)


def svg(sc: LoadedScenario, faulty: set[str]) -> str:
    """The drawing as SVG markup for the report (dot's output of escaped input)."""
    return render(dot_source(sc, faulty))
