"""The exit codes of every `lab` command: one table, defined here once.

README.md shows the same table (tests/test_exit_codes.py compares them, and runs each command
into each code it can end with).
"""
from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # a verdict that did not hold: a phase, a check, a fault found
    BAD_INPUT = 2  # a file, name, option or value that is not allowed; nothing was built
    ENVIRONMENT = 3  # the machine or the lab could not do it: a package missing, a lab that died, none running
    INDETERMINATE = 4  # the input cannot decide (lab diagnose: no IKE seen, one side only)
    INTERRUPTED = 130  # Ctrl-C or SIGTERM; every lab was torn down first

    @property
    def meaning(self) -> str:
        return MEANINGS[self]


MEANINGS = {
    ExitCode.OK: "ok: every phase held, the lab is healthy, the input is valid",
    ExitCode.FAILED: "a verdict did not hold: a phase failed, lab check found the lab not yet healthy, "
                     "lab diagnose found a fault, a merged shard failed",
    ExitCode.BAD_INPUT: "bad input: an invalid scenario or topology file, an unknown name, a bad option or value; "
                        "nothing was built",
    ExitCode.ENVIRONMENT: "environment: the machine lacks something (lab doctor), a lab could not be built or "
                          "driven, no workshop lab is running",
    ExitCode.INDETERMINATE: "indeterminate: lab diagnose cannot decide from what it was given",
    ExitCode.INTERRUPTED: "interrupted: Ctrl-C or SIGTERM; every lab was torn down first",
}
