"""What captures and logs show, as named facts the catalogue's signatures refer to.

An Observation is built in one pass over each capture (bounded: what a fact needs is kept,
ESP is counted, not stored) and over each log. A fact is a function of the observation that
returns the evidence that makes it true (packets and log lines to cite), or nothing.
"""
from __future__ import annotations

import bisect
import ipaddress
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from lab.capture.packets import IKE_PORTS
from lab.diagnose.logs import STARTED, LogLine
from lab.schema.ike import IKE_PORT, NAT_T_PORT

MAX_KEPT = 20_000  # packets of each kind kept as possible evidence; counting goes on past it


@dataclass
class ObservedCapture:
    """A capture and what is known of where it was taken."""

    path: Path
    where: str | None = None  # "node:intf" for a lab capture
    node: str | None = None
    two_way: bool = False  # it records both directions (an interface capture), so a missing answer is evidence
    packets: int = 0
    directions: set = field(default_factory=set)
    pairs: set = field(default_factory=set)  # (src, dst) of IP packets
    error: str | None = None

    def name(self) -> str:
        return self.where or self.path.name

    def one_sided(self) -> bool:
        """Every packet goes one way: what did not come back may just not have been captured."""
        if self.two_way or len(self.directions) > 1:
            return False
        return not any((dst, src) in self.pairs for src, dst in self.pairs)


@dataclass
class Seen:
    """A packet as evidence: file, number, time, interface/direction, one-line summary."""

    capture: ObservedCapture
    packet: object  # lab.capture.packets.Packet

    def cite(self) -> dict:
        p = self.packet
        return {"kind": "packet", "file": str(self.capture.path), "number": p.number, "time": round(p.time, 6),
                "where": self.capture.name(), "direction": p.direction, "summary": p.summary()}

    def position(self) -> tuple[str, float]:
        return str(self.capture.path), float(self.packet.number)


@dataclass
class Logged:
    line: LogLine

    def cite(self) -> dict:
        return {"kind": "log", "file": str(self.line.file), "line": self.line.number, "text": self.line.text}

    def position(self) -> tuple[str, float]:
        return str(self.line.file), float(self.line.number)


Evidence = Seen | Logged


@dataclass
class Observation:
    captures: list[ObservedCapture] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)
    log_files: list = field(default_factory=list)  # lab.diagnose.logs.LogFile: IKE_SAs and dialects per log
    cache: dict = field(default_factory=dict)  # what facts compute once from the lines (per IKE_SA)
    ike: list[Seen] = field(default_factory=list)
    tcp: list[Seen] = field(default_factory=list)  # SYN, SYN/ACK, RST
    icmp: list[Seen] = field(default_factory=list)  # ICMP errors
    esp: dict = field(default_factory=lambda: defaultdict(list))  # (capture, src, dst) -> [count, first Seen, last time]
    esp_fragments: list[Seen] = field(default_factory=list)
    esp_split: list[Seen] = field(default_factory=list)
    ike_fragments: list[Seen] = field(default_factory=list)  # first fragments of IKE datagrams
    clear: list[Seen] = field(default_factory=list)  # plain IP between private addresses
    # TCP data segments per (capture, flow, seq): [payload bytes, times sent, first Seen, last Seen]
    segments: dict = field(default_factory=dict)
    acked: dict = field(default_factory=dict)  # (capture, flow) -> the highest ACK sent on it
    notes: list[str] = field(default_factory=list)

    def add(self, capture: ObservedCapture, p) -> None:
        capture.packets += 1
        if p.direction:
            capture.directions.add(p.direction)
        capture.pairs.add((p.src, p.dst))
        seen = Seen(capture, p)
        if p.ike is not None:
            _keep(self.ike, seen)
            if p.fragment and p.more_fragments and p.frag_offset == 0:
                _keep(self.ike_fragments, seen)
        elif p.esp:
            entry = self.esp[(id(capture), p.src, p.dst)]
            if not entry:
                entry += [0, seen, p.time]
            entry[0] += 1
            entry[2] = p.time
            if p.fragment:
                _keep(self.esp_fragments, seen)
            if p.oversize_message:
                _keep(self.esp_split, seen)
        elif p.proto == "TCP" and ("S" in p.tcp_flags or "R" in p.tcp_flags):
            _keep(self.tcp, seen)
        elif p.proto == "TCP":
            self._segment(capture, seen)
        elif p.icmp:
            _keep(self.icmp, seen)
        elif p.fragment and p.sport is None and p.frag_offset > 0:
            pass  # a non-first fragment: its datagram is judged by the first
        elif _private(p.src) and _private(p.dst) and not p.keepalive and p.proto not in ("UDP",):
            _keep(self.clear, seen)


    def _segment(self, capture: ObservedCapture, seen: Seen) -> None:
        """Data sent and acknowledged on each TCP flow (not their bytes): what a path MTU black
        hole leaves, one large segment sent again and again and never acknowledged."""
        p = seen.packet
        flow = (id(capture), p.src, p.sport, p.dst, p.dport)
        if "A" in p.tcp_flags and p.tcp_ack is not None:
            self.acked[flow] = max(self.acked.get(flow, 0), p.tcp_ack)
        if p.tcp_payload and p.tcp_seq is not None:
            entry = self.segments.get((flow, p.tcp_seq))
            if entry is None and len(self.segments) < MAX_KEPT:
                self.segments[(flow, p.tcp_seq)] = [p.tcp_payload, 1, seen, seen]
            elif entry is not None:
                entry[0], entry[1], entry[3] = max(entry[0], p.tcp_payload), entry[1] + 1, seen


def _keep(into: list, item) -> None:
    if len(into) < MAX_KEPT:
        into.append(item)


def _private(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_private and not ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


# -- helpers over IKE -----------------------------------------------------------------------

def _responses(obs: Observation) -> set[tuple[str, str, int]]:
    """(spi_i, exchange, msgid) of every IKEv2 response seen anywhere."""
    return {(s.packet.ike.spi_i, s.packet.ike.exchange, s.packet.ike.msgid) for s in obs.ike
            if s.packet.ike.version == 2 and s.packet.ike.response}


def _v1_answered(obs: Observation) -> set[tuple[str, int, str]]:
    """IKEv1 has no response flag: (spi_i, msgid, sender) of every message, to tell who answered."""
    return {(s.packet.ike.spi_i, s.packet.ike.msgid, s.packet.src) for s in obs.ike if s.packet.ike.version == 1}


def _two_way(seen: Seen) -> bool:
    return not seen.capture.one_sided()


def _requests(obs: Observation, exchange: str) -> dict[tuple[str, int], list[Seen]]:
    out: dict[tuple[str, int], list[Seen]] = defaultdict(list)
    for s in obs.ike:
        ike = s.packet.ike
        if ike.version == 2 and ike.exchange == exchange and not ike.response:
            out[(ike.spi_i, ike.msgid)].append(s)
    return out


def _unanswered(obs: Observation, exchange: str) -> list[list[Seen]]:
    answered = _responses(obs)
    return [seen for (spi, msgid), seen in _requests(obs, exchange).items()
            if (spi, exchange, msgid) not in answered and any(_two_way(s) for s in seen)]


def _first_and_count(groups: list[list[Seen]]) -> list[Evidence]:
    return [group[0] for group in groups][:3]


# -- the facts ----------------------------------------------------------------------------

def ike_init_unanswered(obs: Observation) -> list[Evidence]:
    """IKE_SA_INIT (IKEv1: a Main/Aggressive Mode opening) sent and never answered, in a capture that
    records both directions."""
    groups = _unanswered(obs, "IKE_SA_INIT")
    answered = _v1_answered(obs)
    openings: dict[str, list[Seen]] = defaultdict(list)
    for s in obs.ike:
        ike = s.packet.ike
        if ike.version == 1 and ike.msgid == 0 and set(ike.spi_r) == {"0"}:
            openings[ike.spi_i].append(s)
    for spi, seen in openings.items():
        senders = {s.packet.src for s in seen}
        if not any(spi == a and src not in senders for a, _, src in answered) and any(_two_way(s) for s in seen):
            groups.append(seen)
    return _first_and_count(groups)


def natt_unanswered(obs: Observation) -> list[Evidence]:
    """IKE_SA_INIT answered, then IKE_AUTH on the NAT-T port (not IP-fragmented) never answered."""
    init_answered = {s.packet.ike.spi_i for s in obs.ike if s.packet.ike.version == 2
                     and s.packet.ike.exchange == "IKE_SA_INIT" and s.packet.ike.response}
    out = []
    for group in _unanswered(obs, "IKE_AUTH"):
        first = group[0].packet
        if first.ike.spi_i in init_answered and not any(s.packet.fragment for s in group) \
                and (first.dport not in IKE_PORTS or first.sport not in IKE_PORTS):
            out.append(group)
    return _first_and_count(out)


def ike_fragments_unanswered(obs: Observation) -> list[Evidence]:
    """An IKE request that left as IP fragments and was never answered (IKEv1: nobody else
    spoke on its SPI and message ID)."""
    answered = _responses(obs)
    v1 = _v1_answered(obs)
    out = []
    for s in obs.ike_fragments:
        ike = s.packet.ike
        if ike.version == 2:
            lost = not ike.response and (ike.spi_i, ike.exchange, ike.msgid) not in answered
        else:
            lost = not any(spi == ike.spi_i and msgid == ike.msgid and src != s.packet.src for spi, msgid, src in v1)
        if lost and _two_way(s):
            out.append(s)
    return out[:3]


def no_proposal_chosen_in_init(obs: Observation) -> list[Evidence]:
    return [s for s in obs.ike if "NO_PROPOSAL_CHOSEN" in s.packet.ike.notifies
            and (s.packet.ike.exchange == "IKE_SA_INIT" or s.packet.ike.version == 1)][:3]


def ikev2_invalid_ke_in_init(obs: Observation) -> list[Evidence]:
    """IKEv2 only: IKEv1 reuses the number 17 for INVALID_KEY_INFORMATION (a missing PSK)."""
    return [s for s in obs.ike if s.packet.ike.version == 2 and s.packet.ike.exchange == "IKE_SA_INIT"
            and s.packet.ike.response and "INVALID_KE_PAYLOAD" in s.packet.ike.notifies][:3]


def _flow(p) -> tuple:
    return p.src, p.sport, p.dst, p.dport


def _reverse(p) -> tuple:
    return p.dst, p.dport, p.src, p.sport


def tcp_synack_leaves_other_interface(obs: Observation) -> list[Evidence]:
    """A SYN in on one interface of a node, its SYN/ACK out of another interface of the same node."""
    syns = {(_flow(s.packet), s.capture.node): s for s in obs.tcp
            if s.packet.tcp_flags == "S" and s.packet.direction == "in" and s.capture.node}
    for s in obs.tcp:
        p = s.packet
        if p.tcp_flags == "SA" and p.direction == "out" and s.capture.node:
            syn = syns.get((_reverse(p), s.capture.node))
            if syn is not None and syn.capture is not s.capture:
                return [syn, s]
    return []


def tcp_handshake_never_completes(obs: Observation) -> list[Evidence]:
    """A SYN/ACK is sent, yet the same SYN keeps coming: the SYN/ACK never reached the peer."""
    synacks = {_reverse(s.packet): s for s in obs.tcp if s.packet.tcp_flags == "SA"}
    repeats: dict[tuple, list[Seen]] = defaultdict(list)
    for s in obs.tcp:
        if s.packet.tcp_flags == "S":
            repeats[(_flow(s.packet), id(s.capture))].append(s)
    for (flow, _), seen in repeats.items():
        answer = synacks.get(flow)
        if answer is not None and len([s for s in seen if s.packet.time > answer.packet.time]) >= 2:
            return [seen[0], answer, seen[-1]]
    return []


def tcp_rst_to_syn(obs: Observation) -> list[Evidence]:
    syns = {_flow(s.packet): s for s in obs.tcp if s.packet.tcp_flags == "S"}
    for s in obs.tcp:
        if "R" in s.packet.tcp_flags and _reverse(s.packet) in syns:
            return [syns[_reverse(s.packet)], s]
    return []


# -- NAT and ports ------------------------------------------------------------------------

_CHANGED = re.compile(r"remote endpoint changed from (\S+)\[(\d+)\] to (\S+)\[(\d+)\]")
_INITIATING = re.compile(r"^initiating (IKE_SA|Main Mode IKE_SA|Aggressive Mode IKE_SA) ")
_NATTED_PEER = "remote host is behind NAT"


def _by_sa(obs: Observation) -> dict[tuple[str, str], list[LogLine]]:
    """Lines per IKE_SA (as logs.py attributes them: `<name|id>`, or read from the messages), once
    per observation."""
    if "by_sa" not in obs.cache:
        out: dict[tuple[str, str], list[LogLine]] = defaultdict(list)
        for line in obs.logs:
            if line.sa:
                out[(str(line.file), line.sa)].append(line)
        obs.cache["by_sa"] = out
    return obs.cache["by_sa"]



_RECEIVED_CERT = re.compile(r'received end entity cert "(.+)"')
_NO_TRUSTED_KEY = re.compile(r"no trusted \S+ public key found for '(.+)'")


def certificate_lacks_identity(obs: Observation) -> list[Evidence]:
    """The peer's certificate arrived, yet no trusted key is found for the identity it claims, and
    charon never even tried that certificate ("using certificate" is logged for every candidate
    that carries the identity, before its chain is checked): the certificate does not carry the
    identity, whatever its chain. (Without this, it reads like an untrusted chain.)"""
    per_sa: dict[tuple[Path, str | None], list[LogLine]] = defaultdict(list)
    for line in obs.logs:
        per_sa[(line.file, line.sa)].append(line)
    for lines in per_sa.values():
        received = None
        for line in lines:
            if _RECEIVED_CERT.search(line.text):
                received = line
            elif "using certificate" in line.text:
                received = None
            elif received and _NO_TRUSTED_KEY.search(line.text):
                return [Logged(received), Logged(line)]
    return []

def responder_changed_port(obs: Observation) -> list[Evidence]:
    """The side that initiated sees its responder's address come back from another port: the
    responder's own requests leave from a port the initiator never addressed (a DNAT whose
    published port differs from the listening port)."""
    for lines in _by_sa(obs).values():
        initiated = any(_INITIATING.search(l.text) for l in lines)
        for line in lines:
            found = _CHANGED.search(line.text)
            if initiated and found and found.group(1) == found.group(3) and found.group(2) != found.group(4):
                return [Logged(line)]
    return []


def dpd_into_expired_nat(obs: Observation) -> list[Evidence]:
    """DPD to a peer behind NAT that goes unanswered (the mapping expired), unless something
    else explains the silence: this side's own path went away first, or the peer's log shows
    its daemon restarting meanwhile; or an ICMP port unreachable for the NAT-T port, the NAT's
    own answer when it has no mapping."""
    for lines in _by_sa(obs).values():
        natted = next((l for l in lines if _NATTED_PEER in l.text), None)
        dpd = next((l for l in lines if "sending DPD request" in l.text), None)
        if natted and dpd:
            gave_up = next((l for l in lines if l.number > dpd.number and "giving up after" in l.text), None)
            if gave_up and not _path_lost(lines, dpd) and not _restarted_meanwhile(obs, natted, gave_up):
                return [Logged(natted), Logged(dpd), Logged(gave_up)]
    return [s for s in obs.icmp if _into_nat_mapping(s.packet.icmp)][:3]


_QUOTED = re.compile(r"port unreachable for UDP \S+:(\d+) > \S+:(\d+)")


def _into_nat_mapping(icmp: str) -> bool:
    """Port unreachable for a packet from the IKE/NAT-T port to a port that is neither: a NAT
    mapping's port, gone (a host that merely has no charon is addressed on 500 or 4500)."""
    found = _QUOTED.search(icmp)
    ike = (IKE_PORT, NAT_T_PORT)
    return bool(found) and int(found.group(1)) in ike and int(found.group(2)) not in ike


def peer_returns_from_new_port(obs: Observation) -> list[Evidence]:
    """Traffic to the NAT-T port from one address moves to a new source port and never goes back."""
    ports: dict[tuple[str, str], list[Seen]] = defaultdict(list)
    for s in obs.ike:
        p = s.packet
        if p.dport == NAT_T_PORT and p.sport not in (IKE_PORT, NAT_T_PORT):
            ports[(p.src, p.dst)].append(s)
    for seen in ports.values():
        order = list(dict.fromkeys(s.packet.sport for s in seen))
        if len(order) >= 2:
            last_of_first = max(i for i, s in enumerate(seen) if s.packet.sport == order[0])
            first_of_new = next(i for i, s in enumerate(seen) if s.packet.sport == order[-1])
            if first_of_new > last_of_first:
                return [seen[last_of_first], seen[first_of_new]]
    return []


# -- a peer's restart, a lost path, PFS, virtual IPs, NAT before IPsec, path MTU ----------

_IKE_UP = re.compile(r"IKE_SA (\S+)\[\d+\] established between (\S+?)\[([^\]]*)\]\.\.\.(\S+?)\[([^\]]*)\]")
_OLD_PATH = "old path is not available anymore"
_MOBIKE = re.compile(r"peer supports MOBIKE|using MOBIKE")  # negotiated, or used (not merely offered)


def _root(obs: Observation) -> Observation:
    """The whole observation a peer's part was taken from (itself if it is whole)."""
    return obs.cache.get("parent", obs)


def _files(obs: Observation) -> set[Path] | None:
    """The logs a peer's part has lines of (None: the whole observation, every log)."""
    if "parent" not in obs.cache:
        return None
    if "files" not in obs.cache:
        obs.cache["files"] = {line.file for line in obs.logs}
    return obs.cache["files"]


def _restarts(obs: Observation) -> list[LogLine]:
    """Daemon starts after the daemon's previous start had IKE_SAs to work on, in the same log:
    restarts (a banner and its worker threads, with nothing between them, are one start). Whether
    a daemon had work is a matter of its whole log, so this is read on the whole observation."""
    root = _root(obs)
    if "restarts" not in root.cache:
        out, busy, log = [], False, None
        for line in root.logs:  # one log after the other
            if line.file is not log:
                log, busy = line.file, False
            if line.sa is not None:
                busy = True
            elif STARTED.match(line.text):
                if busy:
                    out.append(line)
                busy = False
        root.cache["restarts"] = out
    files = _files(obs)
    return root.cache["restarts"] if files is None else [l for l in root.cache["restarts"] if l.file in files]


def _restarted_meanwhile(obs: Observation, first: LogLine, last: LogLine) -> bool:
    """The peer's daemon restarted while this side's IKE_SA waited: another log's restart between
    the two lines by time of day; where either log has no times, a restart in the log of the
    IKE_SA's other side (paired by CHILD_SA SPIs: one side's inbound is the other's outbound)
    after that side's IKE_SA came up. Logs with neither say nothing of it."""
    start, end = first.seconds(), last.seconds()
    untimed = []
    for restart in _restarts(_root(obs)):
        if restart.file == first.file:
            continue
        at = restart.seconds()
        if start is not None and end is not None and at is not None:
            if start <= at <= end:
                return True
        else:
            untimed.append(restart)
    return bool(untimed) and _peer_lost_in_restart(obs, first, untimed)


def _peer_lost_in_restart(obs: Observation, line: LogLine, restarts: list[LogLine]) -> bool:
    root = _root(obs)
    mine = next((log for log in root.log_files if log.shown == line.file), None)
    sa = mine.sas.get(line.sa) if mine is not None and line.sa else None
    if sa is None or not sa.child_spis:
        return False
    crossed = {(outbound, inbound) for inbound, outbound in sa.child_spis}
    for log in root.log_files:
        if log is mine:
            continue
        for key, other in log.sas.items():
            if other.child_spis & crossed and (lines := _by_sa(root).get((str(log.shown), key))):
                if any(r.file == lines[0].file and r.number > lines[0].number for r in restarts):
                    return True
    return False


def _path_lost(lines: list[LogLine], before: LogLine) -> bool:
    return any(_OLD_PATH in l.text and l.number < before.number for l in lines)


def _relationship(up: re.Match) -> tuple[str, str]:
    """An established IKE_SA's connection and its peer: by identity, which survives a new address
    (a road warrior, a NAT's new mapping), else by address."""
    return up.group(1), up.group(5) or up.group(4)


def restarted_and_not_reestablished(obs: Observation) -> list[Evidence]:
    """A gateway's daemon started again while it had IKE_SAs up, and at least one of those
    relationships (connection and peer) was never established again after it: the peer still
    held its SAs, and neither side brought the tunnel back (others coming back resolve nothing
    of it). A relationship is lost when a restart of its log follows the last time it came up."""
    restarts: dict[Path, list[LogLine]] = defaultdict(list)
    for line in _restarts(obs):
        restarts[line.file].append(line)
    if not restarts:
        return []
    last: dict[tuple, LogLine] = {}  # (log, relationship) -> the last line that established it
    for line in obs.logs:
        if "established between" in line.text and line.file in restarts and (found := _IKE_UP.search(line.text)):
            last[(line.file, _relationship(found))] = line
    numbers = {log: [r.number for r in lines] for log, lines in restarts.items()}
    lost = []
    for (log, _), up in last.items():
        after = bisect.bisect_right(numbers[log], up.number)
        if after < len(restarts[log]):
            lost.append((restarts[log][after], up))
    if not lost:
        return []
    restart, up = min(lost, key=lambda pair: (str(pair[0].file), pair[0].number))
    return [Logged(up), Logged(restart)]


def path_lost_without_mobike(obs: Observation) -> list[Evidence]:
    """An established IKE_SA's local path went away (its address or route), no MOBIKE was
    negotiated to move it, and its next request was given up: it stayed bound to the dead path
    until its peer was declared dead."""
    for lines in _by_sa(obs).values():
        up = next((l for l in lines if _IKE_UP.search(l.text)), None)
        lost = next((l for l in lines if up and l.number > up.number and _OLD_PATH in l.text), None)
        if lost is None or any(_MOBIKE.search(l.text) for l in lines):
            continue
        gave_up = next((l for l in lines if l.number > lost.number and "giving up after" in l.text), None)
        if gave_up:
            return [Logged(up), Logged(lost), Logged(gave_up)]
    return []


_KE = re.compile(r"^(MODP_\w+|ECP_\w+|CURVE_\w+|NTRU_\w+|NEWHOPE_\w+)$")
_PROPOSALS = re.compile(r"(received|configured) proposals: ((?:ESP|AH):.*)$")


def _without_ke(proposals: str) -> set[str]:
    """Each ESP/AH proposal of a logged list, its key exchange (DH) transforms left out."""
    return {"/".join(t for t in p.split(":", 1)[1].split("/") if not _KE.match(t))
            for p in proposals.split(", ") if ":" in p}


def child_proposals_differ_only_in_ke(obs: Observation) -> list[Evidence]:
    """A responder refused a CHILD_SA proposal that matches one of its own once the key
    exchange (PFS DH group) is left out: the sides disagree on PFS only."""
    for lines in _by_sa(obs).values():
        shown: dict[str, LogLine] = {}
        for line in lines:
            found = _PROPOSALS.search(line.text)
            if found:
                shown[found.group(1)] = line
            elif "no acceptable proposal found" in line.text and len(shown) == 2:
                received, configured = (_PROPOSALS.search(shown[k].text).group(2) for k in ("received", "configured"))
                if received != configured and _without_ke(received) & _without_ke(configured):
                    return [Logged(shown["received"]), Logged(shown["configured"]), Logged(line)]
                shown = {}
    return []


_CHILD_UP = re.compile(r"CHILD_SA (\S+)\{\d+\} established with SPIs")
_CHILD_TRY = re.compile(r"establishing CHILD_SA (\S+)\{\d+\}")


def child_refused_after_first_accepted(obs: Observation) -> list[Evidence]:
    """The peer accepted a CHILD_SA in IKE_AUTH (where no key exchange is made), then refused
    the same CHILD_SA's CREATE_CHILD_SA (its rekeying or recreation, with or without a key
    exchange) with NO_PROPOSAL_CHOSEN: what differs is the PFS DH group. A CHILD_SA this side
    starts establishing once its IKE_SA is up is a CREATE_CHILD_SA (IKE_AUTH's is started before),
    told without the `generating` lines, which a paste or a level-0 log may lack."""
    for lines in _by_sa(obs).values():
        accepted: dict[str, LogLine] = {}
        up = False
        trying = None
        for line in lines:
            text = line.text
            if "established between" in text and _IKE_UP.search(text):
                up = True
            elif found := _CHILD_UP.search(text):
                if up and trying is None:  # established in IKE_AUTH
                    accepted.setdefault(found.group(1), line)
                trying = None
            elif up and (found := _CHILD_TRY.search(text)):
                trying = (found.group(1), line)
            elif "received NO_PROPOSAL_CHOSEN notify, no CHILD_SA built" in text and trying \
                    and trying[0] in accepted:
                return [Logged(accepted[trying[0]]), Logged(trying[1]), Logged(line)]
    return []


_NO_POLICY = re.compile(r"no matching outbound IPsec policy for (\S+) == (\S+)")


def _inside(address: str, networks: list) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in networks if n.version == ip.version)


def _unrouted(obs: Observation) -> list[tuple[LogLine, str, str]]:
    """kernel-libipsec's packets without an outbound policy: (line, source, destination), found
    once on the whole observation. Its packet path logs without an IKE_SA, so a peer's part sees
    those of its logs, and those given to its own IKE_SAs (a log without groups, the journal's
    short output or a bare paste, gives them one)."""
    root = _root(obs)
    if "unrouted" not in root.cache:
        root.cache["unrouted"] = [(line, *found.groups()) for line in root.logs if "outbound IPsec policy" in line.text
                                  and (found := _NO_POLICY.search(line.text))]
    if obs is root or not root.cache["unrouted"]:
        return root.cache["unrouted"]
    members, files = obs.cache["members"], _files(obs)
    return [u for u in root.cache["unrouted"] if id(u[0]) in members or (u[0].sa is None and u[0].file in files)]


def tunnel_traffic_from_gateway_address(obs: Observation) -> list[Evidence]:
    """Traffic for a negotiated remote selector whose source is the gateway's own IKE address,
    outside its local selector: a source NAT rewrote it before IPsec saw it (no NAT exemption).
    kernel-libipsec then finds no outbound policy for it and drops it (its `esp` log at level
    2 says so); kernel IPsec sends it out of the WAN in clear (a capture shows it)."""
    unrouted = _unrouted(obs)
    if not unrouted and not obs.clear:
        return []
    selectors = _selectors(obs)
    own: dict[Path, set[str]] = defaultdict(set)  # each log's own IKE addresses
    for line in obs.logs if unrouted else ():
        if "established between" in line.text and (up := _IKE_UP.search(line.text)):
            own[line.file].add(up.group(2))
    for line, source, destination in unrouted:
        if source not in own.get(line.file, ()):
            continue
        for child, local, remote in selectors:
            if child.file == line.file and not _inside(source, local) and _inside(destination, remote):
                return [Logged(child), Logged(line)]
    ends: dict[int, set[str]] = defaultdict(set)  # each capture's IKE endpoints
    for s in obs.ike:
        ends[id(s.capture)] |= {s.packet.src, s.packet.dst}
    for s in obs.clear:
        src, dst = s.packet.src, s.packet.dst
        if src not in ends.get(id(s.capture), ()):
            continue
        for child, local, remote in selectors:
            for mine, theirs in ((local, remote), (remote, local)):
                if _inside(dst, theirs) and not _inside(src, mine) and not _inside(src, theirs):
                    return [Logged(child), s]
    return []


_TOO_BIG = re.compile(r"(fragmentation needed|packet too big)")


def large_segment_never_acknowledged(obs: Observation, sent: int = 3) -> list[Evidence]:
    """While an SA is up: on a TCP flow whose smaller data was acknowledged, a larger segment is
    sent `sent` times or more and never acknowledged, and no ICMP "fragmentation needed" or
    "packet too big" about the flow appears in any capture: a path MTU black hole (the tunnel
    carries less than the segment, and the ICMP that would tell the sender is filtered)."""
    if not established(obs):
        return []
    told = [s.packet.icmp for s in obs.icmp if _TOO_BIG.search(s.packet.icmp or "")]
    flows: dict[tuple, list] = defaultdict(list)
    for (flow, seq), entry in obs.segments.items():
        flows[flow].append((seq, entry))
    for flow, sent_on in flows.items():
        cap, src, sport, dst, dport = flow
        acked = obs.acked.get((cap, dst, dport, src, sport), 0)
        delivered = [size for seq, (size, _, _, _) in sent_on if seq + size <= acked]
        for seq, (size, times, first, last) in sent_on:
            quoted = f"{src}:{sport} > {dst}:{dport}" if ":" not in src else f"[{src}]:{sport} > [{dst}]:{dport}"
            if times >= sent and acked <= seq and delivered and size > max(delivered) \
                    and not any(quoted in t for t in told):
                return [first, last]
    return []


# -- IKEv1 phase 1 expiry on one side -----------------------------------------------------

def ikev1_ignored_while_esp_flows(obs: Observation) -> list[Evidence]:
    """IKEv1 requests retransmitted and never answered while the silent peer still sends ESP."""
    groups: dict[tuple[str, int, str], list[Seen]] = defaultdict(list)
    for s in obs.ike:
        if s.packet.ike.version == 1:
            groups[(s.packet.ike.spi_i, s.packet.ike.msgid, s.packet.src)].append(s)
    answered = _v1_answered(obs)
    for (spi, msgid, src), seen in groups.items():
        peer = seen[0].packet.dst
        if len(seen) < 2 or (spi, msgid, peer) in answered:
            continue
        start, end = seen[0].packet.time, seen[-1].packet.time
        for (_, esp_src, esp_dst), (count, first, last) in obs.esp.items():
            if esp_src == peer and esp_dst == src and first.packet.time <= end and last >= start:
                return [seen[0], seen[-1], first]
    return []


def ikev1_peer_silent_then_phase2_expires(obs: Observation) -> list[Evidence]:
    """From logs alone: an established IKEv1 SA's renewal goes unanswered here, and the peer's log
    shows its phase 2 expiring afterwards (it kept phase 2 and ignored this side)."""
    expired = [l for l in obs.logs if "closing expired CHILD_SA" in l.text]
    for lines in _by_sa(obs).values():
        v1 = any("Main Mode" in l.text for l in lines)
        established = next((l for l in lines if "established between" in l.text), None)
        gave_up = next((l for l in lines if established and l.number > established.number
                        and "giving up after" in l.text), None)
        other = [e for e in expired if e.file != (gave_up.file if gave_up else None)]
        if v1 and gave_up and other:
            return [Logged(established), Logged(gave_up), Logged(other[0])]
    return []


def ikev1_renewal_ignored(obs: Observation) -> list[Evidence]:
    """From this side's log alone: an IKEv1 SA was up, its renewal (Quick Mode, DPD) went unanswered
    until charon gave up, new Main Mode openings went unanswered too ("peer not responding"), and a
    later one was answered: the peer was reachable before and after, and ignored phase 1 meanwhile
    (it kept its phase 2 until it expired)."""
    by_file: dict[Path, list[LogLine]] = defaultdict(list)
    for line in obs.logs:
        if line.sa:
            by_file[line.file].append(line)
    for lines in by_file.values():
        if not any(l.text.startswith("giving up after") for l in lines):
            continue
        ikev1 = {l.sa for l in lines if "Main Mode" in l.text or "ID_PROT" in l.text}
        up = next((l for l in lines if l.sa in ikev1 and "IKE_SA" in l.text and _IKE_UP.search(l.text)), None)
        if up is None:
            continue
        gave_up = next((l for l in lines if l.number > up.number and "giving up after" in l.text), None)
        ignored = next((l for l in lines if gave_up and l.number > gave_up.number
                        and "peer not responding, trying again" in l.text), None)
        again = next((l for l in lines if ignored and l.number > ignored.number and _IKE_UP.search(l.text)), None)
        if again is not None:
            return [Logged(up), Logged(gave_up), Logged(ignored), Logged(again)]
    return []


_REKEYED = re.compile(r"IKE_SA (\S+\[\d+\]) rekeyed between")


def peer_deletes_rekeyed_sa(obs: Observation) -> list[Evidence]:
    """The IKE_SA this side has just rekeyed is deleted by the peer, which then opens a new IKE_SA
    from scratch: the peer was reauthenticating the same SA at the same time (break-before-make)
    and tore down what this side built."""
    for lines in _by_sa(obs).values():
        for line in lines:
            found = _REKEYED.search(line.text)
            if found:
                deleted = next((l for l in obs.logs if l.file == line.file and l.number > line.number
                                and l.text.startswith(f"received DELETE for IKE_SA {found.group(1)}")), None)
                # and rebuilt from scratch by the peer right away: a reauthentication, not a shutdown
                again = deleted and next((l for l in obs.logs if l.file == line.file and l.number > deleted.number
                                          and _RESPONDER.search(l.text) and l.text.startswith(f"{line.peer} ")),
                                         None)
                if again:
                    return [Logged(line), Logged(deleted), Logged(again)]
    return []


# -- ESP ----------------------------------------------------------------------------------

def esp_ip_fragmented(obs: Observation) -> list[Evidence]:
    return obs.esp_fragments[:3]


def esp_messages_split_over_segments(obs: Observation) -> list[Evidence]:
    return obs.esp_split[:3]


def esp_one_way(obs: Observation, minimum: int = 5) -> list[Evidence]:
    """After an established SA, ESP from A to B seen (at least `minimum` packets) and none back, in
    a capture that records both directions."""
    by_capture: dict[int, dict[tuple[str, str], list]] = defaultdict(dict)
    captures = {id(c): c for c in obs.captures}
    for (cap, src, dst), entry in obs.esp.items():
        by_capture[cap][(src, dst)] = entry
    out: list[Evidence] = []
    for cap, flows in by_capture.items():
        if captures[cap].one_sided():
            continue
        out += [first for (src, dst), (count, first, _) in flows.items() if count >= minimum and (dst, src) not in flows]
    return out[:3] if out and established(obs) else []


# -- traffic selectors --------------------------------------------------------------------

_CHILD = re.compile(r"CHILD_SA \S+ established with SPIs .* and TS (.+) === (.+)$")


def _selectors(obs: Observation) -> list[tuple[LogLine, list, list]]:
    """Every CHILD_SA's negotiated selectors, local and remote, with the log line that names them."""
    selectors = []
    for line in obs.logs:
        found = _CHILD.search(line.text)
        if found:
            local = [ipaddress.ip_network(n) for n in found.group(1).split() if "/" in n]
            remote = [ipaddress.ip_network(n) for n in found.group(2).split() if "/" in n]
            selectors.append((line, local, remote))
    return selectors


def traffic_outside_negotiated_selectors(obs: Observation) -> list[Evidence]:
    """Plain packets between the sites to an address next to (within 8 bits of) a negotiated remote
    selector but outside it: a selector with a wrong mask leaves that traffic out of the tunnel."""
    selectors = _selectors(obs)
    for s in obs.clear:
        src, dst = ipaddress.ip_address(s.packet.src), ipaddress.ip_address(s.packet.dst)
        for line, local, remote in selectors:
            if any(src in n for n in local) and not any(dst in n for n in remote) and any(
                    n.version == dst.version and dst in n.supernet(new_prefix=max(0, n.prefixlen - 8)) for n in remote):
                return [Logged(line), s]
    return []


def protected_traffic_in_clear(obs: Observation) -> list[Evidence]:
    """Plain packets from inside a negotiated CHILD_SA's selectors to inside its other side, on a
    capture that also carries IKE or ESP (a WAN, where that traffic must be encrypted; on a LAN it
    is plain by design): while no SA covered it (the tunnel down), it followed another route out."""
    wans = {id(s.capture) for s in obs.ike} | {cap for cap, _, _ in obs.esp}
    selectors = _selectors(obs)
    for s in obs.clear:
        if id(s.capture) not in wans:
            continue
        src, dst = ipaddress.ip_address(s.packet.src), ipaddress.ip_address(s.packet.dst)
        for line, local, remote in selectors:
            for mine, theirs in ((local, remote), (remote, local)):
                if any(src in n for n in mine if n.version == src.version) and \
                        any(dst in n for n in theirs if n.version == dst.version):
                    return [Logged(line), s]
    return []



def return_traffic_bypasses_tunnel(obs: Observation, minimum: int = 3) -> list[Evidence]:
    """On an interface capture without IKE or ESP (a LAN, not a WAN), after an established SA:
    at least `minimum` plain packets from one side's selector to the other's leave, and none come
    back the other way: the far hosts get the tunnel's traffic, but their answers are routed
    elsewhere (the route back into the tunnel missing on their LAN), not dropped on the path."""
    wans = {id(s.capture) for s in obs.ike} | {cap for cap, _, _ in obs.esp}
    flows: dict[tuple[int, str], list[Seen]] = defaultdict(list)
    for s in obs.clear:
        if id(s.capture) not in wans and s.packet.direction in ("in", "out"):
            flows[(id(s.capture), s.packet.direction)].append(s)
    if not flows or not established(obs):
        return []

    def between(seen: list[Seen], sources: list, destinations: list) -> list[Seen]:
        return [s for s in seen if any(ipaddress.ip_address(s.packet.src) in n for n in sources)
                and any(ipaddress.ip_address(s.packet.dst) in n for n in destinations)]

    for line, local, remote in _selectors(obs):
        for near, far in ((local, remote), (remote, local)):
            for (cap, direction), seen in flows.items():
                delivered = between(seen, far, near) if direction == "out" else []
                answered = between(flows.get((cap, "in"), []), near, far)
                if len(delivered) >= minimum and not answered:
                    return [Logged(line), delivered[0]]
    return []

_FOR = re.compile(r"^selecting traffic selectors for (us|other):")
_NARROWED = re.compile(r"^\s*config: (?P<config>.+?), received: (?P<received>.+?) => match: (?P<match>.+)$")
_CATCH_ALL = ("0.0.0.0/0", "::/0", "dynamic")


def _networks(text: str) -> list:
    out = []
    for word in text.replace(",", " ").split():
        try:
            out.append(ipaddress.ip_network(word.split("[", 1)[0], strict=False))
        except ValueError:
            continue
    return out


def selectors_narrowed(obs: Observation) -> list[Evidence]:
    """A CHILD_SA's selectors narrowed below what this side configured (charon's `config: X,
    received: Y => match: Z` under "selecting traffic selectors"): part of a configured subnet is
    left out of the tunnel. A configured catch-all (0.0.0.0/0, ::/0, dynamic) is meant to be
    narrowed, and so is a responder's remote side (a hub offering a wide remote range to its spokes)."""
    for lines in _by_sa(obs).values():
        responder = any(_RESPONDER.search(l.text) for l in lines)
        side = None
        for line in lines:
            found = _FOR.match(line.text.strip())
            if found:
                side = found.group(1)
                continue
            found = _NARROWED.match(line.text)
            if not found or side is None or (responder and side == "other"):
                continue
            config = found.group("config").strip()
            if any(config.startswith(c) for c in _CATCH_ALL):
                continue
            configured, matched = _networks(config), _networks(found.group("match"))
            if configured and matched and sum(n.num_addresses for n in matched) < \
                    sum(n.num_addresses for n in configured):
                # the narrowed CHILD_SA's own establishment is part of the evidence, not its resolution
                child = next((l for l in lines if l.number > line.number and _CHILD.search(l.text)), None)
                return [Logged(line)] + ([Logged(child)] if child else [])
    return []


_RESPONDER = re.compile(r"is initiating an? (?:Main Mode |Aggressive Mode )?IKE_SA")
_RETRANSMIT = re.compile(r"^retransmit \d+ of request with message ID (\d+)")
_SENT = re.compile(r"^sending packet: from \S+\[(\d+)\] to \S+\[(\d+)\] \((\d+) bytes\)")
LARGE_IKE = 1472  # an IKE datagram larger than this leaves a 1500-byte path in IP fragments (IPv4)


def _lost_requests(obs: Observation) -> list[tuple[list[LogLine], LogLine, LogLine | None]]:
    """Per IKE_SA whose IKE_SA_INIT was answered: IKE_AUTH (message ID 1) retransmitted before the
    IKE_SA was up, with the packet line that sent it."""
    out = []
    for lines in _by_sa(obs).values():
        if not any("parsed IKE_SA_INIT response" in l.text for l in lines):
            continue
        retransmit = next((l for l in lines if (m := _RETRANSMIT.match(l.text)) and m.group(1) == "1"), None)
        if retransmit is None or any(_IKE_UP.search(l.text) for l in lines if l.number < retransmit.number):
            continue
        sent = [l for l in lines if l.number < retransmit.number and _SENT.match(l.text)]
        out.append((lines, retransmit, sent[-1] if sent else None))
    return out


def large_request_unanswered(obs: Observation) -> list[Evidence]:
    """From a log: an IKE request after IKE_SA_INIT larger than a 1500-byte path carries in one piece,
    sent without IKE fragmentation and retransmitted unanswered: its IP fragments were dropped."""
    for lines, retransmit, sent in _lost_requests(obs):
        split = any("splitting IKE message" in l.text for l in lines)
        if sent is not None and int(_SENT.match(sent.text).group(3)) > LARGE_IKE and not split:
            return [Logged(sent), Logged(retransmit)]
    return []


def natt_request_unanswered(obs: Observation) -> list[Evidence]:
    """From a log: IKE_SA_INIT answered on port 500, then the next request, small and sent on the
    NAT-T port, retransmitted unanswered."""
    for lines, retransmit, sent in _lost_requests(obs):
        if sent is None:
            continue
        sport, dport, size = (int(v) for v in _SENT.match(sent.text).groups())
        if size <= LARGE_IKE and NAT_T_PORT in (sport, dport):
            return [Logged(sent), Logged(retransmit)]
    return []




def _after_ike_up(obs: Observation, pattern: re.Pattern) -> list[Evidence]:
    for lines in _by_sa(obs).values():
        up = next((l for l in lines if _IKE_UP.search(l.text)), None)
        if up is not None:
            found = next((l for l in lines if l.number > up.number and pattern.search(l.text)), None)
            if found is not None:
                return [Logged(up), Logged(found)]
    return []


def no_proposal_after_ike_up(obs: Observation) -> list[Evidence]:
    """NO_PROPOSAL_CHOSEN sent or received on an IKE_SA already established: a CHILD_SA's proposal
    (IKEv1 Quick Mode, IKEv2 CREATE_CHILD_SA or IKE_AUTH), often the PFS group at a rekey."""
    return _after_ike_up(obs, re.compile(r"received NO_PROPOSAL_CHOSEN (?:error )?notify|N\(NO_PROP\)|"
                                          r"no matching proposal found, sending NO_PROPOSAL_CHOSEN"))


def invalid_id_in_phase1(obs: Observation) -> list[Evidence]:
    """IKEv1 INVALID_ID_INFORMATION before phase 1 is up: the identities of Main/Aggressive Mode."""
    pattern = re.compile(r"received INVALID_ID_INFORMATION error notify|N\(INVAL_ID\)")
    for lines in _by_sa(obs).values():
        for line in lines:
            if _IKE_UP.search(line.text):
                break
            if pattern.search(line.text):
                return [Logged(line)]
    return []


def invalid_id_after_ike_up(obs: Observation) -> list[Evidence]:
    """IKEv1 INVALID_ID_INFORMATION once phase 1 is up: Quick Mode's identities are the traffic selectors."""
    return _after_ike_up(obs, re.compile(r"received INVALID_ID_INFORMATION error notify|N\(INVAL_ID\)"))


# -- success --------------------------------------------------------------------------------

_ESTABLISHED = re.compile(r"(IKE_SA \S+ established between|CHILD_SA \S+ established with SPIs)")


def successes(obs: Observation) -> list[Evidence]:
    """Every sign of an established SA: charon's own lines, or an IKE_AUTH response that opens
    with the responder's identity (its first encrypted payload, readable in clear)."""
    out: list[Evidence] = [Logged(l) for l in obs.logs if "established" in l.text and _ESTABLISHED.search(l.text)]
    out += [s for s in obs.ike if s.packet.ike.version == 2 and s.packet.ike.exchange == "IKE_AUTH"
            and s.packet.ike.response and s.packet.ike.inner == "IDr"]
    out += _v1_quick_mode_done(obs)
    return out


def _v1_quick_mode_done(obs: Observation) -> list[Evidence]:
    """IKEv1 Quick Mode completed: the initiator's third message came after the responder's one
    answer. A responder that sends its answer again never accepted the third message, and has
    no phase 2 (ESP then flows one way)."""
    exchanges: dict[tuple[str, int], list[Seen]] = defaultdict(list)
    for s in obs.ike:
        if s.packet.ike.version == 1 and s.packet.ike.exchange == "IKEv1_QUICK":
            exchanges[(s.packet.ike.spi_i, s.packet.ike.msgid)].append(s)
    done = []
    for seen in exchanges.values():
        initiator = seen[0].packet.src
        answers = [s for s in seen if s.packet.src != initiator]
        if len(answers) == 1 and any(s.packet.src == initiator and s.packet.time >= answers[0].packet.time
                                     for s in seen):
            done.append(seen[-1])
    return done


def established(obs: Observation) -> bool:
    return bool(successes(obs))


FACTS: dict[str, Callable[[Observation], list[Evidence]]] = {f.__name__: f for f in (
    ike_init_unanswered, natt_unanswered, ike_fragments_unanswered, no_proposal_chosen_in_init,
    ikev2_invalid_ke_in_init, tcp_synack_leaves_other_interface, tcp_handshake_never_completes, tcp_rst_to_syn,
    responder_changed_port, dpd_into_expired_nat, peer_returns_from_new_port, ikev1_ignored_while_esp_flows,
    ikev1_peer_silent_then_phase2_expires, esp_ip_fragmented, esp_messages_split_over_segments, esp_one_way,
    traffic_outside_negotiated_selectors, protected_traffic_in_clear, return_traffic_bypasses_tunnel,
    certificate_lacks_identity, selectors_narrowed, large_request_unanswered, natt_request_unanswered,
    no_proposal_after_ike_up, invalid_id_after_ike_up, invalid_id_in_phase1, ikev1_renewal_ignored,
    peer_deletes_rekeyed_sa, restarted_and_not_reestablished, path_lost_without_mobike,
    child_proposals_differ_only_in_ke, child_refused_after_first_accepted, tunnel_traffic_from_gateway_address,
    large_segment_never_acknowledged,
)}
