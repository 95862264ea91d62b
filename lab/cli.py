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
def run(name: str = typer.Argument(..., help="scenario name (scenarios/) or path to a scenario file"),
        out: Path = typer.Option(Path("results"), "--out", help="results go to OUT/NAME/"),
        param: list[str] = typer.Option([], "--param", "-p", help="NAME=VALUE, a scenario parameter (repeatable)"),
        quiet: bool = typer.Option(False, "--quiet", "-q")) -> None:
    """Run baseline, fault and fix; write OUT/NAME/result.json."""
    from lab.progress import Progress
    from lab.runner import run_scenario

    sc = _load(name, param)
    _need_root()
    _terminate_as_interrupt()
    try:
        doc = run_scenario(sc, out, Progress(quiet=quiet))
    except KeyboardInterrupt:
        err.print("interrupted; the lab was torn down")
        raise typer.Exit(130) from None
    if any(p.get("error") for p in doc["phases"]):
        raise typer.Exit(EXIT_LAB)
    raise typer.Exit(0 if doc["passed"] else EXIT_FAILED)


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
