"""Reading lab pcaps into plain records: addresses, ports, TCP flags, IKE exchanges, fragments.

scapy is imported here only, and only the layers used, because `import scapy.all`
costs most of a second.
"""
from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

# Ports on which ESP-in-UDP may run; the lab passes the ports its gateways use.
NAT_T_PORTS = frozenset({4500})
EXCHANGES = {34: "IKE_SA_INIT", 35: "IKE_AUTH", 36: "CREATE_CHILD_SA", 37: "INFORMATIONAL",
             2: "IKEv1_MAIN", 4: "IKEv1_AGGRESSIVE", 5: "IKEv1_INFORMATIONAL", 32: "IKEv1_QUICK"}


# strongSwan's short names, so a capture summary reads like the charon log line beside it
SHORT_NOTIFY = {"NAT_DETECTION_SOURCE_IP": "NATD_S_IP", "NAT_DETECTION_DESTINATION_IP": "NATD_D_IP",
                "IKEV2_FRAGMENTATION_SUPPORTED": "FRAG_SUP", "SIGNATURE_HASH_ALGORITHMS": "HASH_ALG",
                "REDIRECT_SUPPORTED": "REDIR_SUP", "MULTIPLE_AUTH_SUPPORTED": "MULT_AUTH",
                "CHILDLESS_IKEV2_SUPPORTED": "CHDLESS_SUP", "INITIAL_CONTACT": "INIT_CONTACT"}


@dataclass
class Ike:
    exchange: str
    response: bool
    msgid: int
    spi_i: str
    notifies: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.exchange} {'response' if self.response else 'request'} {self.msgid}"
        names = [SHORT_NOTIFY.get(n, n) for n in self.notifies]
        return text + (f" N({','.join(names)})" if names else "")


@dataclass
class Packet:
    time: float
    direction: str  # "in" / "out" relative to the captured interface
    src: str
    dst: str
    proto: str
    sport: int | None = None
    dport: int | None = None
    tcp_flags: str = ""
    ike: Ike | None = None
    esp: bool = False
    split_frame: bool = False  # a TCP segment ending inside an RFC 9329 frame
    # a message starts here that is longer than any segment of its stream: it cannot fit one
    oversize_message: bool = False
    fragment: bool = False
    frag_offset: int = 0  # bytes
    more_fragments: bool = False
    length: int = 0

    def summary(self) -> str:
        ends = (f"{self.src}:{self.sport} > {self.dst}:{self.dport}" if self.sport is not None
                else f"{self.src} > {self.dst}")
        what = self.proto
        if self.ike:
            what += " " + self.ike.summary()
        elif self.esp:
            what += " ESP"
        if self.tcp_flags:
            what += f" [{self.tcp_flags}]"
        if self.split_frame:
            what += f" frame continues in next segment{' (longer than any segment)' if self.oversize_message else ''}, len {self.length}"
        if self.fragment:
            what += f" fragment offset {self.frag_offset}{' MF' if self.more_fragments else ''} len {self.length}"
        return f"{self.direction} {ends} {what}"


def parse_ike(data: bytes) -> Ike | None:
    """An IKE header (and the notifies readable in clear) from a UDP payload, or None."""
    from scapy.contrib.ikev2 import IKEv2, IKEv2_Notify, IKEv2NotifyMessageTypes

    if len(data) < 28 or data[17] >> 4 not in (1, 2):
        return None
    exchange = EXCHANGES.get(data[18], f"EXCHANGE_{data[18]}")
    flags = data[19]
    msgid = int.from_bytes(data[20:24], "big")
    if data[17] >> 4 == 1:  # IKEv1: the responder is not flagged in the header
        return Ike(exchange, False, msgid, data[:8].hex())
    notifies = []
    try:
        layer = IKEv2(data).getlayer(IKEv2_Notify)
        while layer is not None:
            notifies.append(IKEv2NotifyMessageTypes.get(layer.type, str(layer.type)))
            layer = layer.payload.getlayer(IKEv2_Notify)
    except Exception:  # a truncated or odd payload: keep the header we could read
        pass
    return Ike(exchange, bool(flags & 0x20), msgid, data[:8].hex(), notifies)


def read(path: Path, local_mac: str, bpf: str = "", nat_t_ports: frozenset[int] = NAT_T_PORTS) -> list[Packet]:
    """Packets of a pcap taken on one interface; direction from the interface's own MAC."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.l2 import Ether
    from scapy.sendrecv import sniff

    frames = sniff(offline=str(path), filter=bpf or None, quiet=True)
    packets = []
    tcp_segments: list[tuple[Packet, tuple, int, bytes, bool]] = []
    for frame in frames:
        if not frame.haslayer(IP):
            continue
        ip = frame[IP]
        direction = "out" if frame.haslayer(Ether) and frame[Ether].src.lower() == local_mac.lower() else "in"
        pkt = Packet(time=float(frame.time), direction=direction, src=ip.src, dst=ip.dst,
                     proto={1: "ICMP", 6: "TCP", 17: "UDP", 50: "ESP"}.get(ip.proto, str(ip.proto)),
                     fragment=bool(ip.flags.MF) or ip.frag > 0, frag_offset=ip.frag * 8,
                     more_fragments=bool(ip.flags.MF), length=ip.len)
        if ip.frag == 0 and ip.haslayer(UDP):
            udp = ip[UDP]
            pkt.sport, pkt.dport = udp.sport, udp.dport
            _classify_udp(pkt, bytes(udp.payload), nat_t_ports)
        elif ip.frag == 0 and ip.haslayer(TCP):
            tcp = ip[TCP]
            pkt.sport, pkt.dport, pkt.tcp_flags = tcp.sport, tcp.dport, str(tcp.flags)
            tcp_segments.append((pkt, (ip.src, tcp.sport, ip.dst, tcp.dport), tcp.seq,
                                 bytes(tcp.payload), "S" in pkt.tcp_flags))
        elif ip.haslayer(ICMP):
            pkt.proto = f"ICMP type {ip[ICMP].type}"
        packets.append(pkt)
    _classify_tcp_streams(tcp_segments)
    return packets


def _classify_udp(pkt: Packet, payload: bytes, nat_t_ports: frozenset[int]) -> None:
    if payload.startswith(b"\0\0\0\0"):  # non-ESP marker: IKE on a NAT-T port
        pkt.ike = parse_ike(payload[4:])
    elif _plain_ike(payload):
        pkt.ike = parse_ike(payload)
    elif payload == b"\xff" and {pkt.sport, pkt.dport} & nat_t_ports:
        pkt.proto = "UDP NAT-keepalive"
    elif len(payload) >= 8 and {pkt.sport, pkt.dport} & nat_t_ports:
        pkt.esp = True


def _classify_tcp_streams(segments: list[tuple[Packet, tuple, int, bytes, bool]]) -> None:
    """RFC 9329 framing over each TCP stream, reassembled by sequence number: a message is
    credited to the segment it starts in, and that segment is marked when the message
    runs on into later segments. Where the capture lost segments (tcpdump reports kernel
    drops under load), framing picks up again at the first message header after the gap
    that it can vouch for."""
    starts: dict[tuple, int] = {}
    flows: dict[tuple, list[tuple[int, bytes, Packet]]] = defaultdict(list)
    for pkt, flow, seq, payload, syn in segments:
        if syn:
            starts[flow] = seq + 1
        elif payload:
            flows[flow].append((seq, payload, pkt))
    for flow, segs in flows.items():
        start = starts.get(flow, segs[0][0])
        by_offset: dict[int, tuple[bytes, Packet]] = {}
        for seq, payload, pkt in segs:
            by_offset.setdefault((seq - start) % 2**32, (payload, pkt))  # retransmissions once
        runs: list[tuple[bytearray, list[tuple[int, Packet]]]] = []
        pos = None
        for offset in sorted(by_offset):
            payload, pkt = by_offset[offset]
            if pos is None or offset > pos:  # the stream's start, or the far side of a gap
                runs.append((bytearray(), []))
                pos = offset
            fresh = payload[pos - offset:]
            if fresh:
                stream, owners = runs[-1]
                owners.append((len(stream), pkt))
                stream += fresh
                pos += len(fresh)
        largest = max(_largest_segment(owners, len(stream)) for stream, owners in runs if owners)
        spis: set[bytes] = set()
        for i, (stream, owners) in enumerate(runs):
            _frames_onto(bytes(stream), owners, largest, spis, resync=i > 0 or 0 not in by_offset)


def _largest_segment(owners: list[tuple[int, Packet]], total: int) -> int:
    begins = [b for b, _ in owners]
    return max(end - begin for begin, end in zip(begins, begins[1:] + [total]))


def _frames_onto(stream: bytes, owners: list[tuple[int, Packet]], largest: int, spis: set[bytes],
                 resync: bool) -> None:
    begins = [b for b, _ in owners]

    def owner(offset: int) -> Packet:
        return owners[bisect.bisect_right(begins, offset) - 1][1]

    if resync:
        found = _first_vouched_frame(stream, spis)
        if found is None:
            return
        offset = found
    else:
        offset = 6 if stream.startswith(b"IKETCP") else 0
    # a message whose end lies beyond the captured stream (a gap follows, or the capture is
    # still growing) is credited all the same: its header says what and how long it is
    while offset + 6 <= len(stream):
        length = int.from_bytes(stream[offset:offset + 2], "big")
        if length < 6:
            return
        message, first = stream[offset + 2:offset + length], owner(offset)
        if message.startswith(b"\0\0\0\0"):
            first.ike = first.ike or parse_ike(message[4:])
        else:
            first.esp = True
            spis.add(message[:4])
        if offset + length > len(stream) or owner(offset + length - 1) is not first:
            first.split_frame = True
        if length > largest:
            first.oversize_message = True
        offset += length


def _first_vouched_frame(stream: bytes, spis: set[bytes]) -> int | None:
    """Where framing can resume after a gap: the first frame header that vouches for itself,
    searched at every byte since segments need not start on message boundaries."""
    candidates = [hit - 2 for marker in (*spis, b"\0\0\0\0") for hit in _finds(stream, marker) if hit >= 2]
    return next((c for c in sorted(candidates) if _vouched_frame(stream, c, spis)), None)


def _finds(data: bytes, needle: bytes):
    hit = data.find(needle)
    while hit != -1:
        yield hit
        hit = data.find(needle, hit + 1)


def _vouched_frame(stream: bytes, offset: int, spis: set[bytes]) -> bool:
    """A frame starts here: ESP with an SPI this stream carried before the gap, or IKE whose
    header length is the frame's."""
    length = int.from_bytes(stream[offset:offset + 2], "big")
    message = stream[offset + 2:offset + length]
    if length < 10 or offset + length > len(stream):
        return False
    if message.startswith(b"\0\0\0\0"):
        return len(message) >= 32 and int.from_bytes(message[28:32], "big") == length - 6
    return message[:4] in spis


def _plain_ike(payload: bytes) -> bool:
    """An IKE header whose length field is the datagram's: IKE without the marker (port 500)."""
    return (len(payload) >= 28 and payload[17] in (0x10, 0x20)
            and int.from_bytes(payload[24:28], "big") == len(payload))
