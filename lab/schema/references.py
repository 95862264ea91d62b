"""Cross-references: every name a file uses must exist, with the role it needs.

Each problem is collected (all of a file's problems are reported together); the kinds say
what they refer to (lab.schema.refs), so this module has no branch per step or check kind.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from pydantic import ValidationError

from lab.schema.errors import Problem
from lab.schema.gateway import GatewayConfig
from lab.schema.merge import MergeError
from lab.schema.refs import (CaptureRef, ConfigPatch, InterfaceRef, KernelChange, Listener, MonitorRef, NodeRef, Ref,
                             RelayRef, RulesetRef, SaRef)
from lab.schema.routing import TUN, NodeKernel
from lab.schema.relay import TcpEncap
from lab.schema.topology import Topology
from lab.schema.yamlfile import Document

if TYPE_CHECKING:
    from lab.schema.load import LoadedScenario

# Where a key was written: the scenario, else its topology.
Locator = Callable[[tuple], Document]


# Interface names a node cannot have: the loopback every namespace has, names the kernel refuses,
# kernel-libipsec's TUN device, and the peers lab.nftcheck gives each interface while validating.
RESERVED_INTERFACES = ("lo", "all", "default", TUN)
RESERVED_PREFIX = "nftcheck"


def topology_problems(doc: Document, topo: Topology) -> list[Problem]:
    problems: list[Problem] = []
    bridges: dict[str, int] = {}
    for i, link in enumerate(topo.links):
        for j, end in enumerate(link.ends):
            if end.node not in topo.nodes:
                problems.append(doc.problem(("links", i, "ends", j, "node"),
                                            f"unknown node '{end.node}'; allowed: {_names(topo.nodes)}"))
            if end.intf in RESERVED_INTERFACES or end.intf.startswith(RESERVED_PREFIX):
                problems.append(doc.problem(("links", i, "ends", j, "intf"), f"'{end.intf}' is a name the lab or "
                                            f"the kernel uses; allowed: another name (not {', '.join(RESERVED_INTERFACES)} "
                                            f"or {RESERVED_PREFIX}...)"))
        if len(link.ends) == 2 and link.ends[0].node == link.ends[1].node:
            problems.append(doc.problem(("links", i, "ends"), f"both ends are on {link.ends[0].node}; allowed: a link "
                                                              "between two nodes"))
        if len(link.ends) > 2 and link.name in topo.nodes:
            problems.append(doc.problem(("links", i, "name"), f"'{link.name}' is also a node name; "
                                                              "allowed: a name of its own for the bridged segment"))
        if len(link.ends) > 2 and link.name is not None:
            if link.name in bridges:
                problems.append(doc.problem(("links", i, "name"), f"'{link.name}' names link {bridges[link.name]} "
                                                                  "too; allowed: a name for each bridged segment"))
            bridges.setdefault(link.name, i)
    for name, node in topo.nodes.items():
        intfs = topo.interfaces(name)
        for intf in sorted({i for i in intfs if intfs.count(i) > 1}):
            problems.append(doc.problem(("nodes", name), f"interface '{intf}' is used by more than one link; allowed: each interface on one link"))
        addresses = [a.split("/")[0] for a in topo.addresses(name)]
        for addr in sorted({a for a in addresses if addresses.count(a) > 1}):
            problems.append(doc.problem(("nodes", name), f"address {addr} is on {name} twice (the kernel says: File "
                                                         "exists); allowed: each address once on a node"))
        if node.nat and node.role != "nat":
            problems.append(doc.problem(("nodes", name, "nat"), "only a node with role 'nat' can have 'nat'; allowed: role nat"))
        if node.nat and node.nat.outside not in intfs:
            problems.append(doc.problem(("nodes", name, "nat", "outside"), f"'{node.nat.outside}' is not an "
                                        f"interface of {name}; allowed: {', '.join(intfs)}"))
        for what, k, why in NodeKernel.of(topo, name)[1]:
            problems.append(doc.problem(("nodes", name, what, k), why))
    return problems + only_gateways(doc, topo, topo.ipsec, "ipsec") + only_gateways(doc, topo, topo.tcp_encap,
                                                                                    "tcp_encap")


def _names(names, limit: int = 20) -> str:
    """Names an error offers, at most `limit` of them (a topology can have hundreds of nodes)."""
    names = list(names)
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def only_gateways(doc: Document, topo: Topology, settings: dict, key: str) -> list[Problem]:
    gateways = topo.gateways()
    return [doc.problem((key, node), f"'{node}' is not an IPsec gateway of topology '{topo.name}'; "
                                     f"allowed: {', '.join(gateways) or 'none'}")
            for node in settings if node not in gateways]


@dataclass
class _Walk:
    """What a phase has built up to the step being checked: the gateways' configurations, each
    node's routes and rules, and which TCP address and port has a server."""

    sc: "LoadedScenario"
    configs: dict[str, GatewayConfig]
    kernels: dict[str, NodeKernel] = field(default_factory=dict)
    listening: dict[tuple[str, int], str] = field(default_factory=dict)

    @classmethod
    def start(cls, sc: "LoadedScenario") -> "_Walk":
        walk = cls(sc, dict(sc.gateways))
        for node, encap in sc.tcp_encap.items():
            for tunnel in encap.tunnels:
                if tunnel.listen:
                    walk.listening[(tunnel.listen, encap.tcp_port)] = f"the TCP relay of {node} (tcp_encap)"
        return walk

    def kernel(self, node: str) -> NodeKernel:
        if node not in self.kernels:
            self.kernels[node] = NodeKernel.of(self.sc.topology, node)[0]
        return self.kernels[node]


def scenario_problems(doc: Document, sc: "LoadedScenario", where: Locator) -> list[Problem]:
    """Every reference of the scenario, walked in the order a fix phase applies its steps, so
    each configuration change is checked against the configuration it will really meet."""
    topo, spec = sc.topology, sc.spec
    problems: list[Problem] = []
    for node, config in sc.gateways.items():
        problems += _credentials(where(("ipsec", node)), ("ipsec", node), config, sc)
    for node, encap in sc.tcp_encap.items():
        problems += _relay(where, topo, node, sc.gateways[node], encap)
    seen_captures: set[str] = set()
    for i, cap in enumerate(spec.captures):
        problems += _node(doc, topo, NodeRef(("node",), cap.node), ("captures", i))
        if cap.node in topo.nodes and cap.intf not in topo.interfaces(cap.node):
            problems.append(doc.problem(("captures", i, "intf"), f"'{cap.intf}' is not an interface of {cap.node}; "
                                                                 f"allowed: {', '.join(topo.interfaces(cap.node))}"))
        if cap.name in seen_captures:
            problems.append(doc.problem(("captures", i, "name"), f"a capture named {cap.name} comes before; allowed: "
                                                                 "a name for each capture (its pcap's file name)"))
        seen_captures.add(cap.name)
    names = {"capture": [c.name for c in spec.captures],
             "monitor": [s.provides()["monitor"] for s in [*spec.setup, *spec.start] if "monitor" in s.provides()]}
    found: dict[str, Problem] = {}  # a step two phases share is reported once
    broken: set[str] = set()  # a gateway whose configuration a patch broke: reported once, there
    for sections in spec.walks():
        walk = _Walk.start(sc)
        for section in sections:
            for i, step in enumerate(spec.steps(section)):
                loc = (section, i) if section in ("setup", "start") else (section, "steps", i)
                for problem in _refs(doc, sc, step.refs(), loc, walk, broken, names):
                    found.setdefault(str(problem), problem)
    problems += found.values()
    checks = [("symptoms", spec.symptoms), ("healthy", spec.healthy)]
    if spec.partial_fix:
        checks.append((("partial_fix", "expect"), spec.partial_fix.expect))
    for section, listed in checks:
        for i, check in enumerate(listed):
            loc = (*section, i) if isinstance(section, tuple) else (section, i)
            problems += _refs(doc, sc, check.refs(), loc, _Walk.start(sc), broken, names)
    return problems + _crls_served(doc, sc) + _nft_budget(doc, sc)


def _sections(sc: "LoadedScenario") -> list[tuple[tuple, object]]:
    """(location, step) of every step of the scenario, each once."""
    spec = sc.spec
    sections = ["setup", "fault", "fix", "start"] + (["partial_fix"] if spec.partial_fix else []) + \
        (["recur"] if spec.recur else [])
    return [((section, i) if section in ("setup", "start") else (section, "steps", i), step)
            for section in sections for i, step in enumerate(spec.steps(section))]


def _crls_served(doc: Document, sc: "LoadedScenario") -> list[Problem]:
    """Every CRL URL is published by a `serve` step somewhere in the scenario (else every phase
    would quietly log "crl fetching failed"), and a serve step has a CRL to publish."""
    problems = []
    served = {(r.address, r.port) for _, step in _sections(sc) for r in step.refs() if isinstance(r, Listener)}
    urls = [(name, ca.crl.url) for name, ca in sc.pki.cas.items() if ca.crl is not None]
    for name, url in urls:
        host, _, rest = url.removeprefix("http://").partition("/")
        address, _, port = host.partition(":")
        if (address, int(port or 80)) not in served:
            problems.append(doc.problem(("pki", "cas", name, "crl", "url"), "no serve step publishes it; allowed: a "
                                        f"serve step with address {address} and port {port or 80}"))
    if not urls:
        problems += [doc.problem(loc, "a serve step publishes the CRLs of the scenario's CAs, and it has none; allowed: "
                                      "a CA with a crl in pki, or no serve step")
                     for loc, step in _sections(sc) if any(isinstance(r, Listener) and r.crls for r in step.refs())]
    return problems


# All nft rulesets of a scenario, in characters: nft checks and loads each in every phase it
# is part of. The catalogue's largest has 1,500; YAML aliases could repeat a 64 KiB ruleset
# hundreds of times.
MAX_NFT_CHARS = 256 * 1024


def _nft_budget(doc: Document, sc: "LoadedScenario") -> list[Problem]:
    total = sum(len(node.nft or "") for node in sc.topology.nodes.values())
    for loc, step in _sections(sc):
        total += sum(r.chars for r in step.refs() if isinstance(r, RulesetRef))
        if total > MAX_NFT_CHARS:
            return [doc.problem(loc + ("ruleset",), f"the scenario's nft rulesets come to more than {MAX_NFT_CHARS} "
                                                    f"characters by this one; allowed: at most {MAX_NFT_CHARS} in all")]
    return []


def _refs(doc: Document, sc: "LoadedScenario", refs: list[Ref], loc: tuple, walk: _Walk,
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
    configs = walk.configs
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
            except MergeError as exc:
                problems.append(doc.problem(loc + ref.path + exc.path, str(exc)))
                broken.add(ref.node)
            else:
                problems += _credentials(doc, loc + ref.path, configs[ref.node], sc)
        elif isinstance(ref, SaRef) and ref.node not in broken and ref.node in configs:
            problems += _sa(doc, loc + ref.path, configs[ref.node], ref.ike, ref.child)
        elif isinstance(ref, KernelChange):
            kernel = walk.kernel(ref.node)
            why = {"route": kernel.route, "rule": kernel.rule}[ref.what](ref.change, ref.action) \
                if ref.what != "sysctl" else kernel.sysctl(ref.change)
            if why:
                problems.append(doc.problem(loc + ref.path, why))
        elif isinstance(ref, Listener):
            problems += _listener(doc, loc + ref.path, ref, walk)
        elif isinstance(ref, RelayRef) and ref.node not in sc.tcp_encap:
            relayed = ", ".join(sc.tcp_encap) or "none"
            problems.append(doc.problem(loc + ref.path, f"{ref.node} has no TCP relay (no tcp_encap); allowed: "
                                                        f"source charon, or a gateway with tcp_encap: {relayed}"))
    return problems


def _listener(doc: Document, loc: tuple, ref: Listener, walk: _Walk) -> list[Problem]:
    """A server binds an address of its own node, on a port nothing else of the phase listens on."""
    own = walk.kernel(ref.node).own()
    if ref.address not in own:
        return [doc.problem(loc + ("address",), f"{ref.address} is not an address of {ref.node}; "
                                                f"allowed: {', '.join(own) or 'none'}")]
    taken = walk.listening.get((ref.address, ref.port))
    if taken:
        return [doc.problem(loc + ("port",), f"{ref.address} port {ref.port} is taken at this point of the phase, by "
                                             f"{taken} (a second server would fail: Address already in use); "
                                             "allowed: another address or port")]
    started = doc.problem(loc, "")  # where this server is started
    walk.listening[(ref.address, ref.port)] = f"a serve step ({started.file.name}:{started.line})"
    return []


def _node(doc: Document, topo: Topology, ref: NodeRef, loc: tuple) -> list[Problem]:
    if ref.node not in topo.nodes:
        return [doc.problem(loc + ref.path, f"unknown node '{ref.node}'; allowed: {_names(topo.nodes)}")]
    role = topo.nodes[ref.node].role
    if ref.roles and role not in ref.roles:
        fitting = _names(n for n, s in topo.nodes.items() if s.role in ref.roles)
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


def _relay(where: Locator, topo: Topology, node: str, config: GatewayConfig, encap: TcpEncap) -> list[Problem]:
    """charon must use the ports the relay expects, or a relayed tunnel silently never comes up;
    the relay listens and connects from the node's own addresses, and its loopback addresses are
    new ones (each added once)."""
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
    own = [a.split("/")[0] for a in topo.addresses(node)]
    for i, tunnel in enumerate(encap.tunnels):
        for key in ("listen", "local"):
            address = getattr(tunnel, key)
            if address is not None and address not in own:
                loc = ("tcp_encap", node, "tunnels", i, key)
                problems.append(where(loc).problem(loc, f"{address} is not an address of {node} (the relay could not "
                                                        f"bind it); allowed: {', '.join(own) or 'none'}"))
    loopback = encap.addresses()
    for address in sorted({a for a in loopback if loopback.count(a) > 1 or a in own}):
        loc = ("tcp_encap", node)
        problems.append(where(loc).problem(loc, f"{address} is added to {node}'s loopback twice, or is on one of its "
                                                "links (the kernel says: File exists); allowed: charon and relay "
                                                "addresses of their own"))
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
