"""A seat's state as the trainer reads it: typed, bounded, or refused.

A seat's state.json is written by the trainee's own processes (the supervisor runs as the
trainee), so to the trainer (root: `lab status --all`, `lab serve`) it is hostile input like
any other: every field is checked for type, size and shape here, once, and what does not
pass makes the record `invalid` (shown as such, never used). The values the trainee's lab
reports about itself (checks run, verdict, when it was first healthy) are its own word: an
account can forge its own record, never another's.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from lab.workshop import state
from lab.workshop.state import Seat

Short = Annotated[str, StringConstraints(max_length=200)]
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Texts = dict[Literal["en", "zh"], Annotated[str, StringConstraints(max_length=600)]]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Finding(_Model):
    key: Short
    since: float
    text: Texts


class CheckSeen(_Model):
    title: Texts
    passed: bool
    observed: Annotated[str, StringConstraints(max_length=600)]


class Record(_Model):
    account: str
    scenario: Name | None = None
    started: Short = "?"
    started_epoch: float | None = None
    pid: int | None = None
    started_at: Short | None = None
    ready: bool = False
    lang: Literal["en", "zh", "both"] = "both"
    path: Annotated[str, StringConstraints(max_length=4096)] | None = None
    params: Annotated[list[Annotated[str, StringConstraints(max_length=300)]], Field(max_length=64)] = []
    hints_shown: int = Field(0, ge=0, le=1000)
    checks_run: int = Field(0, ge=0, le=10**7)
    last_verdict: Literal["healthy", "not healthy"] | None = None
    last_check_at: float | None = None
    first_healthy_at: float | None = None
    recurrences: int = Field(0, ge=0, le=10**7)
    recur_every: float | None = None
    nodes: Annotated[dict[Name, int], Field(max_length=500)] = {}
    interfaces: Annotated[dict[Name, Annotated[dict[Name, Short], Field(max_length=64)]], Field(max_length=500)] = {}
    gone: Annotated[list[Finding], Field(max_length=64)] = []
    daemons: Annotated[list[Short], Field(max_length=1000)] = []
    last_checks: Annotated[list[CheckSeen], Field(max_length=64)] = []
    invalid: str | None = None  # why the seat's state was refused

    @property
    def alive(self) -> bool:
        return bool(self.pid) and state.alive(self.pid, self.started_at)

    def minutes_to_healthy(self) -> float | None:
        if self.first_healthy_at is None or self.started_epoch is None:
            return None
        return round((self.first_healthy_at - self.started_epoch) / 60, 1)


def read(seat: Seat) -> Record | None:
    """The seat's record, None without a state, `invalid` when its state is not what a lab writes."""
    current = seat.read()
    if current is None:
        return None
    return parse(seat.account, current)


def parse(account: str, current: Any) -> Record:
    if not isinstance(current, dict):
        return Record(account=account, invalid="not a JSON object")
    try:
        return Record.model_validate({**current, "account": account, "invalid": None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return Record(account=account, invalid=re.sub(r"\s+", " ", f"{where}: {first['msg']}")[:200])
