"""Scenario files: a topology, a fault, its documented symptoms, the fix, and health."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from lab.checks import check_union
from lab.schema.pki import Pki
from lab.schema.topology import Param, References, Timer
from lab.schema.types import (CaseFile, FileModel, Identifier, IfName, NodeName, Prose, ScenarioName, Text,
                              bounded_text, seconds_between)
from lab.steps import step_union

StepSpec = step_union()
CheckSpec = check_union()
# A scenario names a topology by name (topologies/) or by a relative path that stays under
# the scenario's folder or topologies/ (lab.schema.load decides; nothing else is ever read).
TopologyRef = bounded_text(200, "a topology reference")


class Vendor(FileModel):
    """The commands of the source case, as the vendor's CLI has them (shown, never run)."""

    platform: bounded_text(100, "a platform name")
    commands: Prose


class Change(FileModel):
    summary: Text
    vendor: list[Vendor] = Field([], max_length=16)
    steps: list[StepSpec] = Field(min_length=1, max_length=200)


class Source(FileModel):
    case: CaseFile
    section: Text | None = None


def _fault_class(value: object) -> str:
    from lab.diagnose.catalogue import class_names  # the catalogue's own data file, no runtime

    names = class_names()
    if value not in names:
        raise PydanticCustomError("fault_class", "'{value}' is not a fault class of lab diagnose; allowed: {names}",
                                  {"value": str(value)[:60], "names": ", ".join(names)})
    return str(value)


class Diagnosis(FileModel):
    """What `lab diagnose` must name on the fault phase (and `healthy` on baseline and fix)."""

    step: Literal[1, 2, 3]
    class_: Annotated[str, BeforeValidator(_fault_class)] = Field(alias="class")


class PartialFix(Change):
    """A fix people try that is not enough: its own phase (fault, then these steps), with the
    checks that show what still fails and what `lab diagnose` names then."""

    expect: list[CheckSpec] = Field(min_length=1, max_length=200)
    diagnosis: Annotated[Literal["healthy"] | Diagnosis, Field(union_mode="left_to_right")]


class Recurrence(FileModel):
    """In a workshop (lab start), how the fault comes back until the trainee's fix holds: a fault
    that heals itself (an outage that ends, a one-time loss) would leave a late trainee a healthy
    lab. These steps re-arm its trigger every `every` seconds, and `lab check` applies them once
    more before it judges, so a fix passes only if it holds across a recurrence."""

    summary: Text
    every: seconds_between(5, 3600)
    steps: list[StepSpec] = Field(min_length=1, max_length=50)


class CapturePoint(FileModel):
    """Where tcpdump listens for the whole phase: one pcap per capture point."""

    name: Identifier
    node: NodeName
    intf: IfName


class ScenarioHead(References):
    """What must be known before the rest of a scenario can be read: its topology and references."""

    topology: TopologyRef


class Scenario(FileModel):
    name: ScenarioName
    title: Text
    brief: Text
    task: Text | None = None
    source: Source
    topology: TopologyRef
    timers: dict[Identifier, Timer] = {}
    params: dict[Identifier, Param] = {}
    pki: Pki = Pki()
    tcp_encap: dict[NodeName, dict[str, Any]] = {}
    ipsec: dict[NodeName, dict[str, Any]] = {}
    captures: list[CapturePoint] = Field([], max_length=32)
    # the scenario's own healthy state on top of the topology, in every phase, before anything else
    setup: list[StepSpec] = Field([], max_length=200)
    start: list[StepSpec] = Field([], max_length=200)
    fault: Change
    partial_fix: PartialFix | None = None
    fix: Change
    recur: Recurrence | None = None
    diagnosis: Diagnosis
    symptoms: list[CheckSpec] = Field(min_length=1, max_length=200)
    healthy: list[CheckSpec] = Field(min_length=1, max_length=200)
    hints: list[Text] = Field([], max_length=20)

    @model_validator(mode="after")
    def _step_of_class(self) -> "Scenario":
        from lab.diagnose.catalogue import class_steps

        declared = [("diagnosis", self.diagnosis)]
        if self.partial_fix and isinstance(self.partial_fix.diagnosis, Diagnosis):
            declared.append(("partial_fix.diagnosis", self.partial_fix.diagnosis))
        for where, diagnosis in declared:
            step = class_steps()[diagnosis.class_]
            if step != diagnosis.step:
                raise PydanticCustomError("diagnosis_step", "{where}: class {name} is a step {step} fault; allowed: "
                                          "step {step}", {"where": where, "name": diagnosis.class_, "step": step})
        return self

    def phases(self) -> tuple[str, ...]:
        """baseline, fault, [partial,] fix: each a lab of its own."""
        return ("baseline", "fault") + (("partial",) if self.partial_fix else ()) + ("fix",)

    def sections(self, phase: str) -> list[str]:
        """The step lists a phase applies, in order: the fault before start, so a phase begins broken."""
        return ["setup", *{"baseline": [], "fault": ["fault"], "partial": ["fault", "partial_fix"],
                           "fix": ["fault", "fix"]}[phase], "start"]

    def walks(self) -> list[list[str]]:
        """Every sequence of step lists a lab can go through, for checks that must see each step
        after those before it: the fix phase (the longest), a partial fix, and a workshop's fault
        with its trigger re-armed."""
        walks = [self.sections("fix")] + ([self.sections("partial")] if self.partial_fix else [])
        return walks + ([[*self.sections("fault"), "recur"]] if self.recur else [])

    def steps(self, section: str) -> list:
        """A step list by the name it has in the file (setup, fault, partial_fix, fix, recur, start)."""
        return getattr(self, section) if section in ("setup", "start") else getattr(self, section).steps

    def checks(self, phase: str) -> list:
        """What a phase must observe: the symptoms, a partial fix's expectations, or health."""
        if phase == "fault":
            return self.symptoms
        return self.partial_fix.expect if phase == "partial" and self.partial_fix else self.healthy

    def expected_diagnosis(self, phase: str) -> Diagnosis | None:
        """What `lab diagnose` must name from a phase's captures and logs; None: healthy."""
        if phase == "fault":
            return self.diagnosis
        if phase == "partial" and self.partial_fix and isinstance(self.partial_fix.diagnosis, Diagnosis):
            return self.partial_fix.diagnosis
        return None

    @field_validator("symptoms")
    @classmethod
    def _evidence(cls, symptoms: list) -> list:
        if all(c.context for c in symptoms):
            raise ValueError("every symptom is 'context', which alone proves nothing; allowed: at least one "
                             "symptom that is not context")
        return symptoms
