"""What `lab validate` (and every run, before building) checks beyond the files' own grammar:
nftables rulesets, loaded by nft itself in a throwaway namespace (lab.nftcheck)."""
from __future__ import annotations

from lab import nftcheck
from lab.schema.errors import Problem
from lab.schema.load import LoadedScenario
from lab.schema.topology import Topology
from lab.schema.yamlfile import Document
from lab.steps.network import NftStep


def _topology_rulesets(topo: Topology, doc: Document) -> tuple[dict, dict]:
    nodes: dict[str, tuple[list[str], list[nftcheck.Ruleset]]] = {}
    where: dict[str, tuple[Document, tuple]] = {}
    for name, node in topo.nodes.items():
        rulesets = []
        if node.nft:
            where[key := f"{name}/nft"] = (doc, ("nodes", name, "nft"))
            rulesets.append(nftcheck.Ruleset(key, node.nft))
        if node.nat:
            where[key := f"{name}/nat"] = (doc, ("nodes", name, "nat"))
            rulesets.append(nftcheck.Ruleset(key, node.nat.ruleset()))
        nodes[name] = (topo.interfaces(name), rulesets)
    return nodes, where


def _problems(complaints: dict[str, str], where: dict[str, tuple[Document, tuple]]) -> list[Problem]:
    return [where[key][0].problem(where[key][1], f"nft refuses this ruleset: {text}; allowed: a ruleset nft loads "
                                                 "on this node at this point of the phase")
            for key, text in complaints.items()]


# Namespaces checked at once: each is a Python process (about 20 MB) with an nft in it.
BATCH = 8
# Each namespace costs about 30 ms of a 2-core machine's time (a process, ip, nft): 399 nodes with
# rulesets of their own took 12.7 s. Nodes that load the same rulesets on the same interface
# names count once (a hundred NAT routers of one topology).
MAX_NAMESPACES = 64


def _check(sequences: dict[str, tuple[list[str], list[nftcheck.Ruleset]]],
           where: dict[str, tuple[Document, tuple]]) -> list[Problem]:
    """Each distinct sequence (interface names and ruleset texts) once, BATCH namespaces at a time."""
    distinct: dict[tuple, str] = {}
    for key, (intfs, rulesets) in sequences.items():
        if rulesets:
            distinct.setdefault((tuple(intfs), tuple(r.text for r in rulesets)), key)
    chosen = [(key, sequences[key]) for key in distinct.values()]
    if len(chosen) > MAX_NAMESPACES:
        first = chosen[MAX_NAMESPACES][1][1][0].where
        return [where[first][0].problem(where[first][1], f"checking the nft rulesets needs {len(chosen)} throwaway "
                                                         "namespaces (one per node and phase with rulesets of its "
                                                         f"own), from here on; allowed: at most {MAX_NAMESPACES}")]
    complaints: dict[str, str] = {}
    for start in range(0, len(chosen), BATCH):
        complaints.update(nftcheck.check(dict(chosen[start:start + BATCH])))
    return _problems(complaints, where)


def topology_problems(topo: Topology, doc: Document) -> list[Problem]:
    nodes, where = _topology_rulesets(topo, doc)
    return _check(nodes, where)


def scenario_problems(sc: LoadedScenario, doc: Document) -> list[Problem]:
    """Per node, the rulesets of each sequence a lab can go through (topology, then setup, fault,
    fix or partial fix, start; or a workshop's fault re-armed), in that order: one namespace per
    distinct sequence."""
    spec = sc.spec
    sequences: dict[str, tuple[list[str], list[nftcheck.Ruleset]]] = {}
    where_all: dict[str, tuple[Document, tuple]] = {}
    for n, sections in enumerate(spec.walks()):
        nodes, where = _topology_rulesets(sc.topology, sc.topology_doc)
        for section in sections:
            for i, step in enumerate(spec.steps(section)):
                if isinstance(step, NftStep):
                    loc = (section, i) if section in ("setup", "start") else (section, "steps", i)
                    where[key := f"{section}/{i}"] = (doc, (*loc, "ruleset"))
                    nodes[step.node][1].append(nftcheck.Ruleset(key, step.ruleset))
        where_all.update(where)
        for node, (intfs, rulesets) in nodes.items():
            sequences[f"{n}/{node}"] = (intfs, rulesets)
    return _check(sequences, where_all)


def strict_problems(sc: LoadedScenario, doc: Document) -> list[Problem]:
    """`lab validate --strict`, the catalogue's rule: a scenario says what `lab diagnose` must name
    from its fault phase (and from its partial fix's), so a run checks the diagnosis too."""
    allowed = ("allowed: {step: N, class: NAME}, the fault class lab diagnose names from this phase "
               "(lab run shows what it names)")
    problems = []
    if sc.spec.diagnosis is None:
        problems.append(doc.problem(("diagnosis",), f"required with --strict, but missing; {allowed}"))
    if sc.spec.partial_fix and sc.spec.partial_fix.diagnosis is None:
        problems.append(doc.problem(("partial_fix", "diagnosis"), f"required with --strict, but missing; {allowed} "
                                                                  "or healthy"))
    return problems
