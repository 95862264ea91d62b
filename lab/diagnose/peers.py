"""Who talked to whom: the observation split into peers, each the two sides of one IKE relationship.

A log's IKE_SAs are grouped by their remote address (a hub's log: one group per spoke), and at an
address where the log shows several remote identities (road warriors behind one NAT) by client: one
group per identity, the identities seen at a common port being one client. Groups of
different logs are one peer when they are the two sides of the same relationship: their CHILD_SA
SPIs match crosswise (one side's inbound SPI is the other's outbound), or each one's remote address
is the other's local address, or one side's remote address is the other's local address and the
identities agree (behind NAT, the other side sees a translated address). Packets belong to the peer
whose IKE_SAs ran between their two addresses (where clients share an address: the one whose port it
is, or all of them when its port is no one's; ESP, counted per address pair, all of them); IKE and
ESP of pairs no log mentions make peers of their own. Other packets (TCP, ICMP, plain traffic of a
LAN) are context every peer sees.
"""
from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass, field

from lab.diagnose import facts as F


@dataclass
class Group:
    """The IKE_SAs of one log with one remote address (and one client, where several share it)."""

    file: str
    remote: str
    crowded: bool = False  # other clients share the remote address: only identities tell who it is
    sas: set = field(default_factory=set)  # IKE_SA keys of that file
    locals: set = field(default_factory=set)
    names: set = field(default_factory=set)
    local_ids: set = field(default_factory=set)
    remote_ids: set = field(default_factory=set)
    spis: set = field(default_factory=set)  # (in, out)
    ports: set = field(default_factory=set)  # the remote's UDP ports


@dataclass
class Peer:
    """One IKE relationship as the evidence shows it; `key` is how it is named."""

    key: str
    groups: list[Group] = field(default_factory=list)
    pairs: set = field(default_factory=set)  # frozenset({a, b}) of addresses its IKE and ESP ran between
    ports: set = field(default_factory=set)  # (address, port) of the remote end of its IKE_SAs
    rivals: dict = field(default_factory=dict)  # a pair other peers share -> the (address, port) they hold

    common: frozenset = frozenset()  # what every peer shares (a hub's own address and identity)

    def label(self) -> str:
        """The peer by its identities and addresses, without what every peer shares."""
        ids = {i for g in self.groups for i in g.local_ids | g.remote_ids if i}
        addresses = {a for pair in self.pairs for a in pair} | {g.remote for g in self.groups}
        names = sorted({n for g in self.groups for n in g.names})
        own_ids, own_addresses = sorted(ids - self.common) or sorted(ids), sorted(addresses - self.common)
        # clients behind one NAT share every address: the remote one tells where they are
        shown = own_addresses or sorted({g.remote for g in self.groups}) or sorted(addresses)
        text = " ".join([*own_ids[:3], *(f"[{a}]" for a in shown[:3])])
        return f"{text} (IKE_SA {', '.join(names[:3])})" if names else text or self.key

    def holds(self, packet) -> bool:
        """The packet ran between this peer's addresses and, where other peers share them, at a port
        of this peer's or of no one's (a packet no log placed is evidence of each of them)."""
        pair = frozenset((packet.src, packet.dst))
        if pair not in self.pairs:
            return False
        others = self.rivals.get(pair)
        if not others:
            return True
        ends = {(packet.src, packet.sport), (packet.dst, packet.dport)}
        return bool(ends & self.ports) or not ends & others


def _groups(obs: F.Observation) -> list[Group]:
    out: dict[tuple[str, str, str | None], Group] = {}
    for log in obs.log_files:
        at: dict[str, list] = defaultdict(list)
        for sa in log.sas.values():
            if sa.remote:
                at[sa.remote].append(sa)
        client = {key: name for sas in at.values() for key, name in _clients(sas).items()}
        for sa in log.sas.values():
            if not sa.remote:
                continue
            key = (str(log.shown), sa.remote, client.get(sa.key))
            group = out.get(key)
            if group is None:
                group = out[key] = Group(str(log.shown), sa.remote, crowded=sa.key in client)
            group.sas.add(sa.key)
            group.ports |= sa.ports
            if sa.local:
                group.locals.add(sa.local)
            if sa.name:
                group.names.add(sa.name)
            if sa.local_id:
                group.local_ids.add(sa.local_id)
            if sa.remote_id:
                group.remote_ids.add(sa.remote_id)
            group.spis |= sa.child_spis
    return list(out.values())


def _root(parent, item):
    """Union-find: the representative of `item`, where `parent` (a list or a dict) maps each item to
    another of its set, a representative to itself; paths are halved on the way."""
    while parent[item] != item:
        parent[item] = parent[parent[item]]
        item = parent[item]
    return item


def _clients(sas: list) -> dict[str, str | None]:
    """Which client each IKE_SA of one remote address is, when the log shows several there (road
    warriors behind one NAT): IKE_SA key -> the client's first identity; empty when there is one.

    Identities seen at a common port are one client: a peer that changed the identity it sends (an
    id-mismatch, fixed) is still the one peer, and its later success still supersedes its failure;
    a NAT gives each client ports of its own. An IKE_SA that never got an identity (it failed
    before IKE_AUTH) goes to the one client whose port it used; else to a client of its own, None,
    named by the address alone: nothing is lost, and it is never taken for another's success."""
    union: dict[str, str] = {}
    root = functools.partial(_root, union)
    at_port: dict[int, str] = {}
    for sa in sas:
        if sa.remote_id:
            union.setdefault(sa.remote_id, sa.remote_id)
            for port in sorted(sa.ports):
                union[root(sa.remote_id)] = root(at_port.setdefault(port, sa.remote_id))
    if len({root(name) for name in union}) < 2:
        return {}
    out: dict[str, str | None] = {}
    for sa in sas:
        seen = {root(at_port[port]) for port in sa.ports if port in at_port}
        out[sa.key] = root(sa.remote_id) if sa.remote_id else (seen.pop() if len(seen) == 1 else None)
    return out


def _same(a: Group, b: Group) -> bool:
    if a.file == b.file:
        return False
    if any((o, i) in b.spis for i, o in a.spis):
        return True
    forward, backward = a.remote in b.locals, b.remote in a.locals
    if forward and backward:
        return True
    if forward or backward:
        # a client behind a shared NAT address is told from the others by its identity alone
        return _ids_agree(a, b) and all(g.remote_ids & o.local_ids for g, o in ((a, b), (b, a)) if g.crowded)
    return False


def _ids_agree(a: Group, b: Group) -> bool:
    """Each side's own identity is the one the other sees, where both are known, and at least one
    such pair is known (a hub's own identity alone matches every spoke: not enough)."""
    pairs = [(a.local_ids, b.remote_ids), (b.local_ids, a.remote_ids)]
    if any(mine and theirs and not mine & theirs for mine, theirs in pairs):
        return False
    return any(mine & theirs for mine, theirs in pairs)


def partition(obs: F.Observation) -> list[Peer]:
    """The peers of an observation, in the order their first evidence appears."""
    groups = _groups(obs)
    parent = list(range(len(groups)))
    root = functools.partial(_root, parent)
    by_local: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        for address in g.locals | {g.remote}:
            by_local[address].append(i)
    for i, g in enumerate(groups):
        for j in {j for a in g.locals | {g.remote} for j in by_local[a] if j > i}:
            if _same(g, groups[j]):
                parent[root(j)] = root(i)
    merged: dict[int, Peer] = {}
    for i, g in enumerate(groups):
        peer = merged.setdefault(root(i), Peer(g.remote))
        peer.groups.append(g)
        peer.pairs |= {frozenset((local, g.remote)) for local in g.locals}
        peer.ports |= {(g.remote, port) for port in g.ports}
    peers = list(merged.values())
    _rivals(peers)
    # IKE and ESP between addresses no log names: a peer of the capture's own
    known = {pair for p in peers for pair in p.pairs}
    extra: dict[frozenset, Peer] = {}
    for s in obs.ike:
        pair = frozenset((s.packet.src, s.packet.dst))
        if pair not in known and pair not in extra:
            extra[pair] = Peer(" - ".join(sorted(pair)), pairs={pair})
    peers += extra.values()
    if len(peers) > 1:
        # identities shared by the peers that show any: an attempt that failed before IKE_AUTH
        # (no identity) keeps the gateway's own out of its clients' labels
        ids = [known for p in peers if (known := {i for g in p.groups for i in g.local_ids | g.remote_ids})]
        addresses = set.intersection(*({a for pair in p.pairs for a in pair} for p in peers))
        common = frozenset(addresses | (set.intersection(*ids) if ids else set()))
        for p in peers:
            p.common = common
    return peers


def _rivals(peers: list[Peer]) -> None:
    """For each pair of addresses several peers share (clients behind one NAT), the ports the
    others hold: a packet at one of them is theirs."""
    at: dict[frozenset, list[Peer]] = defaultdict(list)
    for p in peers:
        for pair in p.pairs:
            at[pair].append(p)
    for pair, sharing in at.items():
        for p in sharing if len(sharing) > 1 else ():
            p.rivals[pair] = {end for other in sharing if other is not p for end in other.ports} - p.ports


def lines_by_sa(obs: F.Observation) -> dict[tuple[str, str], list]:
    """The observation's log lines per (file, IKE_SA), in order: what `restrict` picks from."""
    out: dict[tuple[str, str], list] = defaultdict(list)
    for line in obs.logs:
        if line.sa is not None:
            out[(str(line.file), line.sa)].append(line)
    return out


def restrict(obs: F.Observation, peer: Peer, by_sa: dict | None = None) -> F.Observation:
    """What of the observation belongs to `peer`: its IKE_SAs' lines, its IKE and ESP, and the
    context every peer shares (TCP, ICMP, plain traffic; the lines of its logs that belong to no
    IKE_SA, a daemon's restarts and packets no policy matched, facts read from the whole
    observation)."""
    by_sa = lines_by_sa(obs) if by_sa is None else by_sa
    part = F.Observation(captures=obs.captures, log_files=obs.log_files, notes=obs.notes)
    part.logs = sorted((line for g in peer.groups for sa in g.sas for line in by_sa.get((g.file, sa), ())),
                       key=lambda line: (str(line.file), line.number))
    part.cache.update(parent=obs, members={id(line) for line in part.logs})
    part.ike = [s for s in obs.ike if peer.holds(s.packet)]
    part.ike_fragments = [s for s in obs.ike_fragments if peer.holds(s.packet)]
    for key, entry in obs.esp.items():
        if frozenset(key[1:]) in peer.pairs:
            part.esp[key] = entry
    part.esp_fragments = [s for s in obs.esp_fragments if peer.holds(s.packet)]
    part.esp_split = obs.esp_split
    part.tcp, part.icmp, part.clear = obs.tcp, obs.icmp, obs.clear
    return part


def owner(peers: list[Peer]):
    """A function from a piece of evidence to the index of its peer (None: context, or no peer)."""
    by_sa = {(g.file, sa): i for i, p in enumerate(peers) for g in p.groups for sa in g.sas}
    by_pair: dict[frozenset, list[int]] = defaultdict(list)
    for i, p in enumerate(peers):
        for pair in p.pairs:
            by_pair[pair].append(i)

    def of(evidence) -> int | None:
        if isinstance(evidence, F.Logged):
            return by_sa.get((str(evidence.line.file), evidence.line.sa))
        p = evidence.packet
        holders = [i for i in by_pair.get(frozenset((p.src, p.dst)), ()) if peers[i].holds(p)]
        return holders[0] if len(holders) == 1 else None  # a packet several peers hold is context
    return of
