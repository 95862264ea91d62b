"""Waiting, with a deadline, until the lab is in a state a later step needs."""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from lab.checks import evaluate
from lab.errors import LabError
from lab.schema.kinds import CHECKS
from lab.schema.refs import Ref, nested
from lab.steps import Step, register

if TYPE_CHECKING:
    from lab.run.lab import RunningLab


@register
class AwaitStep(Step):
    """Poll a check until it holds (e.g. the tunnel is up before traffic is sent); the
    phase stops with an error if it does not hold by its deadline."""

    kind: Literal["await"] = "await"
    node: Literal[""] = ""  # the nodes are the check's
    check: CHECKS.union()

    def apply(self, lab: "RunningLab") -> None:
        result = evaluate(self.check, lab)
        if not result.passed:
            raise LabError(f"await {result.name}: not reached within {self.check.within:g}s ({result.observed})")

    def linux(self) -> str:
        return f"await {self.check.title()}"

    def refs(self) -> list[Ref]:
        return nested(("check",), self.check.refs())
