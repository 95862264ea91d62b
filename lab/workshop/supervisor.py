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
from lab.runner import PhaseResult, document, new_run_id, phase_steps
from lab.schema.load import load_scenario
from lab.workshop import state
from lab.workshop.state import Seat


def serve(lab: RunningLab, server: socket.socket, seat: Seat) -> None:
    while True:
        conn, _ = server.accept()
        with conn, conn.makefile("rw") as stream:
            request = json.loads(stream.readline() or "{}")
            if request.get("cmd") == "stop":
                stream.write(json.dumps({"ok": True}) + "\n")
                return
            if request.get("cmd") == "check":
                report = check(lab)
                seat.update(checks_run=(seat.read() or {}).get("checks_run", 0) + 1,
                            last_verdict="healthy" if report["passed"] else "not healthy")
                stream.write(json.dumps(report) + "\n")
            else:
                stream.write(json.dumps({"error": f"unknown request {request}"}) + "\n")


def check(lab: RunningLab) -> dict:
    """The scenario's healthy checks on the running lab, after its start steps again (a retry);
    written as a result.json of one phase (`check N`) and its report."""
    sc = lab.scenario
    started = time.monotonic()
    checks_dir = lab.phase_dir / "checks"
    checks_dir.mkdir(exist_ok=True)
    number = len(list(checks_dir.glob("check-*.json"))) + 1
    phase = PhaseResult(f"check {number}", False, 0.0)
    for step in sc.spec.start:
        step.apply(lab)
        phase.steps.append({"section": "start", "kind": step.kind, "linux": step.linux()})
    phase.checks = [evaluate(c, lab) for c in sc.spec.healthy]
    phase.passed = all(c.passed for c in phase.checks)
    phase.duration_s = round(time.monotonic() - started, 3)
    doc = document(sc, lab.run_id, phase.passed, phase.duration_s, [phase.as_dict()], lab.phase_dir)
    (checks_dir / f"check-{number}.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False))
    from lab.report import html

    report = html.write(sc, doc, lab.phase_dir, f"check-{number}.html", phase_dirs={phase.name: lab.phase_dir})
    return {"scenario": sc.name, "passed": phase.passed, "retried": [s["linux"] for s in phase.steps],
            "checks": [c.as_dict() for c in phase.checks], "report": str(report)}


def main() -> None:
    seat = Seat(sys.argv[1])
    scenario_path, out = sys.argv[2], Path(sys.argv[3])
    params = dict(p.split("=", 1) for p in sys.argv[4:])
    sc = load_scenario(scenario_path, params)

    def stop_on_signal(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGINT, stop_on_signal)

    seat.update()  # the seat's folder, root only, before the socket is bound in it
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    seat.socket.unlink(missing_ok=True)
    server.bind(str(seat.socket))
    os.chmod(seat.socket, 0o600)
    server.listen()
    try:
        with RunningLab(sc, out / sc.name, new_run_id()) as lab:
            for _, step in phase_steps(sc, "fault"):
                step.apply(lab)
            procs = [{"pid": pid, "cmd": state.cmdline(pid)} for pid in
                     [*lab.node_pids().values(), *lab.processes()]]
            seat.update(pid=os.getpid(), ready=True, nodes=lab.node_pids(), procs=procs,
                        env={n: lab.charon_env(n) for n in lab.node_pids()}, artifacts=str(lab.phase_dir))
            serve(lab, server, seat)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        seat.clear()


if __name__ == "__main__":
    main()
