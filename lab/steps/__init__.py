"""Steps change a running lab: the `setup`, `fault`, `partial_fix`, `fix`, `recur` and `start` of a scenario.

A step kind is one module in this package: a `Step` model with a `kind` literal, registered
with `@register` (into lab.schema.kinds.STEPS: the schema imports no kind, it loads this
package through its entry point). The hooks a kind implements are documented on `Step`.
Every module here is imported (discovered), so adding a kind is adding a file. The runtime
is imported only under TYPE_CHECKING: reading a scenario file never imports Mininet or scapy.
"""
from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, ClassVar

from lab.schema.kinds import STEPS
from lab.schema.refs import NodeRef, Ref
from lab.schema.types import FileModel, NodeName

if TYPE_CHECKING:
    from lab.run.lab import RunningLab

register = STEPS.register


class Step(FileModel):
    """One change to a running lab, as a scenario file writes it.

    A kind declares `kind: Literal["name"]` and its fields (validated at load: nothing a file
    says is trusted later), and implements:
    - `apply(lab)`: make the change in the running lab (in the lab's sandbox), or raise
      LabError with what went wrong; the default runs `argv()` in the step's node;
    - `argv()`: the command, as a list of words, when one command in the node is the change
      (never a shell line);
    - `linux()`: the change as the Linux commands an engineer would type, shown on the
      terminal, in result.json and the report (default: `[node] argv`). A body the command
      reads (an nft ruleset, a configuration change) is part of what it shows;
    - `refs()`: what it names (nodes, SAs, monitors, config patches), which `lab validate`
      checks against the scenario (default: its node, of `roles` when given);
    - `provides()`: names it makes for checks to refer to, e.g. {"monitor": "lan"}.
    """

    kind: str
    node: NodeName
    # Node roles a step kind can act on (None: any).
    roles: ClassVar[frozenset[str] | None] = None

    def refs(self) -> list[Ref]:
        return [NodeRef(("node",), self.node, self.roles)]

    def provides(self) -> dict[str, str]:
        return {}

    def argv(self) -> list[str]:
        raise NotImplementedError

    def apply(self, lab: "RunningLab") -> None:
        lab.exec(self.node, self.argv())

    def linux(self) -> str:
        return f"[{self.node}] " + shlex.join(self.argv())
