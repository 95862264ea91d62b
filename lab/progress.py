"""What a person watching `lab run` sees: phases, the check being waited on, verdicts."""
from __future__ import annotations

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

    def retry(self, phase: str, what: str, attempt: int, attempts: int) -> None:
        if not self.quiet:
            self.console.print(f"  [yellow]{phase}: {what} (kernel drops); its checks are no evidence: "
                               f"running it again ({attempt + 1} of {attempts})[/yellow]")

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
