"""What a lab run could leave on the machine: namespaces, processes, links, mounts, runtime dirs."""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass

from pyroute2 import IPRoute

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
    with IPRoute() as ipr:  # the root namespace, where nothing of a lab may appear
        links = {link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
    mounts = set(open("/proc/self/mountinfo").read().splitlines())
    return Snapshot(netns, procs, links, mounts, set(glob.glob("/tmp/ipsec-lab-*")))
