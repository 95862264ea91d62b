"""lab run --all -j: what a scenario's result says about its own time (no lab is built)."""
from lab import runner, scheduler
from lab.progress import Progress
from lab.schema.load import load_scenario


def test_a_scenario_is_timed_from_its_own_first_phase_not_from_the_run_start(tmp_path, monkeypatch):
    """Every scenario is prepared before any phase runs; one whose phases wait 100 s behind
    others' for a job took 3 s, not 103 s."""
    clock = [0.0]
    monkeypatch.setattr(runner.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr("lab.report.html.write", lambda *args, **kwargs: None)

    def run(tasks, jobs, progress, on_done):
        clock[0] = 100.0  # the phases of other scenarios held every job until now
        for task in tasks:
            task.started = clock[0]
        clock[0] = 103.0
        for task in tasks:
            task.result = {"name": task.phase, "passed": True, "duration_s": 3.0, "checks": []}
            on_done(task)

    monkeypatch.setattr(scheduler, "run", run)
    [doc] = runner.run_scenarios([load_scenario("psk-mismatch")], tmp_path, Progress(quiet=True), jobs=4)
    assert doc["duration_s"] == 3.0
