"""JUnit XML for CI: one testcase per scenario phase; a failure carries the failing checks' observations.

Check names come from scenario files and observations from the lab (log lines, command output):
every text goes through lab.visible first, so no control character XML 1.0 cannot hold (or a
reader would act on) reaches the file, and it always parses. ElementTree escapes the markup.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from lab.visible import visible, visible_lines


def write(docs: list[dict], path: Path) -> None:
    cases = [(doc, phase) for doc in docs for phase in doc["phases"]]
    failures = sum(1 for _, p in cases if not p["passed"] and not p.get("error"))
    errors = sum(1 for _, p in cases if p.get("error"))
    suite = ET.Element("testsuite", name="ipsec-lab", tests=str(len(cases)), failures=str(failures),
                       errors=str(errors), time=f"{sum(d['duration_s'] for d in docs):.3f}")
    for doc, phase in cases:
        case = ET.SubElement(suite, "testcase", classname=visible(f"ipsec-lab.{doc['scenario']}"),
                             name=visible(phase["name"]), time=f"{phase['duration_s']:.3f}")
        if phase.get("error"):
            ET.SubElement(case, "error", message=visible(phase["error"])).text = visible_lines(phase["error"])
        elif not phase["passed"]:
            failed = [c for c in phase["checks"] if not c["passed"]]
            ET.SubElement(case, "failure", message=visible("; ".join(f"{c['name']}: {c['observed']}" for c in failed))
                          ).text = visible_lines("\n".join(f"{c['name']}\n  expected: {c['expect']} ({c['mode']})\n"
                                                           f"  observed: {c['observed']}" for c in failed))
        ET.SubElement(case, "system-out").text = visible_lines("\n".join(
            f"{'PASS' if c['passed'] else 'FAIL'} {c['name']}: {c['observed']}" for c in phase["checks"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = ET.ElementTree(ET.Element("testsuites"))
    tree.getroot().append(suite)
    for key in ("tests", "failures", "errors", "time"):
        tree.getroot().set(key, suite.get(key))
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
