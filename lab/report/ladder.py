"""Ladder diagrams from a phase's captures: who sent which IKE message or TCP handshake
packet to whom, in time order, with retransmissions marked."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab.capture import packets as pcap


@dataclass
class Rung:
    time: float
    src: str
    dst: str
    label: str
    kind: str  # ike / tcp
    retransmit: bool
    where: str


def rungs(path: Path, mac: str, where: str) -> list[Rung]:
    out, seen = [], set()
    for p in pcap.read(path, mac):
        if p.ike:
            key = (p.src, p.ike.spi_i, p.ike.exchange, p.ike.response, p.ike.msgid, p.ike.fragment)
            label = p.ike.summary()
            kind = "ike"
        elif p.proto == "TCP" and ("S" in p.tcp_flags or "R" in p.tcp_flags):
            key = (p.src, p.sport, p.dst, p.dport, p.tcp_flags)
            label = {"S": "SYN", "SA": "SYN/ACK"}.get(p.tcp_flags, p.tcp_flags.replace("R", "RST "))
            label = f"{label} {p.sport}>{p.dport}"
            kind = "tcp"
        else:
            continue
        out.append(Rung(p.time, p.src, p.dst, label, kind, key in seen, f"{where} {p.direction}"))
        seen.add(key)
    return out
