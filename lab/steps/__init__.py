"""Steps change a running lab: the `fault`, the `fix` and the `start` of a scenario.

A step kind is one module in this package: a model with a `kind` literal, registered with
`@register`, with `apply()`; `linux()` says what it does in the commands an engineer would
type, shown next to the vendor's commands. Every module here is imported (discovered), so
adding a kind is adding a file. The runtime is imported only under TYPE_CHECKING: reading
a scenario file never imports Mininet or scapy.
"""
from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any, ClassVar

from lab.schema.kinds import Registry
from lab.schema.refs import NodeRef, Ref
from lab.schema.types import FileModel, NodeName

if TYPE_CHECKING:
    from lab.run.lab import RunningLab

REGISTRY = Registry("step", __name__)
register = REGISTRY.register


class Step(FileModel):
    kind: str
    node: NodeName
    # Node roles a step kind can act on (None: any).
    roles: ClassVar[frozenset[str] | None] = None

    def refs(self) -> list[Ref]:
        """What this step names (nodes, SAs, ...), checked against the scenario at load."""
        return [NodeRef(("node",), self.node, self.roles)]

    def provides(self) -> dict[str, str]:
        """Names this step makes available to checks, e.g. {"monitor": "lan"}."""
        return {}

    def argv(self) -> list[str]:
        raise NotImplementedError

    def apply(self, lab: "RunningLab") -> None:
        lab.exec(self.node, self.argv())

    def linux(self) -> str:
        return f"[{self.node}] " + shlex.join(self.argv())


def step_union() -> Any:
    """The type of any registered step, told apart by `kind`."""
    return REGISTRY.union()
