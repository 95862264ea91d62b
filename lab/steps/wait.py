"""Waiting, with a deadline, until the lab is in a state a later step needs."""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from lab.checks import check_union, evaluate
from lab.errors import LabError
from lab.steps import Step, register

if TYPE_CHECKING:
    from lab.lab import Lab


@register
class Await(Step):
    """Poll a check until it holds (e.g. the tunnel is up before traffic is sent); the
    phase stops with an error if it does not hold by its deadline."""

    kind: Literal["await"] = "await"
    node: str = ""  # the nodes are the check's
    check: check_union()

    def apply(self, lab: "Lab") -> None:
        result = evaluate(self.check, lab)
        if not result.passed:
            raise LabError(f"await {result.name}: not reached within {self.check.within:g}s ({result.observed})")

    def linux(self) -> str:
        return f"await {self.check.title()}"

    def refs(self) -> list[tuple[tuple, str, set[str] | None]]:
        return [(("check",) + field, node, roles) for field, node, roles in self.check.refs()]
