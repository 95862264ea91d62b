"""`lab`: list and run scenarios.

Exit codes: 0 every phase held; 1 a phase did not hold; 2 bad input (scenario or
topology file, unknown name); 3 the lab could not be built or driven.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from lab.spec.errors import SpecError
from lab.spec.load import load_scenario, scenario_names

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_LAB = 1, 2, 3

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="IPsec field problems as runnable labs (Mininet + strongSwan).")
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _load(name: str, params: list[str] | None = None):
    try:
        pairs = dict(p.split("=", 1) for p in params or [] if "=" in p)
        bad = [p for p in params or [] if "=" not in p]
        if bad:
            err.print(f"--param takes NAME=VALUE, not '{bad[0]}'")
            raise typer.Exit(EXIT_BAD_INPUT)
        return load_scenario(name, pairs)
    except SpecError as exc:
        err.print(f"[red]invalid scenario[/red] ({len(exc.problems)} problem(s)); nothing was built:")
        for problem in exc.problems:
            err.print(f"  {problem}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None


def _need_root() -> None:
    if os.geteuid() != 0:
        err.print("lab runs need root (network namespaces, charon, tcpdump); try: sudo make scenario NAME=...")
        raise typer.Exit(EXIT_LAB)


def _terminate_as_interrupt() -> None:
    """SIGTERM (CI timeout, kill) tears the lab down the way Ctrl-C does."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)


@app.command("list")
def list_() -> None:
    """One scenario a line: name, then title."""
    for name in scenario_names():
        sc = _load(name)
        print(f"{name}\t{sc.spec.title.en} / {sc.spec.title.zh}")


@app.command()
def validate(scenarios: list[str]) -> None:
    """Check scenario files without building anything."""
    for name in scenarios:
        _load(name)
        print(f"{name}: ok")


@app.command()
def run(name: Optional[str] = typer.Argument(None, help="scenario name (scenarios/) or path to a scenario file"),
        all_: bool = typer.Option(False, "--all", help="run every scenario in scenarios/"),
        out: Path = typer.Option(Path("results"), "--out", help="results go to OUT/NAME/"),
        param: list[str] = typer.Option([], "--param", "-p", help="NAME=VALUE, a scenario parameter (repeatable)"),
        junit: Optional[Path] = typer.Option(None, "--junit", help="write JUnit XML: a testcase per scenario phase"),
        keep: bool = typer.Option(False, "--keep", help="leave a failing phase's lab up for inspection"),
        quiet: bool = typer.Option(False, "--quiet", "-q")) -> None:
    """Run baseline, fault and fix; write OUT/NAME/result.json."""
    from lab import junit as junit_xml
    from lab.progress import Progress
    from lab.runner import run_scenario

    if all_ == (name is not None):
        err.print("name one scenario, or give --all")
        raise typer.Exit(EXIT_BAD_INPUT)
    scenarios = [_load(n, param) for n in (scenario_names() if all_ else [name])]
    _need_root()
    _terminate_as_interrupt()
    docs = []
    try:
        for sc in scenarios:
            docs.append(run_scenario(sc, out, Progress(quiet=quiet), hold=_hold if keep else None))
    except KeyboardInterrupt:
        err.print("interrupted; the lab was torn down")
        raise typer.Exit(130) from None
    finally:
        if junit and docs:
            junit_xml.write(docs, junit)
    if any(p.get("error") for doc in docs for p in doc["phases"]):
        raise typer.Exit(EXIT_LAB)
    raise typer.Exit(0 if all(doc["passed"] for doc in docs) else EXIT_FAILED)


def _hold(lab) -> None:
    """--keep: the failing lab stays up until Enter (or Ctrl-C / SIGTERM without a terminal)."""
    err.print(f"--keep: the lab of {lab.scenario.name} stays up. Enter a node from another terminal:")
    for node, pid in lab.node_pids().items():
        env = " ".join(f"{k}={v}" for k, v in lab.charon_env(node).items())
        err.print(f"  {node}: sudo mnexec -a {pid} env {env} bash".replace("env  bash", "bash"), markup=False)
    err.print(f"  artifacts: {lab.phase_dir}", markup=False)
    if sys.stdin.isatty():
        input("press Enter to tear it down ")
    else:
        err.print("no terminal: send SIGTERM or Ctrl-C to tear it down")
        signal.pause()


@app.command("bench")
def bench_(names: Optional[list[str]] = typer.Argument(None, help="scenarios (default: all)"),
           out: Path = typer.Option(Path("bench/bench.json"), "--out"),
           repeat: int = typer.Option(3, "--repeat", min=1)) -> None:
    """Time every scenario's phases; write the figures as JSON."""
    from lab.bench import bench
    from lab.progress import Progress

    names = names or scenario_names()
    for name in names:
        _load(name)
    _need_root()
    _terminate_as_interrupt()
    doc = bench(names, out, repeat, Progress(quiet=True))
    for fig in doc["scenarios"]:
        phases = " ".join(f"{k}={v:.2f}s" for k, v in fig["phases_median_s"].items())
        print(f"{fig['scenario']:<22} median {fig['median_s']:.2f}s  {phases}  {'ok' if fig['passed'] else 'FAILED'}")
    for mode, rtt in doc["tunnel_rtt_ms"].items():
        print(f"tunnel ping RTT over {mode}: " + (f"avg {rtt['avg']:.3f} ms (min {rtt['min']:.3f}, max {rtt['max']:.3f})"
                                                 if "avg" in rtt else rtt["error"]))
    print(f"written: {out}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
