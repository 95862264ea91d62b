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

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


class NotRunning(LabError):
    pass


def running() -> dict[str, Any]:
    current = state.read()
    if current is None:
        raise NotRunning("no workshop lab is running; start one with: lab start NAME")
    if current.get("pid") and not state.alive(current["pid"]):
        raise NotRunning(f"the workshop lab of {current['scenario']} died; clean up with: lab stop")
    return current


def start(sc: LoadedScenario, out: Path, params: list[str], lang: str) -> dict[str, Any]:
    current = state.read()
    if current is not None:
        alive = current.get("pid") and state.alive(current["pid"])
        raise LabError(f"a workshop lab is already {'running' if alive else 'left over'}: {current['scenario']} "
                       f"(started {current['started']}); run lab stop first")
    state.write({"scenario": sc.name, "started": time.strftime("%Y-%m-%d %H:%M:%S"), "lang": lang,
                 "hints_shown": 0, "ready": False, "pid": None, "path": str(sc.path), "params": params})
    out.mkdir(parents=True, exist_ok=True)
    log = (out / "supervisor.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "lab.workshop.supervisor", str(sc.path), str(out.resolve()),
                             *params], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # outlives this command and its terminal
    deadline = time.monotonic() + READY_TIMEOUT
    while not (state.read() or {}).get("ready"):
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                proc.terminate()
                proc.wait()
            state.clear()
            tail = (out / "supervisor.log").read_text().strip().splitlines()[-3:]
            raise LabError("the workshop lab did not come up: " + " / ".join(tail))
        time.sleep(0.05)
    return state.read()


def request(cmd: str, timeout: float = 120) -> dict[str, Any]:
    running()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(state.SOCKET))
        with sock.makefile("rw") as stream:
            stream.write(json.dumps({"cmd": cmd}) + "\n")
            stream.flush()
            return json.loads(stream.readline())


def shell(node: str, command: list[str]) -> None:
    """Replaces this process: a shell (or one command) in the node's namespaces."""
    current = running()
    if node not in current["nodes"]:
        raise LabError(f"no node '{node}'; nodes: {', '.join(current['nodes'])}")
    env = [f"{k}={v}" for k, v in current["env"].get(node, {}).items()]
    argv = command or ["bash", "--norc", "-i"]
    os.execvp("mnexec", ["mnexec", "-a", str(current["nodes"][node]), "env", f"PS1=[lab {node}] \\w# ", *env, *argv])


def next_hint(sc: LoadedScenario, number: int | None) -> tuple[int, Any]:
    current = running()
    hints = sc.spec.hints
    if not hints:
        raise LabError(f"{sc.name} has no hints")
    n = number or min(current["hints_shown"] + 1, len(hints))
    if not 1 <= n <= len(hints):
        raise LabError(f"hints go from 1 to {len(hints)}")
    state.write({**current, "hints_shown": max(current["hints_shown"], n)})
    return n, hints[n - 1]


def stop() -> str:
    current = state.read()
    if current is None:
        return "no workshop lab is running"
    if current.get("pid") and state.alive(current["pid"]):
        try:
            request("stop", timeout=STOP_TIMEOUT)
        except OSError:
            os.kill(current["pid"], signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while state.alive(current["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)
    # A supervisor that died could not tear down: stop exactly the processes it recorded.
    left = [p for p in current.get("procs", []) if state.alive(p["pid"], p["cmd"])]
    for proc in left:
        os.kill(proc["pid"], signal.SIGKILL)
    state.clear()
    return f"stopped {current['scenario']}" + (f" (killed {len(left)} left-over processes)" if left else "")
