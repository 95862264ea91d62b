"""Reading pcaps: IKE headers and notifies, the non-ESP marker, ESP, direction, fragments."""
import struct

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from lab.capture import packets
from lab.capture.ike import parse_ike

MAC = "02:00:00:00:00:01"
PEER = "02:00:00:00:00:02"


def ike(exchange: int, response: bool, notify: int | None = None, msgid: int = 0) -> bytes:
    body = b""
    next_payload = 0
    if notify is not None:
        body = struct.pack("!BBHBBH", 0, 0, 8, 0, 0, notify)
        next_payload = 41
    header = (b"\x11" * 8 + b"\x22" * 8 + bytes([next_payload, 0x20, exchange, 0x20 if response else 0x08])
              + struct.pack("!II", msgid, 28 + len(body)))
    return header + body


def test_parse_ike_sa_init_response_with_notify():
    info = parse_ike(ike(34, True, notify=14))
    assert info.exchange == "IKE_SA_INIT" and info.response and info.notifies == ["NO_PROPOSAL_CHOSEN"]
    assert info.summary() == "IKE_SA_INIT response 0 N(NO_PROPOSAL_CHOSEN)"


def test_parse_rejects_non_ike():
    assert parse_ike(b"\x00" * 10) is None


def test_read_classifies_and_orients(tmp_path):
    frames = [
        Ether(src=MAC, dst="02:00:00:00:00:02") / IP(src="203.0.113.2", dst="198.51.100.2")
        / UDP(sport=500, dport=500) / ike(34, False),
        Ether(src="02:00:00:00:00:02", dst=MAC) / IP(src="198.51.100.2", dst="203.0.113.2")
        / UDP(sport=4500, dport=4500) / (b"\0\0\0\0" + ike(35, True, msgid=1)),
        Ether(src=MAC, dst="02:00:00:00:00:02") / IP(src="203.0.113.2", dst="198.51.100.2")
        / UDP(sport=4500, dport=4500) / (b"\xde\xad\xbe\xef" + b"\0" * 40),
        Ether(src=MAC, dst="02:00:00:00:00:02") / IP(src="203.0.113.2", dst="198.51.100.2")
        / UDP(sport=4500, dport=4500) / b"\xff",
        Ether(src=MAC, dst="02:00:00:00:00:02") / IP(src="203.0.113.2", dst="198.51.100.2", flags="MF")
        / UDP(sport=4500, dport=4500) / (b"\x01" * 64),
    ]
    path = tmp_path / "t.pcap"
    wrpcap(str(path), frames)
    got = packets.read(path, MAC)
    assert [p.direction for p in got] == ["out", "in", "out", "out", "out"]
    assert got[0].ike.exchange == "IKE_SA_INIT" and not got[0].ike.response
    assert got[1].ike.exchange == "IKE_AUTH" and got[1].ike.response and got[1].ike.msgid == 1
    assert got[2].esp and got[2].ike is None
    assert got[3].proto == "UDP NAT-keepalive"
    assert got[4].fragment
    assert [p.dport for p in packets.read(path, MAC, bpf="udp port 500")] == [500]


def tcp_stream(tmp_path, chunks: list[bytes]):
    """One TCP stream from the peer: SYN, then `chunks` as consecutive segments."""
    from scapy.layers.inet import TCP

    base = Ether(src="02:00:00:00:00:02", dst=MAC) / IP(src="192.0.2.10", dst="203.0.113.2")
    frames, seq = [base / TCP(sport=40000, dport=443, flags="S", seq=1000)], 1001
    for chunk in chunks:
        frames.append(base / TCP(sport=40000, dport=443, flags="PA", seq=seq) / chunk)
        seq += len(chunk)
    path = tmp_path / "tcp.pcap"
    wrpcap(str(path), frames)
    return packets.read(path, MAC)[1:]


def test_ike_and_esp_framed_in_tcp(tmp_path):
    from lab.transport.framing import PREFIX, frame

    got = tcp_stream(tmp_path, [PREFIX + frame(b"\0\0\0\0" + ike(34, False)),
                                frame(b"\x01\x02\x03\x04" + b"\0" * 40) + frame(b"\0\0\0\0" + ike(35, True, msgid=1))])
    assert got[0].ike.exchange == "IKE_SA_INIT" and not got[0].esp
    assert got[1].esp and got[1].ike.exchange == "IKE_AUTH" and not got[1].split_frame
    assert got[1].summary().startswith("in 192.0.2.10:40000 > 203.0.113.2:443 TCP IKE_AUTH response 1")


def test_message_split_over_segments(tmp_path):
    from lab.transport.framing import PREFIX, frame

    esp = frame(b"\x01\x02\x03\x04" + b"\xee" * 1500)
    stream = PREFIX + esp + esp
    got = tcp_stream(tmp_path, [stream[:1000], stream[1000:2000], stream[2000:]])
    assert [p.split_frame for p in got] == [True, True, False]
    assert [p.oversize_message for p in got] == [True, True, False]
    assert [p.esp for p in got] == [True, True, False]  # the second message starts in segment two


def test_framing_resumes_after_segments_lost_from_the_capture(tmp_path):
    from scapy.layers.inet import TCP
    from lab.transport.framing import PREFIX, frame

    esp = frame(b"\x01\x02\x03\x04" + b"\xee" * 1500)
    stream = PREFIX + esp * 4
    base = Ether(src="02:00:00:00:00:02", dst=MAC) / IP(src="192.0.2.10", dst="203.0.113.2")
    cuts = [0, 1000, 2000, 3000, 4000, 5000, len(stream)]
    segments = [base / TCP(sport=40000, dport=443, flags="S", seq=1000)]
    for i, (a, b) in enumerate(zip(cuts, cuts[1:])):
        if i != 2:  # the capture dropped the third segment
            segments.append(base / TCP(sport=40000, dport=443, flags="PA", seq=1001 + a) / stream[a:b])
    wrpcap(str(tmp_path / "gap.pcap"), segments)
    got = packets.read(tmp_path / "gap.pcap", MAC)[1:]
    # messages start at 6, 1512, 3018 and 4524; the gap (2000-3000) hides where the second
    # one ends, and framing resumes at the third, found by the SPI the stream carried before
    assert [p.esp for p in got] == [True, True, True, True, False]
    assert [p.oversize_message for p in got] == [True, True, True, True, False]


# --- link types, formats and the IP layer -------------------------------------------------------

def udp_ike(src="198.51.100.2", dst="203.0.113.2", sport=500, dport=500, payload=None):
    from scapy.layers.inet import IP, UDP

    return IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / (payload if payload is not None else ike(34, False))


def test_linux_cooked_sll_direction_from_packet_type(tmp_path):
    from scapy.layers.l2 import CookedLinux

    wrpcap(str(tmp_path / "sll.pcap"), [CookedLinux(pkttype=4, proto=0x0800) / udp_ike(),
                                         CookedLinux(pkttype=0, proto=0x0800) / udp_ike(),
                                         CookedLinux(pkttype=7, proto=0x0800) / udp_ike()])
    got = packets.read(tmp_path / "sll.pcap")
    assert [p.direction for p in got] == ["out", "in", None]
    assert all(p.ike.exchange == "IKE_SA_INIT" for p in got)


def test_linux_cooked_sll2(tmp_path):
    from scapy.layers.l2 import CookedLinuxV2

    wrpcap(str(tmp_path / "sll2.pcap"), [CookedLinuxV2(proto=0x0800, pkttype=4) / udp_ike(),
                                          CookedLinuxV2(proto=0x0806, pkttype=0) / (b"\0" * 28),
                                          CookedLinuxV2(proto=0x0800, pkttype=0) / udp_ike()])
    got = packets.read(tmp_path / "sll2.pcap")
    assert [(p.number, p.direction) for p in got] == [(1, "out"), (3, "in")]


def test_raw_ip_link_types(tmp_path):
    from scapy.layers.inet6 import IPv6
    from scapy.layers.inet import UDP

    for linktype in (101, 12, 14, 228):
        wrpcap(str(tmp_path / "raw.pcap"), [bytes(udp_ike())], linktype=linktype)
        got = packets.read(tmp_path / "raw.pcap", MAC)
        assert [(p.src, p.direction, p.ike.exchange) for p in got] == [("198.51.100.2", None, "IKE_SA_INIT")]
    wrpcap(str(tmp_path / "raw6.pcap"), [bytes(IPv6(src="2001:db8::2", dst="2001:db8::1") / UDP(sport=500, dport=500)
                                                / ike(34, True))], linktype=229)
    assert packets.read(tmp_path / "raw6.pcap")[0].ike.response


def test_bsd_loopback_family_in_either_byte_order(tmp_path):
    from scapy.layers.inet6 import IPv6
    from scapy.layers.inet import UDP

    v6 = bytes(IPv6(src="2001:db8::2", dst="2001:db8::1") / UDP(sport=500, dport=500) / ike(34, False))
    frames = [struct.pack("<I", 2) + bytes(udp_ike()), struct.pack(">I", 2) + bytes(udp_ike()),
              struct.pack("<I", 30) + v6, struct.pack("<I", 17) + b"\0" * 20]  # AF_INET6 (macOS), then AF_LINK
    for linktype in (0, 108):
        pcap_file(tmp_path / "null.pcap", linktype, frames)
        got = packets.read(tmp_path / "null.pcap")
        assert [(p.number, p.ip_version) for p in got] == [(1, 4), (2, 4), (3, 6)]


def test_pcapng_link_type_per_interface_and_direction_flags(tmp_path):
    from scapy.layers.l2 import CookedLinux
    from scapy.utils import PcapNgWriter

    out = Ether(src=MAC, dst="02:00:00:00:00:02") / udp_ike()
    out.sniffed_on, out.direction, out.time = "eth0", 1, 1000.25  # the flag says inbound, the MAC outbound
    cooked = CookedLinux(pkttype=4, proto=0x0800) / udp_ike()
    cooked.sniffed_on, cooked.time = "any", 1001.5
    plain = Ether(src=MAC, dst="02:00:00:00:00:02") / udp_ike()
    plain.sniffed_on, plain.time = "eth0", 1002.0
    with PcapNgWriter(str(tmp_path / "t.pcapng")) as writer:
        for frame in (out, cooked, plain):
            writer.write(frame)
    got = packets.read(tmp_path / "t.pcapng", MAC)
    assert [p.direction for p in got] == ["in", "out", "out"]
    assert [p.time for p in got] == [1000.25, 1001.5, 1002.0]


def test_pcap_byte_orders_and_nanoseconds(tmp_path):
    from scapy.utils import PcapWriter

    frame = Ether(src=MAC, dst="02:00:00:00:00:02") / udp_ike()
    frame.time = 1700000000.123456789
    for endianness in ("<", ">"):
        for nano in (False, True):
            with PcapWriter(str(tmp_path / "t.pcap"), endianness=endianness, nano=nano) as writer:
                writer.write(frame)
            got = packets.read(tmp_path / "t.pcap", MAC)
            assert got[0].ike.exchange == "IKE_SA_INIT" and abs(got[0].time - 1700000000.123457) < 1e-6


def test_gzipped_pcap(tmp_path):
    import gzip

    wrpcap(str(tmp_path / "t.pcap"), [Ether(src=PEER, dst=MAC) / udp_ike()])
    (tmp_path / "t.pcap.gz").write_bytes(gzip.compress((tmp_path / "t.pcap").read_bytes()))
    assert packets.read(tmp_path / "t.pcap.gz")[0].ike.exchange == "IKE_SA_INIT"


def test_vlan_tags_are_skipped(tmp_path):
    from scapy.layers.l2 import Dot1AD, Dot1Q

    wrpcap(str(tmp_path / "vlan.pcap"), [Ether(src=MAC, dst=PEER) / Dot1AD(vlan=10) / Dot1Q(vlan=20) / udp_ike()])
    got = packets.read(tmp_path / "vlan.pcap", MAC)
    assert got[0].direction == "out" and got[0].ike.exchange == "IKE_SA_INIT"


def test_ipv6_extension_headers_and_fragment_header(tmp_path):
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
    from scapy.layers.inet import UDP

    message = b"\0\0\0\0" + ike(35, False, msgid=1) + b"\x99" * 2000  # behind the marker; longer than its fragment
    datagram = bytes(UDP(sport=4500, dport=4500) / message)
    base = Ether(src=MAC, dst=PEER) / IPv6(src="2001:db8::1", dst="2001:db8::2")
    frames = [
        base / IPv6ExtHdrHopByHop() / UDP(sport=500, dport=500) / ike(34, False),
        base / IPv6ExtHdrFragment(nh=17, offset=0, m=1, id=0xABCDEF) / datagram[:1200],
        base / IPv6ExtHdrFragment(nh=17, offset=150, m=0, id=0xABCDEF) / datagram[1200:],
    ]
    wrpcap(str(tmp_path / "v6.pcap"), frames)
    first, head, tail = packets.read(tmp_path / "v6.pcap", MAC)
    assert first.ip_version == 6 and first.src == "2001:db8::1" and first.ike.exchange == "IKE_SA_INIT"
    assert head.fragment and head.more_fragments and head.frag_offset == 0 and head.ip_id == 0xABCDEF
    assert head.sport == 4500 and head.ike.exchange == "IKE_AUTH" and head.ike.malformed is None  # cut, not malformed
    assert tail.fragment and tail.frag_offset == 1200 and not tail.more_fragments and tail.sport is None
    assert tail.summary() == "out 2001:db8::1 > 2001:db8::2 UDP fragment offset 1200 len 888"


def test_number_counts_every_record(tmp_path):
    from scapy.layers.l2 import ARP

    wrpcap(str(tmp_path / "arp.pcap"), [Ether(src=PEER, dst=MAC) / ARP(), Ether(src=PEER, dst=MAC) / ARP(), Ether(src=MAC, dst=PEER) / udp_ike()])
    assert [p.number for p in packets.read(tmp_path / "arp.pcap", MAC)] == [3]


def pcap_file(path, linktype: int, frames: list[bytes], wirelen: int | None = None) -> None:
    """A classic pcap written byte by byte (scapy's writer takes link type 0 for "unset")."""
    records = b"".join(struct.pack("<IIII", 1, 0, len(f), wirelen or len(f)) + f for f in frames)
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype) + records)


def test_truncated_record(tmp_path):
    frame = bytes(Ether(src=MAC, dst=PEER) / udp_ike(payload=ike(34, False, notify=14)))
    pcap_file(tmp_path / "cut.pcap", 1, [frame[:72]], wirelen=len(frame))  # 14 + 20 + 8 + the IKE header + 2
    got = packets.read(tmp_path / "cut.pcap", MAC)[0]
    # the IKE header is there, its notify is not: no malformation, the capture kept less
    assert got.truncated and got.ike.exchange == "IKE_SA_INIT" and got.ike.malformed is None and not got.ike.notifies


# --- what is carried --------------------------------------------------------------------------

def ikev1_notify(notify: int, flags: int = 0) -> bytes:
    body = struct.pack("!BBHIBBH", 0, 0, 12, 1, 1, 0, notify)  # generic header, DOI 1 (IPsec), protocol, SPI size
    return (b"\x11" * 8 + b"\0" * 8 + bytes([11, 0x10, 5, flags]) + struct.pack("!II", 0, 28 + len(body)) + body)


def test_ikev1_notifies_have_their_own_layout_and_names():
    info = parse_ike(ikev1_notify(14))
    assert (info.version, info.exchange, info.response, info.initiator) == (1, "IKEv1_INFORMATIONAL", False, None)
    assert info.notifies == ["NO_PROPOSAL_CHOSEN"] and info.malformed is None
    assert parse_ike(ikev1_notify(18)).notifies == ["INVALID_ID_INFORMATION"]  # IKEv1's meaning of 18
    assert parse_ike(ikev1_notify(14), ikev1_notifies=False).notifies == []
    encrypted = parse_ike(ikev1_notify(14, flags=0x01))
    assert encrypted.encrypted and encrypted.inner == "N" and encrypted.notifies == []


def test_ikev2_header_fields_and_notify_summary():
    message = ike(34, True, notify=16388)
    info = parse_ike(message)
    assert (info.version, info.spi_i, info.spi_r, info.initiator, info.length) == (2, "11" * 8, "22" * 8, False, 36)
    assert info.notifies == ["NAT_DETECTION_SOURCE_IP"] and info.notify_types == [16388]
    assert info.summary() == "IKE_SA_INIT response 0 N(NATD_S_IP)"


def sk(exchange: int, first_inner: int, msgid: int = 1, fragment: tuple[int, int] | None = None) -> bytes:
    body = b"\xab" * 48
    if fragment:
        payload = struct.pack("!BBHHH", first_inner, 0, 8 + len(body), *fragment) + body
        kind = 53
    else:
        payload = struct.pack("!BBH", first_inner, 0, 4 + len(body)) + body
        kind = 46
    return (b"\x11" * 8 + b"\x22" * 8 + bytes([kind, 0x20, exchange, 0x20])
            + struct.pack("!II", msgid, 28 + len(payload)) + payload)


def test_encrypted_ikev2_shows_its_first_inner_payload_and_fragments():
    info = parse_ike(sk(35, 36))
    assert info.encrypted and info.inner == "IDr" and info.fragment is None and info.malformed is None
    assert parse_ike(sk(35, 41)).inner == "N"
    first = parse_ike(sk(35, 36, fragment=(1, 3)))
    assert first.inner == "IDr" and first.fragment == (1, 3) and first.summary() == "IKE_AUTH response 1 EF(1/3)"
    later = parse_ike(sk(35, 0, fragment=(2, 3)))
    assert later.inner is None and later.fragment == (2, 3)


def test_malformed_lengths_are_flagged_not_raised():
    zero = bytearray(ike(34, False, notify=14))
    zero[24:28] = b"\0\0\0\0"
    assert parse_ike(bytes(zero)).malformed.startswith("length 0")
    short = bytearray(ike(34, False, notify=14))
    short[30:32] = struct.pack("!H", 3)
    assert parse_ike(bytes(short)).malformed.startswith("payload length 3 < 4")
    padded = ike(34, False, notify=14)
    padded = padded[:24] + struct.pack("!I", len(padded) + 2) + padded[28:] + b"\0\0"
    assert parse_ike(padded).malformed == "2 bytes after the last payload"
    overrun = bytearray(ike(34, False, notify=14))
    overrun[30:32] = struct.pack("!H", 400)
    assert "runs past" in parse_ike(bytes(overrun)).malformed
    no_group = ike(34, True, notify=17)  # INVALID_KE_PAYLOAD must carry the group it asks for
    assert "DH group" in parse_ike(no_group).malformed
    longer = ike(34, False, notify=14) + b"\0" * 10
    assert parse_ike(longer).malformed == "length 36, but the message has 46 bytes"
    # a message cut by the capture or by IP fragmentation is incomplete, not malformed
    assert parse_ike(sk(35, 36)[:60], complete=False).malformed is None
    for cut in range(len(short)):
        parse_ike(bytes(short[:cut]))  # never raises


def test_zero_length_ike_on_port_500_is_ike_flagged_malformed(tmp_path):
    zero = bytearray(ike(34, False))
    zero[24:28] = b"\0\0\0\0"
    wrpcap(str(tmp_path / "z.pcap"), [Ether(src=PEER, dst=MAC) / udp_ike(payload=bytes(zero)),
                                       Ether(src=PEER, dst=MAC) / udp_ike(sport=5000, dport=5001, payload=bytes(zero))])
    on_500, elsewhere = packets.read(tmp_path / "z.pcap")
    assert on_500.ike.malformed.startswith("length 0")
    assert elsewhere.ike is None  # off the IKE ports only a header whose length is the datagram's is IKE


def test_icmp_errors_name_the_packet_they_quote(tmp_path):
    from scapy.layers.inet import ICMP, IP, UDP
    from scapy.layers.inet6 import ICMPv6PacketTooBig, IPv6

    quoted = IP(src="198.51.100.2", dst="203.0.113.2") / UDP(sport=4009, dport=88) / (b"\0" * 12)
    frames = [Ether(src=PEER, dst=MAC) / IP(src="203.0.113.2", dst="198.51.100.2") / ICMP(type=3, code=3) / quoted,
              Ether(src=PEER, dst=MAC) / IP(src="192.0.2.1", dst="198.51.100.2") / ICMP(type=3, code=4, nexthopmtu=1400) / quoted,
              Ether(src=PEER, dst=MAC) / IP(src="203.0.113.2", dst="198.51.100.2") / ICMP(type=8),
              Ether(src=PEER, dst=MAC) / IPv6(src="2001:db8::ff", dst="2001:db8::1") / ICMPv6PacketTooBig(mtu=1280)
              / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=4500, dport=4500) / (b"\1" * 8)]
    wrpcap(str(tmp_path / "icmp.pcap"), frames)
    unreachable, too_big, echo, too_big6 = packets.read(tmp_path / "icmp.pcap")
    assert unreachable.icmp == "port unreachable for UDP 198.51.100.2:4009 > 203.0.113.2:88"
    assert unreachable.proto == "ICMP type 3" and unreachable.summary().endswith(unreachable.icmp)
    assert too_big.icmp == "fragmentation needed (MTU 1400) for UDP 198.51.100.2:4009 > 203.0.113.2:88"
    assert echo.icmp is None and echo.proto == "ICMP type 8"
    assert too_big6.icmp == "packet too big (MTU 1280) for UDP [2001:db8::1]:4500 > [2001:db8::2]:4500"


def test_esp_in_ip_behind_ah_and_in_udp(tmp_path):
    from scapy.layers.inet import IP, UDP

    ah = struct.pack("!BBHII", 50, 4, 0, 0x1111, 1) + b"\0" * 12  # next header ESP, 24 bytes
    frames = [Ether(src=PEER, dst=MAC) / IP(proto=50) / (b"\xca\xfe\x00\x01" + b"\0" * 40),
              Ether(src=PEER, dst=MAC) / IP(proto=51) / (ah + b"\xbe\xef\x00\x02" + b"\0" * 40),
              Ether(src=PEER, dst=MAC) / IP() / UDP(sport=4500, dport=4500) / (b"\x12\x34\x56\x78" + b"\0" * 40)]
    wrpcap(str(tmp_path / "esp.pcap"), frames)
    got = packets.read(tmp_path / "esp.pcap")
    assert [(p.proto, p.esp, p.esp_spi) for p in got] == [("ESP", True, "cafe0001"), ("AH", True, "beef0002"),
                                                          ("UDP", True, "12345678")]


def test_keepalive_flag(tmp_path):
    from scapy.layers.inet import IP, UDP

    wrpcap(str(tmp_path / "ka.pcap"), [Ether(src=PEER, dst=MAC) / IP() / UDP(sport=4500, dport=4500) / b"\xff",
                                        Ether(src=PEER, dst=MAC) / IP() / UDP(sport=5000, dport=5000) / b"\xff"])
    assert [(p.keepalive, p.proto) for p in packets.read(tmp_path / "ka.pcap")] == [
        (True, "UDP NAT-keepalive"), (False, "UDP")]


# --- files that are no capture -------------------------------------------------------------------

def test_a_file_that_is_no_capture_raises_capture_error(tmp_path):
    import gzip
    import pytest

    cases = {"empty": b"", "text": b"Subject: not a capture\n\nhello\n" * 10,
             "cut-header": b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00",
             "gzip-junk": gzip.compress(b"neither pcap nor pcapng" * 4),
             "radiotap": struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 127)}
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(packets.CaptureError):
            packets.stream(path)  # at once, before the first packet is asked for


def test_damaged_captures_never_raise(tmp_path):
    """Random byte damage to a capture with every kind of traffic: whatever happens, no exception
    escapes past the file header (CaptureError), and the reader ends."""
    import random

    import pytest
    from scapy.layers.inet import IP, TCP
    from lab.transport.framing import PREFIX, frame

    stream = PREFIX + frame(b"\0\0\0\0" + ike(34, False, notify=16388)) + frame(b"\1\2\3\4" + b"\xee" * 1400) * 3
    base = Ether(src=MAC, dst=PEER) / IP(src="192.0.2.10", dst="203.0.113.2")
    frames = [base / TCP(sport=40000, dport=443, flags="S", seq=1000)]
    frames += [base / TCP(sport=40000, dport=443, flags="PA", seq=1001 + i) / stream[i:i + 700]
               for i in range(0, len(stream), 700)]
    frames += [Ether(src=PEER, dst=MAC) / udp_ike(payload=ike(34, True, notify=14)), Ether(src=PEER, dst=MAC) / udp_ike(payload=sk(35, 36)),
               Ether(src=PEER, dst=MAC) / udp_ike(sport=4500, dport=4500, payload=b"\0\0\0\0" + sk(35, 36, fragment=(1, 2))),
               Ether(src=PEER, dst=MAC) / udp_ike(payload=ikev1_notify(14))]
    wrpcap(str(tmp_path / "good.pcap"), frames)
    good = (tmp_path / "good.pcap").read_bytes()
    rnd = random.Random(1)
    for round_ in range(300):
        damaged = bytearray(good)
        for _ in range(rnd.randrange(1, 12)):
            at = rnd.randrange(len(damaged))
            damaged[at:at + rnd.randrange(1, 5)] = rnd.randbytes(rnd.randrange(0, 5))
        path = tmp_path / f"bad{round_ % 4}.pcap"
        path.write_bytes(bytes(damaged))
        try:
            decoded = list(packets.stream(path, MAC))
        except packets.CaptureError:
            continue
        assert all(isinstance(p.summary(), str) for p in decoded)
    with pytest.raises(packets.CaptureError):
        (tmp_path / "bad.pcap").write_bytes(good[:20])
        packets.read(tmp_path / "bad.pcap")


# --- BPF -----------------------------------------------------------------------------------------

def test_bpf_filter_keeps_numbers_and_sees_fragments_as_libpcap_does(tmp_path):
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import ARP

    datagram = bytes(UDP(sport=4500, dport=4500) / (b"\0\0\0\0" + ike(35, False, msgid=1) + b"\x99" * 2000))
    frames = [Ether(src=PEER, dst=MAC) / ARP(),
              Ether(src=PEER, dst=MAC) / IP(src="192.0.2.1", dst="192.0.2.2", id=7, flags="MF", proto=17) / datagram[:1480],
              Ether(src=PEER, dst=MAC) / IP(src="192.0.2.1", dst="192.0.2.2", id=7, frag=185, proto=17) / datagram[1480:],
              Ether(src=PEER, dst=MAC) / udp_ike()]
    wrpcap(str(tmp_path / "frag.pcap"), frames)
    by_port = packets.read(tmp_path / "frag.pcap", bpf="udp port 4500")
    # libpcap's port primitives match only the first fragment: the others carry no ports
    assert [(p.number, p.ike.exchange) for p in by_port] == [(2, "IKE_AUTH")]
    fragments = packets.read(tmp_path / "frag.pcap", bpf="(ip[6:2] & 0x3fff) != 0")
    assert [(p.number, p.frag_offset) for p in fragments] == [(2, 0), (3, 1480)]
    assert [p.number for p in packets.read(tmp_path / "frag.pcap", bpf="udp port 500")] == [4]


def test_bpf_compile_errors_and_link_types(tmp_path):
    import pytest
    from lab import bpf

    assert bpf.compile_error("udp port 500") is None
    assert "syntax error" in bpf.compile_error("udp prot 500")
    assert bpf.compile_error("ether host 02:00:00:00:00:01", linktype=101) is not None  # raw IP has no MACs
    wrpcap(str(tmp_path / "raw.pcap"), [bytes(udp_ike())], linktype=101)
    assert len(packets.read(tmp_path / "raw.pcap", bpf="udp port 500")) == 1
    with pytest.raises(bpf.BpfError):
        packets.read(tmp_path / "raw.pcap", bpf="ether host 02:00:00:00:00:01")


def test_tcp_framing_is_judged_on_the_whole_connection_whatever_the_filter(tmp_path):
    """The responder's stream is framed because the initiator's opened with IKETCP, even when the
    filter keeps only the responder's segments."""
    from scapy.layers.inet import IP, TCP
    from lab.transport.framing import PREFIX, frame

    client = Ether(src="02:00:00:00:00:02", dst=MAC) / IP(src="192.0.2.10", dst="203.0.113.2")
    server = Ether(src=MAC, dst="02:00:00:00:00:02") / IP(src="203.0.113.2", dst="192.0.2.10")
    frames = [client / TCP(sport=40000, dport=443, flags="S", seq=100),
              server / TCP(sport=443, dport=40000, flags="SA", seq=5000, ack=101),
              client / TCP(sport=40000, dport=443, flags="PA", seq=101) / (PREFIX + frame(b"\0\0\0\0" + ike(34, False))),
              server / TCP(sport=443, dport=40000, flags="PA", seq=5001) / (frame(b"\0\0\0\0" + ike(34, True))
                                                                            + frame(b"\x0a\x0b\x0c\x0d" + b"\0" * 50))]
    wrpcap(str(tmp_path / "conn.pcap"), frames)
    got = packets.read(tmp_path / "conn.pcap", MAC, bpf="src host 203.0.113.2 and tcp[tcpflags] & tcp-syn == 0")
    assert [(p.number, p.direction, p.ike.summary(), p.esp, p.esp_spi) for p in got] == [
        (4, "out", "IKE_SA_INIT response 0", True, "0a0b0c0d")]


# --- TCP streams ---------------------------------------------------------------------------------

def segments(tmp_path, chunks, order=None, syn=True, name="s.pcap"):
    """A stream from the peer cut into `chunks`, written in `order` (indexes), with or without its SYN."""
    from scapy.layers.inet import IP, TCP

    base = Ether(src="02:00:00:00:00:02", dst=MAC) / IP(src="192.0.2.10", dst="203.0.113.2")
    frames, seq = [], 1001
    for chunk in chunks:
        frames.append(base / TCP(sport=40000, dport=443, flags="PA", seq=seq) / chunk)
        seq += len(chunk)
    frames = [frames[i] for i in (order or range(len(frames)))]
    if syn:
        frames.insert(0, base / TCP(sport=40000, dport=443, flags="S", seq=1000))
    wrpcap(str(tmp_path / name), frames)
    return tmp_path / name


def test_ike_notifies_in_a_later_segment_are_found(tmp_path):
    from lab.transport.framing import PREFIX, frame

    # 39 NAT_DETECTION_SOURCE_IP notifies, then NO_PROPOSAL_CHOSEN, past the first segment's end
    notifies = struct.pack("!BBHBBH", 41, 0, 8, 0, 0, 16388) * 39 + struct.pack("!BBHBBH", 0, 0, 8, 0, 0, 14)
    message = (b"\x11" * 8 + b"\x22" * 8 + bytes([41, 0x20, 34, 0x20]) + struct.pack("!II", 0, 28 + len(notifies))
               + notifies)
    stream = PREFIX + frame(b"\0\0\0\0" + message)
    path = segments(tmp_path, [stream[:100], stream[100:]])
    for decoded in (packets.read(path, MAC), list(packets.stream(path, MAC))):
        first, second = decoded[1:]
        assert first.ike.notifies[-1] == "NO_PROPOSAL_CHOSEN" and first.ike.malformed is None and first.split_frame
        assert second.ike is None


def test_reordered_segments_are_framed_as_if_in_order(tmp_path):
    from lab.transport.framing import PREFIX, frame

    esp = frame(b"\x01\x02\x03\x04" + b"\xee" * 1500)
    stream = PREFIX + esp * 3
    chunks = [stream[i:i + 1000] for i in range(0, len(stream), 1000)]
    in_order = packets.read(segments(tmp_path, chunks, name="a.pcap"), MAC)[1:]
    swapped = packets.read(segments(tmp_path, chunks, order=[0, 2, 1, 3, 4], name="b.pcap"), MAC)[1:]
    key = {p.number: p for p in swapped}
    # file positions 2 and 3 hold segments 3 and 2: compare segment by segment
    assert [(p.esp, p.split_frame, p.oversize_message) for p in in_order] == [
        (key[n].esp, key[n].split_frame, key[n].oversize_message) for n in (2, 4, 3, 5, 6)]
    assert [p.number for p in swapped] == [2, 3, 4, 5, 6]  # still in file order


def test_a_stream_seen_from_its_middle_is_framed_from_an_ike_message(tmp_path):
    from lab.transport.framing import frame

    esp = frame(b"\x01\x02\x03\x04" + b"\xee" * 300)
    stream = esp[100:] + frame(b"\0\0\0\0" + ike(37, True, msgid=5)) + esp + esp
    got = packets.read(segments(tmp_path, [stream[:400], stream[400:]], syn=False), MAC)
    assert got[0].ike.summary() == "INFORMATIONAL response 5" and got[0].esp  # IKE vouches, ESP follows
    assert got[1].esp


def test_a_stream_seen_from_its_middle_carrying_only_esp(tmp_path):
    from lab.transport.framing import frame

    esp = frame(b"\x01\x02\x03\x04" + b"\xee" * 300)
    stream = esp[150:] + esp * 3  # the capture starts inside a message
    chunks = [stream[:156], stream[156:156 + 306], stream[156 + 306:]]
    got = packets.read(segments(tmp_path, chunks, syn=False), MAC)
    # the first segment holds no frame start; the second starts with one, and the next frame carries its SPI
    assert [(p.esp, p.esp_spi) for p in got] == [(False, None), (True, "01020304"), (True, "01020304")]


def test_framing_lost_to_a_bad_length_resumes_at_a_known_spi(tmp_path):
    from lab.transport.framing import PREFIX, frame

    esp = frame(b"\x01\x02\x03\x04" + b"\xee" * 100)
    got = packets.read(segments(tmp_path, [PREFIX + esp, b"\x00\x02" + b"\xff" * 60, esp, esp]), MAC)[1:]
    assert [p.esp for p in got] == [True, False, True, True]


def test_tcp_without_iketcp_is_not_framed(tmp_path):
    from scapy.layers.inet import IP, TCP

    client = Ether(src=PEER, dst=MAC) / IP(src="192.0.2.10", dst="203.0.113.2")
    server = Ether(src=PEER, dst=MAC) / IP(src="203.0.113.2", dst="192.0.2.10")
    frames = [client / TCP(sport=40000, dport=443, flags="S", seq=1),
              server / TCP(sport=443, dport=40000, flags="SA", seq=9, ack=2),
              client / TCP(sport=40000, dport=443, flags="PA", seq=2) / (b"\x16\x03\x01\x02\x00" + b"\x01" * 300),
              server / TCP(sport=443, dport=40000, flags="PA", seq=10) / (b"\x00\x40" + b"\x05" * 100)]
    wrpcap(str(tmp_path / "tls.pcap"), frames)
    assert not any(p.esp or p.ike or p.split_frame for p in packets.read(tmp_path / "tls.pcap"))


def test_stream_yields_in_file_order_and_read_agrees(tmp_path):
    from lab.transport.framing import PREFIX, frame
    from scapy.layers.inet import IP, UDP
    from scapy.utils import rdpcap

    esp = frame(b"\x01\x02\x03\x04" + b"\xee" * 1500)
    path = segments(tmp_path, [(PREFIX + esp)[:700], (PREFIX + esp)[700:]])
    frames = list(rdpcap(str(path)))
    # a keepalive between the two segments waits for the first, whose message ends in the second
    frames.insert(2, Ether(src=PEER, dst=MAC) / IP() / UDP(sport=4500, dport=4500) / b"\xff")
    wrpcap(str(path), frames)
    streamed = list(packets.stream(path, MAC))
    assert [p.number for p in streamed] == [1, 2, 3, 4]
    assert [p.summary() for p in streamed] == [p.summary() for p in packets.read(path, MAC)]
    assert streamed[1].esp and streamed[1].split_frame and streamed[1].oversize_message
