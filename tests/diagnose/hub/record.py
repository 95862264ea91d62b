"""Record the hub case with N spokes (root; run by hand, the result is committed in the corpus):
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
from lab.runner import new_run_id, phase_steps
from lab.running_lab import RunningLab
from lab.schema.load import load_scenario

HERE = Path(__file__).parent
OUT = HERE.parent / "corpus" / "logs"


def record(spokes: int) -> Path:
    sc = load_scenario(HERE / "hub-one-bad-spoke.yaml", {"spokes": str(spokes)})
    with tempfile.TemporaryDirectory(prefix="ipsec-lab-hub-") as tmp:
        with RunningLab(sc, Path(tmp), new_run_id()) as lab:
            for section, step in phase_steps(sc, "fault"):
                if section != "start":
                    step.apply(lab)
            for i in range(1, spokes + 1):
                lab.charon(f"br{i}").initiate(child="net")
            up = [evaluate(TunnelCheck(node=f"br{i}", ike="hq", child="net", within=60), lab).passed
                  for i in range(1, spokes + 1) if i != 2]
        print(f"{sum(up)} of {spokes - 1} good spokes up")
        target = OUT / f"hub-one-bad-spoke-{spokes}.fault.hq.log"
        shutil.copy(Path(tmp) / "hq.charon.log", target)
    return target


if __name__ == "__main__":
    print(record(int(sys.argv[1])))
