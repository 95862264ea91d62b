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

import copy
import re
from typing import Any

from lab.schema.errors import Problem
from lab.schema.merge import MergeError, merge_into
from lab.schema.topology import MAX_NODES
from lab.schema.yamlfile import MAX_VALUES, Document

MAX_COUNT = 100  # members of a group
MAX_GROUPS = 32
MAX_WRITTEN = MAX_VALUES  # values the groups write out: as many as a file may hold after YAML aliases
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


def _size(value: Any) -> int:
    """Values in a tree (each mapping key and each leaf counts one)."""
    if isinstance(value, dict):
        return 1 + sum(1 + _size(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_size(v) for v in value)
    return 1


def expand(data: dict[str, Any], doc: Document, problems: list[Problem]) -> dict[str, Any]:
    """The topology with its `repeat` groups written out, in time linear in what they write, and
    never more than MAX_WRITTEN values or MAX_NODES nodes in all."""
    groups = data.get("repeat")
    if groups is None:
        return data
    out = {k: v for k, v in data.items() if k != "repeat"}
    nodes, links, ipsec = out.get("nodes", {}), out.get("links", []), out.get("ipsec", {})
    if not (isinstance(nodes, dict) and isinstance(links, list) and isinstance(ipsec, dict)):
        return out  # the model reports what they should be
    out.update(nodes=dict(nodes), links=list(links), ipsec=copy.deepcopy(ipsec))
    if not isinstance(groups, list) or len(groups) > MAX_GROUPS:
        problems.append(doc.problem(("repeat",), f"expected a list of at most {MAX_GROUPS} groups; allowed: at most "
                                                 f"{MAX_GROUPS} groups of - {{count, nodes, links, ipsec}}"))
        return out
    written = 0
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
        template = {key: group.get(key, {} if key != "links" else []) for key in KEYS[1:]}
        if not isinstance(template["nodes"], dict) or not isinstance(template["links"], list) \
                or not isinstance(template["ipsec"], dict):
            problems.append(doc.problem(loc, "nodes and ipsec are mappings, links a list; allowed: those"))
            continue
        written += count * _size(template)
        nodes = len(out["nodes"]) + count * len(template["nodes"])
        if written > MAX_WRITTEN or nodes > MAX_NODES:
            what = f"{nodes} nodes" if nodes > MAX_NODES else f"more than {MAX_WRITTEN} values"
            limit = f"{MAX_NODES} nodes" if nodes > MAX_NODES else f"{MAX_WRITTEN} values"
            problems.append(doc.problem(loc + ("count",), f"the repeat groups write out {what} by this one; "
                                                          f"allowed: at most {limit}"))
            break
        for i in range(1, count + 1):
            member = _member(template, i)
            twice = set(member["nodes"]) & set(out["nodes"])
            if twice:
                problems.append(doc.problem(loc + ("nodes",), f"member {i} adds node '{sorted(twice)[0]}' that already "
                                                              "exists; allowed: names with {i} in them"))
                break
            out["nodes"].update(member["nodes"])
            out["links"] += member["links"]
            try:
                merge_into(out["ipsec"], member["ipsec"])
            except MergeError as exc:
                problems.append(doc.problem(loc + ("ipsec", *exc.path), str(exc)))
                break
    return out
