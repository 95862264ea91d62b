"""Topology files: nodes, the links between them with addresses, routes."""
from __future__ import annotations

import re
from functools import cached_property
from typing import Any, Literal

from pydantic import Field, model_validator

from lab.schema.pki import Pki
from lab.schema.types import (FileModel, Identifier, IfaceAddr, IfName, IpAddr, NftRuleset, NodeName, Prefix,
                              RouteDst, Text, seconds_between)

Role = Literal["host", "router", "nat", "ipsec"]
# A lab of 183 nodes (hub-spoke-nat, 60 branches) takes 1.5 GB; beyond these, validating and
# building are work nobody asked for.
MAX_NODES, MAX_LINKS, MAX_ENDS = 400, 800, 64
# Roles whose node forwards packets between its interfaces.
FORWARDING_ROLES = {"router", "nat", "ipsec"}


class Route(FileModel):
    """An `ip route`: in a topology's nodes, and (with an action) as a step."""

    dst: RouteDst
    # blackhole: packets to dst are dropped (a route that keeps traffic off the default route
    # while a tunnel is down, as FortiOS `set blackhole enable` does)
    type: Literal["unicast", "blackhole"] = "unicast"
    via: IpAddr | None = None
    dev: IfName | None = None
    src: IpAddr | None = None
    table: int | None = Field(None, ge=1, le=252)
    metric: int | None = Field(None, ge=0, le=0xFFFFFFFF)

    @model_validator(mode="after")
    def _nowhere(self) -> "Route":
        if self.type == "blackhole" and (self.via or self.dev):
            raise ValueError("a blackhole route goes nowhere; allowed: no via and no dev")
        return self

    def ip_args(self) -> list[str]:
        args = ([self.type] if self.type != "unicast" else []) + [self.dst]
        for key in ("via", "dev", "src", "table", "metric"):
            if getattr(self, key) is not None:
                args += [key, str(getattr(self, key))]
        return args


class PolicyRule(FileModel):
    """An `ip rule`: policy routing, e.g. per-WAN source routing."""

    from_: Prefix | None = Field(None, alias="from")
    to: Prefix | None = None
    iif: IfName | None = None
    oif: IfName | None = None
    fwmark: int | None = Field(None, ge=0, le=0xFFFFFFFF)
    table: int = Field(ge=1, le=252)
    priority: int = Field(ge=1, le=32765)

    def ip_args(self) -> list[str]:
        args = ["priority", str(self.priority)]
        for flag, value in (("from", self.from_), ("to", self.to), ("iif", self.iif),
                            ("oif", self.oif), ("fwmark", self.fwmark)):
            if value is not None:
                args += [flag, str(value)]
        return args + ["table", str(self.table)]


class Nat(FileModel):
    """Source NAT (masquerade) out of one interface, with the conntrack timers NAT cases hinge on."""

    outside: IfName
    udp_timeout: int | None = Field(None, ge=1, le=86400, description="net.netfilter.nf_conntrack_udp_timeout")
    udp_stream_timeout: int | None = Field(None, ge=1, le=86400)
    # a new mapping gets a random source port, as carrier-grade NAT does
    random_ports: bool = False

    def ruleset(self) -> str:
        return ("table ip lab_nat {\n"
                "  chain postrouting {\n"
                "    type nat hook postrouting priority srcnat; policy accept;\n"
                f"    oifname \"{self.outside}\" masquerade{' random' if self.random_ports else ''}\n"
                "  }\n"
                "}\n")


class Node(FileModel):
    role: Role
    routes: list[Route] = Field([], max_length=256)
    rules: list[PolicyRule] = Field([], max_length=256)
    # nftables ruleset loaded when the node is built (e.g. an ISP's BCP 38 filter)
    nft: NftRuleset | None = None
    nat: Nat | None = None
    description: Text | None = None


class LinkEnd(FileModel):
    node: NodeName
    intf: IfName
    addr: list[IfaceAddr] = Field([], max_length=16)
    mtu: int | None = Field(None, ge=576, le=9000)


class Link(FileModel):
    """Two ends: a veth pair. More: a Linux bridge in a namespace of its own."""

    name: NodeName | None = None
    ends: list[LinkEnd] = Field(min_length=2, max_length=MAX_ENDS)

    @model_validator(mode="after")
    def _bridge_named(self) -> "Link":
        if len(self.ends) > 2 and not self.name:
            raise ValueError("a link with more than two ends is a bridged segment and needs a 'name'")
        return self


class Timer(FileModel):
    """A timer as it runs in the lab, written next to the production value it stands for."""

    lab: seconds_between(0, 86400)
    production: seconds_between(0, 10 * 365 * 86400)
    note: Text | None = None


class Param(FileModel):
    """A value the user may change per run (`lab run NAME --param port=10443`), `${name}` in the files.
    A value given is of the default's type: a whole number from `min` to `max`, or a name."""

    default: int | Identifier
    description: Text | None = None
    min: int = Field(0, ge=-0xFFFFFFFF, le=0xFFFFFFFF)  # for a whole-number default
    max: int = Field(65535, ge=-0xFFFFFFFF, le=0xFFFFFFFF)

    @model_validator(mode="after")
    def _default_in_range(self) -> "Param":
        if isinstance(self.default, int) and not self.min <= self.default <= self.max:
            raise ValueError(f"default {self.default} lies outside min {self.min} .. max {self.max}; "
                             "allowed: a default in the range")
        if isinstance(self.default, str) and ("min" in self.model_fields_set or "max" in self.model_fields_set):
            raise ValueError("min and max bound a whole-number parameter; allowed: no min or max for a name")
        return self

    def allowed(self) -> str:
        if isinstance(self.default, int):
            return f"a whole number from {self.min} to {self.max} (the default is {self.default})"
        return f"a name like the default, {self.default}: a letter, then letters, digits, '_' or '-'"

    def parse(self, text: str) -> int | str:
        """`text` (from the command line) as this parameter's type; ValueError if it is not one."""
        if isinstance(self.default, int):
            if not re.fullmatch(r"-?[0-9]{1,10}", text) or not self.min <= int(text) <= self.max:
                raise ValueError(text)
            return int(text)
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,31}", text) or text == "include":
            raise ValueError(text)
        return text


class References(FileModel):
    """What a file declares for `${...}`: read before the rest, which may refer to it."""

    timers: dict[Identifier, Timer] = {}
    params: dict[Identifier, Param] = {}


class Topology(FileModel):
    name: Identifier
    title: Text
    description: Text | None = None
    nodes: dict[NodeName, Node] = Field(max_length=MAX_NODES)
    links: list[Link] = Field(max_length=MAX_LINKS)
    # Healthy strongSwan set-up of the gateways; scenarios override it key by key.
    ipsec: dict[NodeName, dict[str, Any]] = {}
    timers: dict[Identifier, Timer] = {}
    params: dict[Identifier, Param] = {}
    pki: Pki = Pki()
    # Per gateway: charon's UDP carried over TCP (RFC 9329) by the lab's relay.
    tcp_encap: dict[NodeName, dict[str, Any]] = {}

    def gateways(self) -> list[str]:
        return [name for name, node in self.nodes.items() if node.role == "ipsec"]

    @cached_property
    def _ends(self) -> dict[str, list[LinkEnd]]:
        """Each node's link ends, in link order: one pass over the links for all the nodes."""
        ends: dict[str, list[LinkEnd]] = {}
        for link in self.links:
            for end in link.ends:
                ends.setdefault(end.node, []).append(end)
        return ends

    def ends(self, node: str) -> list[LinkEnd]:
        return self._ends.get(node, [])

    def interfaces(self, node: str) -> list[str]:
        return [end.intf for end in self.ends(node)]

    def addresses(self, node: str) -> list[str]:
        return [a for end in self.ends(node) for a in end.addr]
