"""A regular expression over a node's charon log (this phase's log only)."""
from __future__ import annotations

import os
import shlex
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from lab.checks import Check, Probe, register, said_in_lines
from lab.schema.refs import Ref, RelayRef
from lab.schema.types import LogPattern, NodeName, regex_options

if TYPE_CHECKING:
    from lab.run.lab import RunningLab


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
    # present: at least min_count matching lines (and at most max_count, when given)
    min_count: int = Field(1, ge=1, le=100000)
    max_count: int | None = Field(None, ge=1, le=100000)

    def refs(self) -> list[Ref]:
        return [*super().refs(), *([RelayRef(("source",), self.node)] if self.source == "relay" else [])]

    def eventually(self) -> bool:
        return self.expect == "present"

    def expectation(self) -> str:
        count = ""
        if self.expect == "present" and (self.min_count > 1 or self.max_count):
            count = f" x{self.min_count}" + (f"..{self.max_count}" if self.max_count else "+")
        return f"{self.node} {self.source} log {self.expect}: /{self.pattern}/{count}"

    def describe(self) -> dict[str, str]:
        whose = {"en": f"{self.node}'s {'charon' if self.source == 'charon' else 'TCP relay'} log",
                 "zh": f"{self.node} 的 {'charon' if self.source == 'charon' else 'TCP 中继'} 日志"}
        return said_in_lines(whose, self.pattern, self.expect == "present", self.min_count)

    def linux(self, folder: str = "") -> str:
        log = f"{self.node}.relay.log" if self.source == "relay" else f"{self.node}.charon.log"
        return f"grep -E {shlex.quote(self.pattern)} {shlex.quote(os.path.join(folder, log))}"

    def probe(self, lab: "RunningLab") -> Probe:
        import re2

        if self.source == "relay":
            lines = lab.relay(self.node).log_text().splitlines()
        else:
            lines = lab.charon(self.node).log_lines()
        lines = lines[lab.log_mark(self.node, self.source):]
        regex = re2.compile(self.pattern, regex_options())
        hits = [line for line in lines if regex.search(line)]
        if not hits:
            since = " since this check began" if lab.since else ""
            return Probe(self.expect == "absent", f"no match in {len(lines)} lines of {self.node}'s {self.source} log{since}")
        counted = self.min_count <= len(hits) and (self.max_count is None or len(hits) <= self.max_count)
        shown = hits[0] if len(hits) == 1 else f"{len(hits)} matching lines, first: {hits[0]}"
        return Probe(self.expect == "present" and counted, shown, measured={"matches": len(hits)})
