"""IKE and CHILD SA state on a node, read through vici."""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from lab.checks import Check, Probe, register
from lab.schema.refs import NodeRef, Ref, SaRef
from lab.schema.types import FileModel, Identifier, NodeName, Prefix

if TYPE_CHECKING:
    from lab.run.lab import RunningLab


class Bounds(FileModel):
    at_least: int | None = Field(None, ge=0)
    at_most: int | None = Field(None, ge=0)

    def holds(self, value: int) -> bool:
        return (self.at_least is None or value >= self.at_least) and (self.at_most is None or value <= self.at_most)

    def text(self) -> str:
        return " and ".join(t for t in (f">= {self.at_least}" if self.at_least is not None else "",
                                        f"<= {self.at_most}" if self.at_most is not None else "") if t)


@register
class TunnelCheck(Check):
    kind: Literal["tunnel"] = "tunnel"
    roles: ClassVar[frozenset[str] | None] = frozenset({"ipsec"})
    node: NodeName
    ike: Identifier
    child: Identifier | None = None
    expect: Literal["established", "down"] = "established"
    # Optional: the traffic selectors the installed CHILD_SA must have (after narrowing).
    local_ts: list[Prefix] | None = None
    remote_ts: list[Prefix] | None = None
    # Optional: the IKE version negotiated, and the CHILD_SA's counters (bytes or packets in and
    # out through vici), e.g. {bytes_out: {at_least: 1}, bytes_in: {at_most: 0}} for one-way ESP
    version: Literal[1, 2] | None = None
    counters: dict[Literal["bytes_in", "bytes_out", "packets_in", "packets_out"], Bounds] = {}

    def eventually(self) -> bool:
        return self.expect == "established"

    def refs(self) -> list[Ref]:
        return [NodeRef(("node",), self.node, self.roles), SaRef((), self.node, self.ike, self.child)]

    def expectation(self) -> str:
        what = f"{self.node} {self.ike}" + (f"/{self.child}" if self.child else "")
        ts = ""
        if self.local_ts or self.remote_ts:
            ts = f" with TS {','.join(self.local_ts or ['*'])} === {','.join(self.remote_ts or ['*'])}"
        extra = (f" IKEv{self.version}" if self.version else "") + "".join(
            f" {name} {bound.text()}" for name, bound in self.counters.items())
        return f"tunnel {what} {self.expect}{ts}{extra}"

    def describe(self) -> dict[str, str]:
        sa = {"en": f"the IKE_SA {self.ike}" + (f" and its CHILD_SA {self.child}" if self.child else ""),
              "zh": f"IKE_SA {self.ike}" + (f" 及其 CHILD_SA {self.child}" if self.child else "")}
        more = bool(self.local_ts or self.remote_ts or self.counters or self.version)
        if self.expect == "established":
            return {"en": f"{self.node} has {sa['en']} up" + (", as detailed below" if more else ""),
                    "zh": f"{self.node} 上的 {sa['zh']} 已建立" + (",条件见下方说明" if more else "")}
        return {"en": f"{self.node} has no {sa['en'].removeprefix('the ')} up",
                "zh": f"{self.node} 上的 {sa['zh']} 未建立"}

    def linux(self, folder: str = "") -> str:
        return f"[{self.node}] swanctl --list-sas --ike {self.ike}"

    def probe(self, lab: "RunningLab") -> Probe:
        sas = lab.charon(self.node).list_sas(self.ike)
        if not sas:
            return Probe(self.expect == "down", f"{self.node}: no IKE_SA '{self.ike}'")
        up, descriptions = False, []
        for ike in sas:
            desc = f"{self.node} {self.ike}: {ike['state']} IKEv{ike['version']} {ike['proposal']}"
            ok = ike["state"] == "ESTABLISHED" and (self.version is None or ike["version"] == self.version)
            if self.child:
                # During a rekeying the old CHILD_SA lingers (REKEYED, DELETED) beside the new one.
                children = [c for c in ike["children"] if c["name"] == self.child]
                for c in children:
                    desc += (f"; {self.child}: {c['state']} "
                             f"{','.join(c['local_ts'])} === {','.join(c['remote_ts'])}"
                             + "".join(f" {name}={c[name]}" for name in self.counters))
                if not children:
                    desc += f"; no CHILD_SA '{self.child}'"
                ok = ok and any(c["state"] == "INSTALLED" and self._ts_match(c) and self._counted(c) for c in children)
            up = up or ok
            descriptions.append(desc)
        return Probe(up == (self.expect == "established"), " | ".join(descriptions))

    def _counted(self, child: dict) -> bool:
        return all(bound.holds(child[name]) for name, bound in self.counters.items())

    def _ts_match(self, child: dict) -> bool:
        return ((self.local_ts is None or sorted(self.local_ts) == sorted(child["local_ts"]))
                and (self.remote_ts is None or sorted(self.remote_ts) == sorted(child["remote_ts"])))
