"""A regular expression over a node's charon log (this phase's log only)."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import field_validator

from lab.checks import Check, Probe, register

if TYPE_CHECKING:
    from lab.lab import Lab


@register
class Log(Check):
    kind: Literal["log"] = "log"
    roles: ClassVar[set[str] | None] = {"ipsec"}
    node: str
    pattern: str
    expect: Literal["present", "absent"] = "present"
    # charon's log, or the TCP relay's (IKE/ESP over TCP)
    source: Literal["charon", "relay"] = "charon"

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return pattern

    def eventually(self) -> bool:
        return self.expect == "present"

    def expectation(self) -> str:
        return f"{self.node} {self.source} log {self.expect}: /{self.pattern}/"

    def probe(self, lab: "Lab") -> Probe:
        if self.source == "relay":
            lines = lab.relay(self.node).log_text().splitlines()
        else:
            lines = lab.charon(self.node).log_lines()
        regex = re.compile(self.pattern)
        hit = next((line for line in lines if regex.search(line)), None)
        if hit is not None:
            return Probe(self.expect == "present", hit)
        return Probe(self.expect == "absent", f"no match in {len(lines)} lines of {self.node}'s {self.source} log")
