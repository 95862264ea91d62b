"""The topology as an SVG drawing: nodes in layers from the first node, links with addresses."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from lab.schema.topology import Topology

COL, ROW, W, H = 270, 120, 130, 44


@dataclass
class Box:
    name: str
    role: str
    x: float
    y: float
    fault: bool


def layout(topo: Topology, faulty: set[str]) -> tuple[list[Box], list[tuple], float, float]:
    """Breadth-first layers from the first node; a bridged segment is drawn as a node of its own."""
    names = list(topo.nodes)
    segments = {link.name: link for link in topo.links if len(link.ends) > 2}
    neighbours: dict[str, set[str]] = {n: set() for n in [*names, *segments]}
    for link in topo.links:
        hub = link.name if len(link.ends) > 2 else None
        for a in link.ends:
            for b in link.ends:
                if a.node != b.node:
                    if hub:
                        neighbours[a.node].add(hub)
                        neighbours[hub].add(a.node)
                    else:
                        neighbours[a.node].add(b.node)
    layer: dict[str, int] = {}
    for root in [*names, *segments]:
        if root in layer:
            continue
        layer[root] = max(layer.values(), default=-1) + 1
        queue = deque([root])
        while queue:
            here = queue.popleft()
            for nxt in sorted(neighbours[here], key=lambda n: ([*names, *segments].index(n))):
                if nxt not in layer:
                    layer[nxt] = layer[here] + 1
                    queue.append(nxt)
    rows: dict[int, int] = {}
    boxes = {}
    for name in [*names, *segments]:
        col = layer[name]
        row = rows.get(col, 0)
        rows[col] = row + 1
        role = topo.nodes[name].role if name in topo.nodes else "bridge"
        boxes[name] = Box(name, role, 30 + col * COL, 40 + row * ROW, name in faulty)
    lines = []
    for link in topo.links:
        if len(link.ends) > 2:
            for end in link.ends:
                lines.append((boxes[end.node], boxes[link.name], f"{end.intf} {' '.join(end.addr)}", ""))
        else:
            a, b = link.ends
            lines.append((boxes[a.node], boxes[b.node], f"{a.intf} {' '.join(a.addr)}", f"{b.intf} {' '.join(b.addr)}"))
    width = 60 + (max(layer.values()) + 1) * COL
    height = 60 + max(rows.values()) * ROW
    return list(boxes.values()), lines, width, height
