"""Holds a workshop lab: builds the fault phase in a sandbox, serves `check` and `stop` on a unix socket.

Started detached by `lab start`, as the account whose lab it is. The socket is bound in the
account's seat before the sandbox is entered; the process that started it stays outside the
sandbox, waiting (lab.sandbox), so its pid is how the lab is entered and stopped, and when
it goes, by any signal, the lab goes with it.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from lab import sandbox
from lab.checks import CheckResult, observe
from lab.errors import LabError
from lab.run.lab import RunningLab
from lab.run.phase import PhaseResult, phase_steps
from lab.run.scenarios import document, new_run_id
from lab.schema.load import load_scenario
from lab.schema.scenario import Phase
from lab.workshop import view
from lab.workshop.recurrence import Rearming
from lab.workshop.vitals import Vitals
from lab.workshop.state import Seat


def serve(lab: RunningLab, server: socket.socket, seat: Seat, lock: threading.Lock,
          rearming: Rearming | None, vitals: Vitals) -> None:
    """Requests one at a time, until `stop`. A client that goes away before its answer (Ctrl-C
    on `lab check`, a timeout) loses the answer, never the lab."""
    while True:
        conn, _ = server.accept()
        try:
            with conn, conn.makefile("rw") as stream:
                if _answer(stream, lab, seat, lock, rearming, vitals) == "stop":
                    return
        except OSError:
            pass


def _answer(stream, lab: RunningLab, seat: Seat, lock: threading.Lock, rearming: Rearming | None,
            vitals: Vitals) -> str | None:
    try:
        request = json.loads(stream.readline() or "{}")
    except ValueError:
        request = {}
    if request.get("cmd") == "stop":
        _send(stream, {"ok": True})
        return "stop"
    if request.get("cmd") == "check":
        with lock:
            report = check(lab, rearming, vitals, (seat.read() or {}).get("hints_shown", 0))
            seat.update(lambda current: view.after_check(current, report))
        _send(stream, report)
    else:
        _send(stream, {"error": "unknown request; allowed: check, stop"})
    return None


def _send(stream, message: dict) -> None:
    stream.write(json.dumps(message) + "\n")
    stream.flush()


def check(lab: RunningLab, rearming: Rearming | None = None, vitals: Vitals | None = None,
          hints_taken: int = 0) -> dict:
    """The scenario's healthy checks on the running lab, after its start steps again (a retry)
    and, for a fault that recurs, after re-arming it once more (a fix must hold across that);
    first of all, whether every daemon of the lab still runs. Written as the trainee's view of a
    result.json of one phase (`check N`) and its report: never the fault, the fix or the diagnosis."""
    sc = lab.scenario
    started = time.monotonic()
    checks_dir = lab.phase_dir / "checks"
    checks_dir.mkdir(exist_ok=True)
    number = len(list(checks_dir.glob("check-*.json"))) + 1
    phase = PhaseResult(f"check {number}", False, 0.0)
    lab.observe_from_now()  # logs and captures as of now: a fault that is over does not fail a fix
    if rearming:
        rearming.rearm()  # its steps are the fault's: the trainee is told it came back, not how
        phase.notes.append(view.REARMED_NOTE)
    for step in sc.spec.start:
        phase.steps.append({"section": "start", "kind": step.kind, "linux": step.linux()})
        try:
            step.apply(lab)
        except LabError as exc:  # the lab as the trainee left it: not healthy yet, and still up
            phase.error = f"start step failed: {exc}"
            break
    phase.checks = [view.daemons_check(vitals.findings() if vitals else [], lab.daemons())]
    phase.checks += _observed(sc.spec.healthy, lab)
    phase.passed = phase.error is None and all(c.passed for c in phase.checks)
    phase.duration_s = round(time.monotonic() - started, 3)
    doc = view.trainee_doc(document(sc, lab.run_id, phase.passed, phase.duration_s, [phase.as_dict()],
                                    lab.phase_dir))
    (checks_dir / f"check-{number}.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False))
    from lab.report import html

    report = html.write(sc, doc, lab.phase_dir, f"check-{number}.html", phase_dirs={phase.name: lab.phase_dir},
                        trainee=sc.spec.hints[:hints_taken])
    return {"number": number, "passed": phase.passed, "retried": [s["linux"] for s in phase.steps],
            "rearmed": rearming is not None, "error": phase.error,
            "checks": [c.as_dict() for c in phase.checks], "report": str(report)}


def _observed(checks: list, lab: RunningLab) -> list:
    """The checks' results; a check that cannot be made (its daemon died under it) fails with
    why, and the others are still judged, one by one."""
    try:
        return list(observe(checks, lab))
    except LabError:
        results = []
        for c in checks:
            try:
                results += list(observe([c], lab))
            except LabError as exc:
                results.append(CheckResult(name=c.title(), kind=c.kind, expect=c.expectation(), passed=False,
                                           observed=str(exc), duration_s=0.0, mode="could not be made",
                                           linux=c.linux(), title=c.heading()))
        return results


def main() -> None:
    room, account, scenario_path, out = Path(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
    params = dict(p.split("=", 1) for p in sys.argv[5:])
    seat = Seat(account, room)
    sc = load_scenario(scenario_path, params)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    seat.socket.unlink(missing_ok=True)
    server.bind(str(seat.socket))
    os.chmod(seat.socket, 0o600)
    server.listen()
    sandbox.enter(sandbox.View(writable=(seat.dir, out)))

    def stop_on_signal(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGINT, stop_on_signal)
    try:
        # a folder named for no scenario: the trainee's results never name the fault
        with RunningLab(sc, out / view.LAB_FOLDER, new_run_id()) as lab:
            for _, step in phase_steps(sc, Phase.FAULT):
                step.apply(lab)
            lock, rearming = threading.Lock(), None
            if sc.spec.recur:
                rearming = Rearming(lab, sc.spec.recur, lock, lambda n, error: seat.update(
                    recurrences=n, last_recurrence=time.strftime("%H:%M:%S"), recur_error=error))
                rearming.start()
            vitals = Vitals(lab, lambda gone, running: seat.update(gone=gone, daemons=running))
            vitals.start()
            seat.update(ready=True, nodes=lab.node_pids(), env={n: lab.charon_env(n) for n in lab.node_pids()},
                        interfaces=lab.interfaces(), artifacts=str(lab.phase_dir),
                        recur_every=sc.spec.recur.every if sc.spec.recur else None)
            try:
                serve(lab, server, seat, lock, rearming, vitals)
            finally:
                vitals.stop()
                if rearming:
                    rearming.stop()  # before the teardown, never during a re-arm
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    main()
