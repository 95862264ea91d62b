"""Workshop labs, one per account, as seen from any terminal: a state file and a control socket each.

A trainee is an ordinary account; the account, not a name given on the command line, says
whose lab a command acts on. Each account's lab has a seat: a folder in the training room
(ROOM), owned by the account and readable by it alone (and root, the trainer), holding the
lab's state and the supervisor's control socket. The room itself is made by `make setup`:
root's, sticky and writable by all but listable by root only (mode 1733), so an account can
make its own seat, cannot remove another's, and cannot see who else has one.
"""
from __future__ import annotations

import json
import os
import pwd
import stat
from pathlib import Path
from typing import Any

from lab.sandbox.identity import hand_to_lab, lab_identity

ROOM_VAR = "LAB_ROOM"  # another room (tests, or a second class on the same server)
DEFAULT_ROOM = Path("/run/ipsec-lab/room")
ROOM_MODE = 0o1733


def room() -> Path:
    return Path(os.environ.get(ROOM_VAR) or DEFAULT_ROOM)


def account_name(uid: int | None = None) -> str:
    """The account of `uid`; by default the account this process's labs run as (root's run as
    the lab account, lab.sandbox.identity), whose seat they have."""
    if uid is None:
        uid = lab_uid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def lab_uid() -> int:
    return lab_identity().uid if os.geteuid() == 0 else os.geteuid()


class SeatError(Exception):
    """The seat cannot be used: the message says why and what to do."""


class Seat:
    """One account's workshop lab."""

    def __init__(self, account: str, in_room: Path | None = None):
        self.account = account
        self.room = in_room or room()
        self.dir = self.room / account
        self.state = self.dir / "state.json"
        self.socket = self.dir / "control.sock"

    @classmethod
    def mine(cls) -> "Seat":
        return cls(account_name())

    def read(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.state.read_text())
        except (OSError, ValueError):
            return None

    def claim(self) -> None:
        """The seat's folder, made by its account (or checked to be its own): private to it."""
        if not self.room.is_dir():
            raise SeatError(f"there is no training room ({self.room}); as root, run: make setup")
        try:
            os.mkdir(self.dir, 0o700)
            hand_to_lab(self.dir)  # root's labs run as the lab's account, which writes the seat
        except FileExistsError:
            st = os.lstat(self.dir)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != lab_uid():
                raise SeatError(f"{self.dir} is not {self.account}'s own folder; the trainer (root) removes it") from None
        except PermissionError:
            raise SeatError(f"cannot make a seat in {self.room}; as root, run: make setup") from None

    def write(self, data: dict[str, Any]) -> None:
        tmp = self.state.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.state)  # readers never see half a file

    def update(self, **changes: Any) -> None:
        self.write({**(self.read() or {}), **changes})

    def clear(self) -> None:
        for path in (self.state, self.socket, self.state.with_suffix(".tmp")):
            path.unlink(missing_ok=True)
        try:
            self.dir.rmdir()
        except OSError:
            pass  # not empty or already gone


def seats() -> list[Seat]:
    """Every account's seat (root only: nobody else may list the room)."""
    try:
        entries = sorted(room().iterdir())
    except OSError:
        return []
    return [Seat(p.name) for p in entries if p.is_dir() and not p.is_symlink()
            and account_name(p.stat().st_uid) == p.name]


def start_time(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, field 22 of /proc/PID/stat): with the
    pid, it names one process, never a later one that reused the number."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19] if fields[0] != "Z" else None  # a zombie has ended


def alive(pid: int, started: str | None) -> bool:
    return started is not None and start_time(pid) == started
