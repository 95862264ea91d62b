"""The running workshop lab, as seen from any terminal: one state file and one control socket."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

STATE_DIR = Path("/run/ipsec-lab")
STATE = STATE_DIR / "workshop.json"
SOCKET = STATE_DIR / "workshop.sock"


def read() -> dict[str, Any] | None:
    try:
        return json.loads(STATE.read_text())
    except (OSError, ValueError):
        return None


def write(state: dict[str, Any]) -> None:
    STATE_DIR.mkdir(mode=0o700, exist_ok=True)
    tmp = STATE.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(STATE)  # readers never see half a file


def clear() -> None:
    for path in (STATE, SOCKET):
        path.unlink(missing_ok=True)
    try:
        STATE_DIR.rmdir()
    except OSError:
        pass  # not empty or already gone


def cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def alive(pid: int, recorded: str | None = None) -> bool:
    """pid still runs (and, given its recorded command line, is still that process, not a reused pid)."""
    now = cmdline(pid)
    return now is not None and (recorded is None or now == recorded)
