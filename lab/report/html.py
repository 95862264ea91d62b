"""report.html beside result.json: one file, no network, English and Chinese."""
from __future__ import annotations

import json
from pathlib import Path

import jinja2

from lab.report import ladder, topology_svg
from lab.schema.refs import NodeRef
from lab.schema.load import LoadedScenario

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("lab.report", "templates"),
                          autoescape=True, undefined=jinja2.StrictUndefined)


def faulty_nodes(sc: LoadedScenario) -> set[str]:
    return {ref.node for step in sc.spec.fault.steps for ref in step.refs() if isinstance(ref, NodeRef)}


def phase_ladders(phase_dir: Path, rel: str) -> list[dict]:
    out = []
    for meta_path in sorted(phase_dir.glob("*.capture.json")):
        name = meta_path.name.removesuffix(".capture.json")
        meta = json.loads(meta_path.read_text())
        pcap = phase_dir / f"{name}.pcap"
        if not pcap.exists():
            continue
        rungs = ladder.rungs(pcap, meta["mac"], f"{meta['node']}:{meta['intf']}")
        lanes = list(dict.fromkeys(x for r in rungs for x in (r.src, r.dst)))
        out.append({"capture": name, "where": f"{meta['node']}:{meta['intf']}", "rungs": rungs, "lanes": lanes,
                    "pcap": f"{rel}/{pcap.name}"})
    return out


def write(sc: LoadedScenario, doc: dict, scenario_dir: Path, name: str = "report.html",
          phase_dirs: dict[str, Path] | None = None) -> Path:
    """`phase_dirs`: where each phase's captures and logs are (default scenario_dir/<phase>)."""
    boxes, lines, width, height = topology_svg.layout(sc.topology, faulty_nodes(sc))
    phases = []
    for phase in doc["phases"]:
        phase_dir = (phase_dirs or {}).get(phase["name"], scenario_dir / phase["name"])
        logs = sorted(p.name for p in phase_dir.glob("*.log")) if phase_dir.exists() else []
        rel = phase_dir.relative_to(scenario_dir).as_posix() if phase_dir != scenario_dir else "."
        phases.append({**phase, "ladders": phase_ladders(phase_dir, rel) if phase_dir.exists() else [],
                       "logs": [f"{rel}/{log}" for log in logs]})
    html = _ENV.get_template("report.html.j2").render(
        sc=sc.spec, doc=doc, phases=phases, boxes=boxes, lines=lines, width=width, height=height,
        gateways=set(sc.gateways), layout=topology_svg)
    path = scenario_dir / name
    path.write_text(html)
    return path
