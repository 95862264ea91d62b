"""One phase in a process of its own: `python -m lab.worker` with its request (JSON) on stdin.

Each phase already builds a fresh lab, so phases and scenarios can run side by side as
separate processes (lab.scheduler starts them). The worker reads its request (scenario
file, parameters, phase, folder, run id), runs the phase, writes its progress as JSON lines
on stdout and ends with the phase's result. It owns its lab: when it is told to stop
(SIGTERM, or its parent dies) it tears the lab down first.
"""
from __future__ import annotations

import ctypes
import json
import signal
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent goes away (kill -9 of `lab run`)."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def main() -> None:
    from lab.progress import EventProgress
    from lab.runner import run_phase
    from lab.schema.load import load_scenario

    request = json.loads(sys.stdin.read())

    def stop(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides, and forwards SIGTERM
    sc = load_scenario(request["scenario"], request["params"])
    progress = EventProgress(sys.stdout)
    try:
        result = run_phase(sc, request["phase"], Path(request["phase_dir"]), request["run_id"], progress)
    except KeyboardInterrupt:
        sys.exit(130)  # the lab was torn down on the way out of run_phase
    print(json.dumps({"result": result.as_dict()}), flush=True)


if __name__ == "__main__":
    main()
