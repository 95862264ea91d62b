"""`lab diagnose` on real labs of cases of its own (tests/diagnose/cases, tests/diagnose/hub): what the
catalogue lacks, run as `lab run PATH` does."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests import repo
from lab.diagnose.engine import run

pytestmark = pytest.mark.lab
HERE = Path(__file__).parent / "diagnose"


def _run(case: Path, out: Path, *params: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "lab", "run", str(case), "--quiet", "--out", str(out), *params],
                          capture_output=True, text=True, cwd=repo.ROOT, timeout=600)
    doc = json.loads((out / case.stem / "result.json").read_text())
    assert done.returncode == 0, [(p["name"], p["diagnosis"], [c["observed"] for c in p["checks"] if not c["passed"]])
                                  for p in doc["phases"]]
    return doc


def _verdicts(doc: dict) -> dict:
    return {p["name"]: (p["diagnosis"]["verdict"], p["diagnosis"]["class"]) for p in doc["phases"]}


def test_esp_dropped_both_ways_while_ike_passes(tmp_path, no_leaks):
    doc = _run(HERE / "cases" / "esp-dropped.yaml", tmp_path)
    assert _verdicts(doc) == {"baseline": ("healthy", None), "fault": ("fault", "esp-blocked"),
                              "fix": ("healthy", None)}
    # the branch's capture shows its ESP leaving and nothing coming back (HQ never got the pings to answer)
    [found] = run([tmp_path / "esp-dropped" / "fault"])
    assert {(e["where"], e["direction"]) for e in found.evidence if e["kind"] == "packet"} == {("gw1:wan", "out")}


def test_one_bad_spoke_of_three_is_named(tmp_path, no_leaks):
    doc = _run(HERE / "hub" / "hub-one-bad-spoke.yaml", tmp_path)
    assert _verdicts(doc)["fault"] == ("fault", "psk-mismatch")
    assert _verdicts(doc)["fix"] == ("healthy", None)
    [found] = run([tmp_path / "hub-one-bad-spoke" / "fault"])
    assert len(found.faulty) == 1 and "br2.example.net" in found.faulty[0].split()
    assert sorted(p["verdict"] for p in found.peers) == ["fault", "healthy", "healthy"]
