"""Workshop labs, one per account, as seen from any terminal: a state file and a control socket each.

A trainee is an ordinary account; the account, not a name given on the command line, says
whose lab a command acts on. Each account's lab has a seat: a folder in the training room
(ROOM), owned by the account and readable by it alone (and root, the trainer), holding the
lab's state and the supervisor's control socket. The room itself is made by `make setup`:
root's, sticky and writable by all but listable by root only (mode 1733), so an account can
make its own seat, cannot remove another's, and cannot see who else has one.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import secrets
import stat
from pathlib import Path
from typing import Any, Callable, Iterator

from lab import procfs
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
        self.token_file = self.dir / "token"  # the secret in the trainee's URL of `lab serve`
        self._lock = self.dir / ".lock"

    @classmethod
    def mine(cls) -> "Seat":
        return cls(account_name())

    def read(self) -> dict[str, Any] | None:
        """The state, as its account wrote it (never through a link: root reads seats too)."""
        text = _read_own(self.state)
        try:
            return json.loads(text) if text is not None else None
        except ValueError:
            return None

    def token(self) -> str | None:
        return (_read_own(self.token_file) or "").strip() or None

    def new_token(self) -> str:
        """A fresh secret for this seat's pages (the old one stops working)."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        write_new(self.token_file, token + "\n", 0o600)
        return token

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
        write_new(tmp, json.dumps(data, indent=2), 0o600)
        tmp.replace(self.state)  # readers never see half a file

    def update(self, change: Callable[[dict[str, Any]], dict[str, Any]] | None = None, **changes: Any) -> None:
        """Read, change, write, with no other writer in between (the supervisor's threads, `lab
        hint`): `change(current)` returns the keys to change, `changes` are set as they are."""
        with self._locked():
            current = self.read() or {}
            self.write({**current, **(change(current) if change else {}), **changes})

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self._lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        if os.geteuid() == 0:  # the account's own lock, whoever made it
            owner = os.stat(self.dir)
            os.fchown(fd, owner.st_uid, owner.st_gid)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def clear(self) -> None:
        for path in (self.state, self.socket, self.state.with_suffix(".tmp"), self.token_file, self._lock):
            path.unlink(missing_ok=True)
        try:
            self.dir.rmdir()
        except OSError:
            pass  # not empty or already gone


TOKEN_BYTES = 24  # 192 bits: as long as a URL carries comfortably, never guessed


def _read_own(path: Path) -> str | None:
    """A seat's file, never through a symbolic link (the seat is its account's: root must not be
    led elsewhere by a link put there), and bounded."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, MAX_STATE_BYTES).decode(errors="replace")
    finally:
        os.close(fd)


MAX_STATE_BYTES = 1 << 20


def write_new(path: Path, text: str, mode: int) -> None:
    """A file made afresh (whatever was at `path`, a link included, is removed first, never followed),
    owned by the seat's account when root writes it."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        if os.geteuid() == 0:
            owner = os.stat(path.parent)
            os.fchown(fd, owner.st_uid, owner.st_gid)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


SERVE_FILE = ".serve.json"  # in the room: where `lab serve` listens (root's, readable by every account)


def serve_url(in_room: Path | None = None) -> str | None:
    """The base URL of the room's `lab serve`, while it runs (None: it does not)."""
    path = (in_room or room()) / SERVE_FILE
    try:
        if os.lstat(path).st_uid != 0:
            return None  # only root's word counts: an account could make this file in the room
        found = json.loads(_read_own(path) or "{}")
    except (OSError, ValueError):
        return None
    pid, url = found.get("pid"), found.get("url")
    if not (isinstance(pid, int) and isinstance(url, str) and alive(pid, found.get("started_at"))):
        return None
    return url


def page_url(seat: "Seat") -> str | None:
    """The trainee's page of this seat, when `lab serve` runs: the URL to hand out."""
    base, token = serve_url(seat.room), seat.token()
    return f"{base.rstrip('/')}/t/{token}/" if base and token else None


def seats(in_room: Path | None = None) -> list[Seat]:
    """Every account's seat (root only: nobody else may list the room)."""
    where = in_room or room()
    try:
        entries = sorted(where.iterdir())
    except OSError:
        return []
    return [Seat(p.name, where) for p in entries if p.is_dir() and not p.is_symlink()
            and account_name(p.stat().st_uid) == p.name]


def start_time(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, field 22 of /proc/PID/stat): with the
    pid, it names one process, never a later one that reused the number."""
    fields = procfs.stat(pid)
    return fields[19] if fields and fields[0] != "Z" else None  # a zombie has ended


def alive(pid: int, started: str | None) -> bool:
    return started is not None and start_time(pid) == started
