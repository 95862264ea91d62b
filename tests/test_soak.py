"""lab soak's bookkeeping (no lab is built): a failing run's folder is kept and named."""
import json

from lab import soak
from lab.progress import Progress


def test_a_failing_runs_folder_outlives_its_round(tmp_path, monkeypatch):
    def run_scenarios(scenarios, out, progress, jobs):
        (out / "psk-mismatch" / "fault").mkdir(parents=True)
        (out / "psk-mismatch" / "fault" / "gw1.charon.log").write_text("what happened\n")
        check = {"name": "a symptom", "passed": False, "observed": "nothing"}
        return [{"passed": False, "duration_s": 1.0,
                 "phases": [{"name": "fault", "passed": False, "checks": [check], "diagnosis": None}]}]

    monkeypatch.setattr(soak, "run_scenarios", run_scenarios)
    out = tmp_path / "soak.json"
    soak.soak(["psk-mismatch"], 1, False, 2, out, Progress(quiet=True))
    [record] = json.loads(out.read_text())["scenarios"]
    kept = tmp_path / "soak-failures" / "psk-mismatch-run1"
    assert record["failures"] and all(f["kept"] == str(kept) for f in record["failures"])
    assert (kept / "fault" / "gw1.charon.log").read_text() == "what happened\n"
