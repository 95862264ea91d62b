"""What a trainee may see of their lab; the trainer sees everything.

A trainee sees the brief, the task, the hints they took, and their checks with what was
observed. Never the answer: not the fault, the fix or their vendor commands, not the
diagnosis, and not what names them: the scenario's name and title (`psk-mismatch`, "PSK
mismatch: AUTHENTICATION_FAILED"), the steps that re-arm a recurring fault, the timers' notes
(they explain the mechanism). Everything a trainee's command writes or shows is made from
what this module lets through.
"""
from __future__ import annotations

import time
from typing import Any

from lab.checks import CheckResult

LAB_FOLDER = "lab"  # the trainee's results folder: named for no scenario
REARMED_NOTE = ("the fault was brought back once more before the checks (it comes back until a fix holds) / "
                "检查前故障又被触发了一次(修复生效之前它会一再出现)")
# what of a result.json a trainee's check-N.json keeps (`document` of lab.run.scenarios)
TRAINEE_KEYS = ("run_id", "passed", "duration_s", "phases", "artifacts")
PHASE_KEYS = ("name", "passed", "duration_s", "checks", "steps", "notes", "traffic", "attempts", "error")
SHOWN_CHECKS = 40
OBSERVED_CHARS = 400


def daemons_check(gone: list[dict], running: list[str]) -> CheckResult:
    """The first check of every `lab check`: the lab's charon daemons, relays and captures
    still run (a dead one is named, with the time it was first seen gone)."""
    observed = ("; ".join(g["text"]["en"] for g in gone) if gone
                else "running: " + ", ".join(running) if running else "the lab runs no daemon")
    return CheckResult(name="every daemon of the lab runs", kind="daemons",
                       expect="every charon, TCP relay and capture the lab started is running",
                       passed=not gone, observed=observed, duration_s=0.0, mode="now",
                       linux="ps -e -o pid,etime,args  # in any node: the lab's processes",
                       title={"en": "every daemon of the lab (charon, TCP relays, captures) runs",
                              "zh": "实验的所有守护进程(charon、TCP 中继、抓包)都在运行"})


def trainee_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """A result.json as a trainee may read it (see the module's docstring)."""
    shown = {k: doc[k] for k in TRAINEE_KEYS if k in doc}
    shown["phases"] = [{k: p[k] for k in PHASE_KEYS if k in p} for p in doc.get("phases", [])]
    return shown


def after_check(current: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    """The seat's record after a `lab check`: counts, the verdict, when the lab was first
    healthy, and the last check's results (the trainer's page shows them)."""
    now = time.time()
    changes = {"checks_run": current.get("checks_run", 0) + 1,
               "last_verdict": "healthy" if report["passed"] else "not healthy", "last_check_at": now,
               "last_checks": [{"title": c.get("title") or {"en": c["name"], "zh": c["name"]}, "passed": c["passed"],
                                "observed": c["observed"][:OBSERVED_CHARS]} for c in report["checks"][:SHOWN_CHECKS]]}
    if report["passed"] and not current.get("first_healthy_at"):
        changes["first_healthy_at"] = now
    return changes
