"""How long traffic stopped, from a `monitor` step's steady pings over the whole phase."""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from lab.checks import Check, Probe, register
from lab.spec.base import Duration

if TYPE_CHECKING:
    from lab.lab import Lab


@register
class Outage(Check):
    kind: Literal["outage"] = "outage"
    monitor: str
    # seen: an outage of at least `at_least` that is over (traffic came back), so its length
    # is measured; none: no outage longer than `at_most` all window long
    expect: Literal["seen", "none"] = "none"
    at_least: Duration = 1.0
    # a ping or two lost while SAs are swapped is not the outage a user would notice
    at_most: Duration = 1.0

    def eventually(self) -> bool:
        return self.expect == "seen"

    def expectation(self) -> str:
        if self.expect == "seen":
            return f"traffic {self.monitor}: an outage of {self.at_least:g} s or more, then recovery"
        return f"traffic {self.monitor}: no outage over {self.at_most:g} s"

    def probe(self, lab: "Lab") -> Probe:
        record = lab.monitors[self.monitor].record()
        if self.expect == "seen":
            holds = any(o.ended and o.duration_s >= self.at_least for o in record.outages)
        else:
            holds = record.longest_s <= self.at_most
        return Probe(holds, f"{self.monitor}: {record.text()}", measured=record.summary())
