"""Ping between lab hosts: the traffic the tunnel exists for."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from lab.checks import Check, Probe, register
from lab.schema.refs import NodeRef, Ref
from lab.schema.types import IpAddr, NodeName

if TYPE_CHECKING:
    from lab.running_lab import RunningLab


@register
class PingCheck(Check):
    kind: Literal["ping"] = "ping"
    from_: NodeName = Field(alias="from")
    to: IpAddr
    # ok: a reply comes (eventually); fails: no reply all window long;
    # lost: some ping goes unanswered within the window; steady: every ping is answered all window long
    expect: Literal["ok", "fails", "lost", "steady"] = "ok"
    size: int = Field(56, ge=0, le=65507)

    def refs(self) -> list[Ref]:
        return [NodeRef(("from",), self.from_)]

    def eventually(self) -> bool:
        return self.expect in ("ok", "lost")

    def expectation(self) -> str:
        return f"ping {self.from_} -> {self.to} {self.expect}"

    def argv(self) -> list[str]:
        return ["ping", "-n", "-c1", "-W1", "-s", str(self.size), self.to]

    def linux(self) -> str:
        return f"[{self.from_}] " + " ".join(self.argv())

    def probe(self, lab: "RunningLab") -> Probe:
        proc = lab.exec(self.from_, self.argv(), check=False)
        replied = proc.returncode == 0
        rtt = re.search(r"time=([\d.]+) ms", proc.stdout)
        observed = (f"{self.from_} -> {self.to}: reply" + (f" in {rtt.group(1)} ms" if rtt else "")
                    if replied else f"{self.from_} -> {self.to}: no reply within 1 s")
        return Probe(replied == (self.expect in ("ok", "steady")), observed)
