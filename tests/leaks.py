"""What a lab could leave on the host: processes (and the namespaces they hold), links in the
host's network namespace, mounts in its mount namespace, named network namespaces. Nothing here
assumes where temporary files go: a lab's runtime files are in its sandbox's own scratch folders,
never the host's, whatever TMPDIR says (tests/test_isolation.py shows a node's /tmp is not the
host's; tests/test_cli.py runs a lab with TMPDIR elsewhere and finds nothing left there).

A lab lives in a sandbox whose processes the kernel ends with its first one (lab.sandbox);
these snapshots check that, from outside. Every process a test starts inherits SESSION_VAR
(set by conftest), so a leak is told apart from another test worker's labs, or a developer's.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pyroute2 import IPRoute

SESSION_VAR = "IPSEC_LAB_TEST_SESSION"


@dataclass
class Snapshot:
    procs: set[tuple[int, str]]
    links: set[str]
    mounts: set[str]
    netns: set[str]

    def left_over(self, before: "Snapshot") -> dict[str, set]:
        out = {}
        for name in ("procs", "links", "mounts", "netns"):
            extra = getattr(self, name) - getattr(before, name)
            if extra:
                out[name] = extra
        return out


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def session_processes(session: str | None = None) -> dict[int, str]:
    """Live processes that carry this test session's mark (pid -> command line)."""
    mark = f"{SESSION_VAR}={session or os.environ[SESSION_VAR]}".encode()
    found = {}
    for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
        if pid != os.getpid() and mark in _environ(pid).split(b"\0") and not _zombie(pid):
            try:
                found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue  # gone meanwhile
    return found


def charons_below(root: int) -> list[int]:
    """charon processes whose ancestry reaches `root` (a `lab run`, through its workers' sandboxes)."""
    found = []
    for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "charon" and _descends(pid, root):
                found.append(pid)
        except OSError:
            continue
    return found


def _descends(pid: int, root: int) -> bool:
    while pid > 1:
        if pid == root:
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


def snapshot() -> Snapshot:
    with IPRoute() as ipr:  # the host's namespace, where nothing of a lab may appear
        links = {link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
    mounts = set(Path("/proc/self/mountinfo").read_text().splitlines())
    netns = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    return Snapshot({(pid, cmd.strip()) for pid, cmd in session_processes().items()}, links, mounts, netns)
