"""Cross-references: every name a file uses must exist, with the role it needs.

Each problem is collected (all of a file's problems are reported together); the kinds say
what they refer to (lab.schema.refs), so this module has no branch per step or check kind.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from pydantic import ValidationError

from lab.schema.errors import Problem
from lab.schema.gateway import GatewayConfig
from lab.schema.refs import CaptureRef, ConfigPatch, InterfaceRef, MonitorRef, NodeRef, Ref, SaRef
from lab.schema.relay import TcpEncap
from lab.schema.topology import Topology
from lab.schema.yamlfile import Document

if TYPE_CHECKING:
    from lab.schema.load import LoadedScenario

# Where a key was written: the scenario, else its topology.
Locator = Callable[[tuple], Document]


def topology_problems(doc: Document, topo: Topology) -> list[Problem]:
    problems: list[Problem] = []
    for i, link in enumerate(topo.links):
        for j, end in enumerate(link.ends):
            if end.node not in topo.nodes:
                problems.append(doc.problem(("links", i, "ends", j, "node"),
                                            f"unknown node '{end.node}'; allowed: {', '.join(topo.nodes)}"))
        if len(link.ends) > 2 and link.name in topo.nodes:
            problems.append(doc.problem(("links", i, "name"), f"'{link.name}' is also a node name; "
                                                              "allowed: a name of its own for the bridged segment"))
    for name, node in topo.nodes.items():
        intfs = topo.interfaces(name)
        for intf in sorted({i for i in intfs if intfs.count(i) > 1}):
            problems.append(doc.problem(("nodes", name), f"interface '{intf}' is used by more than one link; allowed: each interface on one link"))
        if node.nat and node.role != "nat":
            problems.append(doc.problem(("nodes", name, "nat"), "only a node with role 'nat' can have 'nat'; allowed: role nat"))
        if node.nat and node.nat.outside not in intfs:
            problems.append(doc.problem(("nodes", name, "nat", "outside"), f"'{node.nat.outside}' is not an "
                                        f"interface of {name}; allowed: {', '.join(intfs)}"))
        for k, route in enumerate(node.routes):
            if route.dev and route.dev not in intfs:
                problems.append(doc.problem(("nodes", name, "routes", k, "dev"), f"'{route.dev}' is not an "
                                            f"interface of {name}; allowed: {', '.join(intfs)}"))
    return problems + only_gateways(doc, topo, topo.ipsec, "ipsec") + only_gateways(doc, topo, topo.tcp_encap,
                                                                                    "tcp_encap")


def only_gateways(doc: Document, topo: Topology, settings: dict, key: str) -> list[Problem]:
    gateways = topo.gateways()
    return [doc.problem((key, node), f"'{node}' is not an IPsec gateway of topology '{topo.name}'; "
                                     f"allowed: {', '.join(gateways) or 'none'}")
            for node in settings if node not in gateways]


def scenario_problems(doc: Document, sc: "LoadedScenario", where: Locator) -> list[Problem]:
    """Every reference of the scenario, walked in the order a fix phase applies its steps, so
    each configuration change is checked against the configuration it will really meet."""
    topo, spec = sc.topology, sc.spec
    problems: list[Problem] = []
    for node, config in sc.gateways.items():
        problems += _credentials(where(("ipsec", node)), ("ipsec", node), config, sc)
    for node, encap in sc.tcp_encap.items():
        problems += _relay_ports(where, node, sc.gateways[node], encap)
    for i, cap in enumerate(spec.captures):
        problems += _node(doc, topo, NodeRef(("node",), cap.node), ("captures", i))
        if cap.node in topo.nodes and cap.intf not in topo.interfaces(cap.node):
            problems.append(doc.problem(("captures", i, "intf"), f"'{cap.intf}' is not an interface of {cap.node}; "
                                                                 f"allowed: {', '.join(topo.interfaces(cap.node))}"))
    names = {"capture": [c.name for c in spec.captures],
             "monitor": [s.provides()["monitor"] for s in [*spec.setup, *spec.start] if "monitor" in s.provides()]}
    found: dict[str, Problem] = {}  # a step two phases share is reported once
    broken: set[str] = set()  # a gateway whose configuration a patch broke: reported once, there
    for sections in spec.walks():
        configs = dict(sc.gateways)
        for section in sections:
            for i, step in enumerate(spec.steps(section)):
                loc = (section, i) if section in ("setup", "start") else (section, "steps", i)
                for problem in _refs(doc, sc, step.refs(), loc, configs, broken, names):
                    found.setdefault(str(problem), problem)
    problems += found.values()
    checks = [("symptoms", spec.symptoms), ("healthy", spec.healthy)]
    if spec.partial_fix:
        checks.append((("partial_fix", "expect"), spec.partial_fix.expect))
    for section, listed in checks:
        for i, check in enumerate(listed):
            loc = (*section, i) if isinstance(section, tuple) else (section, i)
            problems += _refs(doc, sc, check.refs(), loc, dict(sc.gateways), broken, names)
    return problems + _crls_served(doc, sc)


def _crls_served(doc: Document, sc: "LoadedScenario") -> list[Problem]:
    """Each `serve` step binds an address of its own node, and every CRL URL is published by
    one somewhere in the scenario (else every phase would quietly log "crl fetching failed")."""
    spec, problems = sc.spec, []
    served: set[tuple[str, int]] = set()
    sections = ["setup", "fault", "fix", "start"] + (["partial_fix"] if spec.partial_fix else [])
    for section in sections:
        for i, step in enumerate(spec.steps(section)):
            if step.kind != "serve" or step.node not in sc.topology.nodes:
                continue
            own = [a.split("/")[0] for a in sc.topology.addresses(step.node)]
            loc = (section, i) if section in ("setup", "start") else (section, "steps", i)
            if step.address not in own:
                problems.append(doc.problem(loc + ("address",), f"{step.address} is not an address of {step.node}; "
                                                                  f"allowed: {', '.join(own) or 'none'}"))
            served.add((step.address, step.port))
    for name, ca in spec.pki.cas.items():
        if ca.crl is None:
            continue
        host, _, rest = ca.crl.url.removeprefix("http://").partition("/")
        address, _, port = host.partition(":")
        if (address, int(port or 80)) not in served:
            problems.append(doc.problem(("pki", "cas", name, "crl", "url"), "no serve step publishes it; allowed: a "
                                        f"serve step with address {address} and port {port or 80}"))
    return problems


def _refs(doc: Document, sc: "LoadedScenario", refs: list[Ref], loc: tuple, configs: dict[str, GatewayConfig],
          broken: set[str], names: dict[str, list[str]]) -> list[Problem]:
    problems: list[Problem] = []
    nodes_ok = True
    for ref in refs:
        if isinstance(ref, NodeRef):
            found = _node(doc, sc.topology, ref, loc)
            nodes_ok = nodes_ok and not found
            problems += found
        elif isinstance(ref, (CaptureRef, MonitorRef)):
            kind = "capture" if isinstance(ref, CaptureRef) else "monitor"
            if ref.name not in names[kind]:
                known = ", ".join(names[kind]) or "none"
                what = "captures" if kind == "capture" else "monitor steps in start"
                problems.append(doc.problem(loc + ref.path, f"unknown {kind} '{ref.name}'; allowed: {what}: {known}"))
    if not nodes_ok:
        return problems  # an unknown node: its interfaces, SAs and configuration cannot be checked
    for ref in refs:
        if isinstance(ref, InterfaceRef) and ref.intf not in sc.topology.interfaces(ref.node):
            problems.append(doc.problem(loc + ref.path, f"'{ref.intf}' is not an interface of {ref.node}; allowed: "
                                                        f"{', '.join(sc.topology.interfaces(ref.node)) or 'none'}"))
        if isinstance(ref, ConfigPatch) and ref.node not in broken:
            try:
                configs[ref.node] = configs[ref.node].patched(ref.patch)
            except ValidationError as exc:
                from lab.schema.load import pydantic_problems
                problems += pydantic_problems(doc, exc, loc + ref.path)
                broken.add(ref.node)
            else:
                problems += _credentials(doc, loc + ref.path, configs[ref.node], sc)
        elif isinstance(ref, SaRef) and ref.node not in broken and ref.node in configs:
            problems += _sa(doc, loc + ref.path, configs[ref.node], ref.ike, ref.child)
    return problems


def _node(doc: Document, topo: Topology, ref: NodeRef, loc: tuple) -> list[Problem]:
    if ref.node not in topo.nodes:
        return [doc.problem(loc + ref.path, f"unknown node '{ref.node}'; allowed: {', '.join(topo.nodes)}")]
    role = topo.nodes[ref.node].role
    if ref.roles and role not in ref.roles:
        fitting = ", ".join(n for n, s in topo.nodes.items() if s.role in ref.roles)
        return [doc.problem(loc + ref.path, f"node '{ref.node}' is a {role}; allowed: {fitting} ({' or '.join(sorted(ref.roles))})")]
    return []


def _credentials(doc: Document, loc: tuple, config: GatewayConfig, sc: "LoadedScenario") -> list[Problem]:
    """Certificates and CAs a gateway names must exist in the scenario's `pki`."""
    certs, cas = config.credential_refs()
    unknown = [f"certificate '{c}'" for c in sorted(certs - set(sc.pki.certs))]
    unknown += [f"CA '{c}'" for c in sorted(cas - set(sc.pki.cas))]
    if not unknown:
        return []
    allowed = f"pki certs {', '.join(sc.pki.certs) or 'none'}; pki cas {', '.join(sc.pki.cas) or 'none'}"
    return [doc.problem(loc, f"unknown {', '.join(unknown)}; allowed: {allowed}")]


def _relay_ports(where: Locator, node: str, config: GatewayConfig, encap: TcpEncap) -> list[Problem]:
    """charon must use the ports the relay expects, or a relayed tunnel silently never comes up."""
    problems = []
    loc = ("ipsec", node, "charon", "port_nat_t")
    if config.charon.port_nat_t != encap.charon_port:
        problems.append(where(loc).problem(loc, f"{node} relays IKE over TCP: charon.port_nat_t must be "
                                                f"tcp_encap.charon_port ({encap.charon_port}), not "
                                                f"{config.charon.port_nat_t}; allowed: {encap.charon_port}"))
    relays = {t.relay for t in encap.tunnels}
    for name, conn in config.connections.items():
        loc = ("ipsec", node, "connections", name)
        if relays & set(conn.remote_addrs) and (conn.local_port, conn.remote_port) != (encap.charon_port,
                                                                                       encap.relay_port):
            problems.append(where(loc).problem(loc, f"connection to a relay address needs local_port "
                                                    f"{encap.charon_port} and remote_port {encap.relay_port} "
                                                    f"(tcp_encap), not {conn.local_port}/{conn.remote_port}; allowed: {encap.charon_port}/{encap.relay_port}"))
    return problems


def _sa(doc: Document, loc: tuple, config: GatewayConfig, ike: str | None, child: str | None) -> list[Problem]:
    if ike and ike not in config.connections:
        return [doc.problem(loc + ("ike",), f"no connection '{ike}'; "
                                            f"allowed: {', '.join(config.connections) or 'none'}")]
    children = set(config.connections[ike].children) if ike else {
        c for conn in config.connections.values() for c in conn.children}
    if child and child not in children:
        return [doc.problem(loc + ("child",), f"no child '{child}'; allowed: {', '.join(sorted(children)) or 'none'}")]
    return []
