"""`lab soak`: every scenario run many times, optionally beside CPU load; figures, not a test.

A verdict that depends on luck shows here as a pass rate below 1. The JSON records, per
scenario, the runs and passes, each failing check with what it observed, each phase whose
diagnosis was not the declared one, phases that had to run again because a capture lost
packets, and durations.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab.progress import Progress
from lab.run.scenarios import run_scenarios
from lab.schema.load import LoadedScenario, load_scenario

HOG = "while True: pass"


def soak(names: list[str], runs: int, load: bool, jobs: int, out: Path, progress: Progress) -> dict:
    """`runs` rounds over the scenarios, `jobs` phases at once (as `lab run --all -j`); `load`: one
    CPU-bound process per core runs beside the labs the whole time."""
    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(os.cpu_count() or 1)] if load else []
    scenarios = [load_scenario(name) for name in names]
    records = {name: {"scenario": name, "runs": 0, "passed": 0, "phase_reruns": 0, "failures": [], "durations_s": []}
               for name in names}
    doc = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cpus": os.cpu_count(), "kernel": platform.release(),
           "runs_per_scenario": runs, "cpu_hogs": len(hogs), "jobs": jobs, "scenarios": list(records.values())}
    try:
        for i in range(1, runs + 1):
            started = time.monotonic()
            with tempfile.TemporaryDirectory(prefix="soak-ipsec-lab-") as tmp:
                for sc, result in zip(scenarios, run_scenarios(scenarios, Path(tmp), Progress(quiet=True), jobs=jobs)):
                    _record(records[sc.name], sc, result, i)
                    _keep_failed(records[sc.name], i, Path(tmp) / sc.name, out.with_name(f"{out.stem}-failures"))
            failed = [r["scenario"] for r in records.values() if any(f["run"] == i for f in r["failures"])]
            progress.step(f"round {i}/{runs}: {len(names) - len(failed)}/{len(names)} scenarios passed in "
                          f"{time.monotonic() - started:.0f}s" + (f"; failed: {', '.join(failed)}" if failed else ""))
            _write(doc, out)  # figures so far survive an interrupted soak
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    for record in records.values():
        record["median_s"] = round(statistics.median(record["durations_s"]), 3) if record["durations_s"] else None
    doc["totals"] = {key: sum(r[key] for r in records.values()) for key in ("runs", "passed", "phase_reruns")}
    _write(doc, out)
    return doc


def _record(record: dict, sc: LoadedScenario, result: dict, run: int) -> None:
    record["runs"] += 1
    record["passed"] += result["passed"]
    record["durations_s"].append(result["duration_s"])
    for phase in result["phases"]:
        record["phase_reruns"] += phase.get("attempts", 1) - 1
        if phase.get("error"):
            record["failures"].append({"run": run, "phase": phase["name"], "error": phase["error"]})
        for check in phase["checks"]:
            if not check["passed"]:
                record["failures"].append({"run": run, "phase": phase["name"], "check": check["name"],
                                           "observed": check["observed"]})
        expected = sc.spec.expected_diagnosis(phase["name"])
        got = phase.get("diagnosis") or {}
        if expected is not None and (got.get("class"), got.get("step")) != (
                (None, None) if expected == "healthy" else (expected.class_, expected.step)):
            record["failures"].append({"run": run, "phase": phase["name"], "diagnosis": got})


def _keep_failed(record: dict, run: int, scenario_dir: Path, kept: Path) -> None:
    """A failing run's folder (captures, charon logs, result.json) outlives the round, so a rare
    failure can be read afterwards; its failures name where."""
    failures = [f for f in record["failures"] if f["run"] == run]
    if failures:
        target = kept / f"{record['scenario']}-run{run}"
        shutil.copytree(scenario_dir, target, dirs_exist_ok=True)
        for failure in failures:
            failure["kept"] = str(target)


def _write(doc: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
