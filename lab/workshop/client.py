"""What the trainee's and trainer's terminals do: talk to the supervisor, enter nodes, show hints."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.schema.load import LoadedScenario
from lab.workshop import state
from lab.workshop.state import Seat

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


class NotRunning(LabError):
    pass


def _whose(seat: Seat) -> str:
    return "" if seat.trainee == state.DEFAULT_TRAINEE else f" for {seat.trainee}"


def running(seat: Seat) -> dict[str, Any]:
    current = seat.read()
    if current is None:
        raise NotRunning(f"no workshop lab is running{_whose(seat)}; start one with: lab start NAME")
    if current.get("pid") and not state.alive(current["pid"]):
        raise NotRunning(f"the workshop lab of {current['scenario']}{_whose(seat)} died; clean up with: lab stop")
    return current


def start(seat: Seat, sc: LoadedScenario, out: Path, params: list[str], lang: str) -> dict[str, Any]:
    current = seat.read()
    if current is not None:
        alive = current.get("pid") and state.alive(current["pid"])
        raise LabError(f"a workshop lab{_whose(seat)} is already {'running' if alive else 'left over'}: "
                       f"{current['scenario']} (started {current['started']}); run lab stop first")
    seat.write({"trainee": seat.trainee, "scenario": sc.name, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                "lang": lang, "hints_shown": 0, "checks_run": 0, "last_verdict": None, "ready": False, "pid": None,
                "path": str(sc.path), "params": params})
    out = out / seat.trainee
    out.mkdir(parents=True, exist_ok=True)
    log = (out / "supervisor.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "lab.workshop.supervisor", seat.trainee, str(sc.path),
                             str(out.resolve()), *params], stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)  # outlives this command
    deadline = time.monotonic() + READY_TIMEOUT
    while not (seat.read() or {}).get("ready"):
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                proc.terminate()
                proc.wait()
            seat.clear()
            tail = (out / "supervisor.log").read_text().strip().splitlines()[-3:]
            raise LabError("the workshop lab did not come up: " + " / ".join(tail))
        time.sleep(0.05)
    return seat.read()


def request(seat: Seat, cmd: str, timeout: float = 120) -> dict[str, Any]:
    running(seat)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(seat.socket))
        with sock.makefile("rw") as stream:
            stream.write(json.dumps({"cmd": cmd}) + "\n")
            stream.flush()
            return json.loads(stream.readline())


def shell(seat: Seat, node: str, command: list[str]) -> None:
    """Replaces this process: a shell (or one command) in the node's namespaces."""
    current = running(seat)
    if node not in current["nodes"]:
        raise LabError(f"no node '{node}'; nodes: {', '.join(current['nodes'])}")
    env = [f"{k}={v}" for k, v in current["env"].get(node, {}).items()]
    argv = command or ["bash", "--norc", "-i"]
    os.execvp("mnexec", ["mnexec", "-a", str(current["nodes"][node]), "env", f"PS1=[lab {node}] \\w# ", *env, *argv])


def next_hint(seat: Seat, sc: LoadedScenario, number: int | None) -> tuple[int, Any]:
    current = running(seat)
    hints = sc.spec.hints
    if not hints:
        raise LabError(f"{sc.name} has no hints")
    n = number or min(current["hints_shown"] + 1, len(hints))
    if not 1 <= n <= len(hints):
        raise LabError(f"hints go from 1 to {len(hints)}")
    seat.update(hints_shown=max(current["hints_shown"], n))
    return n, hints[n - 1]


def stop(seat: Seat) -> str:
    current = seat.read()
    if current is None:
        return f"no workshop lab is running{_whose(seat)}"
    if current.get("pid") and state.alive(current["pid"]):
        try:
            request(seat, "stop", timeout=STOP_TIMEOUT)
        except OSError:
            os.kill(current["pid"], signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while state.alive(current["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)
    # A supervisor that died could not tear down: stop exactly the processes it recorded.
    left = [p for p in current.get("procs", []) if state.alive(p["pid"], p["cmd"])]
    for proc in left:
        os.kill(proc["pid"], signal.SIGKILL)
    seat.clear()
    return f"stopped {current['scenario']}{_whose(seat)}" + (f" (killed {len(left)} left-over processes)" if left else "")
