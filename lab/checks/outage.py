"""How long traffic stopped, from a `monitor` step's steady pings over the whole phase."""
from __future__ import annotations

import os
import shlex
import time
from typing import TYPE_CHECKING, Literal

from pydantic import PrivateAttr

from lab.checks import Check, Probe, register
from lab.schema.refs import MonitorRef, Ref
from lab.schema.types import Identifier, Window

if TYPE_CHECKING:
    from lab.run.lab import RunningLab


@register
class OutageCheck(Check):
    kind: Literal["outage"] = "outage"
    monitor: Identifier
    # seen: an outage of at least `at_least` in this phase that is over (traffic came back),
    # so its length is measured; none: no outage longer than `at_most` within the check's
    # window (a workshop's `lab check` judges the trainee's fix, not the fault before it)
    expect: Literal["seen", "none"] = "none"
    at_least: Window = 1.0
    # a ping or two lost while SAs are swapped is not the outage a user would notice
    at_most: Window = 1.0
    _window_start: float = PrivateAttr(0.0)

    def begin(self) -> None:
        self._window_start = time.time()

    def eventually(self) -> bool:
        return self.expect == "seen"

    def refs(self) -> list[Ref]:
        return [MonitorRef(("monitor",), self.monitor)]

    def expectation(self) -> str:
        if self.expect == "seen":
            return f"traffic {self.monitor}: an outage of {self.at_least:g} s or more, then recovery"
        return f"traffic {self.monitor}: no outage over {self.at_most:g} s"

    def describe(self) -> dict[str, str]:
        if self.expect == "seen":
            return {"en": f"the traffic {self.monitor} stops for {self.at_least:g} s or more, then comes back",
                    "zh": f"业务流量 {self.monitor} 中断至少 {self.at_least:g} 秒后恢复"}
        return {"en": f"the traffic {self.monitor} never stops for more than {self.at_most:g} s",
                "zh": f"业务流量 {self.monitor} 没有超过 {self.at_most:g} 秒的中断"}

    def linux(self, folder: str = "") -> str:
        log = shlex.quote(os.path.join(folder, f"{self.monitor}.ping.log"))
        return f"grep -E 'no answer yet|icmp_seq' {log}  # ping -O -D of the monitor step"

    def probe(self, lab: "RunningLab") -> Probe:
        monitor = lab.monitors[self.monitor]
        record = monitor.record()
        if self.expect == "seen":
            holds = any(o.ended and o.duration_s >= self.at_least for o in record.outages)
            observed = f"{self.monitor}: {record.text()}"
        else:
            longest = record.longest_after(self._window_start - monitor.started)
            holds = longest <= self.at_most
            observed = f"{self.monitor}: {record.text()}; since this check began: longest {longest:.2f} s"
        return Probe(holds, observed, measured=record.summary())
