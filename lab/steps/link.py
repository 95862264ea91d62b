"""An interface of a node goes down or comes back up: a WAN link lost, as a step."""
from __future__ import annotations

from typing import Literal

from lab.schema.refs import InterfaceRef, NodeRef, Ref
from lab.schema.types import IfName
from lab.steps import Step, register


@register
class LinkStep(Step):
    """`ip link set dev INTF down` (or up) in the node. Down, the kernel withdraws the routes
    through the interface at once and charon hears of it (kernel-netlink), as when a cable is
    pulled or a modem's link drops and the router takes the interface down."""

    kind: Literal["link"] = "link"
    intf: IfName
    state: Literal["down", "up"]

    def refs(self) -> list[Ref]:
        return [NodeRef(("node",), self.node, self.roles), InterfaceRef(("intf",), self.node, self.intf)]

    def argv(self) -> list[str]:
        return ["ip", "link", "set", "dev", self.intf, self.state]
