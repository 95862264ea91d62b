"""What a person watching `lab run` sees: phases, the check being waited on, verdicts."""
from __future__ import annotations

import json

from rich.console import Console

from lab.checks import CheckResult


class Progress:
    def __init__(self, console: Console | None = None, quiet: bool = False):
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.quiet = quiet
        self._status = None

    def scenario(self, name: str, title: str) -> None:
        if not self.quiet:
            self.console.print(f"[bold]{name}[/bold]: {title}")

    def phase(self, name: str, what: str) -> None:
        if not self.quiet:
            self.console.print(f"  [bold cyan]{name}[/bold cyan] {what}")

    def step(self, text: str) -> None:
        if not self.quiet:
            self.console.print(f"    {text}", style="dim", markup=False, soft_wrap=True)

    def waiting(self, phase: str, title: str, elapsed: float, window: float) -> None:
        """A live line while a check polls; only on a terminal."""
        if self.quiet or not self.console.is_terminal:
            return
        text = f"    {phase}: waiting on {title}  {elapsed:4.1f}s / {window:g}s"
        if self._status is None:
            self._status = self.console.status(text)
            self._status.start()
        else:
            self._status.update(text)

    def check(self, result: CheckResult) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        if self.quiet:
            return
        mark = "[green]PASS[/green]" if result.passed else "[red]FAIL[/red]"
        self.console.print(f"    {mark} ", end="")
        self.console.print(f"{result.name}  ({result.mode}, {result.duration_s:.1f}s)", markup=False, soft_wrap=True)
        self.console.print(f"         observed: {result.observed}", markup=False, soft_wrap=True)
        if result.linux:
            self.console.print(f"         $ {result.linux}", style="dim", markup=False, soft_wrap=True)

    def retry(self, phase: str, what: str, attempt: int, attempts: int) -> None:
        if not self.quiet:
            self.console.print(f"  [yellow]{phase}: {what} (kernel drops); its checks are no evidence: "
                               f"running it again ({attempt + 1} of {attempts})[/yellow]")

    def diagnosis(self, phase: str, found: dict) -> None:
        if self.quiet:
            return
        what = found["verdict"] + (f" at step {found['step']}: {found['class']}" if found["class"] else "")
        self.console.print(f"    lab diagnose: {what}", markup=False)

    def phase_done(self, name: str, passed: bool, duration: float, error: str | None = None) -> None:
        if self.quiet:
            return
        verdict = "[green]held[/green]" if passed else "[red]did not hold[/red]"
        self.console.print(f"  {name} {verdict} in {duration:.1f}s", end=": " if error else "\n")
        if error:
            self.console.print(error, markup=False)

    def verdict(self, name: str, passed: bool, duration: float, result_path: str) -> None:
        if self.quiet:
            return
        verdict = "[bold green]PASSED[/bold green]" if passed else "[bold red]FAILED[/bold red]"
        self.console.print(f"{name} {verdict} ({duration:.1f}s); result: {result_path}")


class EventProgress(Progress):
    """A phase worker's progress: each call as one JSON line on `stream`, for the parent to show
    live and to replay in order once the phase is over (lab.scheduler)."""

    def __init__(self, stream):
        super().__init__(quiet=True)
        self.stream = stream

    def _send(self, call: str, *args) -> None:
        self.stream.write(json.dumps({"call": call, "args": list(args)}) + "\n")
        self.stream.flush()

    def step(self, text: str) -> None:
        self._send("step", text)

    def waiting(self, phase: str, title: str, elapsed: float, window: float) -> None:
        self._send("waiting", phase, title, round(elapsed, 1), window)

    def check(self, result: CheckResult) -> None:
        self._send("check", result.as_dict())

    def retry(self, phase: str, what: str, attempt: int, attempts: int) -> None:
        self._send("retry", phase, what, attempt, attempts)

    def diagnosis(self, phase: str, found: dict) -> None:
        self._send("diagnosis", phase, found)

    def phase_done(self, name: str, passed: bool, duration: float, error: str | None = None) -> None:
        self._send("phase_done", name, passed, duration, error)


def replay(progress: Progress, events: list[dict]) -> None:
    """A worker's recorded calls, shown now by `progress` (the live line is not replayed)."""
    for event in events:
        args = event["args"]
        if event["call"] == "waiting":
            continue
        if event["call"] == "check":
            args = [CheckResult(**args[0])]
        getattr(progress, event["call"])(*args)
