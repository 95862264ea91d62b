"""What a person watching `lab run` sees: phases, the check being waited on, verdicts.

Most of it is text from the scenario file (titles, check names, step arguments) or from the
lab (observed values, log lines, error messages with file names): untrusted. It reaches the
terminal only through `Terminal`, which never reads a string as rich markup or an emoji code
and writes every control character out (lab.visible), so `[link=...]` in a title prints as
written and an escape sequence in a check name does nothing.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from lab.checks import CheckResult
from lab.visible import visible, visible_lines


class Terminal(Console):
    """A console for untrusted text: every string it renders (printed, or a live line) is plain
    text with its control characters written out; styles come from `style=` or Text pieces."""

    def __init__(self, **kwargs: Any):
        super().__init__(**{"highlight": False, "soft_wrap": True, **kwargs, "markup": False, "emoji": False})

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(visible_lines(text), **{**kwargs, "markup": False, "emoji": False})


# Where the command was started: its workers change folder (a sandbox starts in /), and what the
# terminal prints must run from here.
_STARTED_IN = os.getcwd()


def here(path: Path | str) -> str:
    """`path` as the person at the terminal names it: relative to where the command was started
    when it lies below that folder, else absolute."""
    absolute = Path(os.path.abspath(os.path.join(_STARTED_IN, path)))
    try:
        return str(absolute.relative_to(_STARTED_IN)) or "."
    except ValueError:
        return str(absolute)


def styled(*parts: str | tuple[str, str]) -> Text:
    """One line of data and styled words: each string is data (written out with `visible`),
    never markup; a (text, style) pair is styled."""
    return Text.assemble(*((visible(p[0]), p[1]) if isinstance(p, tuple) else visible(p) for p in parts))


class Progress:
    def __init__(self, console: Console | None = None, quiet: bool = False):
        self.console = console or Terminal()
        self.quiet = quiet
        self._status = None

    def scenario(self, name: str, title: str) -> None:
        if not self.quiet:
            self.console.print(styled((name, "bold"), ": ", title))

    def phase(self, name: str, what: str) -> None:
        if not self.quiet:
            self.console.print(styled("  ", (name, "bold cyan"), " ", what))

    def step(self, text: str) -> None:
        """A step as its Linux commands, its body included (an nft ruleset, a heredoc): every line,
        indented under the first."""
        if not self.quiet:
            self.console.print(Text("    " + visible_lines(text).replace("\n", "\n        "), style="dim"))

    def waiting(self, phase: str, title: str, elapsed: float, window: float) -> None:
        """A live line while a check polls; only on a terminal."""
        if self.quiet or not self.console.is_terminal:
            return
        text = styled(f"    {phase}: waiting on {title}  {elapsed:4.1f}s / {window:g}s")
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
        mark = ("PASS", "green") if result.passed else ("FAIL", "red")
        self.console.print(styled("    ", mark, f" {result.name}  ({result.mode}, {result.duration_s:.1f}s)"))
        self.console.print(styled(f"         observed: {result.observed}"))
        if result.shown or result.linux:
            self.console.print(styled((f"         $ {result.shown or result.linux}", "dim")))

    def retry(self, phase: str, what: str, attempt: int, attempts: int) -> None:
        if not self.quiet:
            self.console.print(styled((f"  {phase}: {what} (kernel drops); its checks are no evidence: "
                                       f"running it again ({attempt + 1} of {attempts})", "yellow")))

    def diagnosis(self, phase: str, found: dict) -> None:
        if self.quiet:
            return
        what = found["verdict"] + (f" at step {found['step']}: {found['class']}" if found["class"] else "")
        self.console.print(styled(f"    lab diagnose: {what}"))

    def phase_done(self, name: str, passed: bool, duration: float, error: str | None = None) -> None:
        if self.quiet:
            return
        verdict = ("held", "green") if passed else ("did not hold", "red")
        self.console.print(styled(f"  {name} ", verdict, f" in {duration:.1f}s" + (": " if error else "")))
        if error:  # an error can hold a command's output: its lines stay lines, indented under the phase
            self.console.print(Text("    " + visible_lines(error).replace("\n", "\n    ")))

    def verdict(self, name: str, passed: bool, duration: float, folder: Path) -> None:
        """The scenario's outcome, ending with its report (result.json beside it)."""
        if self.quiet:
            return
        verdict = ("PASSED", "bold green") if passed else ("FAILED", "bold red")
        self.console.print(styled(name, " ", verdict, f" ({duration:.1f}s); result: {here(folder / 'result.json')}; "
                                                      f"report: {here(folder / 'report.html')}"))


class EventProgress(Progress):
    """A phase worker's progress: each call as one JSON line on `stream`, for the parent to show
    live and to replay in order once the phase is over (lab.run.scheduler)."""

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
