"""Routes, policy rules and interface sysctls as one node's kernel will take them, followed through
a phase: what the topology gives it, then each step in order.

`ip route add` fails when the next hop is on no link of the node ("Nexthop has invalid
gateway"), when the device does not exist, when the preferred source is not the node's own, and
when the same route is there already; `ip route delete` and `ip rule delete` fail when nothing
matches; `sysctl -w net.ipv4.conf.<if>.*` fails for an interface the node lacks. Each of these
would stop a phase with an error after its lab was built: here they are found at load, with the
file and line of the route, rule or step. The model follows the kernel's matching: a delete
matches on what it names (a metric, type, next hop or device only when given), an add collides
with a route of the same table, destination and metric, a rule with the same selectors.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from lab.schema.topology import PolicyRule, Route, Topology

MAIN = 254
_CONF = re.compile(r"net\.ipv[46]\.(?:conf|neigh)\.([A-Za-z0-9_-]+)\.")
# every namespace has these; a gateway also has kernel-libipsec's TUN device
_ALWAYS = ("all", "default", "lo")
TUN = "ipsec0"


@dataclass(frozen=True)
class _Entry:
    table: int
    dst: ipaddress.IPv4Network | ipaddress.IPv6Network
    metric: int
    type: str = "unicast"
    via: str | None = None
    dev: str | None = None


def _dst(route: Route) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if route.dst != "default":
        return ipaddress.ip_network(route.dst)
    return ipaddress.ip_network("::/0" if route.via and ":" in route.via else "0.0.0.0/0")


def _metric(route: Route, dst: Any) -> int:
    """The kernel's default: 0 for IPv4, 1024 for IPv6 routes added by hand."""
    return route.metric if route.metric is not None else (1024 if dst.version == 6 else 0)


@dataclass
class NodeKernel:
    """One node's interfaces, addresses, routes and rules at a point of a phase."""

    name: str
    addresses: dict[str, list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]]  # interface -> its addresses
    gateway: bool
    routes: list[_Entry] = field(default_factory=list)
    rules: list[tuple] = field(default_factory=list)

    @classmethod
    def of(cls, topo: Topology, node: str) -> tuple["NodeKernel", list[tuple[str, int, str]]]:
        """The node as built: connected routes of its addresses, then the topology's routes and
        rules; and what the kernel would refuse of those, as (routes or rules, index, why)."""
        addresses: dict[str, list] = {}
        for end in topo.ends(node):
            addresses.setdefault(end.intf, []).extend(ipaddress.ip_interface(a) for a in end.addr)
        kernel = cls(node, addresses, topo.nodes[node].role == "ipsec")
        for intf, addrs in addresses.items():
            for addr in addrs:
                if addr.network.prefixlen < addr.max_prefixlen:
                    kernel.routes.append(_Entry(MAIN, addr.network, 0 if addr.version == 4 else 256, dev=intf))
        refused = [("routes", k, why) for k, route in enumerate(topo.nodes[node].routes)
                   if (why := kernel.route(route, "add"))]
        refused += [("rules", k, why) for k, rule in enumerate(topo.nodes[node].rules) if (why := kernel.rule(rule, "add"))]
        return kernel, refused

    def own(self) -> list[str]:
        return [str(a.ip) for addrs in self.addresses.values() for a in addrs]

    def route(self, route: Route, action: str) -> str | None:
        """What the kernel would refuse of this `ip route <action>`, or None; the model follows it."""
        dst = _dst(route)
        if route.dev is not None and route.dev not in self.addresses:
            return (f"dev {route.dev} is not an interface of {self.name}; allowed: "
                    f"{', '.join(self.addresses) or 'none'}")
        if route.via is not None and ipaddress.ip_address(route.via).version != dst.version:
            return f"next hop {route.via} is not of the family of {route.dst}; allowed: an IPv{dst.version} next hop"
        entry = _Entry(route.table or MAIN, dst, _metric(route, dst), route.type, route.via, route.dev)
        if action == "delete":
            match = next((e for e in self.routes if self._deletes(route, entry, e)), None)
            if match is None:
                return (f"{self.name} has no such route at this point of the phase (the kernel says: No such "
                        "process); allowed: a route the topology or an earlier step added")
            self.routes.remove(match)
            return None
        problem = self._reachable(route)
        if problem:
            return problem
        same = [e for e in self.routes if (e.table, e.dst, e.metric) == (entry.table, entry.dst, entry.metric)]
        if same and action == "add":
            table = "main" if entry.table == MAIN else entry.table
            return (f"{self.name} has a route to {route.dst} with metric {entry.metric} in table {table} already "
                    "(the kernel says: File exists); allowed: action replace, or another metric")
        self.routes = [e for e in self.routes if e not in same] + [entry]
        return None

    @staticmethod
    def _deletes(route: Route, wanted: _Entry, entry: _Entry) -> bool:
        return ((entry.table, entry.dst) == (wanted.table, wanted.dst)
                and (route.metric is None or entry.metric == wanted.metric)
                and (route.type == "unicast" or entry.type == route.type)
                and (route.via is None or entry.via == route.via)
                and (route.dev is None or entry.dev == route.dev))

    def _reachable(self, route: Route) -> str | None:
        """A unicast route needs a device or a next hop on one of the node's links, and a
        preferred source that is the node's own."""
        if route.type == "unicast" and route.via is None and route.dev is None:
            return "a unicast route needs a next hop or a device; allowed: via, dev, or both"
        if route.src is not None and route.src not in self.own():
            return (f"src {route.src} is not an address of {self.name}; allowed: "
                    f"{', '.join(self.own()) or 'none'}")
        if route.via is None:
            return None
        via = ipaddress.ip_address(route.via)
        links = [route.dev] if route.dev else list(self.addresses)
        if not any(via in a.network for intf in links for a in self.addresses[intf]):
            on = f"the link of {route.dev}" if route.dev else f"a link of {self.name}"
            nets = sorted({str(a.network) for intf in links for a in self.addresses[intf]})
            return (f"next hop {route.via} is on no subnet of {on} (the kernel says: Nexthop has invalid gateway); "
                    f"allowed: an address in {', '.join(nets) or 'no subnet'}")
        return None

    def rule(self, rule: PolicyRule, action: str) -> str | None:
        key = _rule_key(rule)
        if action == "add":
            if key in self.rules:
                return (f"{self.name} has this rule already (the kernel says: File exists); allowed: a rule that "
                        "differs in priority or selectors")
            self.rules.append(key)
            return None
        match = next((r for r in self.rules if all(w is None or w == v for w, v in zip(key, r))), None)
        if match is None:
            return (f"{self.name} has no such rule at this point of the phase (the kernel says: No such file or "
                    "directory); allowed: a rule the topology or an earlier step added")
        self.rules.remove(match)
        return None

    def sysctl(self, key: str) -> str | None:
        """A per-interface key names an interface the node has."""
        found = _CONF.match(key)
        intfs = [*self.addresses, *_ALWAYS, *([TUN] if self.gateway else [])]
        if found and found.group(1) not in intfs:
            return f"{self.name} has no interface {found.group(1)}; allowed: {', '.join(intfs)}"
        return None


def _rule_key(rule: PolicyRule) -> tuple:
    return (rule.priority, rule.from_, rule.to, rule.iif, rule.oif, rule.fwmark, rule.table)
