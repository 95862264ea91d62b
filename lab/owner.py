"""Which run a process or runtime directory belongs to, and whether that run is still alive.

Every process a lab starts carries two environment variables: the run id and its owner,
the process that built the lab (pid and start time, so a reused pid is not mistaken for
it). Every runtime directory holds the same in `owner.json`. After `kill -9`, a crash or a
power cut, `lab clean` finds exactly what dead runs left by these marks.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

RUN_VAR = "IPSEC_LAB_RUN"
OWNER_VAR = "IPSEC_LAB_OWNER"
OWNER_FILE = "owner.json"


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its last ')'
    return stat.rsplit(")", 1)[1].split()[19]


@dataclass(frozen=True)
class Owner:
    pid: int
    started: str

    @classmethod
    def me(cls) -> "Owner":
        pid = os.getpid()
        return cls(pid, start_time(pid) or "")

    @classmethod
    def parse(cls, text: str) -> "Owner | None":
        pid, _, started = text.partition(":")
        return cls(int(pid), started) if pid.isdigit() and started else None

    def __str__(self) -> str:
        return f"{self.pid}:{self.started}"

    def alive(self) -> bool:
        return start_time(self.pid) == self.started


def marks(run_id: str, owner: Owner) -> dict[str, str]:
    """The environment every process of the run carries."""
    return {RUN_VAR: run_id, OWNER_VAR: str(owner)}


def write_owner_file(directory: Path, run_id: str, owner: Owner) -> None:
    (directory / OWNER_FILE).write_text(json.dumps({"run_id": run_id, "owner": str(owner)}))


def read_owner_file(directory: Path) -> tuple[str, Owner | None] | None:
    try:
        data = json.loads((directory / OWNER_FILE).read_text())
        return data["run_id"], Owner.parse(data["owner"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def process_marks(pid: int) -> tuple[str, Owner | None] | None:
    """(run id, owner) of a lab process, None for any other process."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    env = dict(item.decode(errors="replace").partition("=")[::2] for item in environ if b"=" in item)
    if RUN_VAR not in env:
        return None
    return env[RUN_VAR], Owner.parse(env.get(OWNER_VAR, ""))
