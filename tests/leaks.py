"""What a lab run could leave on the machine: processes (and the namespaces they hold), root
links, mounts, runtime dirs.

Every lab process carries its run's marks (lab.owner), so a leak is told apart from another
lab running at the same time (a second test worker, a developer's run): what counts is what
this process's runs left, i.e. marked processes whose owner is this process or has exited.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from pyroute2 import IPRoute

from lab import owner


@dataclass
class Snapshot:
    procs: set[tuple[int, str]]
    links: set[str]
    mounts: set[str]
    runtime: set[str]

    def left_over(self, before: "Snapshot") -> dict[str, set]:
        out = {}
        for name in ("procs", "links", "mounts", "runtime"):
            extra = getattr(self, name) - getattr(before, name)
            if extra:
                out[name] = extra
        return out


def _mine_or_orphaned(who: owner.Owner | None, session: str | None) -> bool:
    """A run of this test session (the same IPSEC_LAB_SESSION, when one is set) whose owner is this
    process or has exited."""
    if (session or None) != (os.environ.get(owner.SESSION_VAR) or None):
        return False  # another session's run: a second test worker, a developer's lab
    return who is None or who.pid == os.getpid() or not who.alive()


def _parent(pid: int) -> int | None:
    try:
        return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def descends(pid: int | None, root: int) -> bool:
    """`pid` is `root` or below it: a `lab run`'s phase workers are children of its fork server."""
    while pid and pid != 1:
        if pid == root:
            return True
        pid = _parent(pid)
    return False


def lab_charons_of(root: int) -> list[int]:
    """charon processes of labs owned by `root` or by its phase workers."""
    found = []
    for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
        marked = owner.process_marks(pid)
        if marked and marked[1] and descends(marked[1].pid, root):
            try:
                if open(f"/proc/{pid}/comm").read().strip() == "charon":
                    found.append(pid)
            except OSError:
                continue
    return found


def _procs() -> set[tuple[int, str]]:
    procs = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        marked = owner.process_marks(int(pid))
        if marked is None or not _mine_or_orphaned(marked[1], owner.session_of(int(pid))):
            continue
        try:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        procs.add((int(pid), cmdline.strip()))
    return procs


def _runtime_dirs() -> set[str]:
    dirs = set()
    for path in glob.glob("/tmp/ipsec-lab-*"):
        found = owner.read_owner_file(Path(path))
        if found is not None and _mine_or_orphaned(found[1], found[2]):
            dirs.add(path)  # a lab's runtime dir: it writes its owner first thing
    return dirs


def snapshot() -> Snapshot:
    with IPRoute() as ipr:  # the root namespace, where nothing of a lab may appear
        links = {link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
    mounts = set(open("/proc/self/mountinfo").read().splitlines())
    return Snapshot(_procs(), links, mounts, _runtime_dirs())
