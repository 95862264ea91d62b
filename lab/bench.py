"""Benchmarks: how long each scenario's phases take on this machine (figures, not assertions)."""
from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from lab.checks import evaluate
from lab.checks.tunnel import TunnelCheck
from lab.running_lab import RunningLab
from lab.progress import Progress
from lab.runner import new_run_id, run_scenario
from lab.schema.load import load_scenario

RTT_PINGS = 50


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
           "kernel": platform.release(), "python": platform.python_version(), "scenarios": figures,
           "tunnel_rtt_ms": {mode: tunnel_rtt(mode) for mode in ("udp", "tcp")}}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def tunnel_rtt(mode: str) -> dict:
    """pc1 -> srv through the wan1 tunnel of tcp-asym's healthy lab, the peer's relay in `mode`."""
    sc = load_scenario("tcp-asym")
    sc.tcp_encap["peer"] = sc.tcp_encap["peer"].model_copy(update={"mode": mode})
    with tempfile.TemporaryDirectory(prefix="ipsec-lab-bench-") as tmp, RunningLab(sc, Path(tmp), new_run_id()) as lab:
        for step in sc.spec.start:
            step.apply(lab)
        if not evaluate(Tunnel(node="peer", ike="fgt_wan1", child="net1", within=10), lab).passed:
            return {"error": "tunnel did not come up"}
        out = lab.exec("pc1", ["ping", "-n", "-q", "-c", str(RTT_PINGS), "-i", "0.02", "10.20.0.10"], check=False).stdout
    # "rtt min/avg/max/mdev = 0.512/0.733/1.211/0.101 ms"
    line = next((l for l in out.splitlines() if l.startswith("rtt")), None)
    if line is None:
        return {"error": out.strip()[-200:]}
    values = [float(v) for v in line.split("=")[1].split()[0].split("/")]
    return {"pings": RTT_PINGS, **dict(zip(("min", "avg", "max", "mdev"), values))}
