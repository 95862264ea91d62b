"""A regular expression over a node's charon log (this phase's log only)."""
from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, ClassVar, Literal

from lab.checks import Check, Probe, register
from lab.schema.types import LogPattern, NodeName, regex_options

if TYPE_CHECKING:
    from lab.running_lab import RunningLab


@register
class LogCheck(Check):
    """A pattern over a gateway's log. RE2, not Python's re: matching is linear in the line,
    so no pattern a scenario writes can backtrack for minutes."""

    kind: Literal["log"] = "log"
    roles: ClassVar[frozenset[str] | None] = frozenset({"ipsec"})
    node: NodeName
    pattern: LogPattern
    expect: Literal["present", "absent"] = "present"
    # charon's log, or the TCP relay's (IKE/ESP over TCP)
    source: Literal["charon", "relay"] = "charon"

    def eventually(self) -> bool:
        return self.expect == "present"

    def expectation(self) -> str:
        return f"{self.node} {self.source} log {self.expect}: /{self.pattern}/"

    def linux(self) -> str:
        log = f"{self.node}.relay.log" if self.source == "relay" else f"{self.node}.charon.log"
        return f"grep -E {shlex.quote(self.pattern)} {log}"

    def probe(self, lab: "RunningLab") -> Probe:
        import re2

        if self.source == "relay":
            lines = lab.relay(self.node).log_text().splitlines()
        else:
            lines = lab.charon(self.node).log_lines()
        regex = re2.compile(self.pattern, regex_options())
        hit = next((line for line in lines if regex.search(line)), None)
        if hit is not None:
            return Probe(self.expect == "present", hit)
        return Probe(self.expect == "absent", f"no match in {len(lines)} lines of {self.node}'s {self.source} log")
