"""Checks observe a running lab: symptoms of the fault, or health.

Every check is polled against a deadline. A positive expectation ("the log shows
X", "ping works") passes as soon as it is observed; a negative one ("no IKE
arrives", "ping fails", "tunnel down") must hold for the whole window, so a lab
that is merely slow cannot pass it by accident. Each result keeps what was seen.

A check kind is one module in this package: a `Check` model with a `kind` literal, registered
with `@register` (into lab.schema.kinds.CHECKS: the schema imports no kind, it loads this
package through its entry point). The hooks a kind implements are documented on `Check`.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Callable, ClassVar, Iterator

from lab.schema.kinds import CHECKS
from lab.schema.refs import CaptureRef, NodeRef, Ref
from lab.schema.types import FileModel, Interval, Prose, Text, Window

if TYPE_CHECKING:
    from lab.run.lab import RunningLab

register = CHECKS.register
POLL_INTERVAL = 0.05


@dataclass
class Probe:
    holds: bool
    observed: str
    measured: dict | None = None  # figures for result.json, e.g. outage seconds


@dataclass
class CheckResult:
    name: str
    kind: str
    expect: str
    passed: bool
    observed: str
    duration_s: float
    mode: str
    measured: dict | None = None
    linux: str = ""  # the command an engineer runs to observe the same thing, in the phase's folder
    shown: str = ""  # the same command as the terminal shows it: runnable from where lab run was started
    title: dict | None = None  # for people, {"en": ..., "zh": ...} (the check's `expect` stays the detail)

    def as_dict(self) -> dict:
        return asdict(self)


class Check(FileModel):
    """One observation of a running lab, as a scenario file writes it (a symptom, a healthy
    check, a partial fix's expectation).

    A kind declares `kind: Literal["name"]` and its fields (validated at load), and implements:
    - `probe(lab)`: look once, now, and say whether the expectation holds and what was seen
      (`Probe`); never waits: `evaluate` polls it against the deadline;
    - `eventually()`: True when the expectation is positive (passes as soon as a probe holds),
      False when it is negative (every probe of the window must hold);
    - `expectation()`: the expectation in words (the title when the file gives no `name`);
    - `describe()`: the same for people, in English and Chinese (default: the expectation in both);
    - `linux(folder)`: the command an engineer runs to observe the same thing by hand; a file
      it reads (a pcap, a log) is named inside `folder` ("": the phase's folder itself, as
      result.json and the report show it; the terminal gives the folder as seen from where
      `lab run` was started, so the command runs from there);
    - `begin()`: called as an evaluation starts, for a check that judges only what happens
      in its own window (default: nothing);
    - `refs()`: what it names (nodes, captures, monitors, SAs), checked by `lab validate`
      (default: its node, of `roles` when given); `captures()` follows from it.
    """

    kind: str
    # what people read: both languages (an English-only name is shown as it is on both pages)
    name: Text | Prose | None = None
    # Deadline for a positive expectation; observation window for a negative one.
    within: Window = 5.0
    # Pause between probes. Traffic probes (ping) keep a tunnel busy: a longer interval
    # leaves the quiet periods in which DPD and NAT mappings time out.
    interval: Interval = POLL_INTERVAL
    # A symptom's context: observed with the fault ("the branch still lists its SA", "the
    # other branches are fine") but true when healthy too, so exempt from failing on the baseline.
    context: bool = False
    roles: ClassVar[frozenset[str] | None] = None

    def begin(self) -> None:
        pass

    def eventually(self) -> bool:
        raise NotImplementedError

    def expectation(self) -> str:
        raise NotImplementedError

    def linux(self, folder: str = "") -> str:
        raise NotImplementedError

    def probe(self, lab: "RunningLab") -> Probe:
        raise NotImplementedError

    def describe(self) -> dict[str, str]:
        """What the check expects, in words, in English and Chinese: its fields as people say
        them; patterns and filters stay in `expectation()`, shown beside it. A kind that says
        nothing more shows its expectation in both (tests/test_check_titles.py holds the
        catalogue's kinds to Chinese)."""
        return {"en": self.expectation(), "zh": self.expectation()}

    def title(self) -> str:
        """The check's one-line name on a terminal and in JUnit (stable: tests and CI read it)."""
        if isinstance(self.name, Text):
            return self.name.en
        return self.name or self.expectation()

    def heading(self) -> dict[str, str]:
        """The check's title for people in both languages: the scenario's name for it, else its description."""
        if isinstance(self.name, Text):
            return {"en": self.name.en, "zh": self.name.zh}
        if self.name:
            return {"en": self.name, "zh": self.name}
        return self.describe()

    def refs(self) -> list[Ref]:
        return [NodeRef(("node",), self.node, self.roles)] if "node" in type(self).model_fields else []

    def captures(self) -> set[str]:
        """The captures this check reads: packets they lost would make its verdict a guess."""
        return {r.name for r in self.refs() if isinstance(r, CaptureRef)}


def said_in_lines(whose: dict[str, str], pattern: str, present: bool, min_count: int = 1) -> dict[str, str]:
    """"gw2's charon log shows “tried N shared key… but MAC mismatched”": a pattern over lines as
    people say it (lab.checks.readable), or "a line matching the pattern below"."""
    from lab.checks.readable import readable

    text = readable(pattern)
    many = (f" ({min_count} lines or more)", f"(至少 {min_count} 行)") if present and min_count > 1 else ("", "")
    if text is None:
        line = ({"en": "a line matching the pattern below", "zh": "符合下方模式的行"} if present
                else {"en": "no line matching the pattern below", "zh": "没有符合下方模式的行"})
        return {"en": f"{whose['en']} has {line['en']}{many[0]}",
                "zh": f"{whose['zh']}中{'有' if present else ''}{line['zh']}{many[1]}"}
    if present:
        return {"en": f"{whose['en']} shows “{text}”{many[0]}", "zh": f"{whose['zh']}中出现“{text}”{many[1]}"}
    return {"en": f"{whose['en']} never shows “{text}”", "zh": f"{whose['zh']}中没有出现“{text}”"}


def evaluate(check: Check, lab: "RunningLab", on_probe: Callable[[float, float], None] | None = None,
             window: float | None = None, abandon: threading.Event | None = None, folder: str = "") -> CheckResult:
    """Poll `check` until it is decided; `on_probe(elapsed, window)` feeds progress output.
    `window`: observe a negative check that long instead of its own `within` (see `observe`).
    `abandon`: once set, stop polling (undecided, so not passed): the phase is being stopped.
    `folder`: the phase's folder as the terminal names it (CheckResult.shown)."""
    window = check.within if window is None else window
    abandon = abandon or threading.Event()
    start = time.monotonic()
    deadline = start + window
    eventually = check.eventually()
    check.begin()
    while True:
        probe = check.probe(lab)
        now = time.monotonic()
        if on_probe:
            on_probe(now - start, window)
        decided = probe.holds if eventually else not probe.holds
        if decided or now >= deadline:
            passed = probe.holds
            break
        if abandon.wait(min(check.interval, max(0.0, deadline - now))):
            passed = False
            break
    return CheckResult(name=check.title(), kind=check.kind, expect=check.expectation(),
                       passed=passed, observed=probe.observed,
                       duration_s=round(time.monotonic() - start, 3),
                       mode="eventually" if eventually else f"throughout {window:g}s",
                       measured=probe.measured, linux=check.linux(), shown=check.linux(folder),
                       title=check.heading())


def observe(checks: list[Check], lab: "RunningLab",
            on_probe: Callable[[Check, float, float], None] | None = None, folder: str = "") -> Iterator[CheckResult]:
    """Every check's result, in order: each as it is decided, a group's once the group is over.

    Negative checks that follow each other are observed together, over the longest of their
    windows, each holding all of it: "tunnel down" and "ping fails" are seen at the same time,
    as an engineer watching the outage sees them, rather than one after the other (a fault
    phase of psk-mismatch waits 1 s, not 2). No check watches less than its own window, and a
    log that must stay free of a line is read at the end of the longest window beside it."""
    i = 0
    while i < len(checks):
        group = [checks[i]]
        while not group[0].eventually() and i + len(group) < len(checks) and not checks[i + len(group)].eventually():
            group.append(checks[i + len(group)])
        i += len(group)
        shown = max(group, key=lambda c: c.within)  # the live line follows one check, from one thread

        def report(check: Check) -> Callable[[float, float], None] | None:
            if on_probe is None or check is not shown:
                return None
            return lambda elapsed, window: on_probe(check, elapsed, window)
        if len(group) == 1:
            yield evaluate(shown, lab, report(shown), folder=folder)
            continue
        window, abandon = shown.within, threading.Event()
        with ThreadPoolExecutor(max_workers=len(group)) as pool:
            futures = [pool.submit(evaluate, c, lab, report(c), window, abandon, folder) for c in group]
            try:
                for finished in as_completed(futures):
                    finished.result()  # the first error raises here, as it happens
                results = [f.result() for f in futures]
            except BaseException:  # Ctrl-C, SIGTERM, a lab error: the others stop now, not at their window's end
                abandon.set()
                raise
        yield from results
