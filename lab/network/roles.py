"""One small unit per node role, as Mininet's nodelib has them: what a node of that role does
beyond the addresses, routes, policy rules and nftables every node gets.

A new role is a class here, registered in ROLES, and its name in lab.schema.topology.Role.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from lab.network import Network
    from lab.schema.topology import Node


class Role:
    forwards: ClassVar[bool] = False  # routes packets between its interfaces

    def configure(self, net: "Network", name: str, node: "Node") -> None:
        if self.forwards:
            net.exec(name, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])


class Host(Role):
    """A LAN host: it sends and answers the traffic the tunnels exist for."""


class Router(Role):
    forwards = True


class NatRouter(Role):
    """Source NAT (masquerade) out of one interface, with the conntrack timers NAT cases hinge on."""

    forwards = True

    def configure(self, net: "Network", name: str, node: "Node") -> None:
        super().configure(net, name, node)
        nat = node.nat
        if nat is None:
            return
        net.exec(name, ["nft", "-f", "-"], input=nat.ruleset())
        for key, value in (("nf_conntrack_udp_timeout", nat.udp_timeout),
                           ("nf_conntrack_udp_timeout_stream", nat.udp_stream_timeout)):
            if value is not None:
                net.exec(name, ["sysctl", "-qw", f"net.netfilter.{key}={value}"])


class Gateway(Role):
    """An IPsec gateway; its charon (and TCP relay) are the running lab's to start."""

    forwards = True


ROLES: dict[str, Role] = {"host": Host(), "router": Router(), "nat": NatRouter(), "ipsec": Gateway()}
