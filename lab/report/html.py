"""report.html beside result.json: one self-contained file that opens from disk (styles,
script and drawings inline, links only to the run's own files), in English and Chinese."""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import jinja2
from markupsafe import Markup

from lab.capture.packets import CaptureError
from lab.diagnose import catalogue
from lab.diagnose.engine import STEPS
from lab.report import ladder, topology_svg
from lab.schema.load import LoadedScenario
from lab.schema.refs import NodeRef

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("lab.report", "templates"), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


@dataclass
class FileLink:
    """A file of the run, linked relative to the report."""

    href: str
    label: str


@dataclass
class CaptureView:
    name: str
    where: str
    pcap: FileLink
    capture: ladder.LadderRows | None
    ladder: ladder.Ladder | None
    error: str | None = None  # why the pcap could not be read (cut short by a crash, empty)


def faulty_nodes(sc: LoadedScenario) -> set[str]:
    return {ref.node for step in sc.spec.fault.steps for ref in step.refs() if isinstance(ref, NodeRef)}


def _link(path: Path, report_dir: Path) -> FileLink | None:
    """A link to `path` relative to the report, or None when it lies outside the report's folder
    (a relative link there would break as soon as the folder is copied)."""
    try:
        rel = path.resolve().relative_to(report_dir.resolve())
    except ValueError:
        return None
    return FileLink(quote(rel.as_posix()), rel.as_posix())


def _owners(sc: LoadedScenario) -> dict[str, tuple[str, str, int]]:
    column = topology_svg.ranks(sc.topology)
    return ladder.owners((a, end.node, end.intf, column[end.node])
                         for link in sc.topology.links for end in link.ends for a in end.addr)


def _captures(sc: LoadedScenario, phase_dir: Path, report_dir: Path) -> list[CaptureView]:
    out = []
    owners = _owners(sc)
    for meta_path in sorted(phase_dir.glob("*.capture.json")):
        name = meta_path.name.removesuffix(".capture.json")
        pcap = phase_dir / f"{name}.pcap"
        link = _link(pcap, report_dir)
        if not pcap.exists() or link is None:
            continue
        meta = json.loads(meta_path.read_text())
        where = f"{meta['node']}:{meta['intf']}"
        try:
            capture = ladder.read(pcap, meta["mac"], sc.nat_t_ports())
        except CaptureError as exc:  # the report is written all the same, saying so
            out.append(CaptureView(name, where, link, None, None, str(exc)))
            continue
        out.append(CaptureView(name, where, link, capture, ladder.layout(capture, owners)))
    return out


def _files(phase_dir: Path, report_dir: Path) -> dict[str, list[FileLink]]:
    """The phase's logs and rendered configurations, as links."""
    groups = {"logs": sorted(phase_dir.glob("*.log")),
              "configs": sorted([*phase_dir.glob("*/strongswan.conf"), *phase_dir.glob("*/swanctl/swanctl.conf")])}
    return {key: [link for p in paths if (link := _link(p, report_dir))] for key, paths in groups.items()}


def _evidence(item: dict, report_dir: Path) -> dict:
    """One line of a diagnosis' evidence: where (file and packet number or line) and what."""
    path = Path(item["file"])
    link = _link(path, report_dir)
    if item["kind"] == "packet":
        at, text = f" #{item['number']}", f"{item.get('where') or ''} {item['summary']}".strip()
    else:
        at, text = f":{item['line']}", item["text"]
    return {"file": link.label if link else path.name, "href": link.href if link else None, "at": at, "text": text}


def _diagnosis(found: dict | None, report_dir: Path) -> dict | None:
    if not found:
        return None
    entry = catalogue.catalogue().classes.get(found["class"]) if found.get("class") else None
    return {"verdict": found["verdict"], "step": found.get("step"), "step_name": STEPS.get(found.get("step")),
            "class": found.get("class"), "title": entry.title if entry else None,
            "explanation": entry.explanation if entry else None, "reason": found.get("reason"),
            "evidence": [_evidence(e, report_dir) for e in found.get("evidence") or []]}


def _phase(sc: LoadedScenario, phase: dict, phase_dir: Path, report_dir: Path, only: bool) -> dict:
    exists = phase_dir.exists()
    captures = _captures(sc, phase_dir, report_dir) if exists else []
    starts = [c.capture.start for c in captures if c.capture and c.capture.packets]
    return {**phase, "slug": phase["name"].replace(" ", "-"), "captures": captures,
            # one clock for every ladder of the phase: the same moment has the same time in each
            "origin": min(starts) if starts else 0.0,
            "files": _files(phase_dir, report_dir) if exists else {"logs": [], "configs": []},
            "found": _diagnosis(phase.get("diagnosis"), report_dir),
            # the fault is the story; a phase that went wrong needs looking at too
            "open": only or phase["name"] == "fault" or not phase["passed"]}


def _drawing(sc: LoadedScenario, faulty: set[str]) -> dict:
    """The topology's SVG (dot's output of escaped input, so safe to embed as it is), or why
    there is none: a report is still written when dot fails."""
    try:
        return {"svg": Markup(topology_svg.svg(sc, faulty)), "error": None}
    except (OSError, subprocess.SubprocessError) as exc:
        return {"svg": None, "error": f"dot: {exc}"}


def stylesheet() -> str:
    """The report's styles on their own (lab serve's pages draw ladders as the report does)."""
    return _ENV.get_template("report.css.j2").render()


def ladder_svg(view: CaptureView, origin: float) -> Markup:
    """One capture's ladder on its own (a live capture's page), drawn as the report draws it."""
    return Markup(_ENV.get_template("ladder.svg.j2").module.draw(view, origin))


def render(sc: LoadedScenario, doc: dict, scenario_dir: Path, phase_dirs: dict[str, Path] | None = None,
           trainee: list | None = None) -> str:
    """The report's HTML. `phase_dirs`: where each phase's captures and logs are (default
    scenario_dir/<phase>). `trainee`: the hints a trainee took, for the trainee's view of a
    workshop check: the brief, the task, those hints and the checks, never the scenario's
    name or title, the fault, the fix, the diagnosis or where the fault sits (lab.workshop.view)."""
    faulty = set() if trainee is not None else faulty_nodes(sc)
    phases = [_phase(sc, p, (phase_dirs or {}).get(p["name"], scenario_dir / p["name"]), scenario_dir,
                     len(doc["phases"]) == 1) for p in doc["phases"]]
    if trainee is not None:
        for phase in phases:
            phase["found"] = None
    return _ENV.get_template("report.html.j2").render(
        sc=sc.spec, doc=doc, phases=phases, timers={} if trainee is not None else sc.timers, faulty=sorted(faulty),
        topology=_drawing(sc, faulty), tunnels=topology_svg.tunnels(sc),
        expected=None if trainee is not None else doc.get("diagnosis"), trainee=trainee)


def write(sc: LoadedScenario, doc: dict, scenario_dir: Path, name: str = "report.html",
          phase_dirs: dict[str, Path] | None = None, trainee: list | None = None) -> Path:
    """render(), written as scenario_dir/name."""
    path = scenario_dir / name
    path.write_text(render(sc, doc, scenario_dir, phase_dirs, trainee))
    return path
