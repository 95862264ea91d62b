"""Reading pcaps: IKE headers and notifies, the non-ESP marker, ESP, direction, fragments."""
import struct

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from lab.capture import packets

MAC = "02:00:00:00:00:01"


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
    info = packets.parse_ike(ike(34, True, notify=14))
    assert info.exchange == "IKE_SA_INIT" and info.response and info.notifies == ["NO_PROPOSAL_CHOSEN"]
    assert info.summary() == "IKE_SA_INIT response 0 N(NO_PROPOSAL_CHOSEN)"


def test_parse_rejects_non_ike():
    assert packets.parse_ike(b"\x00" * 10) is None


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
