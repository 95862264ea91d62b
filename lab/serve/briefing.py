"""`python -m lab.serve.briefing PATH [NAME=VALUE...]`: what `lab serve` needs of a seat's
scenario, as one JSON object on standard output.

`lab serve` runs as root, and a seat's scenario path is the trainee's word (its state file):
root never opens it. This runs as the trainee (lab.sandbox.runas), so it reads only what the
trainee may read, and its output is parsed as hostile input (lab.serve.briefing.Briefing).
"""
from __future__ import annotations

import json
import sys
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Prose = Annotated[str, StringConstraints(max_length=8000)]
Short = Annotated[str, StringConstraints(max_length=200)]


class Texts(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    en: Prose
    zh: Prose


class Vendor(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    platform: Short
    commands: Prose


class Answer(BaseModel):
    """The fault or the fix: the trainer's page only."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    summary: Texts
    vendor: Annotated[list[Vendor], Field(max_length=20)] = []


class Briefing(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    name: Short
    title: Texts
    brief: Texts
    task: Texts | None = None
    hints: Annotated[list[Texts], Field(max_length=50)] = []
    fault: Answer
    fix: Answer
    nat_t_ports: Annotated[list[int], Field(max_length=100)] = [4500]
    # address -> (node, interface, column): how a live capture's ladder names its columns
    owners: Annotated[dict[Short, tuple[Short, Short, int]], Field(max_length=5000)] = {}


def briefing(path: str, params: dict[str, str]) -> dict:
    from lab.report import ladder, topology_svg
    from lab.schema.load import load_scenario

    sc = load_scenario(path, params)
    spec = sc.spec
    column = topology_svg.ranks(sc.topology)
    owners = ladder.owners((a, end.node, end.intf, column[end.node])
                           for link in sc.topology.links for end in link.ends for a in end.addr)

    def answer(part) -> dict:
        return {"summary": part.summary.model_dump(), "vendor": [v.model_dump() for v in part.vendor]}
    return {"name": sc.name, "title": spec.title.model_dump(), "brief": spec.brief.model_dump(),
            "task": spec.task.model_dump() if spec.task else None, "hints": [h.model_dump() for h in spec.hints],
            "fault": answer(spec.fault), "fix": answer(spec.fix), "nat_t_ports": sorted(sc.nat_t_ports()),
            "owners": owners}


def main(argv: list[str]) -> None:
    params = dict(p.split("=", 1) for p in argv[1:] if "=" in p)
    print(json.dumps(briefing(argv[0], params), ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1:])
