"""`lab`: list, validate and run scenarios, diagnose captures and logs, run a workshop.

Every command ends with one of the exit codes of lab.exitcodes (0 ok, 1 a verdict that did not
hold, 2 bad input, 3 environment, 4 indeterminate, 130 interrupted). With `--json`, standard
output is one JSON document (see `json_document`); what people read goes to standard error.
"""
from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from lab import __version__
from lab.errors import BadRequest, LabError
from lab.exitcodes import ExitCode
from lab.progress import Terminal, styled
from lab.schema import locate
from lab.schema.errors import InputError, Problem
from lab.schema.load import load_scenario
from lab.visible import visible, visible_lines

# The shape of every --json document; raised when a field changes meaning or goes away.
JSON_SCHEMA_VERSION = 1

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="IPsec field problems as runnable labs (Mininet + strongSwan).")
# Everything shown is data (file names, scenario text, what the lab observed): never markup,
# control characters written out (lab.progress.Terminal, lab.visible).
err = Terminal(stderr=True)
_json_command: str | None = None  # the command writing a --json document, while it runs


def say(text: str) -> None:
    """A line of data on stdout (plain print: `lab list` keeps its tab)."""
    print(visible(text, keep="\t"))


def json_document(command: str, code: ExitCode, **fields: Any) -> dict[str, Any]:
    """What `--json` prints: the command, the schema's version, the exit code, then its own fields."""
    return {"command": command, "schema_version": JSON_SCHEMA_VERSION, "lab_version": __version__,
            "exit_code": int(code), **fields}


def _finish_json(code: ExitCode, **fields: Any) -> None:
    """Print the --json document of the running command and exit with `code`."""
    print(json.dumps(json_document(_json_command or "?", code, **fields), indent=2, ensure_ascii=False))
    raise typer.Exit(code)


def _as_json(command: str, enabled: bool) -> bool:
    global _json_command
    _json_command = command if enabled else None
    return enabled


def _fail(code: ExitCode, message: str) -> None:
    """One line on stderr (and the --json document), then exit."""
    err.print(message, markup=False)
    if _json_command:
        _finish_json(code, error=message)
    raise typer.Exit(code)


def _problem_json(problem: Problem) -> dict[str, Any]:
    return {"file": str(problem.file), "line": problem.line, "key": problem.key, "message": problem.message}


def _version(shown: bool) -> None:
    if shown:
        print(f"ipsec-lab {__version__}")
        raise typer.Exit(ExitCode.OK)


@app.callback()
def _options(version: bool = typer.Option(False, "--version", is_eager=True, callback=_version,
                                          help="print the version and exit")) -> None:
    pass


PATH = typer.Option([], "--path", help="a folder of your own scenarios, searched before the catalogue "
                                       "(repeatable; also LAB_PATH=DIR:DIR)")


def _search(folders: list[Path]) -> None:
    """--path folders, then LAB_PATH's: a folder that is not one is bad input, named."""
    locate.use_folders(folders)
    bad = locate.bad_folders()
    if bad:
        _fail(ExitCode.BAD_INPUT, f"{visible(str(bad[0]))[:200]}: not a folder (--path or {locate.ENV_PATH}); "
                                  "allowed: folders of scenario files")


def _load(name: str, params: list[str] | None = None, deep: bool = True):
    """A scenario, validated; `deep` also loads its nft rulesets in a throwaway namespace (root only).
    Bad input: every problem as file:line: key: message, exit 2, nothing built."""
    from lab import validate as checks

    pairs = dict(p.split("=", 1) for p in params or [] if "=" in p)
    bad = [p for p in params or [] if "=" not in p]
    if bad:
        _fail(ExitCode.BAD_INPUT, f"--param takes NAME=VALUE, not '{visible(bad[0][:60])}'")
    try:
        sc = load_scenario(name, pairs)
        problems = checks.scenario_problems(sc, sc.doc) if deep else []
    except InputError as exc:
        _bad_input(exc.problems)
    if problems:
        _bad_input(problems)
    return sc


def _bad_input(problems: list[Problem]) -> None:
    err.print(styled(("invalid input", "red"), f" ({len(problems)} problem(s)); nothing was built:"))
    for problem in problems:
        err.print(styled(f"  {problem}"))
    if _json_command:
        _finish_json(ExitCode.BAD_INPUT, problems=[_problem_json(p) for p in problems])
    raise typer.Exit(ExitCode.BAD_INPUT)


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
        if _json_command:
            _finish_json(ExitCode.ENVIRONMENT, error="this machine cannot run a lab",
                         missing=[{"what": i.what, "detail": i.detail, "package": i.package} for i in missing])
        raise typer.Exit(ExitCode.ENVIRONMENT)


USER = typer.Option(None, "--user", help="root (the trainer) only: another account's lab")


def _seat(user: Optional[str]):
    """The seat of the account running this command; root may name another account's."""
    from lab.workshop.state import Seat, account_name

    mine = account_name()
    if user in (None, mine):
        return Seat(mine)
    if os.geteuid() != 0:
        _fail(ExitCode.BAD_INPUT, f"--user {visible(user[:32])}: only root (the trainer) acts on another account's "
                                  f"lab; allowed: your own ({mine})")
    if not _account_exists(user):
        _fail(ExitCode.BAD_INPUT, f"--user {visible(user[:32])}: no such account; allowed: an account with a lab "
                                  "(lab status --all)")
    return Seat(user)


def _terminate_as_interrupt() -> None:
    """SIGTERM (CI timeout, kill) tears the lab down the way Ctrl-C does."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="one JSON document"),
          path: list[Path] = PATH) -> None:
    """One scenario a line: name, then title. Your folders (--path, LAB_PATH) first, then the catalogue."""
    _as_json("list", as_json)
    _search(path)
    catalogue = locate.catalogue().resolve()
    rows, broken = [], 0
    for name, file in locate.scenario_files().items():
        origin = "catalogue" if file.parent.resolve() == catalogue else "user"
        try:
            sc = load_scenario(file)
        except InputError as exc:
            broken += 1
            rows.append({"name": name, "path": str(file), "origin": origin, "valid": False,
                         "problems": [_problem_json(p) for p in exc.problems]})
            continue
        rows.append({"name": name, "path": str(file), "origin": origin, "valid": True,
                     "title": sc.spec.title.model_dump(), "source": sc.spec.source.shown(),
                     "topology": sc.spec.topology, "phases": [str(p) for p in sc.spec.phases()],
                     "diagnosis": _declared(sc)})
    code = ExitCode.BAD_INPUT if broken else ExitCode.OK
    if broken:
        err.print(f"{broken} scenario file(s) not valid: " + ", ".join(r["path"] for r in rows if not r["valid"])
                  + " (lab validate FILE says why)", markup=False)
    if as_json:
        _finish_json(code, scenarios=rows)
    for row in rows:
        if row["valid"]:
            say(f"{row['name']}\t{visible(row['title']['en'])} / {visible(row['title']['zh'])}"
                + ("" if row["origin"] == "catalogue" else f"\t({row['path']})"))
        else:
            p = row["problems"][0]
            say(f"{row['name']}\tINVALID: {p['file']}:{p['line'] or ''}: {p['key']}: {p['message']}"
                + (f" (and {len(row['problems']) - 1} more: lab validate {row['path']})" if len(row["problems"]) > 1
                   else ""))
    raise typer.Exit(code)


def _declared(sc) -> dict | None:
    d = sc.spec.diagnosis
    return {"step": d.step, "class": d.class_} if d else None


@app.command()
def validate(files: Optional[list[str]] = typer.Argument(None, help="scenario names or files, topology files"),
             all_: bool = typer.Option(False, "--all", help="every scenario lab list shows, and every topology "
                                                            "of the catalogue"),
             strict: bool = typer.Option(False, "--strict", help="the catalogue's rules too: a declared diagnosis"),
             as_json: bool = typer.Option(False, "--json", help="one JSON document"),
             path: list[Path] = PATH) -> None:
    """Check scenario and topology files without building anything: every problem, with file and line."""
    from lab import validate as checks
    from lab.nftcheck import sandbox_possible
    from lab.schema.load import is_topology, load_topology
    from lab.schema.yamlfile import load as read_yaml

    _as_json("validate", as_json)
    _search(path)
    if all_ == bool(files):
        _fail(ExitCode.BAD_INPUT, "name scenario or topology files, or give --all")
    if all_:
        files = [*locate.scenario_names(), *(str(p) for p in sorted(locate.topologies().glob("*.yaml")))]
    results, problems = [], []
    for name in files or []:
        kind = "scenario"
        try:
            path_ = Path(name)
            doc = read_yaml(path_) if path_.suffix in (".yaml", ".yml") and path_.is_file() else None
            if doc is not None and is_topology(doc):
                kind = "topology"
                topo, doc = load_topology(doc)
                found = checks.topology_problems(topo, doc)
            else:
                sc = load_scenario(doc if doc is not None else name)
                found = checks.scenario_problems(sc, sc.doc) + (checks.strict_problems(sc, sc.doc) if strict else [])
        except InputError as exc:
            found = exc.problems
        problems += found
        results.append({"name": name, "kind": kind, "ok": not found, "problems": [_problem_json(p) for p in found]})
        if not found and not as_json:
            say(f"{name}: ok")
    nft_checked = sandbox_possible()
    if not nft_checked:
        err.print("note: nft rulesets and policy rules were not loaded into a throwaway namespace "
                  "(this account has no lab sandbox: lab doctor says why)")
    code = ExitCode.BAD_INPUT if problems else ExitCode.OK
    if as_json:
        _finish_json(code, files=results, strict=strict, nft_checked=nft_checked)
    if problems:
        _bad_input(problems)


@app.command()
def run(names: Optional[list[str]] = typer.Argument(None, help="scenario names (your --path folders, LAB_PATH, "
                                                                "then the catalogue) or scenario files"),
        all_: bool = typer.Option(False, "--all", help="run every scenario lab list shows"),
        out: Path = typer.Option(Path("results"), "--out", help="results go to OUT/NAME/"),
        param: list[str] = typer.Option([], "--param", "-p", help="NAME=VALUE, a scenario parameter (repeatable)"),
        junit: Optional[Path] = typer.Option(None, "--junit", help="write JUnit XML: a testcase per scenario phase"),
        keep: bool = typer.Option(False, "--keep", help="leave a failing phase's lab up for inspection (serial)"),
        jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1,
                                           help="phases at once, across scenarios (default: 4 per core, as memory allows)"),
        serial: bool = typer.Option(False, "--serial", help="one phase after the other, in this process"),
        shard: Optional[str] = typer.Option(None, "--shard", help="K/N: the K-th of N stable parts of --all "
                                                                  "(a CI matrix of N jobs runs each scenario once)"),
        quiet: bool = typer.Option(False, "--quiet", "-q"),
        as_json: bool = typer.Option(False, "--json", help="one JSON document on stdout (progress on stderr)"),
        path: list[Path] = PATH) -> None:
    """Run baseline, fault, a partial fix if the scenario has one, and fix; write OUT/NAME/result.json and report.html."""
    from lab import junit as junit_xml
    from lab.progress import Progress
    from lab.run.scenarios import run_scenarios, unreplaceable
    from lab.run.scheduler import default_jobs

    _as_json("run", as_json)
    _search(path)
    if all_ == bool(names):
        _fail(ExitCode.BAD_INPUT, "name one or more scenarios (names or files), or give --all")
    names = locate.scenario_names() if all_ else list(dict.fromkeys(names))
    if shard is not None:
        names = _shard(names, shard)
    scenarios = [_load(n, param) for n in names]
    files: dict[str, Path] = {}
    for sc in scenarios:
        if files.setdefault(sc.name, sc.path) != sc.path:
            _fail(ExitCode.BAD_INPUT, f"{visible(str(sc.path))}: a second scenario named {sc.name} (the first: "
                                      f"{visible(str(files[sc.name]))}); allowed: one scenario a name, as results go "
                                      "to OUT/NAME")
    taken = unreplaceable([sc.name for sc in scenarios], out.resolve())
    if taken:
        _fail(ExitCode.BAD_INPUT, f"{taken[0]}: exists and is not the results of an earlier run (a workshop lab's "
                                  "folder, or files of yours); allowed: a new folder, or one lab run wrote. Choose "
                                  "another --out. Nothing was built.")
    _need_lab_machine()
    _terminate_as_interrupt()
    progress = Progress(Terminal(stderr=True) if as_json else None, quiet=quiet)
    try:
        docs = run_scenarios(scenarios, out, progress, hold=_hold if keep else None,
                             jobs=1 if serial or keep else (jobs or default_jobs()))
    except KeyboardInterrupt:
        _fail(ExitCode.INTERRUPTED, "interrupted; every lab was torn down")
    if junit and docs:
        junit_xml.write(docs, junit)
    code = (ExitCode.ENVIRONMENT if any(p.get("error") for doc in docs for p in doc["phases"])
            else ExitCode.OK if all(doc["passed"] for doc in docs) else ExitCode.FAILED)
    if as_json:
        _finish_json(code, passed=code == ExitCode.OK, out=str(out.resolve()),
                     scenarios=[_run_summary(doc, out) for doc in docs])
    if not quiet:
        for doc in docs:
            _undeclared(doc)
    raise typer.Exit(code)


def _run_summary(doc: dict, out: Path) -> dict:
    folder = out.resolve() / doc["scenario"]
    return {"scenario": doc["scenario"], "title": doc["title"], "passed": doc["passed"],
            "duration_s": doc["duration_s"], "result": str(folder / "result.json"),
            "report": str(folder / "report.html"), "declared_diagnosis": doc["diagnosis"],
            "phases": [{"name": p["name"], "passed": p["passed"], "duration_s": p["duration_s"],
                        "error": p.get("error"), "diagnosis": p.get("diagnosis"),
                        "checks_passed": sum(c["passed"] for c in p["checks"]),
                        "checks_failed": [c["name"] for c in p["checks"] if not c["passed"]]}
                       for p in doc["phases"]]}


def _undeclared(doc: dict) -> None:
    """A scenario that declares no diagnosis: what `lab diagnose` named from its fault phase, as the
    line that would declare it (lab validate --strict, and the catalogue, require one)."""
    if doc["diagnosis"] is not None:
        return
    found = next((p.get("diagnosis") for p in doc["phases"] if p["name"] == "fault"), None) or {}
    if found.get("class"):
        say(f"{doc['scenario']} declares no diagnosis. From its fault phase lab diagnose names step {found['step']}, "
            f"{found['class']}; to require that, add: diagnosis: {{step: {found['step']}, class: {found['class']}}}")
    elif found:
        reason = found.get("reason") or {}
        say(f"{doc['scenario']} declares no diagnosis. From its fault phase lab diagnose finds it {found['verdict']}"
            + (f": {reason.get('en', reason)}" if reason else "") + ".")


def _shard(names: list[str], spec: str) -> list[str]:
    """K/N: every N-th name of the sorted list, from the K-th on: the same split on every machine."""
    part, _, total = spec.partition("/")
    if not (part.isdigit() and total.isdigit() and 1 <= int(part) <= int(total)):
        _fail(ExitCode.BAD_INPUT, f"--shard {visible(spec[:20])}: allowed: K/N with 1 <= K <= N, e.g. 2/4")
    return sorted(names)[int(part) - 1::int(total)]


def _hold(lab) -> None:
    """--keep (in the phase's worker): the failing lab stays up until Enter (or Ctrl-C / SIGTERM
    without a terminal)."""
    import shlex

    from lab.sandbox import join_argv, outer_pid, search_path

    err.print(f"--keep: the lab of {lab.scenario.name} stays up. Enter a node from another terminal:")
    for node, pid in lab.node_pids().items():
        env = [f"{k}={v}" for k, v in {"PATH": search_path(""), **lab.charon_env(node)}.items()]
        argv = [*join_argv(outer_pid()), "mnexec", "-a", str(pid), "env", *env, "bash"]
        err.print(f"  {node}: {shlex.join(argv)}", markup=False)
    err.print(f"  artifacts: {lab.phase_dir}", markup=False)
    if sys.stdin.isatty():
        input("press Enter to tear it down ")
    else:
        err.print("no terminal: send SIGTERM or Ctrl-C to tear it down")
        signal.pause()


@app.command("bench")
def bench_(names: Optional[list[str]] = typer.Argument(None, help="scenarios: only the floor and these (default: "
                                                                  "everything, the catalogue included)"),
           out: Path = typer.Option(Path("bench/bench.json"), "--out"),
           repeat: int = typer.Option(3, "--repeat", min=1),
           jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, help="for the catalogue run with -j"),
           path: list[Path] = PATH) -> None:
    """Figures beside the floor (two gateways, IKEv2 up, one ping), measured in the same run: write them as JSON,
    part by part as each is measured."""
    from lab.bench import bench
    from lab.progress import Progress
    from lab.run.scheduler import default_jobs

    _search(path)
    given = bool(names)
    names = list(dict.fromkeys(names)) if names else locate.catalogue_names()
    for name in names:
        _load(name)
    _need_lab_machine()
    _terminate_as_interrupt()
    try:
        doc = bench(names, out, repeat, jobs or default_jobs(), Progress(), everything=not given)
    except KeyboardInterrupt:
        _fail(ExitCode.INTERRUPTED, f"interrupted; every lab was torn down; figures so far in {out}")
    base = doc["floor"]
    say(f"floor (2 gateways, IKEv2 up, one ping, teardown): " +
        (f"median {base['median_s']:.3f}s of {base['runs']}" if "median_s" in base else base["error"]))
    for fig in doc["scenarios"]:
        phases = " ".join(f"{k}={v:.2f}s" for k, v in fig["phases_median_s"].items())
        say(f"{fig['scenario']:<24} median {fig['median_s']:6.2f}s  x{fig['floor_ratio']} floor  {phases}  "
            f"{'ok' if fig['passed'] else 'FAILED'}")
    say("side by side: " + ", ".join(f"{k} {v}s" for k, v in doc["catalogue_s"].items()))
    if "diagnose" in doc:
        d = doc["diagnose"]
        big = d[next(k for k in d if k.startswith("capture_"))]
        log = d[next(k for k in d if k.startswith("log_"))]
        say(f"lab diagnose: a phase median {d['phase_s']['median']}s, max {d['phase_s']['max']}s; "
            f"{big['bytes'] // 1024 // 1024} MB capture {big['seconds']}s, peak {big['peak_mb']} MB; "
            + (f"{log['bytes'] // 1024 // 1024} MB log {log['seconds']}s, peak {log['peak_mb']} MB" if "bytes" in log
               else log["skipped"]))
        print(visible_lines("lab diagnose on its corpus (tests/diagnose/corpus):\n"
                            + d["corpus"].get("markdown", d["corpus"].get("skipped", ""))))
    for mode, rtt in doc.get("tunnel_rtt_ms", {}).items():
        say(f"tunnel ping RTT over {mode}: " + (f"avg {rtt['avg']:.3f} ms (min {rtt['min']:.3f}, max {rtt['max']:.3f})"
                                               if "avg" in rtt else rtt["error"]))
    for r in doc.get("training_room", []):
        say(f"training room: {r['labs']} labs of {r['scenario']} started in {r['start_s']}s, {r['memory_mb']} MB "
            f"({r['memory_per_lab_mb']} MB a lab: {r['labs_per_24gib']} labs in 24 GiB), "
            f"CPU {r['cpu_busy_idle_pct']}% busy while idle")
    c = doc.get("classroom")
    if c is not None:
        say("classroom: " + (c["error"] if "error" in c else
                             f"{c['labs']} trainee labs of {c['scenario']} and lab serve: started in {c['start_s']}s, "
                             f"labs {c['labs_memory_mb']} MB, lab serve {c['serve_rss_mb']} MB; idle CPU (% of a core): "
                             f"lab serve {c['serve_cpu_idle_pct_of_a_core']}, labs {c['labs_cpu_idle_pct_of_a_core']}; "
                             f"a trainee's page {c['http_load_s']['median']}s over HTTP, "
                             f"{c.get('browser_trainee_page_s', '-')}s in Chromium, the trainer's "
                             f"{c.get('browser_trainer_page_s', '-')}s"))
    say(f"written: {out}")
    raise typer.Exit(ExitCode.OK if all(f["passed"] for f in doc["scenarios"]) else ExitCode.FAILED)


@app.command()
def soak(names: Optional[list[str]] = typer.Argument(None, help="scenarios (default: all)"),
         runs: int = typer.Option(20, "--runs", min=1, help="runs of each scenario"),
         load: bool = typer.Option(False, "--load", help="one CPU-bound process per core beside the labs"),
         jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, help="phases at once (default: 4 per core, as memory allows)"),
         out: Path = typer.Option(Path("results/soak.json"), "--out"),
         path: list[Path] = PATH) -> None:
    """Run scenarios many times (optionally under CPU load); write pass rates and every failure as JSON."""
    from lab.progress import Progress
    from lab.run.scheduler import default_jobs
    from lab.soak import soak as run_soak

    _search(path)
    names = names or locate.scenario_names()
    for name in names:
        _load(name)
    _need_lab_machine()
    _terminate_as_interrupt()
    try:
        doc = run_soak(names, runs, load, jobs or default_jobs(), out, Progress())
    except KeyboardInterrupt:
        _fail(ExitCode.INTERRUPTED, f"interrupted; figures so far in {out}")
    for fig in doc["scenarios"]:
        say(f"{fig['scenario']:<24} {fig['passed']}/{fig['runs']} passed  reruns {fig['phase_reruns']}  "
            f"median {fig['median_s'] or 0:.1f}s")
    totals = doc["totals"]
    say(f"total: {totals['passed']}/{totals['runs']} passed, {totals['phase_reruns']} phase reruns; written: {out}")
    raise typer.Exit(ExitCode.OK if totals["passed"] == totals["runs"] else ExitCode.FAILED)


@app.command()
def diagnose(paths: Optional[list[Path]] = typer.Argument(None, help="phase or run folders of lab run, captures "
                                                                     "(pcap, pcapng), charon logs; - reads standard input"),
             as_json: bool = typer.Option(False, "--json", help="one JSON document"),
             lang: str = typer.Option("both", "--lang", help="en, zh or both"),
             ike_port: list[int] = typer.Option([], "--ike-port", help="a non-standard IKE port (repeatable)"),
             nat_t_port: list[int] = typer.Option([], "--nat-t-port", help="a non-standard NAT-T port (repeatable)"),
             live: bool = typer.Option(False, "--live", help="the running workshop lab (the trainer's view)"),
             user: Optional[str] = USER) -> None:
    """The three-step IKE triage on captures and charon logs (any dialect: file, syslog, journald, swanctl
    --log, Android, pasted lines): which step fails, which fault, for which peer, what proves it.
    Exit 0 healthy, 1 fault, 4 indeterminate, 2 bad input."""
    import tempfile

    from lab.diagnose import render
    from lab.diagnose.engine import run as run_diagnosis
    from lab.diagnose.sources import STDIN, BadInput
    from lab.schema.ike import IKE_PORT, NAT_T_PORT

    _as_json("diagnose", as_json)
    if lang not in ("en", "zh", "both"):
        _fail(ExitCode.BAD_INPUT, f"--lang {visible(lang[:20])}: allowed: en, zh, both")
    bad_ports = [p for p in [*ike_port, *nat_t_port] if not 1 <= p <= 65535]
    if bad_ports:
        _fail(ExitCode.BAD_INPUT, f"port {bad_ports[0]}: allowed: 1 to 65535")
    if live:
        from lab.workshop import client
        try:
            current = client.running(_seat(user))
        except LabError as exc:
            _fail(ExitCode.ENVIRONMENT, visible(str(exc)))
        paths = [Path(current["artifacts"])]
        for gone in current.get("gone") or []:  # what the captures and logs cannot say: a daemon is dead
            err.print(visible(f"finding: {gone['text']['en' if lang == 'en' else 'zh' if lang == 'zh' else 'en']}"),
                      markup=False)
    if not paths:
        _fail(ExitCode.BAD_INPUT, "give one or more folders, captures or logs, - for standard input (or --live)")
    if sum(str(p) == STDIN for p in paths) > 1:
        _fail(ExitCode.BAD_INPUT, "-: standard input given more than once; allowed: at most once")
    ports = {"ike_ports": frozenset({IKE_PORT, *ike_port}), "nat_t_ports": frozenset({NAT_T_PORT, *nat_t_port})}
    with tempfile.TemporaryDirectory(prefix="ipsec-lab-diagnose-") as spool:
        try:
            diagnoses = run_diagnosis(paths, Path(spool), **ports)
        except BadInput as exc:
            _fail(ExitCode.BAD_INPUT, visible(f"bad input: {exc}"))
    worst = max(diagnoses, key=lambda d: {"healthy": 0, "indeterminate": 1, "fault": 2}[d.verdict])
    code = ExitCode(worst.exit_code)
    if as_json:
        _finish_json(code, lang=lang, diagnoses=[render.as_json(d, lang) for d in diagnoses])
    print("\n\n".join(render.text(d, lang) for d in diagnoses))
    raise typer.Exit(code)


@app.command("merge")
def merge_(shards: list[Path] = typer.Argument(..., help="the --out folders of lab run --all --shard K/N"),
           out: Path = typer.Option(Path("results/merged"), "--out")) -> None:
    """Merge CI shards: every scenario's folder, one junit.xml and an index.html; exit 1 if any failed."""
    from lab.merge import merge

    missing = [s for s in shards if not s.is_dir()]
    if missing:
        _fail(ExitCode.BAD_INPUT, f"{visible(str(missing[0]))}: not a folder; allowed: folders written by lab run --out")
    try:
        docs = merge(shards, out)
    except ValueError as exc:
        _fail(ExitCode.BAD_INPUT, visible(str(exc)))
    say(f"{sum(d['passed'] for d in docs)}/{len(docs)} scenarios passed; {out}/index.html, {out}/junit.xml")
    raise typer.Exit(ExitCode.OK if docs and all(d["passed"] for d in docs) else ExitCode.FAILED)


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
        raise typer.Exit(ExitCode.ENVIRONMENT)
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
    """Workshop commands report a problem as one clear line: a node or hint the lab does not have
    is bad input (exit 2); no lab running, or one that does not answer, is the environment (3)."""
    from functools import wraps

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BadRequest as exc:
            _fail(ExitCode.BAD_INPUT, visible(str(exc)))
        except LabError as exc:
            _fail(ExitCode.ENVIRONMENT, visible(str(exc)))
    return wrapper


@app.command()
@_workshop
def start(name: str = typer.Argument(..., help="scenario name or file"),
          path: list[Path] = PATH,
          lang: str = typer.Option("both", "--lang", help="en, zh or both"),
          param: list[str] = typer.Option([], "--param", "-p", help="NAME=VALUE (repeatable)"),
          out: Path = typer.Option(Path("results/workshop"), "--out",
                                   help="the lab's captures and logs (relative: to the account's home with --for)"),
          for_: Optional[str] = typer.Option(None, "--for", help="root only: start one lab for each of these "
                                                                  "accounts (comma-separated), as that account")) -> None:
    """Build the scenario's lab with its fault in place and leave it running (one per account)."""
    from lab.workshop import client

    _search(path)
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
        _fail(ExitCode.BAD_INPUT, "--for: only root (the trainer) starts labs for other accounts")
    names = [a for a in accounts.split(",") if a]
    unknown = [a for a in names if not _account_exists(a)]
    if unknown or not names:
        _fail(ExitCode.BAD_INPUT, f"--for: no account {visible(unknown[0][:32]) if unknown else '(none given)'}; "
                                  "allowed: existing accounts, comma-separated")
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
    raise typer.Exit(ExitCode.ENVIRONMENT if failed else ExitCode.OK)


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
        _fail(ExitCode.BAD_INPUT, f"{visible(point[:40])}: allowed: NODE:INTERFACE, e.g. gw1:wan")
    if sys.stdout.isatty():
        _fail(ExitCode.BAD_INPUT, "a pcap stream is not for a terminal; pipe it: lab capture " + visible(point[:40])
                                  + " | wireshark -k -i -   (or > file.pcap)")
    client.capture(_seat(user), node, intf, count)


@app.command()
@_workshop
def hint(number: Optional[int] = typer.Argument(None, help="a hint by number (default: the next one)"),
         lang: Optional[str] = typer.Option(None, "--lang", help="en, zh or both"),
         as_json: bool = typer.Option(False, "--json", help="one JSON document"),
         user: Optional[str] = USER) -> None:
    """Progressive hints, one level at a time."""
    from lab.workshop import client

    _as_json("hint", as_json)
    seat = _seat(user)
    current = client.running(seat)
    sc = _load(current["path"], current.get("params"), deep=False)
    n, text = client.next_hint(seat, sc, number)
    if as_json:
        _finish_json(ExitCode.OK, number=n, of=len(sc.spec.hints), hint={"en": text.en, "zh": text.zh})
    print(f"hint {n}/{len(sc.spec.hints)}:")
    for line in _texts(text, lang or current.get("lang", "both")):
        print("  " + visible_lines(line).replace("\n", "\n  "))


@app.command()
@_workshop
def check(user: Optional[str] = USER,
          as_json: bool = typer.Option(False, "--json", help="one JSON document")) -> None:
    """Grade the running lab with the scenario's healthy checks: exit 0 healthy, 1 not yet.
    What it shows is the trainee's view: the checks and what they observed, never the answer."""
    from lab.workshop import client

    _as_json("check", as_json)
    report = client.request(_seat(user), "check")
    code = ExitCode.OK if report["passed"] else ExitCode.FAILED
    if as_json:
        _finish_json(code, **report)
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
    raise typer.Exit(code)


@app.command()
def status(user: Optional[str] = USER,
           all_: bool = typer.Option(False, "--all", help="root (the trainer) only: every account's lab, "
                                                          "also as an HTML page"),
           html_out: Path = typer.Option(Path("results/workshop/status.html"), "--html"),
           as_json: bool = typer.Option(False, "--json", help="one JSON document")) -> None:
    """What workshop labs are running."""
    from lab.workshop import state, status as room

    _as_json("status", as_json)
    if all_ and os.geteuid() != 0:
        _fail(ExitCode.BAD_INPUT, "--all: only root (the trainer) sees every account's lab; without it: your own")
    seats = state.seats() if all_ else [_seat(user)]
    rows = [r for r in (room.row(seat) for seat in seats) if r is not None]
    trainer = os.geteuid() == 0  # a trainee's own view never names the scenario: its name names the fault
    if not trainer:
        rows = [{k: v for k, v in r.items() if k != "scenario"} for r in rows]
    if as_json:
        if all_:
            html_out.parent.mkdir(parents=True, exist_ok=True)
            html_out.write_text(room.page(rows))
        _finish_json(ExitCode.OK, labs=rows, **({"page": str(html_out)} if all_ else {}))
    if not rows:
        print("no workshop lab is running" + ("" if all_ else f" for {seats[0].account}"))
        return
    for r in rows:
        say(f"{r['account']:<12} {r.get('scenario', 'lab'):<24} "
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
        _fail(ExitCode.BAD_INPUT, "lab serve: only root (the trainer) serves the room's pages")
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        number = int(port)
        if not 0 <= number <= 65535:
            raise ValueError
    except ValueError:
        _fail(ExitCode.BAD_INPUT, f"--listen {visible(listen[:60])}: allowed: ADDRESS:PORT with an IP address, "
                                  "e.g. 192.0.2.10:8080 or [2001:db8::1]:8080")
    if url is not None and not url.startswith(("http://", "https://")):
        _fail(ExitCode.BAD_INPUT, f"--url {visible(url[:60])}: allowed: a URL starting with http:// or https://")
    from lab.serve import server

    def announce(trainer_url: str, serving) -> None:
        say(f"lab serve: the trainer's page (keep it to yourself): {trainer_url}")
        for view in sorted(serving.seats.values(), key=lambda v: v.account):
            from lab.workshop.state import page_url
            say(f"  {view.account}: {page_url(view.seat) or '(no page: the lab has no token)'}")
        say("each new lab's page is printed by lab start and lab status; Ctrl-C stops serving")
        sys.stdout.flush()

    try:
        server.run(host, number, url, announce)
    except OSError as exc:
        _fail(ExitCode.ENVIRONMENT, f"lab serve: cannot listen on {visible(listen[:60])}: {visible(str(exc))}")


@app.command()
def stop(user: Optional[str] = USER) -> None:
    """Tear the workshop lab down."""
    from lab.workshop import client

    say(client.stop(_seat(user)))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(ExitCode.INTERRUPTED)
