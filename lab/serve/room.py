"""The training room as `lab serve` sees it, kept current: every seat's record, its page's
token, its scenario's briefing; a version number that moves whenever anything a page shows
has changed, so pages are pushed the room as it is, never a stale file.

The room is looked at every WATCH_S: a stat of each seat's state file and a look at its
supervisor's process (a killed supervisor changes no file). Tokens are kept by their SHA-256,
so finding a page's seat takes no comparison an attacker could time.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from lab.sandbox.identity import LAB_ACCOUNT
from lab.serve.briefing import Briefing
from lab.workshop import record, state
from lab.workshop.record import Record
from lab.workshop.state import Seat

WATCH_S = 0.25
MIN_TOKEN_CHARS = 32  # a seat's token shorter than this (an account may write its own) opens nothing
BRIEFING_TIMEOUT_S = 60
OUTPUT_LIMIT = 4 << 20


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def as_account(account: str, *argv: str) -> list[str]:
    """A command run as `account`, never as root (lab.sandbox.runas); the seat of the lab account
    is root's own lab (labs root starts run as that account), acted on as root."""
    if account == LAB_ACCOUNT:
        return list(argv)
    return [sys.executable, "-m", "lab.sandbox.runas", account, "--", *argv]


async def run_as(account: str, *argv: str, timeout: float) -> tuple[int, str, str]:
    """`argv` as the account; its exit status and what it wrote (bounded). The room's LAB_ROOM
    goes with it (runas keeps the environment)."""
    proc = await asyncio.create_subprocess_exec(*as_account(account, *argv), stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                limit=OUTPUT_LIMIT)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except (asyncio.TimeoutError, asyncio.CancelledError):
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode, out[:OUTPUT_LIMIT].decode(errors="replace"), err[-4000:].decode(errors="replace")


@dataclass
class SeatView:
    seat: Seat
    record: Record
    token: str | None
    mark: tuple = ()
    briefing: Briefing | None = None
    briefing_of: tuple = ()  # (path, params) the briefing was made for
    busy: set[str] = field(default_factory=set)  # actions under way (a check): one at a time
    terminals: int = 0  # open now

    @property
    def account(self) -> str:
        return self.seat.account


class Room:
    def __init__(self, path: Path):
        self.path = path
        self.seats: dict[str, SeatView] = {}
        self._tokens: dict[str, str] = {}
        self.version = 0
        self.changed = asyncio.Condition()
        self._briefings = asyncio.Semaphore(2)  # a Python each: at most two at a time on a busy machine
        self._warming: set[str] = set()

    def by_token(self, token: str) -> SeatView | None:
        account = self._tokens.get(digest(token))
        return self.seats.get(account) if account else None

    async def watch(self) -> None:
        while True:
            if self.scan():
                await self.bump()
                self._warm()
            await asyncio.sleep(WATCH_S)

    def _warm(self) -> None:
        """Each new lab's briefing read now, in the background: its page's first load need not wait."""
        for view in self.seats.values():
            if view.briefing_of != (view.record.path, tuple(view.record.params)) and view.account not in self._warming:
                self._warming.add(view.account)
                task = asyncio.create_task(self.briefing(view))
                task.add_done_callback(lambda _, account=view.account: self._warming.discard(account))

    async def bump(self) -> None:
        async with self.changed:
            self.version += 1
            self.changed.notify_all()

    async def wait_change(self, seen: int, timeout: float) -> int:
        """The version after `seen` (or `seen` again after `timeout`: time for a keep-alive)."""
        async with self.changed:
            try:
                await asyncio.wait_for(self.changed.wait_for(lambda: self.version != seen), timeout)
            except asyncio.TimeoutError:
                pass
            return self.version

    def scan(self) -> bool:
        """Read what changed since the last look; True when anything did."""
        found = {s.account: s for s in state.seats(self.path)}
        changed = set(found) != set(self.seats)
        for account in set(self.seats) - set(found):
            del self.seats[account]
        for account, seat in found.items():
            view = self.seats.get(account)
            mark = _mark(seat, view)
            if view is not None and view.mark == mark:
                continue
            current = record.read(seat)
            if current is None:
                self.seats.pop(account, None)
                changed = True
                continue
            token = seat.token()
            if view is None:
                view = self.seats[account] = SeatView(seat, current, token)
            else:
                view.record, view.token = current, token
            view.mark = _mark(seat, view)
            changed = True
        if changed:
            self._index()
        return changed

    def _index(self) -> None:
        """Tokens to seats; a token two seats claim, or a short one, opens neither."""
        counts: dict[str, int] = {}
        for view in self.seats.values():
            if view.token and len(view.token) >= MIN_TOKEN_CHARS:
                counts[digest(view.token)] = counts.get(digest(view.token), 0) + 1
        self._tokens = {digest(v.token): a for a, v in self.seats.items()
                        if v.token and counts.get(digest(v.token)) == 1}

    async def briefing(self, view: SeatView) -> Briefing | None:
        """The seat's scenario, read as its account; None when it cannot be (the record says why not)."""
        wanted = (view.record.path, tuple(view.record.params))
        if view.briefing is not None and view.briefing_of == wanted:
            return view.briefing
        if not view.record.path:
            return None
        async with self._briefings:
            try:
                code, out, _ = await run_as(view.account, sys.executable, "-m", "lab.serve.briefing",
                                            view.record.path, *view.record.params, timeout=BRIEFING_TIMEOUT_S)
                view.briefing = Briefing.model_validate(json.loads(out)) if code == 0 else None
            except (ValueError, ValidationError, asyncio.TimeoutError):
                view.briefing = None
        view.briefing_of = wanted
        return view.briefing


def _mark(seat: Seat, view: SeatView | None) -> tuple:
    """What tells a seat changed: its state and token files, and whether its supervisor lives
    (one read of /proc/PID/stat: a killed supervisor changes no file)."""
    marks: list = []
    for path in (seat.state, seat.token_file):
        try:
            st = os.lstat(path)
            marks.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            marks.append(None)
    marks.append(view.record.alive if view is not None else None)
    return tuple(marks)
