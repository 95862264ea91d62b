"""Phases of a scenario, each on a freshly built lab, and the result.json they add up to.

baseline: no fault, the healthy checks must hold.
fault:    the fault applied, every documented symptom must be observed.
partial:  (when the scenario has a partial_fix) the fault and a fix that is not enough: its expectations.
fix:      the fault and then the fix applied, the healthy checks must hold again.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from lab.capture.tcpdump import kernel_drops
from lab.checks import CheckResult, observe
from lab.errors import LabError
from lab.running_lab import RunningLab
from lab.progress import Progress
from lab.schema.load import LoadedScenario

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


def new_run_id() -> str:
    return secrets.token_hex(3)


def phase_steps(sc: LoadedScenario, phase: str) -> list[tuple[str, object]]:
    return [(section, step) for section in sc.spec.sections(phase) for step in sc.spec.steps(section)]


def run_phase(sc: LoadedScenario, phase: str, phase_dir: Path, run_id: str, progress: Progress,
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
        retried.append(f"attempt {attempt}: {what} (kernel drops); its checks were not evidence")
        progress.retry(label, what, attempt, MAX_ATTEMPTS)
    else:
        result.passed = False
        result.error = (f"every attempt ({MAX_ATTEMPTS}) lost captured packets that checks read: "
                        f"no verdict on what was lost ({what})")
    result.attempts = attempt
    result.notes = retried + result.notes + [f"capture {name}: tcpdump lost {count} packets (kernel drops)"
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


def _attempt(sc: LoadedScenario, phase: str, phase_dir: Path, run_id: str, progress: Progress, checks,
             label: str, hold: Callable[[RunningLab], None] | None) -> PhaseResult:
    result = PhaseResult(label, False, 0.0)
    try:
        with RunningLab(sc, phase_dir, run_id) as lab:
            for section, step in phase_steps(sc, phase):
                progress.step(f"{section}: {step.linux()}".splitlines()[0])
                step.apply(lab)
                result.steps.append({"section": section, "kind": step.kind, "linux": step.linux()})
            for outcome in observe(checks, lab, lambda c, e, w: progress.waiting(label, c.title(), e, w)):
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


PHASE_HEADERS = {"baseline": "(no fault: healthy expected)", "fault": "(fault: every symptom expected)",
                 "partial": "(fault + a fix that is not enough: its expectations)",
                 "fix": "(fault + fix: healthy expected)"}


def run_scenario(sc: LoadedScenario, out: Path, progress: Progress,
                 hold: Callable[[RunningLab], None] | None = None, jobs: int = 1) -> dict:
    return run_scenarios([sc], out, progress, hold, jobs)[0]


def run_scenarios(scenarios: list[LoadedScenario], out: Path, progress: Progress,
                  hold: Callable[[RunningLab], None] | None = None, jobs: int = 1) -> list[dict]:
    """Every phase of every scenario; `jobs` > 1: that many phases at once, each in a worker process
    (lab.scheduler); `hold` (lab run --keep) needs a terminal, so it runs in this process, in turn."""
    if jobs <= 1 or hold is not None:
        return [_serial(sc, out, progress, hold) for sc in scenarios]
    from lab import scheduler

    docs: dict[str, dict] = {}
    # a scenario's PKI (RSA 4096 keys take seconds) is made while other scenarios' phases run;
    # its own phases wait for it
    pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1)
    try:
        # the longest scenarios first (prepared first, so ready in that order): the timer
        # scenarios' 10-15 s phases run beside the many 1-3 s ones, not after them
        longest_first = sorted(scenarios, key=expected_s, reverse=True)
        runs = {sc.name: pool.submit(_prepare, sc, out) for sc in longest_first}
        run_ids = {sc.name: new_run_id() for sc in scenarios}
        tasks = [scheduler.Task(sc, sc.params, phase, out / sc.name / phase, run_ids[sc.name], ready=runs[sc.name].done)
                 for sc in longest_first for phase in sc.spec.phases()]

        def done(task: "scheduler.Task") -> None:
            mine = [t for t in tasks if t.sc.name == task.sc.name]
            if all(t.result is not None for t in mine):
                progress.scenario(task.sc.name, task.sc.spec.title.en)
                scheduler.show(progress, mine, PHASE_HEADERS)
                prepared_s = runs[task.sc.name].result()
                # its own time: preparing it, then from its first phase's start (not the time it
                # waited behind other scenarios' phases for a job)
                started = min(t.started for t in mine) - prepared_s
                docs[task.sc.name] = _finish(task.sc, out / task.sc.name, task.run_id, started,
                                             [t.result for t in mine], progress)

        scheduler.run(tasks, jobs, progress, done)
    finally:
        pool.shutdown(cancel_futures=True)  # Ctrl-C: no PKI is started for a run that is over
    return [docs[sc.name] for sc in scenarios]


def expected_s(sc: LoadedScenario) -> float:
    """About how long a scenario's longest phase holds its job: its negative checks' windows, or
    the longest lab timer (a timer scenario's fault phase waits for it)."""
    windows = [sum(c.within for c in sc.spec.checks(phase) if not c.eventually()) for phase in sc.spec.phases()]
    return max([*windows, *(t.lab for t in sc.timers.values())])


def _prepare(sc: LoadedScenario, out: Path) -> float:
    """The scenario's folder, emptied, and its PKI, made once for the run: the seconds it took."""
    scenario_dir = out / sc.name
    if scenario_dir.exists():
        shutil.rmtree(scenario_dir)  # results of an earlier run of this scenario only
    scenario_dir.mkdir(parents=True)
    started = time.monotonic()
    if sc.pki.cas or sc.pki.certs:
        from lab.strongswan.pki import Credentials
        try:
            Credentials(sc.pki, scenario_dir / "pki")  # RSA 4096 keys take seconds
        except LabError:
            pass  # each phase makes its own and reports the failure as its error
    return time.monotonic() - started


def _serial(sc: LoadedScenario, out: Path, progress: Progress, hold) -> dict:
    started = time.monotonic()
    _prepare(sc, out)
    scenario_dir, run_id = out / sc.name, new_run_id()
    progress.scenario(sc.name, sc.spec.title.en)
    results = []
    phases = sc.spec.phases()
    for phase in phases:
        progress.phase(phase, PHASE_HEADERS[phase])
        results.append(run_phase(sc, phase, scenario_dir / phase, run_id, progress, hold=hold))
        if results[-1].error:
            break  # a lab that cannot be built will not build for the next phase either
    return _finish(sc, scenario_dir, run_id, started, [r.as_dict() for r in results], progress, len(phases))


def document(sc: LoadedScenario, run_id: str, passed: bool, duration_s: float, phases: list[dict],
             scenario_dir: Path) -> dict:
    """The result.json of a run (or of a workshop's `lab check`, whose one phase is the check)."""
    return {
        "scenario": sc.name,
        "title": sc.spec.title.model_dump(),
        "source": sc.spec.source.case,
        "run_id": run_id,
        "passed": passed,
        "duration_s": duration_s,
        "diagnosis": {"step": sc.spec.diagnosis.step, "class": sc.spec.diagnosis.class_},
        "timers": [{"name": n, "production_s": t.production, "lab_s": t.lab,
                    "compression": round(t.production / t.lab, 1) if t.lab else None}
                   for n, t in sc.timers.items()],
        "phases": phases,
        "artifacts": sorted(str(p.relative_to(scenario_dir)) for p in scenario_dir.rglob("*")
                            if p.is_file() and p.suffix in (".pcap", ".log", ".conf")),
    }


def _finish(sc: LoadedScenario, scenario_dir: Path, run_id: str, started: float, phases: list[dict],
            progress: Progress, expected: int | None = None) -> dict:
    """result.json and report.html of a scenario whose phases are over."""
    passed = len(phases) == (expected or len(phases)) and all(p["passed"] for p in phases)
    doc = document(sc, run_id, passed, round(time.monotonic() - started, 3), phases, scenario_dir)
    path = scenario_dir / "result.json"
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    from lab.report import html  # scapy is imported only when a report is made
    html.write(sc, doc, scenario_dir)
    progress.verdict(sc.name, passed, doc["duration_s"], str(path))
    return doc
