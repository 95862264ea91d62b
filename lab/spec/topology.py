"""Topology files: nodes, the links between them with addresses, routes."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from lab.pki import PkiSpec
from lab.spec.base import IfaceAddr, IfName, IpAddr, Network, NodeName, RouteDst, Spec, Text

Role = Literal["host", "router", "nat", "ipsec"]
# Roles whose node forwards packets between its interfaces.
FORWARDING_ROLES = {"router", "nat", "ipsec"}


class Route(Spec):
    """An `ip route`: in a topology's nodes, and (with an action) as a step."""

    dst: RouteDst
    via: IpAddr | None = None
    dev: IfName | None = None
    src: IpAddr | None = None
    table: int | None = Field(None, ge=1, le=252)
    metric: int | None = Field(None, ge=0)

    def ip_args(self) -> list[str]:
        args = [self.dst]
        for key in ("via", "dev", "src", "table", "metric"):
            if getattr(self, key) is not None:
                args += [key, str(getattr(self, key))]
        return args


class PolicyRule(Spec):
    """An `ip rule`: policy routing, e.g. per-WAN source routing."""

    from_: Network | None = Field(None, alias="from")
    to: Network | None = None
    iif: IfName | None = None
    oif: IfName | None = None
    fwmark: int | None = None
    table: int = Field(ge=1, le=252)
    priority: int = Field(ge=1, le=32765)

    def ip_args(self) -> list[str]:
        args = ["priority", str(self.priority)]
        for flag, value in (("from", self.from_), ("to", self.to), ("iif", self.iif),
                            ("oif", self.oif), ("fwmark", self.fwmark)):
            if value is not None:
                args += [flag, str(value)]
        return args + ["table", str(self.table)]


class Nat(Spec):
    """Source NAT (masquerade) out of one interface, with the conntrack timers NAT cases hinge on."""

    outside: IfName
    udp_timeout: int | None = Field(None, ge=1, description="net.netfilter.nf_conntrack_udp_timeout")
    udp_stream_timeout: int | None = Field(None, ge=1)
    # a new mapping gets a random source port, as carrier-grade NAT does
    random_ports: bool = False


class Node(Spec):
    role: Role
    routes: list[Route] = []
    rules: list[PolicyRule] = []
    # nftables ruleset loaded when the node is built (e.g. an ISP's BCP 38 filter)
    nft: str | None = None
    nat: Nat | None = None
    description: Text | None = None


class LinkEnd(Spec):
    node: NodeName
    intf: IfName
    addr: list[IfaceAddr] = []
    mtu: int | None = Field(None, ge=576, le=9000)


class Link(Spec):
    """Two ends: a veth pair. More: a Linux bridge in a namespace of its own."""

    name: str | None = Field(None, pattern=r"^[a-z][a-z0-9-]{0,11}$")
    ends: list[LinkEnd] = Field(min_length=2)

    @model_validator(mode="after")
    def _bridge_named(self) -> "Link":
        if len(self.ends) > 2 and not self.name:
            raise ValueError("a link with more than two ends is a bridged segment and needs a 'name'")
        return self


class Timer(Spec):
    """A timer as it runs in the lab, written next to the production value it stands for."""

    lab: float = Field(ge=0)
    production: float = Field(ge=0)
    note: Text | None = None


class Param(Spec):
    """A value the user may change per run (`lab run NAME --param port=10443`), `${name}` in the files."""

    default: int | str
    description: Text | None = None


class References(Spec):
    """What a file declares for `${...}`: read before the rest, which may refer to it."""

    timers: dict[str, Timer] = {}
    params: dict[str, Param] = {}


class Topology(Spec):
    name: str
    title: Text
    description: Text | None = None
    nodes: dict[NodeName, Node]
    links: list[Link]
    # Healthy strongSwan set-up of the gateways; scenarios override it key by key.
    ipsec: dict[NodeName, dict[str, Any]] = {}
    timers: dict[str, Timer] = {}
    params: dict[str, Param] = {}
    pki: PkiSpec = PkiSpec()
    # Per gateway: charon's UDP carried over TCP (RFC 9329) by the lab's relay.
    tcp_encap: dict[NodeName, dict[str, Any]] = {}

    def interfaces(self, node: str) -> list[str]:
        return [end.intf for link in self.links for end in link.ends if end.node == node]

    def addresses(self, node: str) -> list[str]:
        return [a for link in self.links for end in link.ends if end.node == node for a in end.addr]
