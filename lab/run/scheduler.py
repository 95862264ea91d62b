"""Phases side by side: at most `jobs` sandboxed phase workers (lab.run.worker) at once, across scenarios.

Every phase is a fresh lab of its own, so the three phases of a scenario, and the phases of
many scenarios, need not wait for each other: a scenario takes about as long as its longest
phase. On a terminal each running phase has one live line; each phase's steps and checks are
printed in order once its scenario is complete, so the output reads as a serial run's does.
Ctrl-C or SIGTERM stops every worker, each tearing its lab down, before `lab run` exits.
"""
from __future__ import annotations

import json
import os
import selectors
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rich.live import Live

from lab.progress import EventProgress, Progress, replay
from lab.run.phase import run_phase
from lab.run.worker import SandboxedChild
from lab.schema.load import LoadedScenario
from lab.schema.scenario import Phase

STOP_TIMEOUT = 30.0


@dataclass
class Task:
    sc: LoadedScenario
    phase: Phase
    phase_dir: Path
    run_id: str
    events: list[dict] = field(default_factory=list)
    result: dict | None = None
    status: str = "waiting"
    proc: SandboxedChild | None = None
    output: object = None  # the read end of the worker's output
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


def _phase(task: Task) -> None:
    """In the worker: the phase, its progress and then its result as JSON lines on standard output."""
    result = run_phase(task.sc, task.phase, task.phase_dir, task.run_id, EventProgress(sys.stdout))
    print(json.dumps({"result": result.as_dict()}), flush=True)


def _start(task: Task) -> None:
    # A fork copies one thread: any other, holding a lock as it forked, would leave it held.
    assert threading.active_count() == 1, "lab run must start no thread before its workers"
    read_end, write_end = os.pipe()
    try:
        task.proc = SandboxedChild(_phase, (task,), writable=(task.phase_dir.parent,), output=write_end)
    finally:
        os.close(write_end)  # the worker holds the only write end: its exit is the end of its output
    task.output = os.fdopen(read_end, "rb", buffering=0)
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
    chunk = os.read(task.output.fileno(), 65536).decode(errors="replace")
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


def failed(phase: Phase, reason: str) -> dict:
    """The record of a phase that has no result: its worker could not run it."""
    return {"name": phase, "passed": False, "duration_s": 0.0, "checks": [], "steps": [], "notes": [],
            "traffic": {}, "attempts": 1, "diagnosis": None, "error": reason}


def run(tasks: list[Task], jobs: int, console_progress: Progress, on_done) -> None:
    """Run every task, `jobs` at a time; `on_done(task)` when a task's phase is over."""
    pending, running = list(tasks), []
    begun: set[str] = set()  # scenarios with a phase started
    selector = selectors.DefaultSelector()
    # refreshed by this loop, not by a thread of rich's own (workers are forked: no thread may run)
    live = Live(auto_refresh=False, console=console_progress.console, transient=True) \
        if console_progress.console.is_terminal and not console_progress.quiet else None
    try:
        if live:
            live.start()
        while pending or running:
            while len(running) < jobs and (task := _next(pending, begun)):
                pending.remove(task)
                begun.add(task.sc.name)
                _start(task)
                selector.register(task.output, selectors.EVENT_READ, task)
                running.append(task)
            for key, _ in selector.select(timeout=0.25):
                task = key.data
                if not _read(task):
                    selector.unregister(task.output)
                    task.output.close()
                    code = task.proc.wait()
                    running.remove(task)
                    if task.result is None:
                        said = " / ".join(e["args"][0] for e in task.events[-3:] if e["call"] == "step")
                        task.result = failed(task.phase, f"phase worker exited ({code}) without a "
                                                    f"result: {said}")
                    on_done(task)
            if live:
                live.update("\n".join(f"  {t.sc.name} {t.phase}: {t.status}" for t in running), refresh=True)
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
        except TimeoutError:
            task.proc.kill()  # its sandbox, and everything the lab started in it, goes with it
            task.proc.wait()


def show(progress: Progress, tasks: list[Task], headers: dict[Phase, str]) -> None:
    """A scenario's phases, in order, as a serial run prints them."""
    for task in tasks:
        progress.phase(task.phase, headers[task.phase])
        replay(progress, task.events)
