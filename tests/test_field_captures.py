"""The decoder on public captures nobody here made (tests/data/captures, sources in tests/data/SOURCES): each
is read without exception, and shows the facts an engineer reads in it, packet by packet ("#n" is the
record number)."""

import pytest

from lab.capture import packets
from tests.field_data import FIELD as FIELD_DATA, NEEDED

FIELD = FIELD_DATA / "captures"
pytestmark = NEEDED
RECORDS = {  # records per file, per the study
    "openswan__lp08-parentR1__parentR1notify.pcap": 2, "suricata-verify__IKEv2_SA_INIT_2-8-weak.pcap": 1,
    "tcpdump__ISAKMP_sa_setup.pcap": 9, "tcpdump__espudp1.pcap": 8, "tcpdump__ikev2four.pcap": 21,
    "tcpdump__ikev2pI2.pcap": 2, "tcpdump__isakmp4500.pcap": 35, "zeek-spicy-ipsec__IPsec_ESP-AH_tunnel_mode.cap": 10,
    "zeek-spicy-ipsec__ikev1-certs.pcap": 10, "zeek-spicy-ipsec__ipsec-ikev1-isakmp-aggressive-mode.pcap": 6,
    "zeek-spicy-ipsec__ipsec-ikev1-isakmp-main-mode.pcap": 9,
    "zeek-spicy-ipsec__ipsec-ikev1-payload-bad-length.pcap": 1, "zeek-spicy-ipsec__ipsec-ikev1-zero-length.pcap": 1,
    "zeek-spicy-ipsec__ipsec.cap": 27, "zeek-spicy-ipsec__ipsec_client.pcap": 11,
}
ARP = {1, 2, 13, 14, 26, 27, 32, 33}  # in isakmp4500


def decoded(name: str) -> dict[int, packets.Packet]:
    return {p.number: p for p in packets.stream(FIELD / name)}


def test_the_study_covers_every_capture():
    assert sorted(p.name for p in FIELD.iterdir() if p.suffix in (".pcap", ".cap")) == sorted(RECORDS)


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_every_capture_is_read_whole(name):
    got = list(packets.stream(FIELD / name))
    numbers = [p.number for p in got]
    expected = [n for n in range(1, RECORDS[name] + 1) if not (name == "tcpdump__isakmp4500.pcap" and n in ARP)]
    assert numbers == expected  # every IP record, numbered as Wireshark numbers it
    assert not any(p.truncated for p in got)  # captured length is the original length everywhere
    assert all(p.direction is None for p in got)  # no MAC given, no direction recorded in these files
    assert [p.summary() for p in got] == [p.summary() for p in packets.read(FIELD / name)]


def test_ipsec_client_ike_auth_fragmented_on_4500_never_answered():
    got = decoded("zeek-spicy-ipsec__ipsec_client.pcap")
    assert got[1].ike.summary() == "IKE_SA_INIT request 0 N(NATD_S_IP,NATD_D_IP)" and got[1].ike.spi_r == "0" * 16
    assert got[2].ike.response and "MULTIPLE_AUTH_SUPPORTED" in got[2].ike.notifies
    for first, ident in ((3, 6942), (6, 6943), (9, 6944)):  # three transmissions of one request
        p = got[first]
        assert (p.sport, p.dport, p.fragment, p.more_fragments, p.frag_offset, p.ip_id) == (4500, 4500, True, True, 0, ident)
        ike = p.ike
        assert (ike.exchange, ike.response, ike.msgid, ike.length, ike.encrypted, ike.inner) == (
            "IKE_AUTH", False, 1, 3468, True, "IDi")
        assert ike.malformed is None  # a header length beyond the first fragment is not a malformation
        for rest, offset in ((first + 1, 1440), (first + 2, 2880)):
            assert got[rest].fragment and got[rest].frag_offset == offset and got[rest].ip_id == ident
            assert got[rest].sport is None and got[rest].ike is None  # non-first fragments carry no ports
    assert [n for n, p in got.items() if p.src == "144.76.154.114"] == [2]  # nothing back after IKE_SA_INIT


def test_ipsec_client_port_filter_drops_non_first_fragments():
    assert [p.number for p in packets.read(FIELD / "zeek-spicy-ipsec__ipsec_client.pcap", bpf="udp port 4500")] == [3, 6, 9]
    fragments = packets.read(FIELD / "zeek-spicy-ipsec__ipsec_client.pcap", bpf="(ip[6:2] & 0x3fff) != 0")
    assert [p.number for p in fragments] == list(range(3, 12))


def test_isakmp4500_shares_4500_between_ike_keepalives_and_esp():
    got = decoded("tcpdump__isakmp4500.pcap")
    assert [n for n, p in got.items() if p.keepalive] == [18, 23, 28, 34]
    esp = [n for n, p in got.items() if p.esp]
    assert esp == [12, 17, 19, 22, 24, 25, 29, 31]
    assert {got[n].esp_spi for n in esp} == {"f4dc0ae5"} and {got[n].src for n in esp} == {"192.1.2.254"}
    behind_marker = [n for n, p in got.items() if p.ike and p.sport == 4500]
    assert behind_marker == [7, 8, 9, 10, 11, 15, 16, 20, 21, 30, 35]
    assert [n for n, p in got.items() if p.ike and p.sport == 500] == [3, 4, 5, 6]
    assert all(p.ike.version == 1 and not p.ike.response for p in got.values() if p.ike)
    assert got[9].ike.exchange == "IKEv1_QUICK" and got[9].ike.msgid == 2340325703 and got[9].ike.encrypted
    assert got[35].ike.exchange == "IKEv1_INFORMATIONAL" and got[35].ike.msgid == 45991503
    assert {p.time for p in got.values()} == {0.0}  # synthetic timestamps


def test_ipsec_cap_unencrypted_ikev1_no_proposal_chosen_then_esp_both_ways():
    got = decoded("zeek-spicy-ipsec__ipsec.cap")
    note = got[3].ike
    assert (note.version, note.exchange, note.encrypted, note.spi_r) == (1, "IKEv1_INFORMATIONAL", False, "0" * 16)
    assert note.notifies == ["NO_PROPOSAL_CHOSEN"] and got[3].src == "192.168.140.205"
    assert got[7].ike.encrypted and got[7].ike.inner == "ID" and not got[7].ike.notifies
    assert [p.ike.exchange for n, p in got.items() if n in (9, 10, 11)] == ["IKEv1_QUICK"] * 3
    esp = {n: p for n, p in got.items() if p.esp}
    assert sorted(esp) == list(range(12, 28)) and all(p.proto == "ESP" for p in esp.values())
    spis = {(p.src, p.esp_spi) for p in esp.values()}
    assert spis == {("192.168.140.205", "1c0d7b38"), ("192.168.140.200", "0879355b")}


def test_openswan_dlt_null_invalid_ke():
    got = decoded("openswan__lp08-parentR1__parentR1notify.pcap")
    for p in got.values():
        assert p.src == "132.213.238.7" and p.ike.exchange == "IKE_SA_INIT" and p.ike.response
        assert p.ike.notifies == ["INVALID_KE_PAYLOAD"]
        assert (p.ike.spi_i, p.ike.spi_r) == ("0001020304050607", "debc583a8f40d0cf")
    assert got[1].ike.malformed == "2 bytes after the last payload"
    assert "DH group" in got[2].ike.malformed  # length 8: no group for the initiator to retry with
    assert got[2].time - got[1].time == 86400


def test_malformed_ikev1_files_are_flagged():
    zero = decoded("zeek-spicy-ipsec__ipsec-ikev1-zero-length.pcap")[1].ike
    assert zero.exchange == "IKEv1_MAIN" and zero.length == 0 and zero.malformed.startswith("length 0")
    bad = decoded("zeek-spicy-ipsec__ipsec-ikev1-payload-bad-length.pcap")[1].ike
    assert bad.malformed.startswith("payload length 3 < 4") and "offset 88" in bad.malformed


def test_raw_ip_single_ikev2_request():
    (only,) = decoded("suricata-verify__IKEv2_SA_INIT_2-8-weak.pcap").values()
    assert (only.src, only.dst, only.sport, only.dport) == ("212.158.157.2", "212.158.157.8", 500, 500)
    assert only.ike.initiator and not only.ike.response and only.ike.spi_r == "0" * 16 and only.ike.length == 240
    assert only.ike.malformed is None  # Nonce, KE, SA: an unusual order, but well formed


def test_ikev2four_cookie_then_inner_payloads_in_clear():
    got = decoded("tcpdump__ikev2four.pcap")
    assert got[2].ike.summary() == "IKE_SA_INIT response 0 N(COOKIE)" and got[2].ike.spi_r == "0" * 16
    assert got[3].ike.notifies[0] == "COOKIE" and got[3].ike.initiator
    assert got[6].ike.exchange == "IKE_AUTH" and got[6].ike.response and got[6].ike.inner == "IDr"
    assert got[9].ike.inner == got[10].ike.inner == "N"  # refused CREATE_CHILD_SA: a bare error notify
    assert [got[n].ike.inner for n in (13, 14, 17, 18)] == ["SA"] * 4
    last = got[21].ike
    assert (last.exchange, last.msgid, last.inner, last.spi_i) == ("INFORMATIONAL", 0, "D", "1d9be9451d4f97a8")
    assert all(p.sport == p.dport == 500 for p in got.values())


def test_ikev2pi2_auth_with_message_id_zero_and_a_known_responder_spi():
    auth = decoded("tcpdump__ikev2pI2.pcap")[2].ike
    assert (auth.exchange, auth.msgid, auth.spi_r, auth.inner) == ("IKE_AUTH", 0, "c02e7a3031a03188", "IDi")


def test_ikev1_main_aggressive_and_quick_mode():
    setup = decoded("tcpdump__ISAKMP_sa_setup.pcap")
    assert [p.ike.exchange for p in setup.values()] == ["IKEv1_MAIN"] * 6 + ["IKEv1_QUICK"] * 3
    assert [p.ike.encrypted for p in setup.values()] == [False] * 4 + [True] * 5
    assert {p.ike.msgid for n, p in setup.items() if n >= 7} == {254507106}
    assert setup[5].ike.inner == "ID" and setup[7].ike.inner == "HASH"
    aggressive = decoded("zeek-spicy-ipsec__ipsec-ikev1-isakmp-aggressive-mode.pcap")
    assert [p.ike.exchange for p in aggressive.values()] == ["IKEv1_AGGRESSIVE"] * 3 + ["IKEv1_QUICK"] * 3
    assert not any(p.ike.malformed for p in aggressive.values())
    certs = decoded("zeek-spicy-ipsec__ikev1-certs.pcap")
    assert (certs[5].length, certs[6].length) == (1792, 1960)  # larger than 1500, and not fragmented
    assert not certs[5].fragment and not certs[6].fragment


def test_esp_only_files():
    espudp = decoded("tcpdump__espudp1.pcap")
    assert all(p.esp and p.esp_spi == "12345678" and (p.sport, p.dport) == (4500, 4500) for p in espudp.values())
    assert {(p.src, p.dst) for p in espudp.values()} == {("192.1.2.23", "192.1.2.45")}  # one direction only
    bundle = decoded("zeek-spicy-ipsec__IPsec_ESP-AH_tunnel_mode.cap")
    assert all(p.proto == "AH" and p.esp for p in bundle.values())  # ESP behind AH counts as ESP
    assert {(p.src, p.esp_spi) for p in bundle.values()} == {("10.0.0.1", "48dac2e4"), ("10.0.0.2", "fb5128a6")}
