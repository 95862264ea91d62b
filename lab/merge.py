"""`lab merge`: the results of CI shards (lab run --all --shard K/N) as one: every scenario's
folder side by side, one JUnit file, one index page linking each scenario's report."""
from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

from lab import junit


def merge(shards: list[Path], out: Path) -> list[dict]:
    """Copy each shard's scenario folders into `out`; a scenario found twice is refused."""
    docs: list[dict] = []
    out.mkdir(parents=True, exist_ok=True)
    for shard in shards:
        for result in sorted(shard.glob("*/result.json")):
            doc = json.loads(result.read_text())
            if any(d["scenario"] == doc["scenario"] for d in docs):
                raise ValueError(f"{doc['scenario']} is in more than one shard ({result})")
            target = out / result.parent.name
            if target.resolve() != result.parent.resolve():
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(result.parent, target)
            docs.append(doc)
    docs.sort(key=lambda d: d["scenario"])
    junit.write(docs, out / "junit.xml")
    (out / "index.html").write_text(index(docs))
    return docs


def index(docs: list[dict]) -> str:
    rows = []
    for doc in docs:
        found = [p.get("diagnosis") or {} for p in doc["phases"] if p["name"] == "fault"]
        diagnosis = found[0].get("class") or found[0].get("verdict", "") if found else ""
        rows.append(f"<tr class=\"{'pass' if doc['passed'] else 'fail'}\"><td><a href=\"{html.escape(doc['scenario'])}/"
                    f"report.html\">{html.escape(doc['scenario'])}</a></td><td>{'PASSED' if doc['passed'] else 'FAILED'}"
                    f"</td><td>{doc['duration_s']:.1f} s</td><td>{html.escape(str(diagnosis))}</td>"
                    f"<td>{html.escape(doc['title']['en'])} / {html.escape(doc['title']['zh'])}</td></tr>")
    passed = sum(d["passed"] for d in docs)
    return ("<!doctype html><meta charset=\"utf-8\"><title>ipsec-lab results</title><style>"
            "body{font-family:sans-serif;margin:2em}td{padding:.3em .8em;border-bottom:1px solid #ddd}"
            ".fail td:nth-child(2){color:#b00;font-weight:bold}.pass td:nth-child(2){color:#070}</style>"
            f"<h1>ipsec-lab: {passed}/{len(docs)} scenarios passed</h1><table><tr><th>scenario</th><th>verdict</th>"
            "<th>time</th><th>diagnosis (fault phase)</th><th>title</th></tr>" + "".join(rows) + "</table>\n")
