"""A trainee never sees the answer: everything a trainee can read of their workshop lab (the
terminal output of lab start, status, hint and check, plain and --json; the check pages and
their JSON; the supervisor's log in their results; their page of `lab serve`, its JSON and
events, the answers to its hint and check buttons) is searched for the fault's summary, the
fix's (and a partial fix's), the vendor commands of all three, the recurring fault's summary and
steps, the timers' notes, the expected diagnosis, and the scenario's title and name. Two
scenarios: one with a partial fix, one whose fault recurs and whose timers explain it."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests import repo
from lab.schema.load import load_scenario
from lab.workshop.state import Seat

pytestmark = pytest.mark.lab
LAB = [sys.executable, "-m", "lab"]
SCENARIOS = ("crl-unreachable", "rekey-reauth-collision")


def answers(name: str) -> dict[str, str]:
    """What must not reach a trainee, each with what it is; vendor command lines the scenario's
    own brief, task or hints give the trainee are left out (the author chose to give them)."""
    sc = load_scenario(name)
    spec = sc.spec
    given = " ".join(t for text in [spec.brief, spec.task, *spec.hints] if text for t in (text.en, text.zh))
    found = {spec.title.en: "title", spec.title.zh: "title (zh)", spec.diagnosis.class_: "diagnosis"}
    parts = {"fault": spec.fault, "fix": spec.fix, "partial fix": spec.partial_fix}
    for what, part in parts.items():
        if part is None:
            continue
        found[part.summary.en] = f"{what} summary"
        found[part.summary.zh] = f"{what} summary (zh)"
        for vendor in part.vendor:
            for line in vendor.commands.splitlines():
                line = line.strip()
                if len(line) >= 6 and line not in given:
                    found[line] = f"{what}: {vendor.platform}"
    for step in spec.fault.steps:
        found[step.linux()] = "fault step"
    if spec.recur:
        found[spec.recur.summary.en] = "recurrence"
        found[spec.recur.summary.zh] = "recurrence (zh)"
        for step in spec.recur.steps:
            found[step.linux()] = "recurrence step"
    for timer_name, timer in sc.timers.items():
        if timer.note:
            found[timer.note.en] = f"timer {timer_name}"
            found[timer.note.zh] = f"timer {timer_name} (zh)"
    return found


def leaks(text: str, needles: dict[str, str]) -> list[str]:
    return [f"{what}: {needle[:80]}" for needle, what in needles.items() if needle and needle in text]


@pytest.fixture
def trainees(accounts, room, no_leaks):
    yield accounts
    for account in accounts:
        account.lab("stop")


def test_nothing_a_trainee_can_read_gives_the_answer(trainees, room):
    seen: dict[str, dict[str, str]] = {}  # account -> {artifact: its text}
    for account, name in zip(trainees, SCENARIOS):
        texts = seen[account.name] = {}
        started = account.lab("start", name)
        assert started.returncode == 0, started.stdout + started.stderr
        texts["lab start"] = started.stdout + started.stderr  # names the scenario: the trainee typed it
        for n in range(len(load_scenario(name).spec.hints)):
            hint = account.lab("hint", *(["--json"] if n % 2 else []))
            assert hint.returncode == 0, hint.stderr
            texts[f"lab hint {n + 1}"] = hint.stdout + hint.stderr
        for args in (["status"], ["status", "--json"], ["check"], ["check", "--json"]):
            out = account.lab(*args)
            texts["lab " + " ".join(args)] = out.stdout + out.stderr
        results = account.home / "results" / "workshop"
        for path in sorted(results.rglob("*")):
            if path.suffix in (".html", ".json") or path.name == "supervisor.log":
                texts[str(path.relative_to(results))] = path.read_text(errors="replace")
        assert any("check-2.html" in k for k in texts) and any("check-1.json" in k for k in texts), sorted(texts)
    served = _served(trainees, room)
    problems = []
    for account, name in zip(trainees, SCENARIOS):
        needles = answers(name)
        for artifact, text in {**seen[account.name], **served[account.name]}.items():
            named = {} if artifact == "lab start" else {name: "scenario name"}
            problems += [f"{name}: {artifact}: {leak}" for leak in leaks(text, {**needles, **named})]
    assert not problems, "\n".join(problems)
    # the needles are there to be found: the trainer's own report of a run has them
    assert leaks(_trainer_report(SCENARIOS[0]), answers(SCENARIOS[0]))


def _served(trainees, room: Path) -> dict[str, dict[str, str]]:
    server = subprocess.Popen([*LAB, "serve", "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, cwd=repo.ROOT)
    try:
        deadline = time.monotonic() + 60
        while "the trainer's page" not in (line := server.stdout.readline()):
            assert time.monotonic() < deadline and server.poll() is None, "lab serve did not start"
        base = line.split()[-1].split("/trainer/")[0]
        return asyncio.run(_fetch({a.name: f"{base}/t/{Seat(a.name, room).token()}/" for a in trainees}))
    finally:
        server.terminate()
        server.wait(timeout=30)


async def _fetch(pages: dict[str, str]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    async with aiohttp.ClientSession() as http:
        for account, page in pages.items():
            texts = found[account] = {}
            for path in ("", "state"):
                async with http.get(page + path) as response:
                    assert response.status == 200
                    texts[f"page {path or '/'}"] = await response.text()
            async with http.get(page + "events") as response:
                texts["page events"] = (await response.content.readuntil(b"\n\n")).decode()
            for action in ("hint", "check"):
                async with http.post(page + action) as response:
                    texts[f"page {action}"] = await response.text()
    for texts in found.values():
        json.loads(texts["page state"])  # JSON, as the page reads it
    return found


def _trainer_report(name: str) -> str:
    """The trainer's view of the same scenario: its report from the catalogue's results, else a
    report rendered from the scenario alone (no run)."""
    from lab.report import html
    sc = load_scenario(name)
    doc = {"scenario": name, "passed": False, "duration_s": 0.0, "phases": [], "diagnosis":
           {"step": sc.spec.diagnosis.step, "class": sc.spec.diagnosis.class_}}
    return html.render(sc, doc, Path("/nonexistent"))
