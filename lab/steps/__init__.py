"""Steps change a running lab: the `fault`, the `fix` and the `start` of a scenario.

A step kind is one registered model with `apply`; `linux()` says what it does in
the commands an engineer would type, shown next to the vendor's commands.
"""
from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, ClassVar

from lab.spec.base import Spec

if TYPE_CHECKING:
    from lab.lab import Lab

STEPS: dict[str, type["Step"]] = {}


class Step(Spec):
    kind: str
    node: str
    # Node roles a step kind can act on (None: any).
    roles: ClassVar[set[str] | None] = None

    def refs(self) -> list[tuple[tuple, str, set[str] | None]]:
        """(field path, node, roles it must have): node references, checked against the topology."""
        return [(("node",), self.node, self.roles)]

    def argv(self) -> list[str]:
        raise NotImplementedError

    def apply(self, lab: "Lab") -> None:
        lab.exec(self.node, self.argv())

    def linux(self) -> str:
        return f"[{self.node}] " + shlex.join(self.argv())


def register(cls: type[Step]) -> type[Step]:
    STEPS[cls.model_fields["kind"].default] = cls
    return cls


# Importing the modules registers their step kinds.
from lab.steps import ipsec, network, wait  # noqa: E402,F401
