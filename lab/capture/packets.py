"""Reading captures into plain records: addresses, ports, TCP flags, IKE messages, ESP, fragments.

Captures come from anywhere (the lab's tcpdump, or a field capture given to `lab diagnose`), so
the decoder trusts no length it reads: every read is bounded by the bytes present, a bad length
marks the packet (`Ike.malformed`, `Packet.truncated`) instead of raising, and memory stays
bounded whatever the file's size. Only file reading is scapy's (`RawPcapReader` knows pcap,
pcapng and gzip); the packets are dissected here from the raw bytes, which is some fifty times
faster than building scapy layers for them.

Link types: Ethernet (802.1Q/802.1ad tags skipped), Linux cooked SLL and SLL2, raw IP, BSD
loopback (DLT_NULL, DLT_LOOP). Network: IPv4, IPv6 with its extension headers. Fragments are
not reassembled: the first carries the ports and the headers behind them, the others only
addresses, as on the wire.
"""
from __future__ import annotations

import socket
import struct
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lab.schema.ike import notify_name, notify_short_name

# Ports on which ESP-in-UDP may run; the lab passes the ports its gateways use.
NAT_T_PORTS = frozenset({4500})
IKE_PORTS = frozenset({500})
# names as the lab's checks use them; per version, since their numbers do not overlap by design only
EXCHANGES = {
    1: {2: "IKEv1_MAIN", 4: "IKEv1_AGGRESSIVE", 5: "IKEv1_INFORMATIONAL", 6: "IKEv1_TRANSACTION",
        32: "IKEv1_QUICK"},
    2: {34: "IKE_SA_INIT", 35: "IKE_AUTH", 36: "CREATE_CHILD_SA", 37: "INFORMATIONAL"},
}
# strongSwan's short payload names (payload.c), as its message summaries print them
PAYLOADS = {
    1: {1: "SA", 2: "PROP", 3: "TRANS", 4: "KE", 5: "ID", 6: "CERT", 7: "CERTREQ", 8: "HASH", 9: "SIG",
        10: "No", 11: "N", 12: "D", 13: "V", 14: "CP", 20: "NAT-D", 21: "NAT-OA", 130: "NAT-D", 131: "NAT-OA",
        132: "FRAG"},
    2: {33: "SA", 34: "KE", 35: "IDi", 36: "IDr", 37: "CERT", 38: "CERTREQ", 39: "AUTH", 40: "No", 41: "N",
        42: "D", 43: "V", 44: "TSi", 45: "TSr", 46: "E", 47: "CP", 48: "EAP", 49: "GSPM", 50: "IDg", 51: "GSA",
        52: "KD", 53: "EF"},
}
IKE_HEADER = 28
FIRST_STATUS_NOTIFY = 16384  # below: error types (RFC 7296 3.10.1, RFC 2408 3.14.1)
INVALID_KE_PAYLOAD = 17
MARKER = b"\0\0\0\0"  # the non-ESP marker: IKE follows (RFC 3948, RFC 9329)
IKETCP = b"IKETCP"  # RFC 9329: the initiator's first bytes on the stream
PROTOCOLS = {1: "ICMP", 6: "TCP", 17: "UDP", 50: "ESP", 51: "AH", 58: "ICMPv6"}


class CaptureError(Exception):
    """The file is not a capture at all (empty, unknown format, header cut short, unknown link type)."""


@dataclass(slots=True)
class Ike:
    """An IKE message's header and what of its body can be read without keys.

    IKEv1 has no response flag: `response` is False for every IKEv1 message and `initiator`
    None; who answers whom is for the reader of a whole exchange to work out.
    """
    exchange: str
    response: bool
    msgid: int
    spi_i: str  # hex
    notifies: list[str] = field(default_factory=list)  # strongSwan's names, per IKE version
    notify_types: list[int] = field(default_factory=list)  # the same notifies by number
    version: int = 2
    spi_r: str = "0" * 16
    initiator: bool | None = None  # IKEv2 I flag: sent by the original initiator of the IKE_SA
    length: int = 0  # the header's length field
    encrypted: bool = False  # an IKEv2 SK/SKF payload, or the IKEv1 E flag
    # the first payload inside the encryption: SK/SKF's (IKEv1: the header's) next-payload field,
    # which is in clear; an IKE_AUTH response starting with IDr authenticated, one with N did not
    inner: str | None = None
    fragment: tuple[int, int] | None = None  # IKEv2 SKF (RFC 7383): fragment number, total
    malformed: str | None = None  # why a receiver would reject the framing

    def summary(self) -> str:
        text = f"{self.exchange} {'response' if self.response else 'request'} {self.msgid}"
        # errors in full, as charon logs them when received; status types by strongSwan's short names
        names = [name if number < FIRST_STATUS_NOTIFY else notify_short_name(name)
                 for name, number in zip(self.notifies, self.notify_types)]
        text += f" N({','.join(names)})" if names else ""
        return text + (f" EF({self.fragment[0]}/{self.fragment[1]})" if self.fragment else "")


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


# --- IKE ---------------------------------------------------------------------------------------

def parse_ike(data: bytes, ikev1_notifies: bool = True, complete: bool = True) -> Ike | None:
    """An IKE header and what its body shows in clear, or None when `data` is no IKE header.

    `complete`: `data` is all of the message its carrier delivered. False for the first IP
    fragment of a datagram, a record the capture cut short, or a TCP message whose end is not
    in the capture: a header length beyond the bytes present is then no malformation.
    `ikev1_notifies`: also name the notifies of unencrypted IKEv1 messages.
    """
    if len(data) < IKE_HEADER or data[17] >> 4 not in (1, 2):
        return None
    version = data[17] >> 4
    flags = data[19]
    msgid, length = struct.unpack_from(">II", data, 20)
    ike = Ike(exchange=EXCHANGES[version].get(data[18], f"EXCHANGE_{data[18]}"),
              response=version == 2 and bool(flags & 0x20), msgid=msgid, spi_i=data[:8].hex(),
              version=version, spi_r=data[8:16].hex(), initiator=bool(flags & 0x08) if version == 2 else None,
              length=length)
    if length < IKE_HEADER:
        ike.malformed = f"length {length}, shorter than the {IKE_HEADER}-byte header"
        return ike  # no payload can be where the header says the message ends
    if complete and length != len(data):
        ike.malformed = f"length {length}, but the message has {len(data)} bytes"
    if version == 1 and flags & 0x01:  # IKEv1 E flag: everything after the header is ciphertext
        ike.encrypted, ike.inner = True, _payload_name(1, data[16])
        return ike
    _walk_payloads(ike, data, data[16], ikev1_notifies)
    return ike


def _payload_name(version: int, number: int) -> str:
    return PAYLOADS[version].get(number, f"({number})")


def _walk_payloads(ike: Ike, data: bytes, kind: int, ikev1_notifies: bool) -> None:
    """Follow the generic payload headers from the first payload, within the header's length
    and the bytes present; each step moves on by at least 4 bytes, so the walk always ends."""
    end, present = ike.length, min(ike.length, len(data))
    offset = IKE_HEADER
    while kind:
        if offset + 4 > present:
            if present == end:
                _flag(ike, f"payload {_payload_name(ike.version, kind)} announced at offset {offset}, "
                           f"past the message's end")
            return  # otherwise the rest was not captured
        size = int.from_bytes(data[offset + 2:offset + 4], "big")
        if size < 4:
            _flag(ike, f"payload length {size} < 4 ({_payload_name(ike.version, kind)} at offset {offset})")
            return
        if offset + size > end:
            _flag(ike, f"payload {_payload_name(ike.version, kind)} at offset {offset} of length {size} "
                       f"runs past the message's length {end}")
            return
        if kind == 41 and ike.version == 2 or kind == 11 and ike.version == 1 and ikev1_notifies:
            _notify(ike, data, offset, size)
        elif kind in (46, 53) and ike.version == 2:  # SK / SKF: always the last payload
            ike.encrypted = True
            ike.inner = _payload_name(2, data[offset]) if data[offset] else None  # SKF: 0 after fragment 1
            if kind == 53 and offset + 8 <= present:
                ike.fragment = struct.unpack_from(">HH", data, offset + 4)
            offset += size
            break
        kind = data[offset]
        offset += size
    if offset < end:
        _flag(ike, f"{end - offset} bytes after the last payload")


def _notify(ike: Ike, data: bytes, offset: int, size: int) -> None:
    # IKEv2: protocol, SPI size, type; IKEv1 puts a 4-byte DOI first
    at = offset + (8 if ike.version == 1 else 4)
    if size < at - offset + 4 or at + 4 > len(data):
        return
    spi_size = data[at + 1]
    number = int.from_bytes(data[at + 2:at + 4], "big")
    ike.notifies.append(notify_name(number, ikev1=ike.version == 1))
    ike.notify_types.append(number)
    if ike.version == 2 and number == INVALID_KE_PAYLOAD and size - (at + 4 - offset) - spi_size != 2:
        # strongSwan refuses it (notify_payload.c): an initiator cannot learn which group to use
        _flag(ike, "INVALID_KE_PAYLOAD without its 2-byte DH group")


def _flag(ike: Ike, why: str) -> None:
    ike.malformed = ike.malformed or why  # the first problem found is the one to report


# --- public entry points -------------------------------------------------------------------------

def read(path: Path, local_mac: str | None = None, bpf: str = "",
         nat_t_ports: frozenset[int] = NAT_T_PORTS) -> list[Packet]:
    """Every IP packet of a capture that passes the tcpdump filter `bpf`, in file order.

    `local_mac`: the captured interface's own MAC, which orients Ethernet frames. Unlike
    `stream`, whether an RFC 9329 message is longer than any segment of its stream is judged
    against the whole stream, as the list is complete anyway.
    """
    return list(_decode(_open(path), local_mac, nat_t_ports, IKE_PORTS, bpf, whole_streams=True))


def stream(path: Path, local_mac: str | None = None, nat_t_ports: frozenset[int] = NAT_T_PORTS,
           ike_ports: frozenset[int] = IKE_PORTS, bpf: str = "", max_bytes: int | None = None) -> Iterator[Packet]:
    """The packets of `read`, one at a time in file order, in bounded memory whatever the file's size.

    Raises CaptureError at once when the file is no capture. TCP segments that start an RFC 9329
    message wait until the message's end is in (or a bound is reached), and so do the packets
    after them. `oversize_message` is judged against the stream's segments up to the message's end.
    `max_bytes`: the file ends there for the reader (a file that grows while it is read, or lies).
    """
    return _decode(_open(path, max_bytes), local_mac, nat_t_ports, ike_ports, bpf, whole_streams=False)


# --- the file ----------------------------------------------------------------------------------

PCAP_MAGICS = {b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1"}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
GZIP_MAGIC = b"\x1f\x8b"
MAX_FRAME = 262144  # libpcap's largest snap length
MAX_READ = 16 << 20  # scapy's pcapng reader reads a whole block at once, as long as the file says


class _CappedReads:
    """A file whose reads return at most MAX_READ bytes: a pcapng block length of 4 GiB then
    reads as a block cut short, which ends the file, instead of 4 GiB of memory."""

    def __init__(self, path: Path, max_bytes: int | None = None):
        self._file = path.open("rb")
        self.name = str(path)
        self._left = max_bytes

    def read(self, size: int = -1) -> bytes:
        size = MAX_READ if size < 0 or size > MAX_READ else size
        if self._left is None:
            return self._file.read(size)
        data = self._file.read(min(size, max(0, self._left)))
        self._left -= len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def close(self) -> None:
        self._file.close()


def _open(path: Path, max_bytes: int | None = None):
    """scapy's raw reader for the file, or CaptureError saying why it is none."""
    from scapy.error import Scapy_Exception
    from scapy.utils import RawPcapReader

    path = Path(path)
    with path.open("rb") as f:
        head = f.read(24)
    if head[:2] != GZIP_MAGIC:
        if len(head) < 4:
            raise CaptureError(f"{path}: {len(head)} bytes, too short for a capture file")
        if head[:4] not in PCAP_MAGICS and head[:4] != PCAPNG_MAGIC:
            raise CaptureError(f"{path}: not a pcap or pcapng file (it starts with {head[:4].hex()})")
        if head[:4] in PCAP_MAGICS and len(head) < 24:
            raise CaptureError(f"{path}: pcap header cut short ({len(head)} of 24 bytes)")
    capped = _CappedReads(path, max_bytes)
    try:
        reader = RawPcapReader(capped)
    except (Scapy_Exception, EOFError, OSError) as e:
        capped.close()
        raise CaptureError(f"{path}: {e}") from None
    if not hasattr(reader, "interfaces") and reader.linktype & 0x03FFFFFF not in LINK_READERS:
        reader.close()
        raise CaptureError(f"{path}: link type {reader.linktype} is not one this decoder reads")
    return reader


def _records(reader) -> Iterator[tuple[int, float, bytes, int, int | None]]:
    """(link type, time, frame, bytes on the wire, pcapng direction flag) per packet record."""
    from scapy.error import Scapy_Exception

    pcapng = hasattr(reader, "interfaces")
    # the upper bits of a pcap link type carry FCS information
    linktype = 0 if pcapng else reader.linktype & 0x03FFFFFF
    unit = 1e9 if getattr(reader, "nano", False) else 1e6
    try:
        while True:
            try:
                # _read_packet: scapy's iterator would cut every frame at 65535 bytes
                frame, meta = reader._read_packet(MAX_FRAME)
            except (EOFError, Scapy_Exception, struct.error, ValueError):
                return  # the end, or the rest of the file is unreadable: what came before stands
            if pcapng:
                ticks = 0 if meta.tshigh is None else meta.tshigh << 32 | meta.tslow
                yield meta.linktype, ticks / meta.tsresol, frame, meta.wirelen, meta.direction
            else:
                yield linktype, meta.sec + meta.usec / unit, frame, meta.wirelen, None
    finally:
        reader.close()


# --- link layer ----------------------------------------------------------------------------------

ETHER_IP = (0x0800, 0x86DD)
VLAN_TAGS = (0x8100, 0x88A8, 0x9100)
AF_INET6 = (10, 24, 28, 30)  # Linux, NetBSD/OpenBSD, FreeBSD, macOS
SLL_DIRECTIONS = {0: "in", 1: "in", 2: "in", 3: "in", 4: "out"}  # to us, broadcast, multicast, other host, outgoing


def _ethernet(frame: bytes, mac: bytes | None) -> tuple[int, str | None] | None:
    if len(frame) < 14:
        return None
    offset = _skip_tags(frame, 12)
    if offset is None:
        return None
    return offset, None if mac is None else ("out" if frame[6:12] == mac else "in")


def _skip_tags(frame: bytes, at: int) -> int | None:
    """Where the IP header starts, given where the EtherType is; None when it carries no IP."""
    ethertype = int.from_bytes(frame[at:at + 2], "big")
    while ethertype in VLAN_TAGS and at + 6 <= len(frame):
        at += 4
        ethertype = int.from_bytes(frame[at:at + 2], "big")
    return at + 2 if ethertype in ETHER_IP else None


def _sll(frame: bytes, mac: bytes | None) -> tuple[int, str | None] | None:
    if len(frame) < 16:
        return None
    offset = _skip_tags(frame, 14)
    return None if offset is None else (offset, SLL_DIRECTIONS.get(int.from_bytes(frame[:2], "big")))


def _sll2(frame: bytes, mac: bytes | None) -> tuple[int, str | None] | None:
    if len(frame) < 20 or int.from_bytes(frame[:2], "big") not in ETHER_IP:
        return None
    return 20, SLL_DIRECTIONS.get(frame[10])


def _loopback(frame: bytes, mac: bytes | None) -> tuple[int, str | None] | None:
    # the address family is in the capturing host's byte order (DLT_NULL) or network order (DLT_LOOP)
    if len(frame) < 4:
        return None
    families = (int.from_bytes(frame[:4], "little"), int.from_bytes(frame[:4], "big"))
    return (4, None) if 2 in families or any(f in AF_INET6 for f in families) else None


def _raw(frame: bytes, mac: bytes | None) -> tuple[int, str | None] | None:
    return 0, None


LINK_READERS: dict[int, Callable[[bytes, bytes | None], tuple[int, str | None] | None]] = {
    1: _ethernet, 113: _sll, 276: _sll2, 0: _loopback, 108: _loopback,
    101: _raw, 12: _raw, 14: _raw, 228: _raw, 229: _raw,
}


# --- network layer -------------------------------------------------------------------------------

IPV6_EXTENSIONS = (0, 43, 60, 135, 139, 140)  # hop-by-hop, routing, destination, mobility, HIP, shim6
FRAGMENT_HEADER = 44


@dataclass(slots=True)
class _Ip:
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


def _ip(data: bytes, offset: int) -> _Ip | None:
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
        return _Ip(4, socket.inet_ntoa(data[offset + 12:offset + 16]), socket.inet_ntoa(data[offset + 16:offset + 20]),
                   data[offset + 9], offset + ihl, offset + length, length, ident, (frag & 0x1FFF) * 8,
                   bool(frag & 0x2000))
    if version == 6:
        if offset + 40 > n:
            return None
        payload = int.from_bytes(data[offset + 4:offset + 6], "big")
        length = 40 + payload if payload else n - offset  # 0: a jumbogram, or GSO
        ip = _Ip(6, socket.inet_ntop(socket.AF_INET6, data[offset + 8:offset + 24]),
                 socket.inet_ntop(socket.AF_INET6, data[offset + 24:offset + 40]),
                 data[offset + 6], offset + 40, offset + length, length)
        _ipv6_extensions(ip, data)
        return ip
    return None


def _ipv6_extensions(ip: _Ip, data: bytes) -> None:
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


# --- ICMP ----------------------------------------------------------------------------------------

ICMP4_UNREACHABLE = {0: "network unreachable", 1: "host unreachable", 2: "protocol unreachable",
                     3: "port unreachable", 5: "source route failed", 6: "network unknown", 7: "host unknown",
                     9: "network prohibited", 10: "host prohibited", 13: "communication administratively prohibited"}
ICMP6_UNREACHABLE = {0: "no route to destination", 1: "communication administratively prohibited",
                     2: "beyond scope of source address", 3: "address unreachable", 4: "port unreachable",
                     5: "source address failed policy", 6: "reject route to destination"}
TIME_EXCEEDED = {0: "time to live exceeded in transit", 1: "fragment reassembly time exceeded"}


def _icmp_error(version: int, message: bytes) -> str | None:
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
    quoted = _ip(message, 8)
    if quoted is None:
        return reason
    what = PROTOCOLS.get(quoted.proto, f"protocol {quoted.proto}")
    if quoted.proto in (6, 17) and not quoted.frag_offset and quoted.l4 + 4 <= len(message):
        sport, dport = struct.unpack_from(">HH", message, quoted.l4)
        return f"{reason} for {what} {_endpoint(quoted.src, sport)} > {_endpoint(quoted.dst, dport)}"
    return f"{reason} for {what} {quoted.src} > {quoted.dst}"


def _endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


# --- decoding ------------------------------------------------------------------------------------

TCP_FLAG_NAMES = [("".join(letter for bit, letter in enumerate("FSRPAUECN") if bits >> bit & 1))
                  for bits in range(512)]  # as scapy spells them: the ladder and checks read "S", "SA", "R"


def _decode(reader, local_mac: str | None, nat_t_ports: frozenset[int], ike_ports: frozenset[int],
            bpf: str, whole_streams: bool) -> Iterator[Packet]:
    from lab.bpf import Filter

    decoder = _Decoder(local_mac, nat_t_ports, ike_ports, whole_streams)
    records = _records(reader)
    if not bpf:
        yield from decoder.run(records, None)
        return
    with Filter(bpf) as keep:
        yield from decoder.run(records, keep.matches)


class _Decoder:
    def __init__(self, local_mac: str | None, nat_t_ports: frozenset[int], ike_ports: frozenset[int],
                 whole_streams: bool):
        self.mac = bytes.fromhex(local_mac.replace(":", "").replace("-", "")) if local_mac else None
        self.nat_t_ports = nat_t_ports
        self.ike_ports = ike_ports
        self.queue = _Queue()
        self.tcp = _Tcp(self.queue, whole_streams)

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
        ip = _ip(frame, offset)
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
                pkt.icmp = _icmp_error(ip.version, frame[ip.l4:end])
        elif ip.proto == 50:
            _esp(pkt, frame[ip.l4:end])
        elif ip.proto == 51 and ip.l4 + 2 <= end and frame[ip.l4] == 50:  # AH, then ESP (a bundle)
            _esp(pkt, frame[ip.l4 + (frame[ip.l4 + 1] + 2) * 4:end])
        return pkt

    def udp(self, pkt: Packet, frame: bytes, ip: _Ip, end: int) -> None:
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
        if payload[:4] == MARKER:  # non-ESP marker: IKE behind it
            ike = parse_ike(payload[4:], complete=complete)
            # on a port not known to carry IKE, only a header whose length is the datagram's vouches for it
            if ike and (nat_t or ike_port or ike.length == declared - 4):
                pkt.ike = ike
            return
        if ike_port and not nat_t or _exact_ike(payload, declared):
            pkt.ike = parse_ike(payload, complete=complete)
            if pkt.ike:
                return
        if nat_t:
            if payload == b"\xff":
                pkt.proto, pkt.keepalive = "UDP NAT-keepalive", True
            elif len(payload) >= 8:
                _esp(pkt, payload)

    def tcp_segment(self, pkt: Packet, frame: bytes, ip: _Ip, end: int) -> None:
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


def _exact_ike(payload: bytes, declared: int) -> bool:
    """An IKE header whose length field is the datagram's: IKE on a port not known to carry it."""
    return (len(payload) >= IKE_HEADER and payload[17] in (0x10, 0x20)
            and int.from_bytes(payload[24:28], "big") == declared)


# --- output order --------------------------------------------------------------------------------

MAX_WAITING = 10000  # packets queued behind one whose TCP message has not ended yet


class _Queue:
    """Packets in file order. A TCP segment whose classification awaits later segments is held,
    and the packets behind it wait; past MAX_WAITING, its stream stops waiting (`_Tcp.settle`)."""

    def __init__(self) -> None:
        self.entries: deque[Packet] = deque()
        self.holds: dict[int, list] = {}  # id(packet) -> [count, stream]

    def push(self, pkt: Packet) -> None:
        self.entries.append(pkt)

    def hold(self, pkt: Packet, stream: "_Stream") -> None:
        entry = self.holds.get(id(pkt))
        if entry:
            entry[0] += 1
        else:
            self.holds[id(pkt)] = [1, stream]

    def release(self, pkt: Packet) -> None:
        entry = self.holds.get(id(pkt))
        if entry:
            entry[0] -= 1
            if not entry[0]:
                del self.holds[id(pkt)]

    def ready(self) -> Iterator[Packet]:
        while self.entries:
            held = self.holds.get(id(self.entries[0]))
            if held:
                if len(self.entries) <= MAX_WAITING:
                    return
                held[1].tcp.settle(held[1])
                # settling a stream releases everything it holds; should a hold survive, the
                # packet goes out as it is rather than the queue growing without end
                self.holds.pop(id(self.entries[0]), None)
            yield self.entries.popleft()


# --- RFC 9329 over TCP ---------------------------------------------------------------------------

# Bounds, and what is given up past them:
MAX_STREAMS = 4096  # streams followed at once; the least recently active is forgotten, and if
#                     it carries on it is picked up like a capture starting in its middle
MAX_OUT_OF_ORDER = 256 << 10  # bytes ahead of a hole kept per stream, in at most
MAX_AHEAD_SEGMENTS = 256  #     so many segments: past either, the hole is taken for bytes the capture
#                               lost, and framing resumes behind it
MAX_SPIS = 32  # SPIs remembered per stream to vouch for a frame after a gap
BUDGET = 32 << 20  # bytes buffered by all streams together; past it the largest stops waiting
# A stream that stops waiting credits the message it is in with what has arrived (an IKE message
# then shows the notifies captured so far) and looks for the next frame it can vouch for.

# A stream's mode: START, the initiator's until its first 6 bytes show IKETCP or not; PEER, the
# responder's until the initiator's show it; FRAME, reading frames; RESYNC, looking for a frame
# that vouches for itself; OFF, not RFC 9329.
START, PEER, FRAME, RESYNC, OFF = range(5)


class _Tcp:
    """RFC 9329 framing over each TCP stream, reassembled by sequence number one segment at a time:
    a message is credited to the segment it starts in, and that segment is marked when the
    message runs on into later segments.

    A connection carries RFC 9329 when its initiator's stream starts with IKETCP; the other
    stream then carries frames from its first byte. A stream whose start the capture missed,
    or that lost bytes, is framed again from the first frame header that vouches for itself:
    IKE whose header length is the frame's, ESP with an SPI the stream carried before, or ESP
    at a segment's start whose next frame carries the same SPI. (A stream whose SYN is missing
    starts at the first segment captured: a segment before it in sequence, captured later, is
    taken for a retransmission.)
    """

    def __init__(self, queue: _Queue, whole_streams: bool):
        self.queue = queue
        self.streams: OrderedDict[tuple, _Stream] = OrderedDict()
        self.buffered = 0
        # read(): a message is oversize against its stream's largest segment over the whole capture
        self.whole_streams = whole_streams
        self.largest: dict[tuple, int] = {}
        self.split_messages: list[tuple[Packet, tuple, int]] = []

    def segment(self, pkt: Packet, key: tuple, seq: int, flags: int, payload: bytes, missing: int) -> None:
        stream = self.streams.get(key)
        if flags & 0x02:  # SYN: a connection's start; any payload on it is not framed (as before)
            if stream is None or stream.isn != seq + 1:
                if stream is not None:
                    self.forget(key)
                if not flags & 0x10:  # the initiator's SYN: the other direction is new as well
                    self.forget(_reverse(key))
                initiator = self.streams.get(_reverse(key))
                mode = START if not flags & 0x10 else FRAME if initiator and initiator.prefixed else PEER
                self.add(key, _Stream(self, key, seq + 1, mode))
            return
        if not payload and not missing:
            return
        if stream is None:  # the capture began in this stream's middle
            stream = self.add(key, _Stream(self, key, seq, RESYNC))
        else:
            self.streams.move_to_end(key)
        peer = self.streams.get(_reverse(key))
        before = stream.size() + (peer.size() if peer else 0)
        stream.add(seq, payload, missing, pkt)
        self.buffered += stream.size() + (peer.size() if peer else 0) - before
        if self.buffered > BUDGET:
            self.buffered = sum(s.size() for s in self.streams.values())
            while self.buffered > BUDGET:
                self.settle(max(self.streams.values(), key=_Stream.size))  # settling empties its buffers

    def add(self, key: tuple, stream: "_Stream") -> "_Stream":
        self.streams[key] = stream
        while len(self.streams) > MAX_STREAMS:
            self.forget(next(iter(self.streams)))
        return stream

    def forget(self, key: tuple) -> None:
        stream = self.streams.get(key)
        if stream is not None:
            self.settle(stream)
            self.buffered -= stream.size()
            del self.streams[key]

    def settle(self, stream: "_Stream") -> None:
        before = stream.size()
        stream.force()
        self.buffered += stream.size() - before

    def peer(self, stream: "_Stream") -> "_Stream | None":
        return self.streams.get(_reverse(stream.key))

    def grew(self, stream: "_Stream", size: int) -> None:
        if self.whole_streams and size > self.largest.get(stream.key, 0):
            self.largest[stream.key] = size

    def split(self, owner: Packet, stream: "_Stream", length: int) -> None:
        if self.whole_streams:
            self.split_messages.append((owner, stream.key, length))

    def finish(self) -> None:
        for stream in list(self.streams.values()):
            self.settle(stream)
        for owner, key, length in self.split_messages:  # only a split message can outgrow every segment
            owner.oversize_message = False
        for owner, key, length in self.split_messages:
            owner.oversize_message |= length > self.largest.get(key, 0)


def _reverse(key: tuple) -> tuple:
    return key[2], key[3], key[0], key[1]


class _Stream:
    """One direction of a TCP connection: its bytes in sequence order, and where frames start.

    `pos` is the stream offset up to which bytes have arrived (or are known lost); `buf` holds
    the bytes from `base` to `pos` still needed: the message being read when it is IKE, a frame
    header cut by a segment's end, or, while looking for a frame (START, RESYNC), the bytes
    since the last place a frame could start, whose segments (`window`) are held meanwhile.
    """

    def __init__(self, tcp: _Tcp, key: tuple, isn: int, mode: int):
        self.tcp, self.key, self.isn, self.mode = tcp, key, isn, mode
        self.pos = 0
        self.ahead: dict[int, tuple[bytes, int, Packet]] = {}  # offset -> (bytes, missing, packet)
        self.ahead_bytes = 0
        self.buf = bytearray()
        self.base = 0
        self.window: list[tuple[int, int, Packet]] = []
        self.scan = 0  # RESYNC: no frame starts before this offset
        self.waiting = False  # RESYNC: the frame that may start at scan awaits its bytes
        self.next = 0  # FRAME: where the next frame header starts
        self.header_owner: tuple[Packet, int] | None = None  # a segment whose frame header ends in a later one
        self.open: tuple[Packet, int, int, bool] | None = None  # owner, start, length, IKE? of an unfinished message
        self.largest = 0
        self.spis: dict[bytes, None] = {}
        self.prefixed = False

    def size(self) -> int:
        return len(self.buf) + self.ahead_bytes

    def _hold(self, pkt: Packet) -> None:
        self.tcp.queue.hold(pkt, self)

    def _release(self, pkt: Packet) -> None:
        self.tcp.queue.release(pkt)

    # arrival

    def add(self, seq: int, payload: bytes, missing: int, pkt: Packet) -> None:
        if self.mode == OFF:
            return
        # the segment's offset, near pos: sequence numbers wrap at 2**32
        delta = (seq - self.isn - self.pos) % 2**32
        offset = self.pos + (delta - 2**32 if delta >= 2**31 else delta)
        if offset + len(payload) + missing <= self.pos:
            return  # a retransmission of what arrived already
        if offset > self.pos:  # a hole before it: reordered, or lost
            if offset not in self.ahead:
                self.ahead[offset] = (payload, missing, pkt)
                self.ahead_bytes += len(payload)
                self._hold(pkt)
            if self.ahead_bytes > MAX_OUT_OF_ORDER or len(self.ahead) > MAX_AHEAD_SEGMENTS:
                self._hole(min(self.ahead))
                self._drain()
            return
        self._take(offset, payload, missing, pkt)
        self._drain()

    def _drain(self) -> None:
        while self.ahead:
            offset = min(self.ahead)
            if offset > self.pos:
                return
            payload, missing, pkt = self.ahead.pop(offset)
            self.ahead_bytes -= len(payload)
            self._release(pkt)
            if self.mode != OFF and offset + len(payload) + missing > self.pos:
                self._take(offset, payload, missing, pkt)

    def _take(self, offset: int, payload: bytes, missing: int, pkt: Packet) -> None:
        end = offset + len(payload) + missing
        fresh = end - self.pos  # what this segment adds to the stream: a retransmitted part does not count
        self.largest = max(self.largest, fresh)
        self.tcp.grew(self, fresh)
        cut = self.pos - offset
        if cut < len(payload):
            start, self.pos = self.pos, offset + len(payload)
            self._chunk(start, self.pos, payload[cut:] if cut else payload, pkt)
        if end > self.pos:
            self._hole(end)  # the capture cut the segment short

    def _chunk(self, a: int, b: int, data: bytes, pkt: Packet) -> None:
        if self.mode == OFF:
            return
        if self.mode == PEER:  # bytes before the initiator's showed IKETCP: not a responder's frames
            self._resync(a)
        self.buf += data
        if self.mode == FRAME:
            self._frames(a, b, pkt)
            self._trim()  # nothing when framing was lost meanwhile
        else:
            self.window.append((a, b, pkt))
            self._hold(pkt)
            self._look(final=False)

    # framing

    def _frames(self, a: int, b: int, pkt: Packet) -> None:
        """Read the frame headers that start in the segment [a, b) owned by `pkt`."""
        if self.open and self.open[1] + self.open[2] <= self.pos:
            self._close()
        while self.next < b and self.open is None:
            h = self.next
            owner, owner_end = self.header_owner or (pkt, b)
            if h + 6 > self.pos:  # the header runs on into the next segment
                if self.header_owner is None:
                    self.header_owner = (owner, owner_end)
                    self._hold(owner)
                return
            if self.header_owner:
                self.header_owner = None
                self._release(owner)
            i = h - self.base
            length = self.buf[i] << 8 | self.buf[i + 1]
            if length < 6:  # the framing is lost: look for a frame that vouches for itself
                self._resync(self.pos)
                return
            ike = self.buf[i + 2:i + 6] == MARKER
            if not ike:
                spi = bytes(self.buf[i + 2:i + 6])
                owner.esp = True
                owner.esp_spi = owner.esp_spi or spi.hex()
                self.spis[spi] = None
                if len(self.spis) > MAX_SPIS:
                    del self.spis[next(iter(self.spis))]
            if h + length > owner_end:
                owner.split_frame = True
                self.tcp.split(owner, self, length)
            self.next = h + length
            if h + length <= self.pos:
                self._credit(owner, h, length, ike)
            else:  # wait for its end: its IKE body, and the segments it spans
                self.open = (owner, h, length, ike)
                self._hold(owner)

    def _close(self) -> None:
        """The open message's bytes are in, or will not come: credit its owner."""
        owner, start, length, ike = self.open
        self.open = None
        self._credit(owner, start, length, ike)
        self._release(owner)

    def _credit(self, owner: Packet, start: int, length: int, ike: bool) -> None:
        if ike and owner.ike is None:
            end = min(start + length, self.pos)
            owner.ike = parse_ike(bytes(self.buf[start + 6 - self.base:end - self.base]),
                                  complete=end == start + length)
        if length > self.largest:
            owner.oversize_message = True

    def _trim(self) -> None:
        if self.mode != FRAME:
            return
        keep = self.pos
        if self.open and self.open[3]:
            keep = self.open[1]
        elif self.next < self.pos:
            keep = self.next
        del self.buf[:keep - self.base]
        self.base = keep

    # looking for a frame

    def _look(self, final: bool) -> None:
        """START: does the stream open with IKETCP? RESYNC: where does the first frame that vouches
        for itself start? `final`: no more bytes will come to decide with."""
        if self.mode == START or self.mode == RESYNC and self.base == 0 == self.scan and self.buf[:6] == IKETCP:
            head = bytes(self.buf[:6])
            if head == IKETCP:
                self.prefixed = True
                self._found(6)
                peer = self.tcp.peer(self)
                if peer and peer.mode == PEER:
                    peer.mode, peer.next = FRAME, 0
            elif len(head) < 6 and IKETCP.startswith(head) and not final:
                return
            else:  # the initiator spoke first, and not RFC 9329
                self._off()
                peer = self.tcp.peer(self)
                if peer and not peer.prefixed:
                    peer._off()
            return
        while True:
            # a candidate still waiting for its bytes is at scan: no need to search the buffer again
            candidate = self.scan if self.waiting else self._candidate()
            if candidate is None:
                self.scan = max(self.scan, self.pos - 5)  # a marker may straddle the next segment
                break
            verdict = self._vouches(candidate, final)
            self.waiting = verdict is None
            if verdict is None:
                self.scan = candidate
                break
            if verdict:
                self._found(candidate)
                return
            self.scan = candidate + 1
        if final:
            self.scan = self.pos
        passed = [seg for seg in self.window if seg[1] <= self.scan]
        self.window = [seg for seg in self.window if seg[1] > self.scan]
        for _, _, pkt in passed:
            self._release(pkt)
        del self.buf[:self.scan - self.base]
        self.base = self.scan

    def _candidate(self) -> int | None:
        """The first offset from `scan` where a marker or a known SPI follows two length bytes, or
        where a segment starts (senders often start one with a frame)."""
        start = self.scan + 2 - self.base
        hits = [self.base + hit - 2 for hit in (self.buf.find(needle, start) for needle in (MARKER, *self.spis))
                if hit != -1]
        hits += [a for a, _, _ in self.window if a >= self.scan][:1]
        return min(hits) if hits else None

    def _vouches(self, at: int, final: bool) -> bool | None:
        """Whether a frame starts at `at`; None while the bytes to tell have not arrived."""
        i, have = at - self.base, self.pos - at
        if have < 6:
            return False if final else None
        length = self.buf[i] << 8 | self.buf[i + 1]
        if length < 10:
            return False
        what = bytes(self.buf[i + 2:i + 6])
        if what == MARKER:
            if length < 6 + IKE_HEADER:
                return False
            if have < 6 + IKE_HEADER:
                return False if final else None
            header = self.buf[i + 6:i + 6 + IKE_HEADER]
            if header[17] >> 4 not in (1, 2) or int.from_bytes(header[24:28], "big") != length - 6:
                return False
        elif what not in self.spis:  # ESP with an SPI not seen yet: the next frame must carry it too
            if have < length + 6:
                return False if final else None
            j = i + length
            return self.buf[j + 2:j + 6] == what and (self.buf[j] << 8 | self.buf[j + 1]) >= 10
        # the whole frame must be there, as a random match is unlikely to be followed by it
        if have < length:
            return False if final else None
        return True

    def _found(self, at: int) -> None:
        """Frames start at `at`: read them from the segments held while looking."""
        self.mode, self.next, self.waiting = FRAME, at, False
        window, self.window = self.window, []
        for a, b, pkt in window:
            if b > at and self.mode == FRAME:  # a broken length further on loses the framing again
                self._frames(max(a, at), b, pkt)
            self._release(pkt)
        self._trim()

    def _resync(self, at: int) -> None:
        self.mode, self.scan, self.base, self.waiting = RESYNC, at, at, False
        self.buf.clear()

    def _off(self) -> None:
        """Not RFC 9329: let go of everything held, as it is."""
        self.mode = OFF
        held = [pkt for _, _, pkt in self.ahead.values()] + [pkt for _, _, pkt in self.window]
        held += [self.open[0]] if self.open else []
        held += [self.header_owner[0]] if self.header_owner else []
        for pkt in held:
            self._release(pkt)
        self.ahead.clear()
        self.ahead_bytes = 0
        self.window.clear()
        self.open = self.header_owner = None
        self.buf.clear()

    # giving up waiting

    def _hole(self, to: int) -> None:
        """The bytes from pos to `to` will not come: the capture lost them or cut them off."""
        if self.mode in (START, PEER):
            for _, _, pkt in self.window:
                self._release(pkt)
            self.window.clear()
            self._resync(to)
        elif self.mode == RESYNC:
            self._look(final=True)
            if self.mode == RESYNC:
                self._resync(to)
        if self.mode == FRAME:
            if self.open:
                self._close()
            if self.header_owner or self.next < to:  # the next frame header is in the hole
                if self.header_owner:
                    self._release(self.header_owner[0])
                    self.header_owner = None
                self._resync(to)
            else:
                self.buf.clear()
                self.base = to
        self.pos = to

    def force(self) -> None:
        """Stop waiting for bytes: settle every segment this stream holds with what has arrived."""
        while self.ahead:
            offset = min(self.ahead)
            if offset > self.pos:
                self._hole(offset)
            self._drain()
        if self.mode in (START, RESYNC):
            self._look(final=True)
        if self.mode == FRAME:
            if self.open:
                self._close()
            if self.header_owner:  # its header will not be read: look for the next frame
                self._release(self.header_owner[0])
                self.header_owner = None
                self._resync(self.pos)
            self._trim()
