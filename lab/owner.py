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
# Runs started from one test session (or workshop room) carry its name, inherited from the
# environment, so each can tell its own runs from those of others on the same machine.
SESSION_VAR = "IPSEC_LAB_SESSION"
OWNER_FILE = "owner.json"


def stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat from field 3 on (the command name, field 2, may hold spaces and parentheses)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    fields = stat_fields(pid)
    return fields[19] if fields else None


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
        """Still that process, and not a zombie: a killed owner waits to be reaped, but its lab is orphaned."""
        fields = stat_fields(self.pid)
        return fields is not None and fields[19] == self.started and fields[0] != "Z"


def marks(run_id: str, owner: Owner) -> dict[str, str]:
    """The environment every process of the run carries."""
    return {RUN_VAR: run_id, OWNER_VAR: str(owner), SESSION_VAR: os.environ.get(SESSION_VAR, "")}


def write_owner_file(directory: Path, run_id: str, owner: Owner) -> None:
    (directory / OWNER_FILE).write_text(json.dumps({"run_id": run_id, "owner": str(owner),
                                                    "session": os.environ.get(SESSION_VAR, "")}))


def read_owner_file(directory: Path) -> tuple[str, Owner | None, str | None] | None:
    try:
        data = json.loads((directory / OWNER_FILE).read_text())
        return data["run_id"], Owner.parse(data["owner"]), data.get("session") or None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _environ(pid: int) -> dict[str, str] | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    return dict(item.decode(errors="replace").partition("=")[::2] for item in environ if b"=" in item)


def process_marks(pid: int) -> tuple[str, Owner | None] | None:
    """(run id, owner) of a lab process, None for any other process."""
    env = _environ(pid)
    if env is None or RUN_VAR not in env:
        return None
    return env[RUN_VAR], Owner.parse(env.get(OWNER_VAR, ""))


def session_of(pid: int) -> str | None:
    return (_environ(pid) or {}).get(SESSION_VAR) or None
