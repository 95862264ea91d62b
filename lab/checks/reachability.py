"""Ping between lab hosts: the traffic the tunnel exists for."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from pydantic import Field, PrivateAttr, model_validator

from lab.checks import Check, Probe, register
from lab.schema.refs import NodeRef, Ref
from lab.schema.types import IpAddr, NodeName

if TYPE_CHECKING:
    from lab.run.lab import RunningLab


@register
class PingCheck(Check):
    kind: Literal["ping"] = "ping"
    from_: NodeName = Field(alias="from")
    to: IpAddr
    # ok: a reply comes (eventually); fails: no reply all window long;
    # lost: `min_lost` pings go unanswered within the window; steady: every ping is answered all window long
    expect: Literal["ok", "fails", "lost", "steady"] = "ok"
    # more than one: a loss that recurs, not the one ping that met a rekeying's instant without an SA
    min_lost: int = Field(1, ge=1, le=100)
    size: int = Field(56, ge=0, le=65507)
    _sent: int = PrivateAttr(0)
    _lost: int = PrivateAttr(0)

    @model_validator(mode="after")
    def _lost_only(self) -> "PingCheck":
        if self.min_lost > 1 and self.expect != "lost":
            raise ValueError("min_lost counts unanswered pings; allowed: only with expect: lost")
        return self

    def begin(self) -> None:
        self._sent = self._lost = 0

    def refs(self) -> list[Ref]:
        return [NodeRef(("from",), self.from_)]

    def eventually(self) -> bool:
        return self.expect in ("ok", "lost")

    def expectation(self) -> str:
        times = f" x{self.min_lost}" if self.min_lost > 1 else ""
        return f"ping {self.from_} -> {self.to} {self.expect}{times}"

    def describe(self) -> dict[str, str]:
        a, b = self.from_, self.to
        size = {"en": f" ({self.size}-byte pings)", "zh": f"({self.size} 字节的 ping)"} if self.size != 56 else {"en": "", "zh": ""}
        said = {"ok": (f"{a} reaches {b}", f"{a} 能 ping 通 {b}"),
                "fails": (f"{a}'s pings to {b} get no answer", f"{a} ping {b} 没有应答"),
                "lost": (f"{a} loses pings to {b}" + (f" ({self.min_lost} or more)" if self.min_lost > 1 else ""),
                         f"{a} 到 {b} 的 ping 丢失" + (f"(至少 {self.min_lost} 个)" if self.min_lost > 1 else "")),
                "steady": (f"every ping from {a} to {b} is answered", f"{a} 到 {b} 的 ping 全部有应答")}[self.expect]
        return {"en": said[0] + size["en"], "zh": said[1] + size["zh"]}

    def argv(self) -> list[str]:
        return ["ping", "-n", "-c1", "-W1", "-s", str(self.size), self.to]

    def linux(self, folder: str = "") -> str:
        return f"[{self.from_}] " + " ".join(self.argv())

    def probe(self, lab: "RunningLab") -> Probe:
        proc = lab.exec(self.from_, self.argv(), check=False)
        replied = proc.returncode == 0
        rtt = re.search(r"time=([\d.]+) ms", proc.stdout)
        observed = (f"{self.from_} -> {self.to}: reply" + (f" in {rtt.group(1)} ms" if rtt else "")
                    if replied else f"{self.from_} -> {self.to}: no reply within 1 s")
        if self.expect == "lost":
            self._sent += 1
            self._lost += not replied
            return Probe(self._lost >= self.min_lost, f"{observed} ({self._lost} of {self._sent} unanswered)")
        return Probe(replied == (self.expect in ("ok", "steady")), observed)
