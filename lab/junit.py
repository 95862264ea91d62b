"""JUnit XML for CI: one testcase per scenario phase; a failure carries the failing checks' observations."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path


def write(docs: list[dict], path: Path) -> None:
    cases = [(doc, phase) for doc in docs for phase in doc["phases"]]
    failures = sum(1 for _, p in cases if not p["passed"] and not p.get("error"))
    errors = sum(1 for _, p in cases if p.get("error"))
    suite = ET.Element("testsuite", name="ipsec-lab", tests=str(len(cases)), failures=str(failures),
                       errors=str(errors), time=f"{sum(d['duration_s'] for d in docs):.3f}")
    for doc, phase in cases:
        case = ET.SubElement(suite, "testcase", classname=f"ipsec-lab.{doc['scenario']}", name=phase["name"],
                             time=f"{phase['duration_s']:.3f}")
        if phase.get("error"):
            ET.SubElement(case, "error", message=phase["error"]).text = phase["error"]
        elif not phase["passed"]:
            failed = [c for c in phase["checks"] if not c["passed"]]
            ET.SubElement(case, "failure", message="; ".join(f"{c['name']}: {c['observed']}" for c in failed)).text = \
                "\n".join(f"{c['name']}\n  expected: {c['expect']} ({c['mode']})\n  observed: {c['observed']}"
                          for c in failed)
        ET.SubElement(case, "system-out").text = "\n".join(
            f"{'PASS' if c['passed'] else 'FAIL'} {c['name']}: {c['observed']}" for c in phase["checks"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = ET.ElementTree(ET.Element("testsuites"))
    tree.getroot().append(suite)
    for key in ("tests", "failures", "errors", "time"):
        tree.getroot().set(key, suite.get(key))
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
