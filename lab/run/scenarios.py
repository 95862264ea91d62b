"""Scenarios from start to result: each scenario's folder and PKI prepared, its phases run (side by
side, lab.run.scheduler, or one after the other), its result.json and report.html written.

Everything that runs a tool on what a scenario file says (the PKI, every lab) runs in a
sandbox as the lab's account (lab.sandbox); this process reads files and writes results.
When root started it, the scenario's folder is handed to the lab's account for the run and
taken back afterwards, so root's results are root's.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from lab.errors import LabError
from lab.progress import Progress
from lab.run import scheduler
from lab.run.lab import RunningLab
from lab.run.phase import run_phase
from lab.run.worker import SandboxedChild, WorkerFailed, call
from lab.sandbox.identity import hand_to_lab
from lab.schema.load import LoadedScenario
from lab.schema.scenario import Phase

PHASE_HEADERS = {Phase.BASELINE: "(no fault: healthy expected)", Phase.FAULT: "(fault: every symptom expected)",
                 Phase.PARTIAL: "(fault + a fix that is not enough: its expectations)",
                 Phase.FIX: "(fault + fix: healthy expected)"}
PKI_AT_ONCE = os.cpu_count() or 1  # RSA 4096 keys take seconds of one core each


def new_run_id() -> str:
    return secrets.token_hex(3)


def run_scenario(sc: LoadedScenario, out: Path, progress: Progress,
                 hold: Callable[[RunningLab], None] | None = None, jobs: int = 1) -> dict:
    return run_scenarios([sc], out, progress, hold, jobs)[0]


def run_scenarios(scenarios: list[LoadedScenario], out: Path, progress: Progress,
                  hold: Callable[[RunningLab], None] | None = None, jobs: int = 1) -> list[dict]:
    """Every phase of every scenario; `jobs` > 1: that many phases at once, each in a worker process
    (lab.run.scheduler); `hold` (lab run --keep) needs the terminal, so phases then run in turn."""
    out = out.resolve()
    if jobs <= 1 or hold is not None:
        return [_serial(sc, out, progress, hold) for sc in scenarios]
    docs: dict[str, dict] = {}
    # the longest scenarios first (prepared first, so ready in that order): the timer
    # scenarios' 10-15 s phases run beside the many 1-3 s ones, not after them
    longest_first = sorted(scenarios, key=expected_s, reverse=True)
    preparing = Preparations([(sc, out) for sc in longest_first])
    run_ids = {sc.name: new_run_id() for sc in scenarios}
    tasks = [scheduler.Task(sc, phase, out / sc.name / phase, run_ids[sc.name],
                            ready=lambda name=sc.name: preparing.done(name))
             for sc in longest_first for phase in sc.spec.phases()]

    def done(task: scheduler.Task) -> None:
        mine = [t for t in tasks if t.sc.name == task.sc.name]
        if all(t.result is not None for t in mine):
            progress.scenario(task.sc.name, task.sc.spec.title.en)
            scheduler.show(progress, mine, PHASE_HEADERS)
            # its own time: preparing it, then from its first phase's start (not the time it
            # waited behind other scenarios' phases for a job)
            started = min(t.started for t in mine) - preparing.seconds[task.sc.name]
            docs[task.sc.name] = _finish(task.sc, out / task.sc.name, task.run_id, started,
                                         [t.result for t in mine], progress)

    try:
        scheduler.run(tasks, jobs, progress, done)
    finally:
        preparing.stop()  # Ctrl-C: no PKI goes on for a run that is over
    return [docs[sc.name] for sc in scenarios]


def expected_s(sc: LoadedScenario) -> float:
    """About how long a scenario's longest phase holds its job: its negative checks' windows, or
    the longest lab timer (a timer scenario's fault phase waits for it)."""
    windows = [sum(c.within for c in sc.spec.checks(phase) if not c.eventually()) for phase in sc.spec.phases()]
    return max([*windows, *(t.lab for t in sc.timers.values())])


RUN_MARK = ".ipsec-lab-run"  # in every scenario folder a run makes: what a later run may replace


def unreplaceable(names: list[str], out: Path) -> list[Path]:
    """Folders OUT/NAME that exist and are not an earlier run's results (a workshop's running
    lab, anything else of the user's): a run never replaces them."""
    return [out / name for name in names if (out / name).exists() and not (out / name / RUN_MARK).is_file()]


def _folder(sc: LoadedScenario, out: Path) -> Path:
    """The scenario's folder, emptied (results of an earlier run of it only), the lab's to write."""
    scenario_dir = out / sc.name
    if unreplaceable([sc.name], out):
        raise LabError(f"{scenario_dir} exists and is not the results of an earlier run; nothing replaces it")
    if scenario_dir.exists():
        shutil.rmtree(scenario_dir)
    scenario_dir.mkdir(parents=True)
    (scenario_dir / RUN_MARK).touch()
    hand_to_lab(scenario_dir)
    return scenario_dir


def _make_pki(sc: LoadedScenario, scenario_dir: Path) -> None:
    """In the sandbox: the scenario's PKI, made once for all its phases."""
    from lab.strongswan.pki import Credentials
    Credentials(sc.pki, scenario_dir / "pki")


@dataclass
class Preparations:
    """Each scenario's folder, then its PKI in a sandboxed child, at most PKI_AT_ONCE at a time;
    polled by the scheduler (a phase waits for its scenario's). A PKI that fails is made again
    by each phase, which reports the failure as its error."""

    waiting: list[tuple[LoadedScenario, Path]]
    running: dict[str, tuple[SandboxedChild, float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def done(self, name: str) -> bool:
        self._poll()
        return name in self.seconds

    def _poll(self) -> None:
        for name, (child, started) in list(self.running.items()):
            if child.poll() is not None:
                self.seconds[name] = time.monotonic() - started
                del self.running[name]
        while self.waiting and len(self.running) < PKI_AT_ONCE:
            sc, out = self.waiting.pop(0)
            started = time.monotonic()
            scenario_dir = _folder(sc, out)
            if sc.pki.cas or sc.pki.certs:
                self.running[sc.name] = (SandboxedChild(_make_pki, (sc, scenario_dir), (scenario_dir,)), started)
            else:
                self.seconds[sc.name] = time.monotonic() - started

    def stop(self) -> None:
        self.waiting.clear()
        for child, _ in self.running.values():
            child.terminate()
            child.wait()


def _serial(sc: LoadedScenario, out: Path, progress: Progress, hold) -> dict:
    started = time.monotonic()
    scenario_dir, run_id = _folder(sc, out), new_run_id()
    progress.scenario(sc.name, sc.spec.title.en)
    results = []
    phases = sc.spec.phases()
    for phase in phases:
        progress.phase(phase, PHASE_HEADERS[phase])
        try:
            results.append(call(_serial_phase, sc, phase, scenario_dir / phase, run_id, progress, hold,
                                writable=(scenario_dir,)))
        except WorkerFailed as exc:
            results.append(scheduler.failed(phase, str(exc)))
        if results[-1].get("error"):
            break  # a lab that cannot be built will not build for the next phase either
    return _finish(sc, scenario_dir, run_id, started, results, progress, len(phases))


def _serial_phase(sc: LoadedScenario, phase: Phase, phase_dir: Path, run_id: str, progress: Progress,
                  hold) -> dict:
    return run_phase(sc, phase, phase_dir, run_id, progress, hold=hold).as_dict()


def document(sc: LoadedScenario, run_id: str, passed: bool, duration_s: float, phases: list[dict],
             scenario_dir: Path) -> dict:
    """The result.json of a run (or of a workshop's `lab check`, whose one phase is the check)."""
    return {
        "scenario": sc.name,
        "title": sc.spec.title.model_dump(),
        "source": sc.spec.source.shown(),
        "run_id": run_id,
        "passed": passed,
        "duration_s": duration_s,
        # what the scenario declares lab diagnose names from its fault phase (None: it does not say)
        "diagnosis": {"step": sc.spec.diagnosis.step, "class": sc.spec.diagnosis.class_} if sc.spec.diagnosis else None,
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
    if os.geteuid() == 0:
        _own(scenario_dir, 0, 0)  # the lab's account wrote it; root started the run
    passed = len(phases) == (expected or len(phases)) and all(p["passed"] for p in phases)
    doc = document(sc, run_id, passed, round(time.monotonic() - started, 3), phases, scenario_dir)
    path = scenario_dir / "result.json"
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    from lab.report import html  # scapy is imported only when a report is made
    html.write(sc, doc, scenario_dir)
    progress.verdict(sc.name, passed, doc["duration_s"], scenario_dir)
    return doc


def _own(folder: Path, uid: int, gid: int) -> None:
    """`folder` and everything in it, owned by uid:gid (links themselves, never what they point to;
    the lab that wrote it has ended)."""
    os.chown(folder, uid, gid, follow_symlinks=False)
    for parent, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            os.chown(os.path.join(parent, name), uid, gid, follow_symlinks=False)

