"""Errors of the running lab, as opposed to bad input (lab.spec.InputError)."""
from __future__ import annotations

import re
from pathlib import Path

# Lines of a daemon's output that say why it stopped, in the words charon, tcpdump and the relay use.
_REASON = re.compile(r"fail|error|unmet|abort|cannot|can't|unable|denied|no such|invalid|not permitted|refused",
                     re.IGNORECASE)
REASON_LINES = 4


class LabError(RuntimeError):
    """The lab could not be built or driven; this is never a scenario verdict."""


class BadRequest(LabError):
    """A command asked a running lab for what it does not have (a node, a hint): bad input, not
    a lab that failed."""


def exit_reason(*outputs: Path) -> str:
    """The last lines of a dead daemon's output files that say why (else its last lines), joined
    into one line for the phase error and the terminal."""
    lines: list[str] = []
    for path in outputs:
        try:
            lines += [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            continue
    reasons = [line for line in lines if _REASON.search(line)] or lines
    unique = list(dict.fromkeys(reasons))[-REASON_LINES:]
    return "; ".join(unique) if unique else "it wrote nothing"


def died(what: str, returncode: int | None, *outputs: Path) -> LabError:
    """`charon on fgt exited (66): plugin 'openssl': failed to load ...; see <file>`."""
    shown = ", ".join(str(p) for p in outputs if p.exists())
    return LabError(f"{what} exited ({returncode}): {exit_reason(*outputs)}" + (f"; see {shown}" if shown else ""))
