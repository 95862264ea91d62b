"""Phases side by side: at most `jobs` phase workers (lab.worker) at once, across scenarios.

Every phase is a fresh lab of its own, so the three phases of a scenario, and the phases of
many scenarios, need not wait for each other: a scenario takes about as long as its longest
phase. On a terminal each running phase has one live line; each phase's steps and checks are
printed in order once its scenario is complete, so the output reads as a serial run's does.
Ctrl-C or SIGTERM stops every worker, each tearing its lab down, before `lab run` exits.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import selectors
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from multiprocessing.connection import Connection
from typing import Callable

from rich.live import Live

from lab import worker
from lab.clean import kill_marked
from lab.owner import Owner
from lab.progress import Progress, replay
from lab.schema.load import LoadedScenario

STOP_TIMEOUT = 30.0
# Workers are forked from one process that imported the lab once (lab.worker says why); it is
# started with the first worker and exits with `lab run`.
_FORK_SERVER = multiprocessing.get_context("forkserver")
_FORK_SERVER.set_forkserver_preload(["lab.worker"])


@dataclass
class Task:
    sc: LoadedScenario
    params: dict[str, str]
    phase: str
    phase_dir: Path
    run_id: str
    events: list[dict] = field(default_factory=list)
    result: dict | None = None
    status: str = "waiting"
    proc: subprocess.Popen | None = None
    buffer: str = ""
    started: float = 0.0  # monotonic, when its worker was started
    ready: Callable[[], bool] = lambda: True  # False while what its phase needs is being made


LAB_MB = 200  # a phase's lab at its largest, with room to spare (a tcp-asym lab: about 113 MB)


def default_jobs() -> int:
    """Labs mostly wait on timers, not on the CPU: four per core, as many as the memory available
    holds. On 2 cores that ran the catalogue in 41-44 s (70 s at two per core) and passed 230 of
    230 scenario runs with both cores loaded by CPU hogs, once workers were forked rather than
    started and dnat-port-mismatch's lost-ping symptom asked for a recurring loss."""
    return max(1, min(4 * (os.cpu_count() or 1), int(mem_available_mb() // LAB_MB)))


def mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Worker:
    """A phase worker (lab.worker.serve) forked from the fork server, driven like a Popen."""

    def __init__(self, request: dict):
        read_end, write_end = os.pipe()
        self.stdout = os.fdopen(read_end, "rb", buffering=0)
        out = Connection(write_end, readable=False)
        self._process = _FORK_SERVER.Process(target=worker.serve, args=(request, out, Owner.me()),
                                             name=f"lab-{request['run_id']}-{request['phase']}")
        self._process.start()
        out.close()  # the worker holds the only write end: its exit is the end of its output
        self.pid = self._process.pid

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(self._process.name, timeout)
        self.stdout.close()
        return self._process.exitcode

    def terminate(self) -> None:
        self._process.terminate()

    def kill(self) -> None:
        self._process.kill()


def _start(task: Task) -> None:
    task.proc = Worker({"scenario": str(task.sc.path), "params": task.params, "phase": task.phase,
                        "phase_dir": str(task.phase_dir), "run_id": task.run_id})
    task.status = "starting"
    task.started = time.monotonic()


def _next(pending: list[Task], begun: set[str]) -> Task | None:
    """The first task that is ready, one of a scenario already begun before any other: a
    scenario's phases run side by side, so its time is its own and not the wait between them
    (one whose first phase took the last free job waited 40 s for its others)."""
    ready = [t for t in pending if t.ready()]
    return next((t for t in ready if t.sc.name in begun), ready[0] if ready else None)


def _read(task: Task) -> bool:
    """New lines of the worker; False at its end."""
    chunk = os.read(task.proc.stdout.fileno(), 65536).decode(errors="replace")
    if not chunk:
        return False
    task.buffer += chunk
    *lines, task.buffer = task.buffer.split("\n")
    for line in lines:
        try:
            message = json.loads(line)
        except ValueError:
            task.events.append({"call": "step", "args": [f"(worker) {line}"]})  # a traceback, say
            continue
        if "result" in message:
            task.result = message["result"]
        else:
            task.events.append(message)
            task.status = _status(message)
    return True


def _status(event: dict) -> str:
    call, args = event["call"], event["args"]
    if call == "waiting":
        return f"waiting on {args[1]}  {args[2]:4.1f}s / {args[3]:g}s"
    if call == "step":
        return args[0][:100]
    return call.replace("_", " ")


def _failed(task: Task, reason: str) -> dict:
    return {"name": task.phase, "passed": False, "duration_s": 0.0, "checks": [], "steps": [], "notes": [],
            "traffic": {}, "attempts": 1, "diagnosis": None, "error": reason}


def run(tasks: list[Task], jobs: int, console_progress: Progress, on_done) -> None:
    """Run every task, `jobs` at a time; `on_done(task)` when a task's phase is over."""
    pending, running = list(tasks), []
    begun: set[str] = set()  # scenarios with a phase started
    selector = selectors.DefaultSelector()
    live = Live(refresh_per_second=4, console=console_progress.console, transient=True) \
        if console_progress.console.is_terminal and not console_progress.quiet else None
    try:
        if live:
            live.start()
        while pending or running:
            while len(running) < jobs and (task := _next(pending, begun)):
                pending.remove(task)
                begun.add(task.sc.name)
                _start(task)
                selector.register(task.proc.stdout, selectors.EVENT_READ, task)
                running.append(task)
            for key, _ in selector.select(timeout=0.25):
                task = key.data
                if not _read(task):
                    selector.unregister(task.proc.stdout)
                    code = task.proc.wait()
                    running.remove(task)
                    if task.result is None:
                        said = " / ".join(e["args"][0] for e in task.events[-3:] if e["call"] == "step")
                        task.result = _failed(task, f"phase worker exited ({code}) without a "
                                                    f"result: {said}")
                    on_done(task)
            if live:
                live.update("\n".join(f"  {t.sc.name} {t.phase}: {t.status}" for t in running))
    except KeyboardInterrupt:
        _stop(running)
        raise
    finally:
        if live:
            live.stop()


def _stop(running: list[Task]) -> None:
    """Every worker tears its lab down (SIGTERM), then is waited for."""
    for task in running:
        if task.proc.poll() is None:
            task.proc.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    for task in running:
        try:
            task.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            task.proc.kill()
            task.proc.wait()
            kill_marked(task.run_id, task.proc.pid)  # its teardown never ran: what it started goes too


def show(progress: Progress, tasks: list[Task], headers: dict[str, str]) -> None:
    """A scenario's phases, in order, as a serial run prints them."""
    for task in tasks:
        progress.phase(task.phase, headers[task.phase])
        replay(progress, task.events)
