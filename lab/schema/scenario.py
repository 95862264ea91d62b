"""Scenario files: a topology, a fault, its documented symptoms, the fix, and health."""
from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from lab.schema.kinds import CHECKS, STEPS, fault_classes
from lab.schema.pki import Pki
from lab.schema.topology import Param, References, Timer
from lab.schema.types import (CaseFile, FileModel, Identifier, IfName, NodeName, ScenarioName, Text,
                              Vendor, WebUrl, bounded_text, seconds_between)



class Phase(StrEnum):
    """The phases of a run, each a lab of its own. A StrEnum: written as its name in result.json,
    and a misspelt phase is a ValueError, never another phase's checks."""

    BASELINE = "baseline"  # no fault: healthy expected
    FAULT = "fault"  # the fault: every symptom expected
    PARTIAL = "partial"  # the fault and a fix that is not enough: its expectations
    FIX = "fix"  # the fault and the fix: healthy expected


StepSpec = STEPS.union()
CheckSpec = CHECKS.union()
# A scenario names a topology by name (topologies/) or by a relative path that stays under
# the scenario's folder or topologies/ (lab.schema.load decides; nothing else is ever read).
TopologyRef = bounded_text(200, "a topology reference")


class Change(FileModel):
    summary: Text
    vendor: list[Vendor] = Field([], max_length=16)
    steps: list[StepSpec] = Field(min_length=1, max_length=200)


def _source_shorthand(value: Any) -> Any:
    """`source: x.zh.txt`, `source: https://...` or `source: "ticket INC-4711 ..."`: one of the keys."""
    if not isinstance(value, str):
        return value
    if value.startswith(("http://", "https://")):
        return {"url": value}
    return {"case": value} if value.endswith(".txt") and "/" not in value and " " not in value else {"ticket": value}


class Source(FileModel):
    """Where a scenario comes from: exactly one of a case write-up's file name, a web address, or
    free text that names a ticket (`ticket: "INC-4711, branch Hangzhou, 2026-03"`); a string is
    read as whichever it looks like."""

    case: CaseFile | None = None
    url: WebUrl | None = None
    ticket: bounded_text(300, "a ticket reference") | None = None
    section: Text | None = None

    @model_validator(mode="after")
    def _one(self) -> "Source":
        given = [k for k in ("case", "url", "ticket") if getattr(self, k) is not None]
        if len(given) != 1:
            raise PydanticCustomError("source", "{given}; allowed: exactly one of case (a write-up's file name), "
                                      "url (http:// or https://) or ticket (free text with its id)",
                                      {"given": f"{' and '.join(given)} given" if given else "none given"})
        return self

    def shown(self) -> str:
        """One line for people: the file name, the address or the ticket."""
        return self.case or self.url or self.ticket or ""


SourceSpec = Annotated[Source, BeforeValidator(_source_shorthand)]


def _fault_class(value: object) -> str:
    names = list(fault_classes())
    if value not in names:
        raise PydanticCustomError("fault_class", "'{value}' is not a fault class of lab diagnose; allowed: {names}",
                                  {"value": str(value)[:60], "names": ", ".join(names)})
    return str(value)


class ExpectedDiagnosis(FileModel):
    """What `lab diagnose` must name on the fault phase (and `healthy` on baseline and fix)."""

    step: Literal[1, 2, 3]
    class_: Annotated[str, BeforeValidator(_fault_class)] = Field(alias="class")


class PartialFix(Change):
    """A fix people try that is not enough: its own phase (fault, then these steps), with the
    checks that show what still fails and what `lab diagnose` names then."""

    expect: list[CheckSpec] = Field(min_length=1, max_length=200)
    # optional in a user's scenario; `lab validate --strict` and the catalogue require it
    diagnosis: Annotated[Literal["healthy"] | ExpectedDiagnosis, Field(union_mode="left_to_right")] | None = None


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
    source: SourceSpec
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
    # What `lab diagnose` names from the fault phase alone. Optional in a user's scenario (lab run
    # then shows what it names); `lab validate --strict` and the catalogue's tests require it.
    diagnosis: ExpectedDiagnosis | None = None
    symptoms: list[CheckSpec] = Field(min_length=1, max_length=200)
    healthy: list[CheckSpec] = Field(min_length=1, max_length=200)
    hints: list[Text] = Field([], max_length=20)

    @model_validator(mode="after")
    def _step_of_class(self) -> "Scenario":
        declared = [("diagnosis", self.diagnosis)] if self.diagnosis else []
        if self.partial_fix and isinstance(self.partial_fix.diagnosis, ExpectedDiagnosis):
            declared.append(("partial_fix.diagnosis", self.partial_fix.diagnosis))
        for where, diagnosis in declared:
            step = fault_classes()[diagnosis.class_]
            if step != diagnosis.step:
                raise PydanticCustomError("diagnosis_step", "{where}: class {name} is a step {step} fault; allowed: "
                                          "step {step}", {"where": where, "name": diagnosis.class_, "step": step})
        return self

    def phases(self) -> tuple[Phase, ...]:
        """baseline, fault, [partial,] fix: each a lab of its own."""
        return (Phase.BASELINE, Phase.FAULT) + ((Phase.PARTIAL,) if self.partial_fix else ()) + (Phase.FIX,)

    def sections(self, phase: Phase | str) -> list[str]:
        """The step lists a phase applies, in order: the fault before start, so a phase begins broken."""
        return ["setup", *_SECTIONS[Phase(phase)], "start"]

    def walks(self) -> list[list[str]]:
        """Every sequence of step lists a lab can go through, for checks that must see each step
        after those before it: the fix phase (the longest), a partial fix, and a workshop's fault
        with its trigger re-armed."""
        walks = [self.sections(Phase.FIX)] + ([self.sections(Phase.PARTIAL)] if self.partial_fix else [])
        return walks + ([[*self.sections(Phase.FAULT), "recur"]] if self.recur else [])

    def steps(self, section: str) -> list:
        """A step list by the name it has in the file (setup, fault, partial_fix, fix, recur, start)."""
        return getattr(self, section) if section in ("setup", "start") else getattr(self, section).steps

    def checks(self, phase: Phase | str) -> list:
        """What a phase must observe: the symptoms, a partial fix's expectations, or health."""
        phase = Phase(phase)
        if phase == Phase.FAULT:
            return self.symptoms
        if phase == Phase.PARTIAL:
            if not self.partial_fix:
                raise ValueError(f"{self.name} has no partial fix, so no phase '{phase}'")
            return self.partial_fix.expect
        return self.healthy

    def expected_diagnosis(self, phase: Phase | str) -> ExpectedDiagnosis | Literal["healthy"] | None:
        """What `lab diagnose` must name from a phase's captures and logs: a fault, `healthy`, or
        None where the scenario does not say (a user's scenario may leave `diagnosis` out)."""
        phase = Phase(phase)
        if phase == Phase.FAULT:
            return self.diagnosis
        if phase == Phase.PARTIAL:
            return self.partial_fix.diagnosis if self.partial_fix else None
        return "healthy"

    @field_validator("symptoms")
    @classmethod
    def _evidence(cls, symptoms: list) -> list:
        if all(c.context for c in symptoms):
            raise ValueError("every symptom is 'context', which alone proves nothing; allowed: at least one "
                             "symptom that is not context")
        return symptoms


_SECTIONS = {Phase.BASELINE: [], Phase.FAULT: ["fault"], Phase.PARTIAL: ["fault", "partial_fix"],
             Phase.FIX: ["fault", "fix"]}
