"""The network layer of a capture: IPv4 and IPv6 headers (extension headers walked, fragments
read but not reassembled: the first carries the transport header, the others only addresses, as
on the wire), and what an ICMP error says about the packet it quotes.
"""
from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

PROTOCOLS = {1: "ICMP", 6: "TCP", 17: "UDP", 50: "ESP", 51: "AH", 58: "ICMPv6"}

IPV6_EXTENSIONS = (0, 43, 60, 135, 139, 140)  # hop-by-hop, routing, destination, mobility, HIP, shim6
FRAGMENT_HEADER = 44


@dataclass(slots=True)
class IpHeader:
    version: int
    src: str
    dst: str
    proto: int
    l4: int  # where the transport header starts (meaningful for offset-0 fragments)
    end: int  # where the packet ends by its header (may lie beyond the bytes captured)
    length: int
    ident: int = 0
    frag_offset: int = 0
    more_fragments: bool = False


def ip_header(data: bytes, offset: int) -> IpHeader | None:
    """The IP header at `offset`, or None when there is none that can be read."""
    n = len(data)
    if offset >= n:
        return None
    version = data[offset] >> 4
    if version == 4:
        ihl = (data[offset] & 15) * 4
        if ihl < 20 or offset + ihl > n:
            return None
        total, ident, frag = struct.unpack_from(">HHH", data, offset + 2)
        # TSO/GSO captures carry a total length of 0: the frame then says how long it is
        length = total if total >= ihl else n - offset
        return IpHeader(4, socket.inet_ntoa(data[offset + 12:offset + 16]), socket.inet_ntoa(data[offset + 16:offset + 20]),
                   data[offset + 9], offset + ihl, offset + length, length, ident, (frag & 0x1FFF) * 8,
                   bool(frag & 0x2000))
    if version == 6:
        if offset + 40 > n:
            return None
        payload = int.from_bytes(data[offset + 4:offset + 6], "big")
        length = 40 + payload if payload else n - offset  # 0: a jumbogram, or GSO
        ip = IpHeader(6, socket.inet_ntop(socket.AF_INET6, data[offset + 8:offset + 24]),
                 socket.inet_ntop(socket.AF_INET6, data[offset + 24:offset + 40]),
                 data[offset + 6], offset + 40, offset + length, length)
        _ipv6_extensions(ip, data)
        return ip
    return None


def _ipv6_extensions(ip: IpHeader, data: bytes) -> None:
    """Walk the extension headers to the transport header; each is at least 8 bytes long."""
    limit = min(ip.end, len(data))
    while ip.proto in IPV6_EXTENSIONS or ip.proto == FRAGMENT_HEADER:
        if ip.l4 + 8 > limit:
            return
        if ip.proto == FRAGMENT_HEADER:
            bits, ip.ident = struct.unpack_from(">HI", data, ip.l4 + 2)
            ip.frag_offset, ip.more_fragments = bits & 0xFFF8, bool(bits & 1)
            ip.proto, ip.l4 = data[ip.l4], ip.l4 + 8
            if ip.frag_offset:
                return  # the headers behind are in the first fragment
        else:
            ip.proto, ip.l4 = data[ip.l4], ip.l4 + (data[ip.l4 + 1] + 1) * 8



ICMP4_UNREACHABLE = {0: "network unreachable", 1: "host unreachable", 2: "protocol unreachable",
                     3: "port unreachable", 5: "source route failed", 6: "network unknown", 7: "host unknown",
                     9: "network prohibited", 10: "host prohibited", 13: "communication administratively prohibited"}
ICMP6_UNREACHABLE = {0: "no route to destination", 1: "communication administratively prohibited",
                     2: "beyond scope of source address", 3: "address unreachable", 4: "port unreachable",
                     5: "source address failed policy", 6: "reject route to destination"}
TIME_EXCEEDED = {0: "time to live exceeded in transit", 1: "fragment reassembly time exceeded"}


def icmp_error(version: int, message: bytes) -> str | None:
    """What an ICMP error says, and about which packet (from the header it quotes)."""
    if len(message) < 8:
        return None
    kind, code = message[0], message[1]
    mtu = int.from_bytes(message[6:8] if version == 4 else message[4:8], "big")
    if version == 4:
        reason = {3: (f"fragmentation needed (MTU {mtu})" if code == 4
                      else ICMP4_UNREACHABLE.get(code, f"destination unreachable (code {code})")),
                  4: "source quench", 5: "redirect", 11: TIME_EXCEEDED.get(code, f"time exceeded (code {code})"),
                  12: "parameter problem"}.get(kind)
    else:
        reason = {1: ICMP6_UNREACHABLE.get(code, f"destination unreachable (code {code})"),
                  2: f"packet too big (MTU {mtu})", 3: TIME_EXCEEDED.get(code, f"time exceeded (code {code})"),
                  4: "parameter problem"}.get(kind)
    if reason is None:
        return None
    quoted = ip_header(message, 8)
    if quoted is None:
        return reason
    what = PROTOCOLS.get(quoted.proto, f"protocol {quoted.proto}")
    if quoted.proto in (6, 17) and not quoted.frag_offset and quoted.l4 + 4 <= len(message):
        sport, dport = struct.unpack_from(">HH", message, quoted.l4)
        return f"{reason} for {what} {endpoint(quoted.src, sport)} > {endpoint(quoted.dst, dport)}"
    return f"{reason} for {what} {quoted.src} > {quoted.dst}"


def endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"

