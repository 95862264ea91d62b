"""`lab soak`: every scenario run many times, optionally beside CPU load; figures, not a test.

A verdict that depends on luck shows here as a pass rate below 1. The JSON records, per
scenario, the runs and passes, each failing check with what it observed, phases that had to
run again because a capture lost packets, and durations.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab.progress import Progress
from lab.runner import run_scenario
from lab.schema.load import load_scenario

HOG = "while True: pass"


def soak(names: list[str], runs: int, load: bool, out: Path, progress: Progress) -> dict:
    """`load`: one CPU-bound process per core runs beside the labs the whole time."""
    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(os.cpu_count() or 1)] if load else []
    doc = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cpus": os.cpu_count(), "kernel": platform.release(),
           "runs_per_scenario": runs, "cpu_hogs": len(hogs), "scenarios": []}
    try:
        for name in names:
            doc["scenarios"].append(_soak_one(name, runs, progress))
            _write(doc, out)  # figures so far survive an interrupted soak
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    doc["totals"] = {key: sum(s[key] for s in doc["scenarios"]) for key in ("runs", "passed", "phase_reruns")}
    _write(doc, out)
    return doc


def _soak_one(name: str, runs: int, progress: Progress) -> dict:
    sc = load_scenario(name)
    record = {"scenario": name, "runs": 0, "passed": 0, "phase_reruns": 0, "failures": [], "durations_s": []}
    for i in range(1, runs + 1):
        with tempfile.TemporaryDirectory(prefix="ipsec-lab-soak-") as tmp:
            doc = run_scenario(sc, Path(tmp), Progress(quiet=True))
        record["runs"] += 1
        record["passed"] += doc["passed"]
        record["durations_s"].append(doc["duration_s"])
        for phase in doc["phases"]:
            record["phase_reruns"] += phase.get("attempts", 1) - 1
            if phase.get("error"):
                record["failures"].append({"run": i, "phase": phase["name"], "error": phase["error"]})
            for check in phase["checks"]:
                if not check["passed"]:
                    record["failures"].append({"run": i, "phase": phase["name"], "check": check["name"],
                                               "observed": check["observed"]})
        progress.step(f"{name} run {i}/{runs}: {'passed' if doc['passed'] else 'FAILED'} in {doc['duration_s']:.1f}s")
    record["median_s"] = round(statistics.median(record["durations_s"]), 3)
    return record


def _write(doc: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
