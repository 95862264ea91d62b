"""What each page is sent: the trainee's lab as the trainee may see it (lab.workshop.view's
rule: never the scenario's name or title, the fault, the fix, vendor commands or the
diagnosis), the trainer's room with everything, and the room's grades as CSV."""
from __future__ import annotations

import csv
import io
import time
from typing import Any

from lab.serve.room import SeatView
from lab.workshop import state


def _texts(t) -> dict[str, str] | None:
    return {"en": t.en, "zh": t.zh} if t is not None else None


def trainee(view: SeatView) -> dict[str, Any]:
    r, b = view.record, view.briefing
    hints = b.hints if b else []
    return {
        "alive": r.alive and r.invalid is None, "ready": r.ready,
        "brief": _texts(b.brief) if b else None, "task": _texts(b.task) if b else None,
        "hints_total": len(hints), "hints": [_texts(h) for h in hints[:r.hints_shown]],
        "nodes": list(r.nodes), "interfaces": {n: list(i) for n, i in r.interfaces.items()},
        "checks_run": r.checks_run, "last_verdict": r.last_verdict,
        "checks": [c.model_dump() for c in r.last_checks],
        "gone": [g.text for g in r.gone], "busy": sorted(view.busy),
    }


def trainer_row(view: SeatView) -> dict[str, Any]:
    r, b = view.record, view.briefing
    return {
        "account": view.account, "scenario": r.scenario, "title": _texts(b.title) if b else None,
        "fault": _texts(b.fault.summary) if b else None, "fix": _texts(b.fix.summary) if b else None,
        "started": r.started, "alive": r.alive, "ready": r.ready, "invalid": r.invalid,
        "daemons": list(r.daemons), "gone": [g.model_dump() for g in r.gone],
        "hints_shown": r.hints_shown, "hints_total": len(b.hints) if b else None,
        "checks_run": r.checks_run, "last_verdict": r.last_verdict, "checks": [c.model_dump() for c in r.last_checks],
        "first_healthy_at": _clock(r.first_healthy_at), "minutes_to_healthy": r.minutes_to_healthy(),
        "recurrences": r.recurrences if r.recur_every else None, "busy": sorted(view.busy),
        "page": state.page_url(view.seat),
    }


def trainer(seats: list[SeatView]) -> dict[str, Any]:
    return {"at": time.strftime("%H:%M:%S"), "labs": [trainer_row(v) for v in sorted(seats, key=lambda v: v.account)]}


GRADE_COLUMNS = ("name", "scenario", "fixed at", "minutes to fix", "hints", "checks")


def grades(seats: list[SeatView]) -> str:
    """One row per trainee: name, scenario, when the lab was first healthy (and minutes from
    its start), hints taken, checks run."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(GRADE_COLUMNS)
    for view in sorted(seats, key=lambda v: v.account):
        r = view.record
        writer.writerow([_cell(view.account), _cell(r.scenario or ""),
                         _cell(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.first_healthy_at))
                               if r.first_healthy_at else ""),
                         "" if r.minutes_to_healthy() is None else r.minutes_to_healthy(), r.hints_shown, r.checks_run])
    return out.getvalue()


def _cell(text: str) -> str:
    """A spreadsheet never reads a cell as a formula (=, +, -, @ first)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _clock(epoch: float | None) -> str | None:
    return time.strftime("%H:%M:%S", time.localtime(epoch)) if epoch else None
