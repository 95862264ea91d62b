"""A process as /proc shows it."""
from __future__ import annotations

from pathlib import Path


def stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command's name (state, ppid, pgrp, ... as proc(5)
    numbers them from 3), or None when the process has ended. The name may hold spaces and
    parentheses: the fields start after its last ')'."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
