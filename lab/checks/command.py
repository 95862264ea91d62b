"""A read-only command in a node, judged by its output: what no other kind reads (`nft list
counters`, `ip route get`, `conntrack -L`, `swanctl --list-sas`).

The command is an argv, never a shell line, of one of the read-only shapes of lab.schema.argv
(scenario files are untrusted: `ip netns attach`, `swanctl --uri`, `conntrack -L --zero` or
`nft flush` could reach past the node or change the lab behind the scenario's back).
"""
from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from lab.checks import Check, Probe, register, said_in_lines
from lab.schema import argv
from lab.schema.refs import NodeRef, Ref
from lab.schema.types import LogPattern, NodeName, regex_options
from lab.visible import visible

if TYPE_CHECKING:
    from lab.run.lab import RunningLab


def _argv(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(a, str) for a in value):
        raise PydanticCustomError("argv", "not a command; allowed: a list of words, program first")
    why = argv.refusal(value)
    if why:
        raise PydanticCustomError("argv", "'{command}': {why}", {"command": visible(" ".join(value))[:80], "why": why})
    return value


Argv = Annotated[list[str], BeforeValidator(_argv)]
GATEWAY = frozenset({"ipsec"})


@register
class CommandCheck(Check):
    kind: Literal["command"] = "command"
    roles: ClassVar[frozenset[str] | None] = None
    node: NodeName
    argv: Argv
    # lines of the output (stdout and stderr) matching it: present at least min_count times
    # (and at most max_count), or absent all window long
    pattern: LogPattern
    expect: Literal["present", "absent"] = "present"
    min_count: int = Field(1, ge=1, le=100000)
    max_count: int | None = Field(None, ge=1, le=100000)
    exit: int | None = Field(None, ge=0, le=255)  # the exit status it must end with, when given

    @model_validator(mode="after")
    def _counts(self) -> "CommandCheck":
        if self.max_count is not None and self.max_count < self.min_count:
            raise ValueError("max_count is below min_count; allowed: min_count <= max_count")
        return self

    def refs(self) -> list[Ref]:
        """swanctl talks to the node's charon: only a gateway has one."""
        return [NodeRef(("node",), self.node, GATEWAY if self.argv[0] == "swanctl" else None)]

    def eventually(self) -> bool:
        return self.expect == "present"

    def expectation(self) -> str:
        count = f" x{self.min_count}" + (f"..{self.max_count}" if self.max_count else "+")
        status = f", exit {self.exit}" if self.exit is not None else ""
        return f"[{self.node}] {' '.join(self.argv)}: /{self.pattern}/ {self.expect}{count if self.expect == 'present' else ''}{status}"

    def describe(self) -> dict[str, str]:
        whose = {"en": f"`{' '.join(self.argv)}` on {self.node}", "zh": f"{self.node} 上 `{' '.join(self.argv)}` 的输出"}
        return said_in_lines(whose, self.pattern, self.expect == "present", self.min_count)

    def linux(self, folder: str = "") -> str:
        return f"[{self.node}] {shlex.join(self.argv)} | grep -E {shlex.quote(self.pattern)}"

    def probe(self, lab: "RunningLab") -> Probe:
        import re2

        env = [f"{k}={v}" for k, v in lab.charon_env(self.node).items()] if self.argv[0] == "swanctl" else []
        proc = lab.exec(self.node, ["env", *env, *self.argv] if env else self.argv, check=False, timeout=10)
        regex = re2.compile(self.pattern, regex_options())
        hits = [line for line in (proc.stdout + proc.stderr).splitlines() if regex.search(line)]
        status_ok = self.exit is None or proc.returncode == self.exit
        if self.expect == "absent":
            holds = not hits and status_ok
        else:
            holds = len(hits) >= self.min_count and (self.max_count is None or len(hits) <= self.max_count) \
                and status_ok
        shown = f"{len(hits)} line(s) match, exit {proc.returncode}" + (f": {hits[0].strip()}" if hits else "")
        return Probe(holds, f"[{self.node}] {shown}", measured={"matches": len(hits), "exit": proc.returncode})
