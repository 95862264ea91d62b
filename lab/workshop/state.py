"""Workshop labs, one per trainee, as seen from any terminal: a state file and a control socket each.

Everything lives under /run/ipsec-lab/workshop/<trainee>/, created readable by root only:
the supervisor's socket would let anyone who reaches it grade or stop a lab.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

ROOT = Path("/run/ipsec-lab/workshop")
DEFAULT_TRAINEE = "default"
TRAINEE_VAR = "LAB_TRAINEE"
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


def trainee_name(given: str | None) -> str:
    """--trainee, else $LAB_TRAINEE, else `default`: a name that becomes a folder, so an identifier."""
    name = given or os.environ.get(TRAINEE_VAR) or DEFAULT_TRAINEE
    if not _NAME.fullmatch(name):
        raise ValueError(f"trainee '{name[:40]}': allowed: a lower-case letter, then lower-case letters, digits, "
                         "'_' or '-', at most 32 characters")
    return name


class Seat:
    """One trainee's workshop lab."""

    def __init__(self, trainee: str):
        self.trainee = trainee
        self.dir = ROOT / trainee
        self.state = self.dir / "state.json"
        self.socket = self.dir / "control.sock"

    def read(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.state.read_text())
        except (OSError, ValueError):
            return None

    def write(self, data: dict[str, Any]) -> None:
        ROOT.parent.mkdir(mode=0o700, exist_ok=True)
        ROOT.mkdir(mode=0o700, exist_ok=True)
        self.dir.mkdir(mode=0o700, exist_ok=True)
        tmp = self.state.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.state)  # readers never see half a file

    def update(self, **changes: Any) -> None:
        self.write({**(self.read() or {}), **changes})

    def clear(self) -> None:
        for path in (self.state, self.socket):
            path.unlink(missing_ok=True)
        try:
            self.dir.rmdir()
        except OSError:
            pass  # not empty or already gone


def seats() -> list[Seat]:
    """Every trainee that has a lab (running or left over)."""
    if not ROOT.is_dir():
        return []
    return [Seat(p.name) for p in sorted(ROOT.iterdir()) if p.is_dir() and _NAME.fullmatch(p.name)]


def cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def alive(pid: int, recorded: str | None = None) -> bool:
    """pid still runs (and, given its recorded command line, is still that process, not a reused pid)."""
    now = cmdline(pid)
    return now is not None and (recorded is None or now == recorded)
