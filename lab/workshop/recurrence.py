"""A workshop fault that heals itself, brought back: its trigger re-armed on a period, so a
trainee who starts late, or waits, still meets the symptom until their fix holds."""
from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Callable

from lab.errors import LabError

if TYPE_CHECKING:
    from lab.run.lab import RunningLab
    from lab.schema.scenario import Recurrence


class Rearming:
    """Applies the scenario's `recur` steps every `every` seconds in a thread of its own. Steps
    and checks share the lab (vici sessions, captures): `lock` keeps them from interleaving."""

    def __init__(self, lab: "RunningLab", recur: "Recurrence", lock: threading.Lock,
                 recorded: Callable[[int, str | None], None]):
        self.lab, self.recur, self.lock, self.recorded = lab, recur, lock, recorded
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recur", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def rearm(self) -> list[str]:
        """Apply the steps now (the caller holds `lock`); a failing step is recorded, not fatal:
        the trainee may have changed what the step expects."""
        done, error = [], None
        try:
            for step in self.recur.steps:
                step.apply(self.lab)
                done.append(step.linux())
        except LabError as exc:
            error = str(exc)
        self.count += 1
        self.recorded(self.count, error)
        return done

    def _run(self) -> None:
        deadline = time.monotonic() + self.recur.every
        while not self._stop.wait(max(0.0, deadline - time.monotonic())):
            with self.lock:
                self.rearm()
            deadline += self.recur.every
