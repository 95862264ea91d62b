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

from lab.errors import LabError
from lab.progress import Terminal, styled
from lab.schema.errors import InputError
from lab.schema.load import load_scenario
from lab.schema.locate import scenario_names
from lab.visible import visible, visible_lines

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_LAB = 1, 2, 3

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="IPsec field problems as runnable labs (Mininet + strongSwan).")
# Everything shown is data (file names, scenario text, what the lab observed): never markup,
# control characters written out (lab.progress.Terminal, lab.visible).
err = Terminal(stderr=True)


def say(text: str) -> None:
    """A line of data on stdout (plain print: `lab list` keeps its tab)."""
    print(visible(text, keep="\t"))


def _load(name: str, params: list[str] | None = None, deep: bool = True):
    """A scenario, validated; `deep` also loads its nft rulesets in a throwaway namespace (root only).
    Bad input: every problem as file:line: key: message, exit 2, nothing built."""
    from lab import validate as checks

    pairs = dict(p.split("=", 1) for p in params or [] if "=" in p)
    bad = [p for p in params or [] if "=" not in p]
    if bad:
        err.print(f"--param takes NAME=VALUE, not '{bad[0][:60]}'")
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        sc = load_scenario(name, pairs)
        problems = checks.scenario_problems(sc, sc.doc) if deep else []
    except InputError as exc:
        _bad_input(exc.problems)
    if problems:
        _bad_input(problems)
    return sc


def _bad_input(problems) -> None:
    err.print(styled(("invalid input", "red"), f" ({len(problems)} problem(s)); nothing was built:"))
    for problem in problems:
        err.print(styled(f"  {problem}"))
    raise typer.Exit(EXIT_BAD_INPUT)


def _need_lab_machine() -> None:
    """Before a lab is built: everything the machine must provide (lab doctor), a lab sandbox included."""
    from lab import preflight

    missing = preflight.missing(preflight.check())
    if missing:
        err.print(styled(("this machine cannot run a lab", "red"), f"; nothing was built. Missing ({len(missing)}):"))
        for item in missing:
            err.print(f"  {item.what}" + (f" ({item.detail})" if item.detail else "")
                      + (f": Debian package {item.package}" if item.package else ""))
        hint = preflight.install_hint(missing)
        if hint:
            err.print(hint)
        raise typer.Exit(EXIT_LAB)


USER = typer.Option(None, "--user", help="root (the trainer) only: another account's lab")


def _seat(user: Optional[str]):
    """The seat of the account running this command; root may name another account's."""
    from lab.workshop.state import Seat, account_name

    mine = account_name()
    if user in (None, mine):
        return Seat(mine)
    if os.geteuid() != 0:
        err.print(f"--user {user[:32]}: only root (the trainer) acts on another account's lab; "
                  f"allowed: your own ({mine})", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    if not _account_exists(user):
        err.print(f"--user {user[:32]}: no such account; allowed: an account with a lab (lab status --all)")
        raise typer.Exit(EXIT_BAD_INPUT)
    return Seat(user)


def _terminate_as_interrupt() -> None:
    """SIGTERM (CI timeout, kill) tears the lab down the way Ctrl-C does."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)


@app.command("list")
def list_() -> None:
    """One scenario a line: name, then title."""
    for name in scenario_names():
        sc = _load(name, deep=False)
        say(f"{name}\t{visible(sc.spec.title.en)} / {visible(sc.spec.title.zh)}")


@app.command()
def validate(files: list[str] = typer.Argument(..., help="scenario names or files, topology files")) -> None:
    """Check scenario and topology files without building anything: every problem, with file and line."""
    from lab import validate as checks
    from lab.schema.load import is_topology, load_topology

    problems = []
    for name in files:
        try:
            path = Path(name)
            if path.suffix in (".yaml", ".yml") and path.is_file() and is_topology(path):
                topo, doc = load_topology(path)
                found = checks.topology_problems(topo, doc)
            else:
                sc = load_scenario(name)
                found = checks.scenario_problems(sc, sc.doc)
        except InputError as exc:
            found = exc.problems
        problems += found
        if not found:
            say(f"{name}: ok")
    from lab.nftcheck import sandbox_possible
    if not sandbox_possible():
        err.print("note: nft rulesets and policy rules were not loaded into a throwaway namespace "
                  "(this account has no lab sandbox: lab doctor says why)")
    if problems:
        _bad_input(problems)


@app.command()
def run(name: Optional[str] = typer.Argument(None, help="scenario name (scenarios/) or path to a scenario file"),
        all_: bool = typer.Option(False, "--all", help="run every scenario in scenarios/"),
        out: Path = typer.Option(Path("results"), "--out", help="results go to OUT/NAME/"),
        param: list[str] = typer.Option([], "--param", "-p", help="NAME=VALUE, a scenario parameter (repeatable)"),
        junit: Optional[Path] = typer.Option(None, "--junit", help="write JUnit XML: a testcase per scenario phase"),
        keep: bool = typer.Option(False, "--keep", help="leave a failing phase's lab up for inspection (serial)"),
        jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1,
                                           help="phases at once, across scenarios (default: 4 per core, as memory allows)"),
        serial: bool = typer.Option(False, "--serial", help="one phase after the other, in this process"),
        shard: Optional[str] = typer.Option(None, "--shard", help="K/N: the K-th of N stable parts of --all "
                                                                  "(a CI matrix of N jobs runs each scenario once)"),
        quiet: bool = typer.Option(False, "--quiet", "-q")) -> None:
    """Run baseline, fault, a partial fix if the scenario has one, and fix; write OUT/NAME/result.json."""
    from lab import junit as junit_xml
    from lab.progress import Progress
    from lab.run.scenarios import run_scenarios
    from lab.run.scheduler import default_jobs

    if all_ == (name is not None):
        err.print("name one scenario, or give --all")
        raise typer.Exit(EXIT_BAD_INPUT)
    names = scenario_names() if all_ else [name]
    if shard is not None:
        names = _shard(names, shard)
    scenarios = [_load(n, param) for n in names]
    from lab.run.scenarios import unreplaceable
    taken = unreplaceable([sc.name for sc in scenarios], out.resolve())
    if taken:
        err.print(f"{taken[0]}: exists and is not the results of an earlier run (a workshop lab's folder, or "
                  "files of yours); allowed: a new folder, or one lab run wrote. Choose another --out. Nothing was built.")
        raise typer.Exit(EXIT_BAD_INPUT)
    _need_lab_machine()
    _terminate_as_interrupt()
    try:
        docs = run_scenarios(scenarios, out, Progress(quiet=quiet), hold=_hold if keep else None,
                             jobs=1 if serial or keep else (jobs or default_jobs()))
    except KeyboardInterrupt:
        err.print("interrupted; every lab was torn down")
        raise typer.Exit(130) from None
    if junit and docs:
        junit_xml.write(docs, junit)
    if any(p.get("error") for doc in docs for p in doc["phases"]):
        raise typer.Exit(EXIT_LAB)
    raise typer.Exit(0 if all(doc["passed"] for doc in docs) else EXIT_FAILED)


def _shard(names: list[str], spec: str) -> list[str]:
    """K/N: every N-th name of the sorted list, from the K-th on: the same split on every machine."""
    part, _, total = spec.partition("/")
    if not (part.isdigit() and total.isdigit() and 1 <= int(part) <= int(total)):
        err.print(f"--shard {spec[:20]}: allowed: K/N with 1 <= K <= N, e.g. 2/4")
        raise typer.Exit(EXIT_BAD_INPUT)
    return sorted(names)[int(part) - 1::int(total)]


def _hold(lab) -> None:
    """--keep (in the phase's worker): the failing lab stays up until Enter (or Ctrl-C / SIGTERM
    without a terminal)."""
    import shlex

    from lab.sandbox import join_argv, outer_pid

    err.print(f"--keep: the lab of {lab.scenario.name} stays up. Enter a node from another terminal:")
    for node, pid in lab.node_pids().items():
        env = [f"{k}={v}" for k, v in lab.charon_env(node).items()]
        argv = [*join_argv(outer_pid()), "mnexec", "-a", str(pid), *(["env", *env] if env else []), "bash"]
        err.print(f"  {node}: {shlex.join(argv)}", markup=False)
    err.print(f"  artifacts: {lab.phase_dir}", markup=False)
    if sys.stdin.isatty():
        input("press Enter to tear it down ")
    else:
        err.print("no terminal: send SIGTERM or Ctrl-C to tear it down")
        signal.pause()


@app.command("bench")
def bench_(names: Optional[list[str]] = typer.Argument(None, help="scenarios (default: all)"),
           out: Path = typer.Option(Path("bench/bench.json"), "--out"),
           repeat: int = typer.Option(3, "--repeat", min=1),
           jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, help="for the catalogue run with -j")) -> None:
    """Figures beside the floor (two gateways, IKEv2 up, one ping), measured in the same run: write them as JSON."""
    from lab.bench import bench
    from lab.progress import Progress
    from lab.run.scheduler import default_jobs

    names = names or scenario_names()
    for name in names:
        _load(name)
    _need_lab_machine()
    _terminate_as_interrupt()
    doc = bench(names, out, repeat, jobs or default_jobs(), Progress())
    base = doc["floor"]
    say(f"floor (2 gateways, IKEv2 up, one ping, teardown): " +
        (f"median {base['median_s']:.3f}s of {base['runs']}" if "median_s" in base else base["error"]))
    for fig in doc["scenarios"]:
        phases = " ".join(f"{k}={v:.2f}s" for k, v in fig["phases_median_s"].items())
        say(f"{fig['scenario']:<24} median {fig['median_s']:6.2f}s  x{fig['floor_ratio']} floor  {phases}  "
            f"{'ok' if fig['passed'] else 'FAILED'}")
    say("catalogue wall time: " + ", ".join(f"{k} {v}s" for k, v in doc["catalogue_s"].items()))
    d = doc["diagnose"]
    big = d[next(k for k in d if k.startswith("capture_"))]
    log = d[next(k for k in d if k.startswith("log_"))]
    say(f"lab diagnose: a phase median {d['phase_s']['median']}s, max {d['phase_s']['max']}s; "
        f"{big['bytes'] // 1024 // 1024} MB capture {big['seconds']}s, peak {big['peak_mb']} MB; "
        f"{log['bytes'] // 1024 // 1024} MB log {log['seconds']}s, peak {log['peak_mb']} MB")
    print(visible_lines("lab diagnose on its corpus (tests/diagnose/corpus):\n" + d["corpus"]["markdown"]))
    for mode, rtt in doc["tunnel_rtt_ms"].items():
        say(f"tunnel ping RTT over {mode}: " + (f"avg {rtt['avg']:.3f} ms (min {rtt['min']:.3f}, max {rtt['max']:.3f})"
                                               if "avg" in rtt else rtt["error"]))
    for r in doc["training_room"]:
        say(f"training room: {r['labs']} labs of {r['scenario']} started in {r['start_s']}s, {r['memory_mb']} MB "
            f"({r['memory_per_lab_mb']} MB a lab: {r['labs_per_24gib']} labs in 24 GiB), "
            f"CPU {r['cpu_busy_idle_pct']}% busy while idle")
    c = doc["classroom"]
    say("classroom: " + (c["error"] if "error" in c else
                         f"{c['labs']} trainee labs of {c['scenario']} and lab serve: started in {c['start_s']}s, "
                         f"labs {c['labs_memory_mb']} MB, lab serve {c['serve_rss_mb']} MB; idle CPU (% of a core): "
                         f"lab serve {c['serve_cpu_idle_pct_of_a_core']}, labs {c['labs_cpu_idle_pct_of_a_core']}; "
                         f"a trainee's page {c['http_load_s']['median']}s over HTTP, "
                         f"{c.get('browser_trainee_page_s', '-')}s in Chromium, the trainer's "
                         f"{c.get('browser_trainer_page_s', '-')}s"))
    say(f"written: {out}")


@app.command()
def soak(names: Optional[list[str]] = typer.Argument(None, help="scenarios (default: all)"),
         runs: int = typer.Option(20, "--runs", min=1, help="runs of each scenario"),
         load: bool = typer.Option(False, "--load", help="one CPU-bound process per core beside the labs"),
         jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, help="phases at once (default: 4 per core, as memory allows)"),
         out: Path = typer.Option(Path("results/soak.json"), "--out")) -> None:
    """Run scenarios many times (optionally under CPU load); write pass rates and every failure as JSON."""
    from lab.progress import Progress
    from lab.run.scheduler import default_jobs
    from lab.soak import soak as run_soak

    names = names or scenario_names()
    for name in names:
        _load(name)
    _need_lab_machine()
    _terminate_as_interrupt()
    try:
        doc = run_soak(names, runs, load, jobs or default_jobs(), out, Progress())
    except KeyboardInterrupt:
        err.print(f"interrupted; figures so far in {out}")
        raise typer.Exit(130) from None
    for fig in doc["scenarios"]:
        say(f"{fig['scenario']:<24} {fig['passed']}/{fig['runs']} passed  reruns {fig['phase_reruns']}  "
            f"median {fig['median_s'] or 0:.1f}s")
    totals = doc["totals"]
    say(f"total: {totals['passed']}/{totals['runs']} passed, {totals['phase_reruns']} phase reruns; written: {out}")


@app.command()
def diagnose(paths: Optional[list[Path]] = typer.Argument(None, help="phase or run folders of lab run, captures "
                                                                     "(pcap, pcapng), charon logs; - reads standard input"),
             as_json: bool = typer.Option(False, "--json", help="one JSON object (a list for several diagnoses)"),
             lang: str = typer.Option("both", "--lang", help="en, zh or both"),
             ike_port: list[int] = typer.Option([], "--ike-port", help="a non-standard IKE port (repeatable)"),
             nat_t_port: list[int] = typer.Option([], "--nat-t-port", help="a non-standard NAT-T port (repeatable)"),
             live: bool = typer.Option(False, "--live", help="the running workshop lab (the trainer's view)"),
             user: Optional[str] = USER) -> None:
    """The three-step IKE triage on captures and charon logs (any dialect: file, syslog, journald, swanctl
    --log, Android, pasted lines): which step fails, which fault, for which peer, what proves it.
    Exit 0 healthy, 1 fault, 4 indeterminate, 2 bad input."""
    import json
    import tempfile

    from lab.diagnose import render
    from lab.diagnose.engine import run as run_diagnosis
    from lab.diagnose.sources import STDIN, BadInput
    from lab.visible import visible

    if lang not in ("en", "zh", "both"):
        err.print(f"--lang {visible(lang[:20])}: allowed: en, zh, both", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    bad_ports = [p for p in [*ike_port, *nat_t_port] if not 1 <= p <= 65535]
    if bad_ports:
        err.print(f"port {bad_ports[0]}: allowed: 1 to 65535", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    if live:
        from lab.workshop import client
        try:
            current = client.running(_seat(user))
        except LabError as exc:
            err.print(visible(str(exc)), markup=False)
            raise typer.Exit(EXIT_LAB) from None
        paths = [Path(current["artifacts"])]
        for gone in current.get("gone") or []:  # what the captures and logs cannot say: a daemon is dead
            err.print(visible(f"finding: {gone['text']['en' if lang == 'en' else 'zh' if lang == 'zh' else 'en']}"),
                      markup=False)
    if not paths:
        err.print("give one or more folders, captures or logs, - for standard input (or --live)")
        raise typer.Exit(EXIT_BAD_INPUT)
    if sum(str(p) == STDIN for p in paths) > 1:
        err.print("-: standard input given more than once; allowed: at most once", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    ports = {"ike_ports": frozenset({500, *ike_port}), "nat_t_ports": frozenset({4500, *nat_t_port})}
    with tempfile.TemporaryDirectory(prefix="ipsec-lab-diagnose-") as spool:
        try:
            diagnoses = run_diagnosis(paths, Path(spool), **ports)
        except BadInput as exc:
            err.print(visible(f"bad input: {exc}"), markup=False)
            raise typer.Exit(EXIT_BAD_INPUT) from None
    if as_json:
        docs = [render.as_json(d, lang) for d in diagnoses]
        print(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2, ensure_ascii=False))
    else:
        print("\n\n".join(render.text(d, lang) for d in diagnoses))
    worst = max(diagnoses, key=lambda d: {"healthy": 0, "indeterminate": 1, "fault": 2}[d.verdict])
    raise typer.Exit(worst.exit_code)


@app.command("merge")
def merge_(shards: list[Path] = typer.Argument(..., help="the --out folders of lab run --all --shard K/N"),
           out: Path = typer.Option(Path("results/merged"), "--out")) -> None:
    """Merge CI shards: every scenario's folder, one junit.xml and an index.html; exit 1 if any failed."""
    from lab.merge import merge

    missing = [s for s in shards if not s.is_dir()]
    if missing:
        err.print(f"{missing[0]}: not a folder; allowed: folders written by lab run --out")
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        docs = merge(shards, out)
    except ValueError as exc:
        err.print(str(exc))
        raise typer.Exit(EXIT_BAD_INPUT) from None
    say(f"{sum(d['passed'] for d in docs)}/{len(docs)} scenarios passed; {out}/index.html, {out}/junit.xml")
    raise typer.Exit(0 if docs and all(d["passed"] for d in docs) else EXIT_FAILED)


@app.command()
def doctor() -> None:
    """What the lab needs from this machine, each with its Debian package: exit 3 if anything is missing."""
    from lab import preflight

    out = Terminal()
    items = preflight.check()
    for item in items:
        out.print(styled("  ", ("ok     ", "green") if item.ok else ("MISSING", "red"), f" {item.what}"
                         + (f"  {item.detail}" if item.detail else "") + (f"  ({item.package})" if item.package else "")))
    missing = preflight.missing(items)
    if missing:
        hint = preflight.install_hint(missing)
        out.print(f"{len(missing)} missing." + (f" {hint}" if hint else ""))
        raise typer.Exit(EXIT_LAB)
    out.print("everything the lab needs is here")


@app.command()
def clean(dry_run: bool = typer.Option(False, "--dry-run", help="list what would be removed, remove nothing")) -> None:
    """Remove the workshop seats of labs that died (their processes ended with their sandbox); live labs are never touched."""
    from lab.clean import dead_seats

    found = dead_seats()
    if not found:
        print("nothing left behind by dead labs")
        return
    for seat in found:
        say(("would remove " if dry_run else "removing ") + f"the seat of {seat.account}'s dead lab "
              f"({(seat.read() or {}).get('scenario', '?')}): {seat.dir}")
        if not dry_run:
            seat.clear()


# -- workshop mode ---------------------------------------------------------------

def _texts(text, lang: str) -> list[str]:
    return [text.get(lang)] if lang in ("en", "zh") else [text.en, text.zh]


def _workshop(fn):
    """Workshop commands report lab problems as one clear line and exit 3."""
    from functools import wraps

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LabError as exc:
            err.print(str(exc))
            raise typer.Exit(EXIT_LAB) from None
    return wrapper


@app.command()
@_workshop
def start(name: str = typer.Argument(..., help="scenario name or file"),
          lang: str = typer.Option("both", "--lang", help="en, zh or both"),
          param: list[str] = typer.Option([], "--param", "-p", help="NAME=VALUE (repeatable)"),
          out: Path = typer.Option(Path("results/workshop"), "--out",
                                   help="the lab's captures and logs (relative: to the account's home with --for)"),
          for_: Optional[str] = typer.Option(None, "--for", help="root only: start one lab for each of these "
                                                                  "accounts (comma-separated), as that account")) -> None:
    """Build the scenario's lab with its fault in place and leave it running (one per account)."""
    from lab.workshop import client

    sc = _load(name, param)
    _need_lab_machine()
    if for_ is not None:
        _start_for(for_, name, sc, lang, param, out)
        return
    seat = _seat(None)
    current = client.start(seat, sc, out, param, lang)
    # The title names the fault: the brief and the task describe it as users report it.
    say(f"{sc.name}: the lab is up ({len(current['nodes'])} nodes). Nodes: {', '.join(current['nodes'])}")
    print()
    _brief(sc, lang)
    _next_commands(current, seat)


def _next_commands(current: dict, seat) -> None:
    """What to type next, with this lab's own node and interface names."""
    from lab.workshop.state import page_url

    gateway = next((n for n, env in current["env"].items() if env), next(iter(current["nodes"])))
    intf = next(iter(current.get("interfaces", {}).get(gateway, {})), "eth0")
    for line in (f"lab shell {gateway:<29} a shell on a node (nodes: {', '.join(current['nodes'])}); swanctl works there",
                 f"{'lab shell ' + gateway + ' -- swanctl --list-sas':<39} one command on a node",
                 f"{'lab capture ' + gateway + ':' + intf + ' | wireshark -k -i -':<39} a live capture of an interface",
                 f"{'lab hint':<39} the next hint, one at a time",
                 f"{'lab check':<39} grade the lab: passes once it is healthy, however it was fixed",
                 f"{'lab status':<39} your lab, and your page in the browser",
                 f"{'lab stop':<39} tear the lab down"):
        say(line)
    url = page_url(seat)
    say(f"your page (terminals, hints, checks, captures in the browser): {url}" if url else
        "the room's web pages are not served now (the trainer runs lab serve); lab status shows your page then")


def _brief(sc, lang: str) -> None:
    for text in _texts(sc.spec.brief, lang) + (_texts(sc.spec.task, lang) if sc.spec.task else []):
        print(visible_lines(text.strip()) + "\n")
    if sc.spec.recur:
        every = f"{sc.spec.recur.every:g}"
        recurs = {"en": f"The fault comes back every {every} s until your fix holds; lab check brings it back once "
                        "more before it judges.",
                  "zh": f"在你的修复生效之前,故障每 {every} 秒重现一次;lab check 评判前会再触发一次。"}
        print("\n".join(recurs[k] for k in (["en", "zh"] if lang not in ("en", "zh") else [lang])) + "\n")


def _start_for(accounts: str, name: str, sc, lang: str, params: list[str], out: Path) -> None:
    """The trainer's one command for a room: each account's lab started as that account."""
    import subprocess

    from lab.workshop.state import Seat, page_url

    if os.geteuid() != 0:
        err.print("--for: only root (the trainer) starts labs for other accounts")
        raise typer.Exit(EXIT_BAD_INPUT)
    names = [a for a in accounts.split(",") if a]
    unknown = [a for a in names if not _account_exists(a)]
    if unknown or not names:
        err.print(f"--for: no account {unknown[0][:32] if unknown else '(none given)'}; allowed: existing "
                  "accounts, comma-separated", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    scenario = str(sc.path) if Path(name).suffix in (".yaml", ".yml") else name
    failed = 0
    for account in names:
        proc = subprocess.run([sys.executable, "-m", "lab.sandbox.runas", account, "--", sys.executable, "-m", "lab",
                               "start", scenario, "--lang", lang, "--out", str(out),
                               *(a for p in params for a in ("--param", p))],
                              capture_output=True, text=True, timeout=600)
        first = (proc.stdout or proc.stderr).strip().splitlines()[:1]
        failed += proc.returncode != 0
        url = page_url(Seat(account)) if proc.returncode == 0 else None
        say(f"{account}: " + ("started" if proc.returncode == 0 else "FAILED") + (f": {first[0]}" if first else "")
            + (f"\n  page: {url}" if url else ""))
    print()
    _brief(sc, lang)
    if not any(page_url(Seat(a)) for a in names):
        say("pages: start the room's web server (lab serve --listen ADDRESS:PORT) and lab status --all lists each page")
    raise typer.Exit(EXIT_LAB if failed else 0)


def _account_exists(name: str) -> bool:
    import pwd

    try:
        return pwd.getpwnam(name).pw_uid != 0
    except KeyError:
        return False


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@_workshop
def shell(node: str = typer.Argument(..., help="lab node"),
          command: Optional[list[str]] = typer.Argument(None, help="a command instead of a shell (after --)"),
          user: Optional[str] = USER) -> None:
    """A shell (or one command after --) inside a node of the running lab."""
    from lab.workshop import client

    client.shell(_seat(user), node, command or [])


@app.command()
@_workshop
def capture(point: str = typer.Argument(..., help="NODE:INTERFACE of the running lab, e.g. gw1:wan"),
            count: Optional[int] = typer.Option(None, "--count", "-c", min=1, help="stop after this many packets"),
            user: Optional[str] = USER) -> None:
    """A live capture as a pcap stream on standard output: lab capture gw1:wan | wireshark -k -i -"""
    from lab.workshop import client

    node, sep, intf = point.partition(":")
    if not (sep and node and intf):
        err.print(f"{visible(point[:40])}: allowed: NODE:INTERFACE, e.g. gw1:wan", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    if sys.stdout.isatty():
        err.print("a pcap stream is not for a terminal; pipe it: lab capture " + visible(point[:40])
                  + " | wireshark -k -i -   (or > file.pcap)", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    client.capture(_seat(user), node, intf, count)


@app.command()
@_workshop
def hint(number: Optional[int] = typer.Argument(None, help="a hint by number (default: the next one)"),
         lang: Optional[str] = typer.Option(None, "--lang", help="en, zh or both"),
         as_json: bool = typer.Option(False, "--json", help="the hint as one JSON object"),
         user: Optional[str] = USER) -> None:
    """Progressive hints, one level at a time."""
    import json

    from lab.workshop import client

    seat = _seat(user)
    current = client.running(seat)
    sc = _load(current["path"], current.get("params"), deep=False)
    n, text = client.next_hint(seat, sc, number)
    if as_json:
        print(json.dumps({"number": n, "of": len(sc.spec.hints), "hint": {"en": text.en, "zh": text.zh}},
                         ensure_ascii=False))
        return
    print(f"hint {n}/{len(sc.spec.hints)}:")
    for line in _texts(text, lang or current.get("lang", "both")):
        print("  " + visible_lines(line).replace("\n", "\n  "))


@app.command()
@_workshop
def check(user: Optional[str] = USER,
          as_json: bool = typer.Option(False, "--json", help="the result as one JSON object")) -> None:
    """Grade the running lab with the scenario's healthy checks: exit 0 healthy, 1 not yet.
    What it shows is the trainee's view: the checks and what they observed, never the answer."""
    import json

    from lab.workshop import client

    report = client.request(_seat(user), "check")
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
        raise typer.Exit(0 if report["passed"] else EXIT_FAILED)
    if report.get("rearmed"):
        say("  the fault was brought back once more before the checks (it comes back until a fix holds)")
    for step in report["retried"]:
        say(f"  retried: {step}")
    if report.get("error"):
        say(f"  {report['error']}")
    for c in report["checks"]:
        say(f"  {'PASS' if c['passed'] else 'FAIL'} {c['name']}")
        say(f"       observed: {c['observed']}")
    say(f"check {report['number']}: {'healthy: well done' if report['passed'] else 'not healthy yet'}"
        f"  (report: {report['report']})")
    raise typer.Exit(0 if report["passed"] else EXIT_FAILED)


@app.command()
def status(user: Optional[str] = USER,
           all_: bool = typer.Option(False, "--all", help="root (the trainer) only: every account's lab, "
                                                          "also as an HTML page"),
           html_out: Path = typer.Option(Path("results/workshop/status.html"), "--html")) -> None:
    """What workshop labs are running."""
    from lab.workshop import state, status as room

    if all_ and os.geteuid() != 0:
        err.print("--all: only root (the trainer) sees every account's lab; without it: your own")
        raise typer.Exit(EXIT_BAD_INPUT)
    seats = state.seats() if all_ else [_seat(user)]
    rows = [r for r in (room.row(seat) for seat in seats) if r is not None]
    if not rows:
        print("no workshop lab is running" + ("" if all_ else f" for {seats[0].account}"))
        return
    trainer = os.geteuid() == 0  # a trainee's own view never names the scenario: its name names the fault
    for r in rows:
        say(f"{r['account']:<12} {r['scenario'] if trainer else 'lab':<24} "
            f"{'running' if r['alive'] else 'NOT running (lab stop cleans up)':<10} "
            f"since {r['started']}  hints {r['hints_shown']}  checks {r['checks_run']}  "
            + (f"fault re-armed {r['recurrences']}x  " if r['recurrences'] is not None else "")
            + f"last: {r['last_verdict'] or '-'}")
        for gone in r["gone"] if r["alive"] else []:
            say(f"  {gone}")
        if r["page"]:
            say(f"  page: {r['page']}")
    if all_:
        html_out.parent.mkdir(parents=True, exist_ok=True)
        html_out.write_text(room.page(rows))
        say(f"written: {html_out}")


@app.command()
def serve(listen: str = typer.Option("127.0.0.1:8088", "--listen",
                                     help="ADDRESS:PORT to listen on, e.g. the room's network: 192.0.2.10:8080"),
          url: Optional[str] = typer.Option(None, "--url", help="the base URL trainees open, when not http://ADDRESS:PORT "
                                                               "(a name, a proxy)")) -> None:
    """The room's web server (root, the trainer): a page per trainee (terminals, hints, checks, a live
    capture) behind a secret URL, and the trainer's live view of every lab with the grades as CSV."""
    import ipaddress

    if os.geteuid() != 0:
        err.print("lab serve: only root (the trainer) serves the room's pages")
        raise typer.Exit(EXIT_BAD_INPUT)
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        number = int(port)
        if not 0 <= number <= 65535:
            raise ValueError
    except ValueError:
        err.print(f"--listen {visible(listen[:60])}: allowed: ADDRESS:PORT with an IP address, e.g. 192.0.2.10:8080 "
                  "or [2001:db8::1]:8080", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    if url is not None and not url.startswith(("http://", "https://")):
        err.print(f"--url {visible(url[:60])}: allowed: a URL starting with http:// or https://", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    from lab.serve import server

    def announce(trainer_url: str, room) -> None:
        say(f"lab serve: the trainer's page (keep it to yourself): {trainer_url}")
        for view in sorted(room.seats.values(), key=lambda v: v.account):
            from lab.workshop.state import page_url
            say(f"  {view.account}: {page_url(view.seat) or '(no page: the lab has no token)'}")
        say("each new lab's page is printed by lab start and lab status; Ctrl-C stops serving")
        sys.stdout.flush()

    try:
        server.run(host, number, url, announce)
    except OSError as exc:
        err.print(f"lab serve: cannot listen on {visible(listen[:60])}: {visible(str(exc))}", markup=False)
        raise typer.Exit(EXIT_LAB) from None


@app.command()
def stop(user: Optional[str] = USER) -> None:
    """Tear the workshop lab down."""
    from lab.workshop import client

    say(client.stop(_seat(user)))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
