"""Record the hub case with N spokes (in a lab sandbox; run by hand, the result is committed in the corpus):
hub-one-bad-spoke.yaml's fault phase on hub-spoke-nat with --param spokes=N, every spoke initiating
(the scenario's start names three), HQ's charon log copied to tests/diagnose/corpus/logs/.

    .venv/bin/python -m tests.diagnose.hub.record 60
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from lab.checks import evaluate
from lab.checks.tunnel import TunnelCheck
from lab.run.lab import RunningLab
from lab.run.phase import phase_steps
from lab.run.scenarios import new_run_id
from lab.run.worker import call
from lab.sandbox.identity import hand_to_lab
from lab.schema.load import load_scenario

HERE = Path(__file__).parent
OUT = HERE.parent / "corpus" / "logs"


def record(spokes: int) -> Path:
    sc = load_scenario(HERE / "hub-one-bad-spoke.yaml", {"spokes": str(spokes)})
    with tempfile.TemporaryDirectory(prefix="ipsec-lab-hub-") as tmp:
        hand_to_lab(Path(tmp))
        up = call(_fault_phase, sc, spokes, Path(tmp), writable=(Path(tmp),))
        print(f"{sum(up)} of {spokes - 1} good spokes up")
        target = OUT / f"hub-one-bad-spoke-{spokes}.fault.hq.log"
        shutil.copy(Path(tmp) / "hq.charon.log", target)
    return target


def _fault_phase(sc, spokes: int, folder: Path) -> list[bool]:
    with RunningLab(sc, folder, new_run_id()) as lab:
        for section, step in phase_steps(sc, "fault"):
            if section != "start":
                step.apply(lab)
        for i in range(1, spokes + 1):
            lab.charon(f"br{i}").initiate(child="net")
        return [evaluate(TunnelCheck(node=f"br{i}", ike="hq", child="net", within=60), lab).passed
                for i in range(1, spokes + 1) if i != 2]


if __name__ == "__main__":
    print(record(int(sys.argv[1])))
