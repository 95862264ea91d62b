"""Loading a scenario: file -> `${}` resolved -> models -> topology and gateways merged -> references.

Stages as netlab has them: each collects all of its problems before the next one runs, and
nothing is built from a file that has any. Every problem names file, line, key, what is
wrong and what is allowed. Each gateway's settings are validated once, here, and carried
as a typed model from then on.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from lab.schema import locate, repeat, yamlfile
from lab.schema.errors import InputError, Problem
from lab.schema.gateway import GatewayConfig
from lab.schema.ike import NAT_T_PORT
from lab.schema.kinds import CHECKS, STEPS
from lab.schema.merge import MergeError, deep_merge
from lab.schema.pki import Pki
from lab.schema.references import only_gateways, scenario_problems, topology_problems
from lab.schema.relay import TcpEncap
from lab.schema.resolve import param_values, resolve
from lab.schema.scenario import Scenario, ScenarioHead
from lab.schema.topology import References, Timer, Topology
from lab.schema.yamlfile import Document

M = TypeVar("M", bound=BaseModel)
OWN_REFERENCES = ("timers", "params")
MAX_EXTENDS = 8


@dataclass
class LoadedScenario:
    """A validated scenario with everything it refers to resolved and typed."""

    spec: Scenario
    topology: Topology
    path: Path
    timers: dict[str, Timer]
    gateways: dict[str, GatewayConfig]  # topology's set-up with the scenario's over it
    pki: Pki
    tcp_encap: dict[str, TcpEncap]
    topology_doc: Document
    doc: Document  # the scenario file (merged over what it extends)
    params: dict[str, str]  # the parameter values given (lab run --param), to load it again elsewhere

    @property
    def name(self) -> str:
        return self.spec.name

    def nat_t_ports(self) -> frozenset[int]:
        """Every port a gateway of this scenario may carry ESP-in-UDP on."""
        return frozenset({NAT_T_PORT}.union(*(g.nat_t_ports() for g in self.gateways.values())))


# -- pydantic errors as file:line problems -----------------------------------------------

def pydantic_problems(doc: Document, exc: ValidationError, prefix: tuple = ()) -> list[Problem]:
    out = []
    for err in exc.errors():
        loc = prefix + _clean(tuple(err["loc"]))
        if err["type"] == "missing_kind" and isinstance(err.get("input"), dict) and "kind" in err["input"]:
            loc += ("kind",)
        out.append(doc.problem(loc, _message(err)))
    return sorted(out, key=lambda p: (str(p.file), p.line or 0))


def _message(err: dict) -> str:
    """pydantic's message in the form every problem has: what is wrong; allowed: what may be."""
    kind, ctx, given = err["type"], err.get("ctx") or {}, _given(err.get("input"))
    bounds = {"less_than_equal": f"at most {ctx.get('le')}", "less_than": f"less than {ctx.get('lt')}",
              "greater_than_equal": f"at least {ctx.get('ge')}", "greater_than": f"more than {ctx.get('gt')}"}
    if kind in bounds:
        return f"{given} is out of range; allowed: {bounds[kind]}"
    if kind == "literal_error":
        return f"{given} is not one of the choices; allowed: {ctx.get('expected')}"
    if kind == "missing":
        return "required, but missing; allowed: a value for this key"
    if kind == "missing_kind" and isinstance(err.get("input"), dict) and "kind" in err["input"]:
        return err["msg"].replace("missing 'kind'", f"unknown kind {_given(err['input']['kind'])}")
    if kind in ("too_short", "too_long"):
        limit = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        given = err.get("input")
        count = ctx.get("actual_length") if ctx.get("actual_length") is not None else \
            len(given) if isinstance(given, (dict, list)) else "so many"
        return f"{count} items; allowed: {'at least' if kind == 'too_short' else 'at most'} {limit}"
    simple = {"int_parsing": "a whole number", "int_type": "a whole number", "int_from_float": "a whole number",
              "bool_parsing": "true or false", "bool_type": "true or false", "string_type": "text",
              "float_parsing": "a number", "float_type": "a number", "finite_number": "a finite number",
              "dict_type": "a mapping of keys", "model_type": "a mapping of keys", "list_type": "a list",
              "model_attributes_type": "a mapping of keys"}
    if kind in simple:
        return f"{given} is not {simple[kind]}; allowed: {simple[kind]}"
    return err["msg"].removeprefix("Value error, ")


def _given(value: Any) -> str:
    text = repr(value) if not isinstance(value, (dict, list)) else ("a mapping" if isinstance(value, dict) else "a list")
    return text if len(text) <= 62 else text[:60] + "..."


def _clean(loc: tuple) -> tuple:
    """pydantic puts union tags (`nft`, `function-after[...]`) into paths; files have none."""
    cleaned: list = []
    for part in loc:
        if isinstance(part, str) and (part.startswith(("function-", "tagged-union[")) or part == "[key]"):
            continue
        if isinstance(part, str) and part in _tags() and cleaned and isinstance(cleaned[-1], int):
            continue  # the tag pydantic inserts after a list index
        cleaned.append(part)
    return tuple(cleaned)


def _tags() -> set[str]:
    return set(STEPS.discover()) | set(CHECKS.discover())


def _validate(model: type[M], doc: Document, data: Any, prefix: tuple = ()) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(pydantic_problems(doc, exc, prefix)) from None


def _validate_resolved(model: type[M], doc: Document, values: dict[str, Any], transform=None) -> M:
    """`${...}` resolved everywhere but in the declarations themselves, `transform`ed (a topology's
    repeated groups written out), then validated."""
    problems: list[Problem] = []
    data = resolve(doc, {k: v for k, v in doc.data.items() if k not in OWN_REFERENCES}, values, (), problems)
    if transform is not None and not problems:
        data = transform(data, doc, problems)
    if problems:
        raise InputError(problems)
    return _validate(model, doc, {**data, **{k: doc.data[k] for k in OWN_REFERENCES if k in doc.data}})


def _declared(doc: Document) -> References:
    return _validate(References, doc, {k: doc.data[k] for k in OWN_REFERENCES if k in doc.data})


# -- topologies -----------------------------------------------------------------------------

def load_topology(path: Path | Document, values: dict[str, Any] | None = None) -> tuple[Topology, Document]:
    """`values` for `${...}`: the scenario's; alone, the topology's own timers and parameter defaults.
    A Document is a file already read (each file is read once)."""
    doc = path if isinstance(path, Document) else yamlfile.load(path)
    if values is None:
        refs = _declared(doc)
        values = {**{n: t.lab for n, t in refs.timers.items()}, **{n: p.default for n, p in refs.params.items()}}
    topo = _validate_resolved(Topology, doc, values, repeat.expand)
    problems = topology_problems(doc, topo)
    if problems:
        raise InputError(problems)
    return topo, doc


# -- scenarios ------------------------------------------------------------------------------

def load_scenario(name_or_path: str | Path | Document, params: dict[str, str] | None = None) -> LoadedScenario:
    """`params` override the scenario's declared parameters (`lab run --param port=10443`). A
    Document is a scenario file already read (each file is read once)."""
    if isinstance(name_or_path, Document):
        files = {name_or_path.path.resolve(): name_or_path}
        return _load(name_or_path.path, params or {}, (), files)
    return _load(locate.find_scenario(str(name_or_path)), params or {}, (), {})


def _read(path: Path, files: dict[Path, Document]) -> Document:
    """A file of this load, read once however often it is named (a parent and its child share a topology)."""
    key = path.resolve()
    if key not in files:
        files[key] = yamlfile.load(path)
    return files[key]


def _load(path: Path, params: dict[str, str], chain: tuple[Path, ...], files: dict[Path, Document]) -> LoadedScenario:
    doc = _extended(_read(path, files), chain + (path.resolve(),), files)
    head = _validate(ScenarioHead, doc, {k: doc.data[k] for k in ScenarioHead.model_fields if k in doc.data})
    topo_path = locate.named_file(head.topology, doc.path, locate.topologies())
    if topo_path is None:
        raise InputError([doc.problem(("topology",), "no such topology; allowed: a name in topologies/ ("
                                      f"{', '.join(locate.topology_names())}) or a relative .yaml path inside the "
                                      "scenario's folder or topologies/")])
    topo_file = _read(topo_path, files)
    topo_refs = _declared(topo_file)
    timers = {**topo_refs.timers, **head.timers}
    values: dict[str, Any] = {name: t.lab for name, t in timers.items()}
    values.update(param_values(doc, {**{n: (p, topo_file) for n, p in topo_refs.params.items()},
                                **{n: (p, doc) for n, p in head.params.items()}}, params))
    topo, topo_doc = load_topology(topo_file, values)

    spec = _validate_resolved(Scenario, doc, values)
    if spec.name != path.stem and locate.in_search_path(path):
        raise InputError([doc.problem(("name",), f"'{spec.name}' differs from the file name; allowed: "
                                                 f"{path.stem} (a scenario found by name is named after its file)")])
    problems = only_gateways(doc, topo, spec.ipsec, "ipsec") + only_gateways(doc, topo, spec.tcp_encap, "tcp_encap")
    if problems:
        raise InputError(problems)

    def where(loc: tuple) -> Document:
        """The file that wrote this key: the scenario, else its topology."""
        return doc if doc.has(loc) else topo_doc

    gateways: dict[str, GatewayConfig] = {}
    tcp_encap: dict[str, TcpEncap] = {}
    for node in topo.gateways():
        for key, model, into in (("ipsec", GatewayConfig, gateways), ("tcp_encap", TcpEncap, tcp_encap)):
            try:
                raw = deep_merge(getattr(topo, key).get(node, {}), getattr(spec, key).get(node, {}))
            except MergeError as exc:
                problems.append(where((key, node, *exc.path)).problem((key, node, *exc.path), str(exc)))
                continue
            if key == "ipsec" or raw:
                try:
                    into[node] = model.model_validate(raw)
                except ValidationError as exc:
                    problems += pydantic_problems(where((key, node)), exc, (key, node))
    if problems:
        raise InputError(problems)
    try:
        pki = Pki(cas={**topo.pki.cas, **spec.pki.cas}, certs={**topo.pki.certs, **spec.pki.certs})
    except ValidationError as exc:  # each part is valid alone; together they may not be
        raise InputError([doc.problem(("pki",), f"the topology's pki and the scenario's together: "
                                                f"{_message(e)}") for e in exc.errors()]) from None
    loaded = LoadedScenario(spec, topo, path, timers, gateways, pki, tcp_encap, topo_doc, doc, params)
    problems = scenario_problems(doc, loaded, where)
    if problems:
        raise InputError(problems)
    return loaded


def _extended(doc: Document, chain: tuple[Path, ...], files: dict[Path, Document]) -> Document:
    """`extends: other-scenario`: this file's keys over the other's (see deep_merge). The other
    must be valid on its own (its problems are reported in its own file); a cycle is named."""
    ref = doc.data.get("extends")
    if ref is None:
        return doc
    by_name = [doc.path.parent, *locate.search_path()]  # its own folder first: a catalogue file extends the catalogue's
    parent_path = locate.named_file(str(ref), doc.path, locate.catalogue(), by_name) if isinstance(ref, str) else None
    if parent_path is None:
        raise InputError([doc.problem(("extends",), "no such scenario to extend; allowed: a name in the scenario's "
                                                    f"folder or the catalogue ({', '.join(locate.scenario_names())}) or "
                                                    "a relative .yaml path inside the scenario's folder")])
    if parent_path.resolve() in chain or len(chain) > MAX_EXTENDS:
        names = " -> ".join(p.name for p in (*chain, parent_path.resolve()))
        raise InputError([doc.problem(("extends",), f"extends goes round in a circle ({names}) or deeper than "
                                                    f"{MAX_EXTENDS}; allowed: a chain that ends")])
    parent = _load(parent_path, {}, chain, files).doc  # valid on its own
    own = {k: v for k, v in doc.data.items() if k != "extends"}
    try:
        return yamlfile.Extended(doc, parent, deep_merge(parent.data, own))
    except MergeError as exc:
        raise InputError([doc.problem(exc.path, str(exc))]) from None


def is_topology(path: Path | Document) -> bool:
    """What `lab validate` was given: a topology file has nodes and no fault."""
    data = (path if isinstance(path, Document) else yamlfile.load(path)).data
    return "nodes" in data and "fault" not in data and "extends" not in data
