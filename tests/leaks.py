"""What a lab run could leave on the machine: namespaces, processes, links, mounts, runtime dirs."""
from __future__ import annotations

import glob
import os
import subprocess
from dataclasses import dataclass

WATCHED = {"charon", "tcpdump", "mnexec"}


@dataclass
class Snapshot:
    netns: set[str]
    procs: set[tuple[int, str]]
    links: set[str]
    mounts: set[str]
    runtime: set[str]

    def left_over(self, before: "Snapshot") -> dict[str, set]:
        out = {}
        for name in ("netns", "procs", "links", "mounts", "runtime"):
            extra = getattr(self, name) - getattr(before, name)
            if extra:
                out[name] = extra
        return out


def _procs() -> tuple[set[str], set[tuple[int, str]]]:
    netns, procs = set(), set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            netns.add(os.readlink(f"/proc/{pid}/ns/net"))
            comm = open(f"/proc/{pid}/comm").read().strip()
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        if comm in WATCHED or "mininet:" in cmdline:
            procs.add((int(pid), cmdline.strip()))
    return netns, procs


def snapshot() -> Snapshot:
    netns, procs = _procs()
    links = set(subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True)
                .stdout.split("\n"))
    links = {line.split(":")[1].strip() for line in links if line.count(":") >= 2}
    mounts = set(open("/proc/self/mountinfo").read().splitlines())
    return Snapshot(netns, procs, links, mounts, set(glob.glob("/tmp/ipsec-lab-*")))
