"""Holds a workshop lab: builds the fault phase, serves `check` and `stop` on a unix socket.

Started detached by `lab start`; Mininet nodes live only as long as this process.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

from lab.checks import evaluate
from lab.running_lab import RunningLab
from lab.runner import new_run_id, phase_steps
from lab.schema.load import load_scenario
from lab.workshop import state


def serve(lab: RunningLab, server: socket.socket) -> None:
    while True:
        conn, _ = server.accept()
        with conn, conn.makefile("rw") as stream:
            request = json.loads(stream.readline() or "{}")
            if request.get("cmd") == "stop":
                stream.write(json.dumps({"ok": True}) + "\n")
                return
            if request.get("cmd") == "check":
                stream.write(json.dumps(check(lab)) + "\n")
            else:
                stream.write(json.dumps({"error": f"unknown request {request}"}) + "\n")


def check(lab: RunningLab) -> dict:
    """The scenario's healthy checks on the running lab, after its start steps again (a retry)."""
    sc = lab.scenario
    started = time.monotonic()
    retried = []
    for step in sc.spec.start:
        step.apply(lab)
        retried.append(step.linux())
    results = [evaluate(c, lab).as_dict() for c in sc.spec.healthy]
    report = {"scenario": sc.name, "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "retried": retried,
              "passed": all(r["passed"] for r in results), "checks": results}
    checks_dir = lab.phase_dir / "checks"
    checks_dir.mkdir(exist_ok=True)
    number = len(list(checks_dir.glob("check-*.json"))) + 1
    (checks_dir / f"check-{number}.json").write_text(json.dumps(report, indent=2))
    from lab.report import html

    phase = {"name": f"check {number}", "passed": report["passed"], "duration_s": round(time.monotonic() - started, 3),
             "checks": results, "steps": [{"section": "start", "linux": s} for s in retried]}
    doc = {"scenario": sc.name, "passed": report["passed"], "duration_s": phase["duration_s"], "timers": [],
           "phases": [phase]}
    report["report"] = str(html.write(sc, doc, lab.phase_dir, f"check-{number}.html",
                                      phase_dirs={phase["name"]: lab.phase_dir}))
    return report


def main() -> None:
    scenario_path, out = sys.argv[1], Path(sys.argv[2])
    params = dict(p.split("=", 1) for p in sys.argv[3:])
    sc = load_scenario(scenario_path, params)

    def stop_on_signal(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGINT, stop_on_signal)

    state.STATE_DIR.mkdir(mode=0o700, exist_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    state.SOCKET.unlink(missing_ok=True)
    server.bind(str(state.SOCKET))
    server.listen()
    base = state.read() or {}
    try:
        with RunningLab(sc, out / sc.name, new_run_id()) as lab:
            for _, step in phase_steps(sc, "fault"):
                step.apply(lab)
            procs = [{"pid": pid, "cmd": state.cmdline(pid)} for pid in
                     [*lab.node_pids().values(), *lab.processes()]]
            state.write({**base, "pid": os.getpid(), "ready": True, "nodes": lab.node_pids(), "procs": procs,
                         "env": {n: lab.charon_env(n) for n in lab.node_pids()},
                         "artifacts": str(lab.phase_dir)})
            serve(lab, server)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        state.clear()


if __name__ == "__main__":
    main()
