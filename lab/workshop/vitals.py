"""A workshop lab's daemons watched while it runs: a charon, relay or capture that ends without
the lab stopping it (a trainee's `kill`, a crash) is a finding with a time, written to the seat
at once (lab status, the trainer's page) and reported by `lab check` and `lab diagnose --live`."""
from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from lab.run.lab import Gone, RunningLab

EVERY_S = 0.25  # how soon a dead daemon shows


def finding(gone: "Gone", since: float) -> dict:
    """One dead daemon as the seat, the terminal and the pages show it."""
    at = time.strftime("%H:%M:%S", time.localtime(since))
    where, how = gone.where(), gone.how()
    return {"key": gone.key, "what": gone.what, "node": gone.node, "since": since,
            "text": {"en": f"{where['en']} is gone since {at} ({how['en']})",
                     "zh": f"{where['zh']}已于 {at} 停止({how['zh']})"}}


class Vitals:
    """Polls the lab's daemons every EVERY_S in a thread of its own; `changed(findings, running)`
    is called with every dead daemon (and when it was first seen dead) whenever that changes."""

    def __init__(self, lab: "RunningLab", changed: Callable[[list[dict], list[str]], None]):
        self.lab, self.changed = lab, changed
        self._since: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vitals", daemon=True)

    def start(self) -> None:
        self.changed([], self.lab.daemons())
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def findings(self) -> list[dict]:
        """Every daemon gone now, with the time it was first seen gone."""
        gone = self.lab.gone()
        now = time.time()
        return [finding(g, self._since.get(g.key, now)) for g in gone]

    def _run(self) -> None:
        while not self._stop.wait(EVERY_S):
            gone = {g.key: g for g in self.lab.gone()}
            if set(gone) == set(self._since):
                continue
            now = time.time()
            self._since = {key: self._since.get(key, now) for key in gone}  # a restarted daemon leaves the list
            self.changed([finding(g, self._since[k]) for k, g in gone.items()],
                         [d for d in self.lab.daemons() if d not in gone])
