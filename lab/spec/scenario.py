"""Scenario files: a topology, a fault, its documented symptoms, the fix, and health."""
from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field, model_validator

from lab.capture import CaptureSpec
from lab.checks import check_union
from lab.pki import PkiSpec
from lab.spec.base import NodeName, Spec, Text
from lab.spec.topology import Param, References, Timer
from lab.steps import STEPS

StepSpec = Annotated[Union[tuple(STEPS.values())], Field(discriminator="kind")]
CheckSpec = check_union()


class Vendor(Spec):
    """The commands of the source case, as the vendor's CLI has them."""

    platform: str
    commands: str


class Change(Spec):
    summary: Text
    vendor: list[Vendor] = []
    steps: list[StepSpec] = Field(min_length=1)


class Source(Spec):
    case: str
    section: Text | None = None


class ScenarioHead(References):
    """What must be known before the rest of a scenario can be read: its topology and references."""

    topology: str


class Scenario(Spec):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: Text
    brief: Text
    task: Text | None = None
    source: Source
    topology: str
    timers: dict[str, Timer] = {}
    params: dict[str, Param] = {}
    pki: PkiSpec = PkiSpec()
    tcp_encap: dict[NodeName, dict[str, Any]] = {}
    ipsec: dict[NodeName, dict[str, Any]] = {}
    captures: list[CaptureSpec] = []
    start: list[StepSpec] = []
    fault: Change
    fix: Change
    symptoms: list[CheckSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _evidence(self) -> "Scenario":
        if all(c.context for c in self.symptoms):
            raise ValueError("symptoms: at least one must not be 'context': context alone proves nothing")
        return self
    healthy: list[CheckSpec] = Field(min_length=1)
    hints: list[Text] = []
