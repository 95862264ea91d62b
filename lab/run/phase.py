"""One phase of a scenario on a freshly built lab: its steps, its checks, its verdict.

baseline: no fault, the healthy checks must hold.
fault:    the fault applied, every documented symptom must be observed.
partial:  (when the scenario has a partial_fix) the fault and a fix that is not enough: its expectations.
fix:      the fault and then the fix applied, the healthy checks must hold again.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from lab.capture.tcpdump import kernel_drops
from lab.checks import CheckResult, observe
from lab.errors import LabError
from lab.run.lab import RunningLab
from lab.progress import Progress, here
from lab.schema.load import LoadedScenario
from lab.schema.scenario import Phase

MAX_ATTEMPTS = 3


@dataclass
class PhaseResult:
    name: str
    passed: bool
    duration_s: float
    checks: list[CheckResult] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # per `monitor` step: pings sent and answered, outages in seconds, over the whole phase
    traffic: dict[str, dict] = field(default_factory=dict)
    error: str | None = None
    attempts: int = 1  # more than one: captures lost packets and the phase was run again
    # what `lab diagnose` makes of this phase's captures and logs alone
    diagnosis: dict | None = None

    def as_dict(self) -> dict:
        out = {"name": self.name, "passed": self.passed, "duration_s": self.duration_s,
               "checks": [c.as_dict() for c in self.checks], "steps": self.steps, "notes": self.notes,
               "traffic": self.traffic, "attempts": self.attempts, "diagnosis": self.diagnosis}
        if self.error:
            out["error"] = self.error
        return out


def phase_steps(sc: LoadedScenario, phase: Phase) -> list[tuple[str, object]]:
    return [(section, step) for section in sc.spec.sections(phase) for step in sc.spec.steps(section)]


def run_phase(sc: LoadedScenario, phase: Phase, phase_dir: Path, run_id: str, progress: Progress,
              checks=None, label: str | None = None, hold: Callable[[RunningLab], None] | None = None) -> PhaseResult:
    """Build a lab, apply the phase's steps, evaluate `checks` (default: the phase's own), tear down.
    `hold(lab)` runs before the teardown of a phase that did not hold (`lab run --keep`).

    A verdict must not rest on packets a capture lost: when a capture that a check read
    reports kernel drops, the phase runs again on a fresh lab (at most MAX_ATTEMPTS times,
    recorded in the notes); if every attempt lost packets, the phase has no verdict (error)."""
    label = label or phase
    checks = sc.spec.checks(phase) if checks is None else checks
    read = {name for check in [*checks, *(s.check for _, s in phase_steps(sc, phase) if s.kind == "await")]
            for name in check.captures()}
    started = time.monotonic()
    retried: list[str] = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        if attempt > 1:
            shutil.rmtree(phase_dir)  # the attempt that lost packets leaves no artifacts behind
        result = _attempt(sc, phase, phase_dir, run_id, progress, checks, label, hold)
        lost = {name: n for name, n in kernel_drops(phase_dir).items() if name in read}
        if not lost:
            break
        what = ", ".join(f"capture {name} lost {n} packets" for name, n in lost.items())
        retried.append(f"Attempt {attempt}: {what} (kernel drops), so its checks were not evidence.")
        progress.retry(label, what, attempt, MAX_ATTEMPTS)
    else:
        result.passed = False
        result.error = (f"every attempt ({MAX_ATTEMPTS}) lost captured packets that checks read: "
                        f"no verdict on what was lost ({what})")
    result.attempts = attempt
    result.notes = retried + result.notes + [f"Capture {name}: tcpdump lost {count} packets (kernel drops)."
                                             for name, count in kernel_drops(phase_dir).items()]
    result.diagnosis = diagnose_phase(phase_dir)
    result.duration_s = round(time.monotonic() - started, 3)
    progress.diagnosis(label, result.diagnosis)
    progress.phase_done(label, result.passed, result.duration_s, result.error)
    return result


def diagnose_phase(phase_dir: Path) -> dict:
    """`lab diagnose PHASE_DIR`, as a phase records it: verdict, step, class and the first evidence."""
    from lab.diagnose.engine import diagnose
    from lab.diagnose.sources import gather

    [inputs] = gather([phase_dir])
    found = diagnose(inputs).as_json()
    return {key: found[key] for key in ("verdict", "step", "class", "reason")} | {"evidence": found["evidence"][:3]}


def _attempt(sc: LoadedScenario, phase: Phase, phase_dir: Path, run_id: str, progress: Progress, checks,
             label: str, hold: Callable[[RunningLab], None] | None) -> PhaseResult:
    result = PhaseResult(label, False, 0.0)
    try:
        with RunningLab(sc, phase_dir, run_id) as lab:
            for section, step in phase_steps(sc, phase):
                progress.step(f"{section}: {step.linux()}")
                step.apply(lab)
                result.steps.append({"section": section, "kind": step.kind, "linux": step.linux()})
            for outcome in observe(checks, lab, lambda c, e, w: progress.waiting(label, c.title(), e, w),
                                   folder=here(phase_dir)):
                progress.check(outcome)
                result.checks.append(outcome)
            result.notes = [o for c in lab_charons(lab) for o in c.outcomes]
            result.traffic = {name: m.record().summary() for name, m in lab.monitors.items()}
            result.passed = all(c.passed for c in result.checks)
            if hold and not result.passed:
                hold(lab)
    except LabError as exc:
        result.error = str(exc)
    return result


def lab_charons(lab: RunningLab):
    return [lab.charon(n) for n in lab.scenario.gateways]
