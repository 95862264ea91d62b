"""`lab clean`: remove exactly what dead ipsec-lab runs left behind.

A run is dead when the process that built its lab no longer exists (see lab.owner). What
it left: its processes (node shells, charon, tcpdump, relays, pings), found by their
marks; any other process inside one of its node namespaces (a command a trainee started
by hand); and its runtime directory. Namespaces, their links, bridges and mounts are
held only by those processes and vanish with them: nothing of a lab lives in the root
namespace. A run whose owner is alive is never touched, nor anything without a mark.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from lab import owner

RUNTIME_GLOB = "ipsec-lab-*"
KILL_TIMEOUT = 5.0


@dataclass
class Leftovers:
    """What one dead run left."""

    run_id: str
    processes: dict[int, str] = field(default_factory=dict)  # pid -> command line
    netns: set[str] = field(default_factory=set)
    runtime_dirs: list[Path] = field(default_factory=list)

    def describe(self) -> str:
        parts = [f"{len(self.processes)} process(es)"]
        if self.netns:
            parts.append(f"{len(self.netns)} node namespace(s)")
        if self.runtime_dirs:
            parts.append(", ".join(str(d) for d in self.runtime_dirs))
        return f"run {self.run_id}: " + "; ".join(parts)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _netns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def kill_marked(run_id: str, owner_pid: int) -> int:
    """SIGKILL every process that carries `run_id` and was started for the lab of `owner_pid`:
    what a lab leaves when its teardown could not finish (a signal as a daemon was forked, a
    worker killed). Other labs of the same run (its other phases) have other owners."""
    killed = 0
    for pid in pids():
        found = owner.process_marks(pid)
        if found and found[0] == run_id and found[1] is not None and found[1].pid == owner_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
    return killed


def find() -> list[Leftovers]:
    """Every dead run's leftovers; live runs and unmarked things are left out."""
    runs: dict[str, Leftovers] = {}
    live_runs: set[str] = set()
    host_netns = _netns(1)
    for pid in pids():
        marked = owner.process_marks(pid)
        if marked is None:
            continue
        run_id, who = marked
        if who is not None and who.alive():
            live_runs.add(run_id)
            continue
        left = runs.setdefault(run_id, Leftovers(run_id))
        left.processes[pid] = _cmdline(pid)
        ns = _netns(pid)
        if ns and ns != host_netns:
            left.netns.add(ns)
    for run_id in live_runs:
        runs.pop(run_id, None)  # a process whose owner is alive keeps the whole run alive
    by_netns = {ns: left for left in runs.values() for ns in left.netns}
    if by_netns:  # unmarked processes inside a dead run's node namespaces
        for pid in pids():
            left = by_netns.get(_netns(pid) or "")
            if left is not None and pid not in left.processes:
                left.processes[pid] = _cmdline(pid)
    for directory in Path(tempfile.gettempdir()).glob(RUNTIME_GLOB):
        found = owner.read_owner_file(directory)
        if found is None:
            continue  # not ours, or not yet written: never guess
        run_id, who, _ = found
        if run_id in live_runs or (who is not None and who.alive()):
            continue
        runs.setdefault(run_id, Leftovers(run_id)).runtime_dirs.append(directory)
    return sorted(runs.values(), key=lambda r: r.run_id)


def remove(leftovers: list[Leftovers]) -> list[str]:
    """Kill the processes, wait until they are gone, remove the directories; returns problems."""
    problems = []
    pids = {pid: cmd for left in leftovers for pid, cmd in left.processes.items()}
    for pid, cmd in pids.items():
        if _cmdline(pid) == cmd:  # still that process, not a reused pid
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + KILL_TIMEOUT
    waiting = dict(pids)
    while waiting and time.monotonic() < deadline:
        waiting = {pid: cmd for pid, cmd in waiting.items() if _cmdline(pid) == cmd and not _zombie(pid)}
        if waiting:
            time.sleep(0.02)
    problems += [f"process {pid} ({cmd}) did not exit" for pid, cmd in waiting.items()]
    for left in leftovers:
        for directory in left.runtime_dirs:
            shutil.rmtree(directory, ignore_errors=True)
            if directory.exists():
                problems.append(f"could not remove {directory}")
    return problems


def _zombie(pid: int) -> bool:
    fields = owner.stat_fields(pid)
    return fields is not None and fields[0] == "Z"


def summary(leftovers: list[Leftovers]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for left in leftovers:
        counts["runs"] += 1
        counts["processes"] += len(left.processes)
        counts["namespaces"] += len(left.netns)
        counts["runtime_dirs"] += len(left.runtime_dirs)
    return dict(counts)
