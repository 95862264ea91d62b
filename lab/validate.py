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


def topology_problems(topo: Topology, doc: Document) -> list[Problem]:
    nodes, where = _topology_rulesets(topo, doc)
    return _problems(nftcheck.check(nodes), where)


def scenario_problems(sc: LoadedScenario, doc: Document) -> list[Problem]:
    """Per node, the rulesets of each sequence a lab can go through (topology, then setup, fault,
    fix or partial fix, start; or a workshop's fault re-armed), in that order: one namespace per
    distinct sequence, all checked at once."""
    spec = sc.spec
    sequences: dict[str, tuple[list[str], list[nftcheck.Ruleset]]] = {}
    where_all: dict[str, tuple[Document, tuple]] = {}
    seen: set[tuple] = set()
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
            if (identity := (node, *(r.where for r in rulesets))) not in seen:
                seen.add(identity)
                sequences[f"{n}/{node}"] = (intfs, rulesets)
    return _problems(nftcheck.check(sequences), where_all)
