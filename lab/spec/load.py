"""Loading a scenario: YAML -> models -> topology and IPsec config merged -> references checked.

Everything is validated before anything is built; each problem names file, line,
key, what is wrong and what is allowed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from lab import paths
from lab.spec import yamlpos
from lab.spec.errors import Problem, SpecError
from lab.spec.ipsec import IpsecNode
from lab.spec.merge import deep_merge
from lab.spec.scenario import Scenario, ScenarioHead
from lab.pki import PkiSpec
from lab.transport.spec import TcpEncap
from lab.spec.topology import Param, References, Timer, Topology

M = TypeVar("M", bound=BaseModel)
_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class LoadedScenario:
    """A validated scenario with everything it refers to resolved."""

    spec: Scenario
    topology: Topology
    path: Path
    timers: dict[str, Timer]
    ipsec: dict[str, dict[str, Any]]  # per node, merged, timer references replaced
    pki: PkiSpec
    tcp_encap: dict[str, TcpEncap]
    topology_doc: yamlpos.Document

    @property
    def name(self) -> str:
        return self.spec.name


def _problems(doc: yamlpos.Document, exc: ValidationError, prefix: tuple = ()) -> list[Problem]:
    out = []
    for err in exc.errors():
        loc = prefix + tuple(err["loc"])
        if err["type"] == "unknown_key":
            loc = loc + (err["ctx"]["key"],)
        out.append(doc.problem(_clean(loc), err["msg"].removeprefix("Value error, ")))
    return out


def _clean(loc: tuple) -> tuple:
    """pydantic puts union tags (`nft`, `function-after[...]`) into paths; files have none."""
    cleaned: list = []
    for part in loc:
        if isinstance(part, str) and part.startswith(("function-", "tagged-union[")):
            continue
        if part in _TAGS and cleaned and isinstance(cleaned[-1], int):
            continue  # the tag pydantic inserts after a list index
        cleaned.append(part)
    return tuple(cleaned)


def _validate(model: type[M], doc: yamlpos.Document, data: Any, prefix: tuple = ()) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_problems(doc, exc, prefix)) from None


def _references_of(doc: yamlpos.Document) -> References:
    return _validate(References, doc, {k: doc.data[k] for k in ("timers", "params") if k in doc.data})


def _validate_resolved(model: type[M], doc: yamlpos.Document, values: dict[str, Any]) -> M:
    """`${...}` resolved everywhere but in the declarations themselves, then validated."""
    problems: list[Problem] = []
    own = ("timers", "params")
    data = _resolve(doc, {k: v for k, v in doc.data.items() if k not in own}, values, (), problems)
    if problems:
        raise SpecError(problems)
    return _validate(model, doc, {**data, **{k: doc.data[k] for k in own if k in doc.data}})


def load_topology(path: Path, values: dict[str, Any] | None = None) -> tuple[Topology, yamlpos.Document]:
    """`values` for `${...}`: the scenario's; alone, the topology's own timers and parameter defaults."""
    doc = yamlpos.load(path)
    if values is None:
        refs = _references_of(doc)
        values = {**{n: t.lab for n, t in refs.timers.items()}, **{n: p.default for n, p in refs.params.items()}}
    topo = _validate_resolved(Topology, doc, values)
    problems: list[Problem] = []
    for i, link in enumerate(topo.links):
        for j, end in enumerate(link.ends):
            if end.node not in topo.nodes:
                problems.append(doc.problem(("links", i, "ends", j, "node"),
                                            f"unknown node '{end.node}'; nodes: {', '.join(topo.nodes)}"))
    for i, link in enumerate(topo.links):
        if len(link.ends) > 2 and link.name in topo.nodes:
            problems.append(doc.problem(("links", i, "name"), f"'{link.name}' is also a node name; "
                                                              "a bridged segment needs a name of its own"))
    for name, node in topo.nodes.items():
        intfs = topo.interfaces(name)
        for intf in {i for i in intfs if intfs.count(i) > 1}:
            problems.append(doc.problem(("nodes", name), f"interface '{intf}' is used by more than one link"))
        if node.nat and node.role != "nat":
            problems.append(doc.problem(("nodes", name, "nat"), "only a node with role 'nat' can have 'nat'"))
        if node.nat and node.nat.outside not in intfs:
            problems.append(doc.problem(("nodes", name, "nat", "outside"),
                                        f"'{node.nat.outside}' is not an interface of {name}; interfaces: {', '.join(intfs)}"))
        for k, route in enumerate(node.routes):
            if route.dev and route.dev not in intfs:
                problems.append(doc.problem(("nodes", name, "routes", k, "dev"),
                                            f"'{route.dev}' is not an interface of {name}; interfaces: {', '.join(intfs)}"))
    problems += _ipsec_nodes(doc, topo, topo.ipsec, ())
    if problems:
        raise SpecError(problems)
    return topo, doc


def _ipsec_nodes(doc: yamlpos.Document, topo: Topology, ipsec: dict, prefix: tuple,
                 key: str = "ipsec") -> list[Problem]:
    gateways = [n for n, spec in topo.nodes.items() if spec.role == "ipsec"]
    return [doc.problem(prefix + (key, node),
                        f"'{node}' is not an IPsec gateway of topology '{topo.name}'; gateways: {', '.join(gateways) or 'none'}")
            for node in ipsec if node not in gateways]


def _resolve(doc: yamlpos.Document, data: Any, values: dict[str, Any], loc: tuple,
             problems: list[Problem]) -> Any:
    """`${name}`: a timer's lab value or a parameter. A value that is only a reference takes
    the referenced value's type; a reference inside a longer string is written into it."""
    if isinstance(data, dict):
        return {k: _resolve(doc, v, values, loc + (k,), problems) for k, v in data.items()}
    if isinstance(data, list):
        return [_resolve(doc, v, values, loc + (i,), problems) for i, v in enumerate(data)]
    if not isinstance(data, str) or "${" not in data:
        return data
    unknown = [n for n in _REF.findall(data) if n not in values]
    if unknown:
        problems.append(doc.problem(loc, f"unknown reference '${{{unknown[0]}}}'; timers and parameters: "
                                         f"{', '.join(values) or 'none'}"))
        return data
    whole = _REF.fullmatch(data)
    if whole:
        return values[whole.group(1)]
    return _REF.sub(lambda m: _text(values[m.group(1)]), data)


def _text(value: Any) -> str:
    """A value as written into text: a whole-second timer as `8`, not `8.0` (nft, sysctl)."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def find_scenario(name_or_path: str) -> Path:
    """A name from scenarios/, or a path to a scenario file anywhere."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return candidate
    path = paths.SCENARIOS / f"{name_or_path}.yaml"
    if not path.exists():
        raise SpecError([Problem(path, None, "", f"no scenario '{name_or_path}'; scenarios: {', '.join(scenario_names())}")])
    return path


def scenario_names() -> list[str]:
    return sorted(p.stem for p in paths.SCENARIOS.glob("*.yaml"))


def _topology_path(ref: str, scenario_path: Path) -> Path | None:
    for path in (scenario_path.parent / ref, paths.TOPOLOGIES / f"{ref}.yaml", paths.TOPOLOGIES / ref):
        if path.is_file():
            return path
    return None


def load_scenario(name_or_path: str | Path, params: dict[str, str] | None = None) -> LoadedScenario:
    """`params` override the scenario's declared parameters (`lab run --param port=10443`)."""
    path = find_scenario(str(name_or_path))
    doc = _extended(yamlpos.load(path), params)
    head = _validate(ScenarioHead, doc, {k: doc.data[k] for k in ScenarioHead.model_fields if k in doc.data})
    topo_path = _topology_path(head.topology, path)
    if topo_path is None:
        known = ", ".join(sorted(p.stem for p in paths.TOPOLOGIES.glob("*.yaml")))
        raise SpecError([doc.problem(("topology",), f"no topology '{head.topology}' (neither a file next to the "
                                                    f"scenario nor in topologies/: {known})")])
    topo_refs = _references_of(yamlpos.load(topo_path))
    timers = {**topo_refs.timers, **head.timers}
    declared = {**topo_refs.params, **head.params}
    values: dict[str, Any] = {name: t.lab for name, t in timers.items()}
    values.update(_param_values(doc, declared, params or {}))
    topo, topo_doc = load_topology(topo_path, values)

    spec = _validate_resolved(Scenario, doc, values)
    problems: list[Problem] = []
    if path.parent.resolve() == paths.SCENARIOS.resolve() and spec.name != path.stem:
        raise SpecError([doc.problem(("name",), f"'{spec.name}' differs from the file name; scenarios/ "
                                                f"files are named after their scenario: {path.stem}")])

    def merged(key: str, node: str) -> tuple[dict[str, Any], yamlpos.Document]:
        base = getattr(topo, key).get(node, {})
        over = getattr(spec, key).get(node, {})
        return deep_merge(base, over), (doc if node in getattr(spec, key) else topo_doc)

    problems += _ipsec_nodes(doc, topo, spec.ipsec, ())
    problems += _ipsec_nodes(doc, topo, spec.tcp_encap, (), key="tcp_encap")
    problems += _ipsec_nodes(topo_doc, topo, topo.tcp_encap, (), key="tcp_encap")
    gateways = [n for n, s in topo.nodes.items() if s.role == "ipsec"]
    ipsec = {node: merged("ipsec", node) for node in gateways}
    encap = {node: merged("tcp_encap", node) for node in {*topo.tcp_encap, *spec.tcp_encap} if node in gateways}
    if problems:
        raise SpecError(problems)
    for node, (raw, where) in ipsec.items():
        _validate(IpsecNode, where, raw, ("ipsec", node))
    tcp_encap = {node: _validate(TcpEncap, where, raw, ("tcp_encap", node)) for node, (raw, where) in encap.items()}

    pki = PkiSpec(cas={**topo.pki.cas, **spec.pki.cas}, certs={**topo.pki.certs, **spec.pki.certs})
    loaded = LoadedScenario(spec, topo, path, timers, {n: raw for n, (raw, _) in ipsec.items()}, pki, tcp_encap,
                            topo_doc)
    problems += _references(doc, loaded)
    if problems:
        raise SpecError(problems)
    return loaded


def _extended(doc: yamlpos.Document, params: dict[str, str] | None) -> yamlpos.Document:
    """`extends: other-scenario`: this file's keys over the other's (see deep_merge)."""
    ref = doc.data.get("extends")
    if ref is None:
        return doc
    parent_path = doc.path.parent / str(ref) if str(ref).endswith((".yaml", ".yml")) else paths.SCENARIOS / f"{ref}.yaml"
    if not parent_path.is_file():
        raise SpecError([doc.problem(("extends",), f"no scenario '{ref}' to extend; scenarios: {', '.join(scenario_names())}")])
    load_scenario(parent_path)  # the parent must be valid on its own, its errors in its file
    parent = _extended(yamlpos.load(parent_path), params)
    own = {k: v for k, v in doc.data.items() if k != "extends"}
    return yamlpos.Extended(doc, parent, deep_merge(parent.data, own))


def _param_values(doc: yamlpos.Document, declared: dict[str, Param], overrides: dict[str, str]) -> dict[str, Any]:
    values = {name: p.default for name, p in declared.items()}
    for name, text in overrides.items():
        if name not in declared:
            raise SpecError([doc.problem(("params",), f"no parameter '{name}'; parameters: "
                                                      f"{', '.join(declared) or 'none'}")])
        try:
            values[name] = type(declared[name].default)(text)
        except ValueError:
            raise SpecError([doc.problem(("params", name), f"'{text}' is not a valid {name} "
                                                           f"(like the default, {declared[name].default!r})")]) from None
    return values


def _references(doc: yamlpos.Document, sc: LoadedScenario) -> list[Problem]:
    topo, spec = sc.topology, sc.spec
    problems: list[Problem] = []
    nodes = ", ".join(topo.nodes)

    def node_ok(loc: tuple, node: str, roles: set[str] | None) -> bool:
        if node not in topo.nodes:
            problems.append(doc.problem(loc, f"unknown node '{node}'; nodes: {nodes}"))
            return False
        if roles and topo.nodes[node].role not in roles:
            fitting = ", ".join(n for n, s in topo.nodes.items() if s.role in roles)
            problems.append(doc.problem(loc, f"node '{node}' is a {topo.nodes[node].role}; this needs one of: {fitting}"))
            return False
        return True

    for i, cap in enumerate(spec.captures):
        if node_ok(("captures", i, "node"), cap.node, None) and cap.intf not in topo.interfaces(cap.node):
            problems.append(doc.problem(("captures", i, "intf"), f"'{cap.intf}' is not an interface of {cap.node}; "
                                                                 f"interfaces: {', '.join(topo.interfaces(cap.node))}"))
    capture_names = [c.name for c in spec.captures]

    def where(loc: tuple) -> yamlpos.Document:
        """The file that wrote this key: the scenario, else its topology."""
        return doc if doc.has(loc) else sc.topology_doc

    for node, raw in sc.ipsec.items():
        problems += _credentials(where(("ipsec", node)), ("ipsec", node), IpsecNode.model_validate(raw), sc)
    for node, encap in sc.tcp_encap.items():
        problems += _relay_ports(where, node, IpsecNode.model_validate(sc.ipsec[node]), encap)

    # Walk the steps in the order a fix phase applies them, so each swanctl patch is
    # validated against the configuration it will really meet.
    config = {n: dict(raw) for n, raw in sc.ipsec.items()}
    broken: set[str] = set()  # reported once, at the step that broke it
    for section, steps in (("fault", spec.fault.steps), ("fix", spec.fix.steps), ("start", spec.start)):
        for i, step in enumerate(steps):
            loc = (section, "steps", i) if section != "start" else (section, i)
            if not all([node_ok(loc + field, node, roles) for field, node, roles in step.refs()]) \
                    or step.node in broken:
                continue
            if step.kind == "swanctl":
                config[step.node] = deep_merge(config[step.node], step.set)
                try:
                    patched = IpsecNode.model_validate(config[step.node])
                except ValidationError as exc:
                    problems += _problems(doc, exc, loc + ("set",))
                    broken.add(step.node)
                else:
                    problems += _credentials(doc, loc + ("set",), patched, sc)
            if step.kind in ("initiate", "terminate"):
                problems += _sa_refs(doc, loc, IpsecNode.model_validate(config[step.node]), step.ike, step.child)

    monitors = [s.name for s in spec.start if s.kind == "monitor"]
    for section in ("symptoms", "healthy"):
        for i, check in enumerate(getattr(spec, section)):
            for field, node, roles in check.refs():
                node_ok((section, i) + field, node, roles)
            if check.kind == "outage" and check.monitor not in monitors:
                problems.append(doc.problem((section, i, "monitor"), f"unknown monitor '{check.monitor}'; monitor steps "
                                                                     f"in start: {', '.join(monitors) or 'none'}"))
            if check.kind == "capture" and check.capture not in capture_names:
                problems.append(doc.problem((section, i, "capture"), f"unknown capture '{check.capture}'; "
                                                                     f"captures: {', '.join(capture_names) or 'none'}"))
            if check.kind == "tunnel" and check.node in sc.ipsec:
                problems += _sa_refs(doc, (section, i), IpsecNode.model_validate(sc.ipsec[check.node]),
                                     check.ike, check.child)
    return problems


def _credentials(doc: yamlpos.Document, loc: tuple, node: IpsecNode, sc: LoadedScenario) -> list[Problem]:
    """Certificates and CAs a node names must exist in the scenario's `pki`."""
    certs, cas = node.credential_refs()
    unknown = [f"certificate '{c}'" for c in sorted(certs - set(sc.pki.certs))]
    unknown += [f"CA '{c}'" for c in sorted(cas - set(sc.pki.cas))]
    if not unknown:
        return []
    allowed = f"pki certs: {', '.join(sc.pki.certs) or 'none'}; pki cas: {', '.join(sc.pki.cas) or 'none'}"
    return [doc.problem(loc, f"unknown {', '.join(unknown)}; {allowed}")]


def _relay_ports(where, node: str, ipsec: IpsecNode, encap: TcpEncap) -> list[Problem]:
    """charon must use the ports the relay expects, or a relayed tunnel silently never comes up."""
    problems = []
    loc = ("ipsec", node, "charon", "port_nat_t")
    if ipsec.charon.port_nat_t != encap.charon_port:
        problems.append(where(loc).problem(loc,
                                    f"{node} relays IKE over TCP: charon.port_nat_t must be tcp_encap.charon_port "
                                    f"({encap.charon_port}), not {ipsec.charon.port_nat_t}"))
    relays = {t.relay for t in encap.tunnels}
    for name, conn in ipsec.connections.items():
        loc = ("ipsec", node, "connections", name)
        if relays & set(conn.remote_addrs) and (conn.local_port, conn.remote_port) != (encap.charon_port, encap.relay_port):
            problems.append(where(loc).problem(loc,
                                        f"connection to a relay address needs local_port {encap.charon_port} and "
                                        f"remote_port {encap.relay_port} (tcp_encap), not {conn.local_port}/{conn.remote_port}"))
    return problems


def _sa_refs(doc: yamlpos.Document, loc: tuple, node: IpsecNode, ike: str | None, child: str | None) -> list[Problem]:
    if ike and ike not in node.connections:
        return [doc.problem(loc + ("ike",), f"no connection '{ike}'; connections: {', '.join(node.connections) or 'none'}")]
    children = {c for conn in node.connections.values() for c in conn.children}
    if ike:
        children = set(node.connections[ike].children)
    if child and child not in children:
        return [doc.problem(loc + ("child",), f"no child '{child}'; children: {', '.join(sorted(children)) or 'none'}")]
    return []


from lab.checks import CHECKS  # noqa: E402
from lab.steps import STEPS  # noqa: E402

_TAGS = set(STEPS) | set(CHECKS)
