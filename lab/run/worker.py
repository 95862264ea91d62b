"""One phase in a process of its own, forked from a fork server that has the lab imported.

Each phase already builds a fresh lab, so phases and scenarios can run side by side as
separate processes (lab.scheduler starts them). Starting a Python and importing the lab
(Mininet, pydantic, the schema) cost about 0.4 s of CPU a phase, 26 s of the catalogue's
87 s on two cores; a fork of a process that has imported them costs milliseconds. Each
worker is forked from the same untouched process, so no phase inherits another's state.

The worker gets its request (scenario file, parameters, phase, folder, run id), runs the
phase, writes its progress as JSON lines on its output and ends with the phase's result. It
owns its lab: when it is told to stop (SIGTERM, or `lab run` dies) it tears the lab down first.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from multiprocessing.connection import Connection
from pathlib import Path

from lab.owner import Owner
from lab.progress import EventProgress
from lab.runner import run_phase
from lab.schema.load import load_scenario

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """SIGTERM when the parent goes away. The parent is the fork server, which exits as soon
    as `lab run` is gone (kill -9 included)."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def serve(request: dict, out: Connection, requester: Owner) -> None:
    """The fork server's child: run the phase of `request`, its output and errors on `out`."""
    def stop(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides, and forwards SIGTERM
    die_with_parent()
    if not requester.alive():
        sys.exit(1)  # `lab run` died before this process could ask to follow it
    os.dup2(out.fileno(), 1)  # progress, and whatever else is printed (a traceback, Mininet)
    os.dup2(out.fileno(), 2)
    out.close()
    sc = load_scenario(request["scenario"], request["params"])
    progress = EventProgress(sys.stdout)
    try:
        result = run_phase(sc, request["phase"], Path(request["phase_dir"]), request["run_id"], progress)
    except KeyboardInterrupt:
        sys.exit(130)  # the lab was torn down on the way out of run_phase
    print(json.dumps({"result": result.as_dict()}), flush=True)
