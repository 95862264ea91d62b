"""Kernel networking inside one node: nftables, routes, policy rules, sysctls, and pings as test traffic."""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from lab.monitor import ping_argv
from lab.spec.base import Duration, IpAddr
from lab.spec.topology import PolicyRule
from lab.spec.topology import Route as RouteSpec
from lab.steps import Step, register

if TYPE_CHECKING:
    from lab.lab import Lab


@register
class Nft(Step):
    """An nftables script (`nft -f`) run in the node's namespace only."""

    kind: Literal["nft"] = "nft"
    ruleset: str

    def argv(self) -> list[str]:
        return ["nft", "-f", "-"]

    def apply(self, lab: "Lab") -> None:
        lab.exec(self.node, self.argv(), input=self.ruleset)

    def linux(self) -> str:
        return f"[{self.node}] nft -f - <<'EOF'\n{self.ruleset.rstrip()}\nEOF"


@register
class Route(RouteSpec, Step):
    kind: Literal["route"] = "route"
    action: Literal["add", "replace", "delete"] = "replace"

    def argv(self) -> list[str]:
        return ["ip", "route", self.action, *self.ip_args()]


@register
class Rule(PolicyRule, Step):
    """Policy routing (`ip rule`): the tool behind per-WAN source routing."""

    kind: Literal["rule"] = "rule"
    action: Literal["add", "delete"] = "add"

    def argv(self) -> list[str]:
        return ["ip", "rule", self.action, *self.ip_args()]


@register
class Traffic(Step):
    """Pings that make traffic without judging it (the checks judge), e.g. large packets."""

    kind: Literal["traffic"] = "traffic"
    to: IpAddr
    count: int = Field(3, ge=1, le=100)
    size: int = Field(56, ge=0, le=65507)

    def argv(self) -> list[str]:
        return ["ping", "-n", "-q", "-c", str(self.count), "-i", "0.2", "-W", "2", "-s", str(self.size), self.to]

    def apply(self, lab: "Lab") -> None:
        lab.exec(self.node, self.argv(), check=False, timeout=self.count * 3 + 5)


@register
class Monitor(Step):
    """Pings every `every` seconds from here for the rest of the phase; `outage` checks
    and result.json read how long traffic stopped."""

    kind: Literal["monitor"] = "monitor"
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    to: IpAddr
    every: Duration = Field(0.2, ge=0.01)  # finer than 10 ms is a flood, not a probe

    def argv(self) -> list[str]:
        return ping_argv(self.to, self.every)

    def apply(self, lab: "Lab") -> None:
        lab.start_monitor(self.name, self.node, self.to, self.every)


@register
class Sysctl(Step):
    """A per-namespace sysctl; only `net.` keys, which cannot reach the host's settings."""

    kind: Literal["sysctl"] = "sysctl"
    key: str
    value: str | int

    @field_validator("key")
    @classmethod
    def _namespaced(cls, key: str) -> str:
        if not key.startswith("net."):
            raise ValueError(f"'{key}' is not per network namespace; allowed: net.* keys only")
        return key

    def argv(self) -> list[str]:
        return ["sysctl", "-qw", f"{self.key}={self.value}"]
