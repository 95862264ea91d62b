"""Kernel networking inside one node: nftables, routes, policy rules, sysctls, and pings as test traffic."""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from lab.schema.refs import KernelChange, Ref, RulesetRef
from lab.schema.topology import PolicyRule, Route
from lab.schema.types import Identifier, Interval, IpAddr, NftRuleset, SysctlKey, SysctlValue
from lab.steps import Step, register

if TYPE_CHECKING:
    from lab.run.lab import RunningLab


@register
class NftStep(Step):
    """An nftables script (`nft -f -`) run in the node's namespace only; it may not include files."""

    kind: Literal["nft"] = "nft"
    ruleset: NftRuleset

    def refs(self) -> list[Ref]:
        return [*super().refs(), RulesetRef(("ruleset",), self.node, len(self.ruleset))]

    def argv(self) -> list[str]:
        return ["nft", "-f", "-"]

    def apply(self, lab: "RunningLab") -> None:
        lab.exec(self.node, self.argv(), input=self.ruleset)

    def linux(self) -> str:
        return f"[{self.node}] nft -f - <<'EOF'\n{self.ruleset.rstrip()}\nEOF"


@register
class RouteStep(Route, Step):
    kind: Literal["route"] = "route"
    action: Literal["add", "replace", "delete"] = "replace"

    def refs(self) -> list[Ref]:
        return [*super().refs(), KernelChange((), self.node, "route", self.action, self)]

    def argv(self) -> list[str]:
        return ["ip", "route", self.action, *self.ip_args()]


@register
class RuleStep(PolicyRule, Step):
    """Policy routing (`ip rule`): the tool behind per-WAN source routing."""

    kind: Literal["rule"] = "rule"
    action: Literal["add", "delete"] = "add"

    def refs(self) -> list[Ref]:
        return [*super().refs(), KernelChange((), self.node, "rule", self.action, self)]

    def argv(self) -> list[str]:
        return ["ip", "rule", self.action, *self.ip_args()]


@register
class TrafficStep(Step):
    """Pings that make traffic without judging it (the checks judge), e.g. large packets."""

    kind: Literal["traffic"] = "traffic"
    to: IpAddr
    count: int = Field(3, ge=1, le=100)
    size: int = Field(56, ge=0, le=65507)

    def argv(self) -> list[str]:
        # -W 0.5: a lab's replies come in milliseconds, and where none come (the fault), waiting
        # longer proves nothing; checks judge what was sent, on deadlines of their own
        return ["ping", "-n", "-q", "-c", str(self.count), "-i", "0.2", "-W", "0.5", "-s", str(self.size), self.to]

    def apply(self, lab: "RunningLab") -> None:
        lab.exec(self.node, self.argv(), check=False, timeout=self.count * 3 + 5)


@register
class MonitorStep(Step):
    """Pings every `every` seconds from here for the rest of the phase; `outage` checks
    and result.json read how long traffic stopped."""

    kind: Literal["monitor"] = "monitor"
    name: Identifier
    to: IpAddr
    every: Interval = 0.2

    def provides(self) -> dict[str, str]:
        return {"monitor": self.name}

    def argv(self) -> list[str]:
        # -O: a line for each ping still unanswered when the next leaves; -D: every line time-stamped
        return ["ping", "-n", "-O", "-D", "-i", f"{self.every:g}", self.to]

    def apply(self, lab: "RunningLab") -> None:
        lab.start_monitor(self.name, self.node, self.argv(), self.every)


@register
class SysctlStep(Step):
    """A per-namespace sysctl: `net.` keys of plain segments only, which cannot reach the host's settings."""

    kind: Literal["sysctl"] = "sysctl"
    key: SysctlKey
    value: SysctlValue

    def refs(self) -> list[Ref]:
        return [*super().refs(), KernelChange(("key",), self.node, "sysctl", "set", self.key)]

    def argv(self) -> list[str]:
        return ["sysctl", "-qw", f"{self.key}={self.value}"]
