"""Benchmarks: how long each scenario's phases take on this machine (figures, not assertions)."""
from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from lab.progress import Progress
from lab.runner import run_scenario
from lab.spec.load import load_scenario


def bench(names: list[str], out: Path, repeat: int, progress: Progress) -> dict:
    figures = []
    for name in names:
        sc = load_scenario(name)
        runs = []
        for _ in range(repeat):
            with tempfile.TemporaryDirectory(prefix="ipsec-lab-bench-") as tmp:
                doc = run_scenario(sc, Path(tmp), progress)
            runs.append(doc)
            progress.step(f"{name}: {doc['duration_s']:.2f}s " + " ".join(
                f"{p['name']}={p['duration_s']:.2f}s" for p in doc["phases"]))
        figures.append({
            "scenario": name,
            "passed": all(r["passed"] for r in runs),
            "runs": repeat,
            "median_s": round(statistics.median(r["duration_s"] for r in runs), 3),
            "phases_median_s": {p["name"]: round(statistics.median(
                r2["duration_s"] for r in runs for r2 in r["phases"] if r2["name"] == p["name"]), 3)
                for p in runs[0]["phases"]},
            "timers": runs[0]["timers"],
        })
    doc = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cpus": os.cpu_count(),
           "kernel": platform.release(), "python": platform.python_version(), "scenarios": figures}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    return doc
