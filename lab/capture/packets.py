"""Reading captures into plain records: addresses, ports, TCP flags, IKE messages, ESP, fragments.

Captures come from anywhere (the lab's tcpdump, or a field capture given to `lab diagnose`), so
the decoder trusts no length it reads: every read is bounded by the bytes present, a bad length
marks the packet (`Ike.malformed`, `Packet.truncated`) instead of raising, and memory stays
bounded whatever the file's size. The packets are dissected from the raw bytes, some fifty times
faster than building scapy layers for them, one layer a module:

  file.py   pcap, pcapng, gzip: raw records (scapy's reader)
  link.py   Ethernet, SLL, SLL2, raw IP, BSD loopback: where IP starts, which way
  ip.py     IPv4, IPv6 and its extension headers, fragments, ICMP errors
  ike.py    IKE headers and what their bodies show without keys
  tcp.py    IKE and ESP inside TCP streams (RFC 9329), and the queue that keeps file order
  here      the Packet record and the decoder that puts the layers together
"""
from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lab.capture.file import CaptureError, open_capture, records
from lab.capture.ike import Ike, exact_ike, parse_ike
from lab.capture.ip import PROTOCOLS, IpHeader, icmp_error, ip_header
from lab.capture.link import LINK_READERS
from lab.capture.tcp import OutputQueue, TcpStreams
from lab.schema.ike import IKE_PORT, NAT_T_PORT
from lab.transport.framing import NON_ESP_MARKER

__all__ = ["CaptureError", "Ike", "Packet", "read", "stream", "IKE_PORTS", "NAT_T_PORTS"]

# Ports on which ESP-in-UDP may run, and IKE (the lab passes the ports its gateways use).
NAT_T_PORTS = frozenset({NAT_T_PORT})
IKE_PORTS = frozenset({IKE_PORT})


@dataclass(slots=True)
class Packet:
    time: float
    direction: str | None  # "in" / "out" relative to the captured interface; None when the file cannot tell
    src: str
    dst: str
    proto: str
    sport: int | None = None
    dport: int | None = None
    tcp_flags: str = ""
    ike: Ike | None = None
    esp: bool = False  # ESP (IP protocol 50, or behind AH), ESP-in-UDP, or ESP framed in TCP
    split_frame: bool = False  # a TCP segment ending inside an RFC 9329 frame
    # a message starts here that is longer than any segment of its stream: it cannot fit one
    oversize_message: bool = False
    fragment: bool = False
    frag_offset: int = 0  # bytes
    more_fragments: bool = False
    length: int = 0  # the IP packet's length, its header included
    number: int = 0  # record number in the file, from 1, counting every record (Wireshark's "No.")
    ip_id: int = 0  # IPv4 identification, or the IPv6 fragment header's
    esp_spi: str | None = None  # hex, of the first ESP message in the packet
    keepalive: bool = False  # a NAT-T keepalive: one 0xff byte on a NAT-T port
    icmp: str | None = None  # an ICMP error and the packet it quotes
    truncated: bool = False  # the capture kept less than the wire carried
    ip_version: int = 4
    tcp_seq: int | None = None  # sequence and acknowledgment numbers of a TCP segment
    tcp_ack: int | None = None
    tcp_payload: int = 0  # bytes of TCP payload the segment carried on the wire

    def summary(self) -> str:
        ends = (f"{self.src}:{self.sport} > {self.dst}:{self.dport}" if self.sport is not None
                else f"{self.src} > {self.dst}")
        what = self.proto
        if self.ike:
            what += " " + self.ike.summary()
            if self.ike.malformed:
                what += f" malformed ({self.ike.malformed})"
        elif self.esp and self.proto != "ESP":
            what += " ESP"
        if self.icmp:
            what += f" {self.icmp}"
        if self.tcp_flags:
            what += f" [{self.tcp_flags}]"
        if self.split_frame:
            what += f" frame continues in next segment{' (longer than any segment)' if self.oversize_message else ''}, len {self.length}"
        if self.fragment:
            what += f" fragment offset {self.frag_offset}{' MF' if self.more_fragments else ''} len {self.length}"
        return f"{self.direction + ' ' if self.direction else ''}{ends} {what}"



def read(path: Path, local_mac: str | None = None, bpf: str = "",
         nat_t_ports: frozenset[int] = NAT_T_PORTS) -> list[Packet]:
    """Every IP packet of a capture that passes the tcpdump filter `bpf`, in file order.

    `local_mac`: the captured interface's own MAC, which orients Ethernet frames. Unlike
    `stream`, whether an RFC 9329 message is longer than any segment of its stream is judged
    against the whole stream, as the list is complete anyway.
    """
    return list(_decode(open_capture(path), local_mac, nat_t_ports, IKE_PORTS, bpf, whole_streams=True))


def stream(path: Path, local_mac: str | None = None, nat_t_ports: frozenset[int] = NAT_T_PORTS,
           ike_ports: frozenset[int] = IKE_PORTS, bpf: str = "", max_bytes: int | None = None) -> Iterator[Packet]:
    """The packets of `read`, one at a time in file order, in bounded memory whatever the file's size.

    Raises CaptureError at once when the file is no capture. TCP segments that start an RFC 9329
    message wait until the message's end is in (or a bound is reached), and so do the packets
    after them. `oversize_message` is judged against the stream's segments up to the message's end.
    `max_bytes`: the file ends there for the reader (a file that grows while it is read, or lies).
    """
    return _decode(open_capture(path, max_bytes), local_mac, nat_t_ports, ike_ports, bpf, whole_streams=False)



TCP_FLAG_NAMES = [("".join(letter for bit, letter in enumerate("FSRPAUECN") if bits >> bit & 1))
                  for bits in range(512)]  # as scapy spells them: the ladder and checks read "S", "SA", "R"


def _decode(reader, local_mac: str | None, nat_t_ports: frozenset[int], ike_ports: frozenset[int],
            bpf: str, whole_streams: bool) -> Iterator[Packet]:
    from lab.bpf import Filter

    decoder = _Decoder(local_mac, nat_t_ports, ike_ports, whole_streams)
    found = records(reader)
    if not bpf:
        yield from decoder.run(found, None)
        return
    with Filter(bpf) as keep:
        yield from decoder.run(found, keep.matches)


class _Decoder:
    def __init__(self, local_mac: str | None, nat_t_ports: frozenset[int], ike_ports: frozenset[int],
                 whole_streams: bool):
        self.mac = bytes.fromhex(local_mac.replace(":", "").replace("-", "")) if local_mac else None
        self.nat_t_ports = nat_t_ports
        self.ike_ports = ike_ports
        self.queue = OutputQueue()
        self.tcp = TcpStreams(self.queue, whole_streams)

    def run(self, records: Iterable[tuple[int, float, bytes, int, int | None]],
            keep: Callable[[int, bytes, int], bool] | None) -> Iterator[Packet]:
        for number, (linktype, time, frame, wirelen, flag) in enumerate(records, 1):
            reader = LINK_READERS.get(linktype)
            link = reader(frame, self.mac) if reader else None
            if link is None:
                continue  # not IP, or a link type this decoder does not read: counted all the same
            offset, direction = link
            if flag in (1, 2):  # pcapng EPB flags: inbound / outbound
                direction = "in" if flag == 1 else "out"
            pkt = self.packet(frame, offset, number, time, direction, len(frame) < wirelen)
            if pkt is not None and (keep is None or keep(linktype, frame, wirelen)):
                self.queue.push(pkt)
            yield from self.queue.ready()
        self.tcp.finish()
        yield from self.queue.ready()

    def packet(self, frame: bytes, offset: int, number: int, time: float, direction: str | None,
               truncated: bool) -> Packet | None:
        ip = ip_header(frame, offset)
        if ip is None:
            return None
        pkt = Packet(time=time, direction=direction, src=ip.src, dst=ip.dst,
                     proto=PROTOCOLS.get(ip.proto, str(ip.proto)), fragment=ip.more_fragments or ip.frag_offset > 0,
                     frag_offset=ip.frag_offset, more_fragments=ip.more_fragments, length=ip.length, number=number,
                     ip_id=ip.ident, truncated=truncated, ip_version=ip.version)
        if ip.frag_offset:
            return pkt  # the transport header is in the first fragment
        # the captured part of the IP payload; Ethernet padding after the packet is not payload
        end = min(ip.end, len(frame))
        if ip.proto == 17:
            self.udp(pkt, frame, ip, end)
        elif ip.proto == 6:
            self.tcp_segment(pkt, frame, ip, end)
        elif ip.proto in (1, 58):
            if ip.l4 < end:
                pkt.proto = f"{pkt.proto} type {frame[ip.l4]}"
                pkt.icmp = icmp_error(ip.version, frame[ip.l4:end])
        elif ip.proto == 50:
            _esp(pkt, frame[ip.l4:end])
        elif ip.proto == 51 and ip.l4 + 2 <= end and frame[ip.l4] == 50:  # AH, then ESP (a bundle)
            _esp(pkt, frame[ip.l4 + (frame[ip.l4 + 1] + 2) * 4:end])
        return pkt

    def udp(self, pkt: Packet, frame: bytes, ip: IpHeader, end: int) -> None:
        if ip.l4 + 8 > end:
            return
        pkt.sport, pkt.dport, size = struct.unpack_from(">HHH", frame, ip.l4)
        # the datagram's payload as its header declares it; what the capture holds may be less
        # (a first fragment, a record cut at the snap length)
        declared = size - 8 if size >= 8 else ip.end - ip.l4 - 8
        payload = frame[ip.l4 + 8:min(end, ip.l4 + 8 + declared)]
        self.classify_udp(pkt, payload, declared, complete=len(payload) == declared)

    def classify_udp(self, pkt: Packet, payload: bytes, declared: int, complete: bool) -> None:
        nat_t = pkt.sport in self.nat_t_ports or pkt.dport in self.nat_t_ports
        ike_port = pkt.sport in self.ike_ports or pkt.dport in self.ike_ports
        if payload[:4] == NON_ESP_MARKER:  # non-ESP marker: IKE behind it
            ike = parse_ike(payload[4:], complete=complete)
            # on a port not known to carry IKE, only a header whose length is the datagram's vouches for it
            if ike and (nat_t or ike_port or ike.length == declared - 4):
                pkt.ike = ike
            return
        if ike_port and not nat_t or exact_ike(payload, declared):
            pkt.ike = parse_ike(payload, complete=complete)
            if pkt.ike:
                return
        if nat_t:
            if payload == b"\xff":
                pkt.proto, pkt.keepalive = "UDP NAT-keepalive", True
            elif len(payload) >= 8:
                _esp(pkt, payload)

    def tcp_segment(self, pkt: Packet, frame: bytes, ip: IpHeader, end: int) -> None:
        if ip.l4 + 4 <= end:
            pkt.sport, pkt.dport = struct.unpack_from(">HH", frame, ip.l4)
        if ip.l4 + 14 > end:
            return
        seq = int.from_bytes(frame[ip.l4 + 4:ip.l4 + 8], "big")
        flags = (frame[ip.l4 + 12] & 1) << 8 | frame[ip.l4 + 13]
        pkt.tcp_flags = TCP_FLAG_NAMES[flags]
        pkt.tcp_seq, pkt.tcp_ack = seq, int.from_bytes(frame[ip.l4 + 8:ip.l4 + 12], "big")
        start = ip.l4 + (frame[ip.l4 + 12] >> 4) * 4
        if start < ip.l4 + 20:
            return  # a data offset inside the fixed header: no payload can be located
        pkt.tcp_payload = max(0, ip.end - start)
        payload = frame[start:end] if start < end else b""
        missing = max(0, ip.end - max(start, end))  # payload the capture did not keep
        self.tcp.segment(pkt, (pkt.src, pkt.sport, pkt.dst, pkt.dport), seq, flags, payload, missing)


def _esp(pkt: Packet, message: bytes) -> None:
    pkt.esp = True
    if len(message) >= 4:
        pkt.esp_spi = message[:4].hex()


