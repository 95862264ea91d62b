"""Repeated groups in a topology: many branches written once.

    repeat:
      - count: ${spokes}            # 1 to 100
        nodes: {"br{i}": {...}}     # {i}, {i+10}, {4*i-2}: the member's number in any string or key
        links: [...]
        ipsec: {"br{i}": {...}, hq: {connections: {"branch{i}": {...}}, secrets+: [...]}}

Members are numbered from 1 and written into the topology before it is validated, so each is
checked like any node written by hand; `ipsec` entries merge into the gateways' set-up (use
`key+:` to append to a list, as in scenarios).
"""
from __future__ import annotations

import re
from typing import Any

from lab.schema.errors import Problem
from lab.schema.merge import deep_merge
from lab.schema.yamlfile import Document

MAX_COUNT = 100
KEYS = ("count", "nodes", "links", "ipsec")
_INDEX = re.compile(r"\{(?:(\d{1,4})\*)?i(?:([+-])(\d{1,5}))?\}")


def _number(match: re.Match, i: int) -> str:
    value = int(match.group(1) or 1) * i
    if match.group(2):
        value += int(match.group(3)) * (1 if match.group(2) == "+" else -1)
    return str(value)


def _member(template: Any, i: int) -> Any:
    if isinstance(template, dict):
        return {_member(k, i): _member(v, i) for k, v in template.items()}
    if isinstance(template, list):
        return [_member(v, i) for v in template]
    if isinstance(template, str):
        return _INDEX.sub(lambda m: _number(m, i), template)
    return template


def expand(data: dict[str, Any], doc: Document, problems: list[Problem]) -> dict[str, Any]:
    """The topology with its `repeat` groups written out."""
    groups = data.get("repeat")
    if groups is None:
        return data
    out = {k: v for k, v in data.items() if k != "repeat"}
    out.setdefault("nodes", {})
    out.setdefault("links", [])
    out.setdefault("ipsec", {})
    if not isinstance(groups, list):
        problems.append(doc.problem(("repeat",), "expected a list of groups; allowed: - {count, nodes, links, ipsec}"))
        return out
    for k, group in enumerate(groups):
        loc = ("repeat", k)
        if not isinstance(group, dict) or set(group) - set(KEYS):
            problems.append(doc.problem(loc, f"a group has keys {', '.join(KEYS)}; allowed: those keys only"))
            continue
        count = group.get("count")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
            problems.append(doc.problem(loc + ("count",), f"{count!r:.40} members; allowed: a whole number from 1 to "
                                                          f"{MAX_COUNT}"))
            continue
        for i in range(1, count + 1):
            member = _member({key: group.get(key, {} if key != "links" else []) for key in KEYS[1:]}, i)
            twice = set(member["nodes"]) & set(out["nodes"])
            if twice:
                problems.append(doc.problem(loc + ("nodes",), f"member {i} adds node '{sorted(twice)[0]}' that already "
                                                              "exists; allowed: names with {i} in them"))
                break
            out["nodes"] = {**out["nodes"], **member["nodes"]}
            out["links"] = [*out["links"], *member["links"]]
            out["ipsec"] = deep_merge(out["ipsec"], member["ipsec"])
    return out
