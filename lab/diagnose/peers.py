"""Who talked to whom: the observation split into peers, each the two sides of one IKE relationship.

A log's IKE_SAs are grouped by their remote address (a hub's log: one group per spoke). Groups of
different logs are one peer when they are the two sides of the same relationship: their CHILD_SA
SPIs match crosswise (one side's inbound SPI is the other's outbound), or each one's remote address
is the other's local address, or one side's remote address is the other's local address and the
identities agree (behind NAT, the other side sees a translated address). Packets belong to the peer
whose IKE_SAs ran between their two addresses; IKE and ESP of pairs no log mentions make peers of
their own. Other packets (TCP, ICMP, plain traffic of a LAN) are context every peer sees.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from lab.diagnose import facts as F


@dataclass
class Group:
    """The IKE_SAs of one log with one remote address."""

    file: str
    remote: str
    sas: set = field(default_factory=set)  # IKE_SA keys of that file
    locals: set = field(default_factory=set)
    names: set = field(default_factory=set)
    local_ids: set = field(default_factory=set)
    remote_ids: set = field(default_factory=set)
    spis: set = field(default_factory=set)  # (in, out)


@dataclass
class Peer:
    """One IKE relationship as the evidence shows it; `key` is how it is named."""

    key: str
    groups: list[Group] = field(default_factory=list)
    pairs: set = field(default_factory=set)  # frozenset({a, b}) of addresses its IKE and ESP ran between

    common: frozenset = frozenset()  # what every peer shares (a hub's own address and identity)

    def label(self) -> str:
        """The peer by its identities and addresses, without what every peer shares."""
        ids = {i for g in self.groups for i in g.local_ids | g.remote_ids if i}
        addresses = {a for pair in self.pairs for a in pair} | {g.remote for g in self.groups}
        names = sorted({n for g in self.groups for n in g.names})
        own_ids, own_addresses = sorted(ids - self.common) or sorted(ids), sorted(addresses - self.common)
        text = " ".join([*own_ids[:3], *(f"[{a}]" for a in (own_addresses or sorted(addresses))[:3])])
        return f"{text} (IKE_SA {', '.join(names[:3])})" if names else text or self.key


def _groups(obs: F.Observation) -> list[Group]:
    out: dict[tuple[str, str], Group] = {}
    for log in obs.log_files:
        for sa in log.sas.values():
            if not sa.remote:
                continue
            group = out.get((str(log.shown), sa.remote))
            if group is None:
                group = out[(str(log.shown), sa.remote)] = Group(str(log.shown), sa.remote)
            group.sas.add(sa.key)
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


def _same(a: Group, b: Group) -> bool:
    if a.file == b.file:
        return False
    if any((o, i) in b.spis for i, o in a.spis):
        return True
    forward, backward = a.remote in b.locals, b.remote in a.locals
    if forward and backward:
        return True
    if forward or backward:
        return _ids_agree(a, b)
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

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

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
    peers = list(merged.values())
    # IKE and ESP between addresses no log names: a peer of the capture's own
    known = {pair for p in peers for pair in p.pairs}
    extra: dict[frozenset, Peer] = {}
    for s in obs.ike:
        pair = frozenset((s.packet.src, s.packet.dst))
        if pair not in known and pair not in extra:
            extra[pair] = Peer(" - ".join(sorted(pair)), pairs={pair})
    peers += extra.values()
    if len(peers) > 1:
        shared = None
        for p in peers:
            mine = {i for g in p.groups for i in g.local_ids | g.remote_ids} | {a for pair in p.pairs for a in pair}
            shared = mine if shared is None else shared & mine
        for p in peers:
            p.common = frozenset(shared or ())
    return peers


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
    part.ike = [s for s in obs.ike if frozenset((s.packet.src, s.packet.dst)) in peer.pairs]
    part.ike_fragments = [s for s in obs.ike_fragments if frozenset((s.packet.src, s.packet.dst)) in peer.pairs]
    for key, entry in obs.esp.items():
        if frozenset(key[1:]) in peer.pairs:
            part.esp[key] = entry
    part.esp_fragments = [s for s in obs.esp_fragments if frozenset((s.packet.src, s.packet.dst)) in peer.pairs]
    part.esp_split = obs.esp_split
    part.tcp, part.icmp, part.clear = obs.tcp, obs.icmp, obs.clear
    return part


def owner(peers: list[Peer]):
    """A function from a piece of evidence to the index of its peer (None: context, or no peer)."""
    by_sa = {(g.file, sa): i for i, p in enumerate(peers) for g in p.groups for sa in g.sas}
    by_pair = {pair: i for i, p in enumerate(peers) for pair in p.pairs}

    def of(evidence) -> int | None:
        if isinstance(evidence, F.Logged):
            return by_sa.get((str(evidence.line.file), evidence.line.sa))
        p = evidence.packet
        return by_pair.get(frozenset((p.src, p.dst)))
    return of
