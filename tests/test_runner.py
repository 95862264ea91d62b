"""lab run --all -j: when phases start, and what a scenario's result says about its own time
(no lab is built)."""
import json
import subprocess
import sys
from types import SimpleNamespace

from lab.run import scenarios, scheduler
from lab.progress import Progress
from lab.schema.load import load_scenario


def test_a_scenario_is_timed_from_its_own_first_phase_not_from_the_run_start(tmp_path, monkeypatch):
    """A scenario whose phases waited 100 s behind others' for a job took 3 s, not 103 s."""
    clock = [0.0]
    monkeypatch.setattr(scenarios, "time", SimpleNamespace(monotonic=lambda: clock[0]))  # the runner's clock only
    monkeypatch.setattr("lab.report.html.write", lambda *args, **kwargs: None)

    def run(tasks, jobs, progress, on_done):
        assert all(task.ready() for task in tasks)  # psk-mismatch has no PKI: ready at once
        clock[0] = 100.0  # the phases of other scenarios held every job until now
        for task in tasks:
            task.started = clock[0]
        clock[0] = 103.0
        for task in tasks:
            task.result = {"name": task.phase, "passed": True, "duration_s": 3.0, "checks": []}
            on_done(task)

    monkeypatch.setattr(scheduler, "run", run)
    [doc] = scenarios.run_scenarios([load_scenario("psk-mismatch")], tmp_path, Progress(quiet=True), jobs=4)
    assert doc["duration_s"] == 3.0


def test_a_phase_waits_until_what_it_needs_is_ready(monkeypatch):
    """A scenario's phases start only once its PKI is made, even with a job free: meanwhile the
    other scenario's phases run."""
    order = []

    def start(task):  # a worker that only answers
        order.append(task.phase)
        result = json.dumps({"result": {"name": task.phase, "passed": True}})
        task.proc = subprocess.Popen([sys.executable, "-c", f"print({result!r})"], stdout=subprocess.PIPE)
        task.output = task.proc.stdout

    monkeypatch.setattr(scheduler, "_start", start)
    sc = load_scenario("psk-mismatch")
    waiting = scheduler.Task(sc, "waiting", None, "r1", ready=lambda: len(order) == 2)
    others = [scheduler.Task(sc, f"other{i}", None, "r2") for i in (1, 2)]
    scheduler.run([waiting, *others], 3, Progress(quiet=True), lambda task: None)
    assert order == ["other1", "other2", "waiting"]
    assert all(t.result["passed"] for t in (waiting, *others))


def test_default_jobs_four_per_core_as_memory_allows(monkeypatch):
    monkeypatch.setattr(scheduler.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(scheduler, "mem_available_mb", lambda: 24 * 1024)
    assert scheduler.default_jobs() == 8
    monkeypatch.setattr(scheduler, "mem_available_mb", lambda: 700)  # three labs of 200 MB
    assert scheduler.default_jobs() == 3
    monkeypatch.setattr(scheduler, "mem_available_mb", lambda: 50)
    assert scheduler.default_jobs() == 1


def test_a_scenario_begun_takes_the_next_free_job():
    """Its phases run side by side: a free job goes to the begun scenario's next phase before a
    longer scenario that has just become ready, so its time is not the wait between its phases."""
    long, short = load_scenario("dpd-nat-timeout"), load_scenario("psk-mismatch")
    ready = {"dpd-nat-timeout": False}
    pending = [scheduler.Task(long, "baseline", None, "r1", ready=lambda: ready["dpd-nat-timeout"]),
               scheduler.Task(short, "baseline", None, "r2"), scheduler.Task(short, "fault", None, "r2")]
    assert scheduler._next(pending, set()) is pending[1]
    ready["dpd-nat-timeout"] = True
    assert scheduler._next(pending[1:] + pending[:1], set()) is pending[1]  # none begun: the list's order
    assert scheduler._next(pending, {"psk-mismatch"}) is pending[1]
    assert scheduler._next(pending, set()) is pending[0]


def test_the_longest_scenarios_are_started_first():
    names = [load_scenario(n) for n in ("psk-mismatch", "dpd-nat-timeout", "rekey-reauth-collision")]
    assert [sc.name for sc in sorted(names, key=scenarios.expected_s, reverse=True)] == \
        ["rekey-reauth-collision", "dpd-nat-timeout", "psk-mismatch"]
