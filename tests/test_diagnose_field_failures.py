"""`lab diagnose` on the field failures of issue 24: each class named from the fault phase's
artifacts of its scenario and, where the class shows there, from one gateway's charon log alone
(tests/diagnose/field-failures: fault-phase logs and a capture of real lab runs); and the traps
around each class, in lines strongSwan 5.9.8 writes (near misses that are healthy or another class)."""
from pathlib import Path

import pytest

from lab.diagnose.engine import run

HERE = Path(__file__).parent / "diagnose" / "field-failures"

# scenario -> {artifact: class it alone names}; artifacts left out do not show the class:
#   nat-exemption-missing gw2 (HQ receives nothing: a healthy log), mss-blackhole's logs (charon
#   sees no TCP: HQ's LAN capture shows it, below), dpd-clear-after-peer-reboot gw1 (a DPD that dies unanswered, as on a cut
#   path), wan-failover-no-mobike hq (a new IKE_SA from another address, as after any reconnect)
ALONE = {
    "nat-exemption-missing": {"gw1.charon.log": (3, "nat-exemption-missing")},
    "pfs-mismatch-at-rekey": {"gw1.charon.log": (2, "pfs-mismatch"), "gw2.charon.log": (2, "pfs-mismatch")},
    "vip-pool-exhausted": {"gw.charon.log": (3, "vip-pool-exhausted"), "rw3.charon.log": (3, "vip-pool-exhausted")},
    "dpd-clear-after-peer-reboot": {"gw2.charon.log": (2, "peer-restart-not-recovered")},
    "wan-failover-no-mobike": {"br.charon.log": (1, "path-lost-without-mobike")},
}
PHASE = {"nat-exemption-missing": (3, "nat-exemption-missing"), "pfs-mismatch-at-rekey": (2, "pfs-mismatch"),
         "vip-pool-exhausted": (3, "vip-pool-exhausted"), "mss-blackhole": (1, "pmtu-blackhole"),
         "dpd-clear-after-peer-reboot": (2, "peer-restart-not-recovered"),
         "wan-failover-no-mobike": (1, "path-lost-without-mobike")}


@pytest.mark.parametrize("scenario", sorted(PHASE))
def test_fault_phase_artifacts(scenario):
    [found] = run([HERE / scenario])
    assert (found.verdict, found.step, found.fault_class) == ("fault", *PHASE[scenario]), found.as_json()


@pytest.mark.parametrize("scenario, artifact", [(s, a) for s, artifacts in sorted(ALONE.items()) for a in artifacts])
def test_one_gateways_artifact_alone(scenario, artifact):
    [found] = run([HERE / scenario / artifact])
    assert (found.verdict, found.step, found.fault_class) == ("fault", *ALONE[scenario][artifact]), found.as_json()
    assert found.evidence


def test_pmtu_black_hole_from_hqs_gateway_alone():
    """Its LAN capture shows the segment that never gets through; its log, that a tunnel is up
    (the capture alone shows no IPsec, and a path MTU black hole elsewhere is no IPsec fault)."""
    folder = HERE / "mss-blackhole"
    assert run([folder / "gw2-lan.pcap"])[0].fault_class is None
    [found] = run([folder / "gw2-lan.pcap", folder / "gw2.charon.log"])
    assert (found.step, found.fault_class) == (1, "pmtu-blackhole"), found.as_json()
    assert [e["kind"] for e in found.evidence[:2]] == ["packet", "packet"]


def _log(path: Path, *lines: str) -> Path:
    """charon's filelog as the lab writes it: time, thread, subsystem, <IKE_SA name|id>."""
    path.write_text("".join(f"10:00:{i:02d} {i % 16:02d}[{line.split(' ', 1)[0]}] {line.split(' ', 1)[1]}\n"
                            for i, line in enumerate(lines)))
    return path


UP = ("IKE <hq|1> IKE_SA hq[1] established between 203.0.113.2[branch.example.net]...198.51.100.2[hq.example.net]",
      "IKE <hq|1> CHILD_SA net{1} established with SPIs c1_i c2_o and TS 10.1.0.0/24 === 10.2.0.0/23")
HQ_UP = ("IKE <branch|1> IKE_SA branch[1] established between 198.51.100.2[hq.example.net]...203.0.113.2[branch.example.net]",
         "IKE <branch|1> CHILD_SA net{1} established with SPIs c2_i c1_o and TS 10.2.0.0/23 === 10.1.0.0/24")
START = "DMN Starting IKE charon daemon (strongSwan 5.9.8, Linux 6.1.0, x86_64)"


def test_a_restart_the_peer_recovers_from_is_healthy(tmp_path):
    hq = _log(tmp_path / "hq.log", START, *HQ_UP, START, *HQ_UP)
    [found] = run([hq])
    assert found.verdict == "healthy", found.as_json()


def test_a_dpd_unanswered_while_the_peer_restarts_is_no_nat_mapping(tmp_path):
    """Both lab gateways look NATed to each other (kernel-libipsec fakes NAT detection to force
    UDP encapsulation): a DPD that dies while the peer's log shows a restart is that restart."""
    branch = _log(tmp_path / "branch.log", *UP, "IKE <hq|1> remote host is behind NAT", "IKE <hq|1> sending DPD request",
                  "IKE <hq|1> retransmit 1 of request with message ID 2", "IKE <hq|1> giving up after 2 retransmits",
                  "IKE <hq|1> restarting CHILD_SA net", UP[0].replace("hq|1", "hq|2").replace("hq[1]", "hq[2]"))
    assert run([branch])[0].fault_class == "nat-mapping-expired"  # alone: nothing explains the silence
    hq = tmp_path / "hq.log"
    hq.write_text(f"10:00:00 00[DMN] {START[4:]}\n10:00:01 07[IKE] <branch|1> {HQ_UP[0][19:]}\n"
                  f"10:00:03 00[DMN] {START[4:]}\n10:00:07 09[IKE] <branch|1> {HQ_UP[0][19:]}\n")
    [found] = run([branch, hq])
    assert found.verdict == "healthy", found.as_json()


def test_a_lost_path_moved_by_mobike_is_healthy(tmp_path):
    br = _log(tmp_path / "br.log", *UP, "IKE <hq|1> peer supports MOBIKE",
              "IKE <hq|1> old path is not available anymore, try to find another",
              "IKE <hq|1> sending address list update using MOBIKE, implicitly requesting an address change")
    assert run([br])[0].verdict == "healthy"


def test_a_lost_path_without_mobike(tmp_path):
    br = _log(tmp_path / "br.log", "ENC <hq|1> parsed IKE_AUTH request 1 [ IDi N(INIT_CONTACT) IDr AUTH SA TSi TSr ]",
              *UP, "IKE <hq|1> old path is not available anymore, try to find another",
              "IKE <hq|1> remote host is behind NAT", "IKE <hq|1> sending DPD request",
              "IKE <hq|1> giving up after 2 retransmits", "IKE <hq|1> restarting CHILD_SA net",
              UP[0].replace("hq|1", "hq|2").replace("hq[1]", "hq[2]"))
    [found] = run([br])
    assert (found.step, found.fault_class) == (1, "path-lost-without-mobike"), found.as_json()


@pytest.mark.parametrize("received, configured, pfs", [
    ("ESP:AES_CBC_256/HMAC_SHA2_256_128/MODP_2048/NO_EXT_SEQ", "ESP:AES_CBC_256/HMAC_SHA2_256_128/NO_EXT_SEQ", True),
    ("ESP:AES_CBC_256/HMAC_SHA2_256_128/NO_EXT_SEQ", "ESP:AES_CBC_256/HMAC_SHA2_256_128/ECP_256/NO_EXT_SEQ", True),
    ("ESP:AES_CBC_256/HMAC_SHA2_256_128/MODP_2048/NO_EXT_SEQ", "ESP:AES_GCM_16_256/ECP_256/NO_EXT_SEQ", False),
])
def test_responder_log_tells_pfs_from_other_proposal_mismatches(tmp_path, received, configured, pfs):
    """Left out the key exchange, the proposals match (PFS only) or they do not (the algorithms too)."""
    hq = _log(tmp_path / "hq.log", *HQ_UP, "ENC <branch|1> parsed CREATE_CHILD_SA request 2 [ N(REKEY_SA) SA No KE TSi TSr ]",
              f"CFG <branch|1> received proposals: {received}", f"CFG <branch|1> configured proposals: {configured}",
              "IKE <branch|1> no acceptable proposal found",
              "ENC <branch|1> generating CREATE_CHILD_SA response 2 [ N(NO_PROP) ]")
    [found] = run([hq])
    assert found.verdict == "fault" and (found.fault_class == "pfs-mismatch") == pfs, found.as_json()


def test_a_refused_second_child_is_not_pfs(tmp_path):
    """NO_PROPOSAL_CHOSEN for another CHILD_SA than the one accepted in IKE_AUTH proves nothing about PFS."""
    br = _log(tmp_path / "br.log", "IKE <hq|1> establishing CHILD_SA net{1}", *UP,
              "IKE <hq|1> establishing CHILD_SA voice{2}", "ENC <hq|1> generating CREATE_CHILD_SA request 2 [ SA No TSi TSr ]",
              "IKE <hq|1> received NO_PROPOSAL_CHOSEN notify, no CHILD_SA built")
    assert run([br])[0].fault_class == "child-proposal-mismatch"


def test_no_policy_for_ipv6_link_local_noise_is_not_nat(tmp_path):
    """kernel-libipsec logs (esp 2) every packet the TUN device gets without a policy, router
    solicitations included: only the gateway's own address heading for the remote selector is NAT."""
    br = _log(tmp_path / "br.log", *UP, "ESP no matching outbound IPsec policy for fe80::1 == ff02::2 [58]",
              "ESP no matching outbound IPsec policy for 10.1.0.10 == 10.3.0.10 [1]")
    assert run([br])[0].verdict == "healthy"


def test_nat_before_ipsec_leaves_in_clear_on_kernel_ipsec(tmp_path):
    """With kernel IPsec the translated packet goes out of the WAN in clear: the capture shows it."""
    from scapy.layers.inet import ICMP, IP, UDP
    from scapy.utils import wrpcap

    ike = b"\x01" * 8 + b"\x02" * 8 + bytes([46, 0x20, 37, 0x08]) + bytes(4) + (28).to_bytes(4, "big")
    pcap = tmp_path / "wan.pcap"
    wrpcap(str(pcap), [IP(src="203.0.113.2", dst="198.51.100.2") / UDP(sport=4500, dport=4500) / (bytes(4) + ike),
                       IP(src="203.0.113.2", dst="10.2.0.10") / ICMP()])
    [found] = run([_log(tmp_path / "br.log", *UP), pcap])
    assert (found.step, found.fault_class) == (3, "nat-exemption-missing"), found.as_json()


def _tcp_pcap(path: Path, answered: bool) -> Path:
    """An HTTP download from 10.2.0.10 to 10.1.0.10 as a capture at HQ's gateway sees it: the
    headers acknowledged, then a full-size segment sent 4 times, never acknowledged; or (answered)
    the gateway's ICMP "fragmentation needed" and smaller segments that get through."""
    from scapy.layers.inet import ICMP, IP, TCP
    from scapy.utils import wrpcap

    server, client = dict(src="10.2.0.10", dst="10.1.0.10"), dict(src="10.1.0.10", dst="10.2.0.10")
    data = IP(flags="DF", **server) / TCP(sport=80, dport=40000, flags="PA", seq=1001, ack=501) / (b"x" * 1448)
    packets = [IP(**client) / TCP(sport=40000, dport=80, flags="S", seq=500),
               IP(**server) / TCP(sport=80, dport=40000, flags="SA", seq=800, ack=501),
               IP(**server) / TCP(sport=80, dport=40000, flags="PA", seq=801, ack=501) / (b"h" * 200),
               IP(**client) / TCP(sport=40000, dport=80, flags="A", seq=501, ack=1001), data]
    if answered:
        packets += [IP(src="10.2.0.1", dst="10.2.0.10") / ICMP(type=3, code=4, nexthopmtu=1400) / bytes(data)[:28],
                    IP(**server) / TCP(sport=80, dport=40000, flags="PA", seq=1001, ack=501) / (b"x" * 1348),
                    IP(**client) / TCP(sport=40000, dport=80, flags="A", seq=501, ack=2349)]
    else:
        packets += [data, data, data]
    wrpcap(str(path), packets)
    return path


@pytest.mark.parametrize("answered, verdict", [(False, "pmtu-blackhole"), (True, None)])
def test_a_large_segment_never_acknowledged(tmp_path, answered, verdict):
    [found] = run([_log(tmp_path / "hq.log", *HQ_UP), _tcp_pcap(tmp_path / "lan.pcap", answered)])
    assert found.fault_class == verdict, found.as_json()


# -- the classes in the engine's terms: per peer, in every dialect, jobs without <name|id> -----------

def test_a_lost_path_without_mobike_and_no_way_back(tmp_path):
    """With `dpd_action = clear` nothing comes back: the lost path still explains the retransmits
    given up (not an unreachable peer, not a NAT mapping)."""
    br = _log(tmp_path / "br.log", *UP, "IKE <hq|1> old path is not available anymore, try to find another",
              "IKE <hq|1> remote host is behind NAT", "IKE <hq|1> sending DPD request",
              "IKE <hq|1> retransmit 1 of request with message ID 2", "IKE <hq|1> giving up after 2 retransmits")
    [found] = run([br])
    assert (found.step, found.fault_class) == (1, "path-lost-without-mobike"), found.as_json()


def _spoke_up(i: int, uid: int) -> str:
    return (f"IKE <br{i}|{uid}> IKE_SA br{i}[{uid}] established between 198.51.100.2[hq.example.net]..."
            f"203.0.113.{i}[br{i}.example.net]")


def test_a_restart_names_the_one_peer_that_never_came_back(tmp_path):
    """A hub restarts; br1 and br3 come back, br2 does not: br2 alone is named, and the others'
    return resolves nothing of it."""
    hq = _log(tmp_path / "hq.log", START, *(_spoke_up(i, i) for i in (1, 2, 3)), START,
              _spoke_up(1, 1), _spoke_up(3, 2))
    [found] = run([hq])
    assert (found.verdict, found.step, found.fault_class) == ("fault", 2, "peer-restart-not-recovered"), found.as_json()
    assert len(found.faulty) == 1 and "br2.example.net" in found.faulty[0], found.faulty
    assert [p["peer"] for p in found.peers if p["verdict"] != "healthy"] == found.faulty


def test_charon_systemd_restarts_without_a_banner(tmp_path):
    """charon-systemd logs no "Starting IKE charon daemon": its worker threads spawned mark the start."""
    def journal(n: int, text: str) -> str:
        return f"Dec 05 10:00:{n:02d} hq charon-systemd[42]: {text}"
    up = HQ_UP[0].split(" ", 2)[2]
    hq = tmp_path / "hq.log"
    hq.write_text("\n".join([journal(0, "spawning 16 worker threads"), journal(1, up),
                             journal(5, "spawning 16 worker threads")]) + "\n")
    [found] = run([hq])
    assert (found.step, found.fault_class) == (2, "peer-restart-not-recovered"), found.as_json()
    hq.write_text(hq.read_text() + journal(6, up) + "\n")
    assert run([hq])[0].verdict == "healthy"


def _rendered(dialect: str, *logs: Path) -> list[Path]:
    """File logs written in another dialect, beside them (every message kept)."""
    from lab.diagnose.convert import convert

    out = []
    for log in logs:
        out.append(log.with_suffix(".log"))
        out[-1].write_text("\n".join(convert(log.read_text().splitlines(), dialect)) + "\n")
    return out


@pytest.mark.parametrize("dialect", ["syslog-rfc3164", "journald-short", "journald-json", "logcat-threadtime",
                                     "syslog-rfc5424"])
def test_a_dpd_unanswered_while_the_peer_restarts_in_other_dialects(tmp_path, dialect):
    """The two logs' times are compared in whatever form each dialect writes them."""
    branch = _log(tmp_path / "branch.filelog", *UP, "IKE <hq|1> remote host is behind NAT",
                  "IKE <hq|1> sending DPD request", "IKE <hq|1> retransmit 1 of request with message ID 2",
                  "IKE <hq|1> giving up after 2 retransmits", "IKE <hq|1> restarting CHILD_SA net",
                  UP[0].replace("hq|1", "hq|2").replace("hq[1]", "hq[2]"))
    hq = _log(tmp_path / "hq.filelog", START, HQ_UP[0], START, START[:4] + "spawning 16 worker threads",
              HQ_UP[1], HQ_UP[1], HQ_UP[1], HQ_UP[0].replace("branch|1", "branch|2").replace("branch[1]", "branch[2]"))
    paths = _rendered(dialect, branch, hq)
    assert run([paths[0]])[0].fault_class == "nat-mapping-expired"
    [found] = run(paths)
    assert found.verdict == "healthy", found.as_json()


def test_a_received_packet_starts_another_job(tmp_path):
    """Lines without <name|id>: a thread's line of one job (a lost path, no packet sent) stays with
    its IKE_SA when the same thread later receives a packet of another IKE_SA."""
    from lab.diagnose.logs import read_stream

    log = tmp_path / "br.log"
    log.write_text("\n".join([
        "10:00:00 14[IKE] IKE_SA hq[1] established between 203.0.113.2[br]...192.0.2.10[hq]",
        "10:00:00 09[IKE] old path is not available anymore, try to find another",
        "10:00:03 08[IKE] initiating IKE_SA hq[2] to 192.0.2.10",
        "10:00:03 08[NET] sending packet: from 198.51.100.2[500] to 192.0.2.10[500] (464 bytes)",
        "10:00:03 09[NET] received packet: from 192.0.2.10[500] to 198.51.100.2[500] (472 bytes)"]) + "\n")
    with open(log, "rb") as stream:
        lines = read_stream(stream, log).lines
    old_path = next(line for line in lines if "old path" in line.text)
    assert old_path.sa == lines[0].sa != lines[-1].sa


def test_traffic_without_nat_exemption_names_the_peer_it_was_for(tmp_path):
    """Two tunnels on the branch; the translated packet heads for the second one's subnet: that
    peer is named, not the one whose job the thread last ran."""
    br = _log(tmp_path / "br.log", *UP,
              "IKE <dc|2> IKE_SA dc[2] established between 203.0.113.2[branch.example.net]...192.0.2.20[dc.example.net]",
              "IKE <dc|2> CHILD_SA dc{2} established with SPIs d1_i d2_o and TS 10.1.0.0/24 === 10.3.0.0/24",
              "IKE <hq|1> sending DPD request",
              "ESP no matching outbound IPsec policy for 203.0.113.2 == 10.3.0.10 [1]")
    [found] = run([br])
    assert (found.step, found.fault_class) == (3, "nat-exemption-missing"), found.as_json()
    assert len(found.faulty) == 1 and "dc.example.net" in found.faulty[0], found.faulty


@pytest.mark.parametrize("dialect", ["bare", "swanctl-log", "logcat-brief", "filelog-notime"])
@pytest.mark.parametrize("paired", [True, False])
def test_a_peer_restart_in_logs_without_times(tmp_path, dialect, paired):
    """Without times the two logs are paired by the IKE_SA's CHILD_SA SPIs: the peer's side of the
    IKE_SA the DPD went unanswered on was lost in its daemon's restart. An IKE_SA the peer's log
    does not show (other SPIs) is not excused by a restart there."""
    spis = ("c1c1c1c1", "c2c2c2c2")
    up = (UP[0], f"IKE <hq|1> CHILD_SA net{{1}} established with SPIs {spis[0]}_i {spis[1]}_o and TS 10.1.0.0/24 "
                 "=== 10.2.0.0/23")
    theirs = spis if paired else ("d1d1d1d1", "d2d2d2d2")
    hq_up = (HQ_UP[0], f"IKE <branch|1> CHILD_SA net{{1}} established with SPIs {theirs[1]}_i {theirs[0]}_o and TS "
                       "10.2.0.0/23 === 10.1.0.0/24")
    branch = _log(tmp_path / "branch.filelog", *up, "IKE <hq|1> remote host is behind NAT",
                  "IKE <hq|1> sending DPD request", "IKE <hq|1> retransmit 1 of request with message ID 2",
                  "IKE <hq|1> giving up after 2 retransmits", "IKE <hq|1> restarting CHILD_SA net",
                  UP[0].replace("hq|1", "hq|2").replace("hq[1]", "hq[2]"))
    hq = _log(tmp_path / "hq.filelog", START, *hq_up, START,
              HQ_UP[0].replace("branch|1", "branch|2").replace("branch[1]", "branch[2]"))
    paths = _rendered(dialect, branch, hq)
    [found] = run(paths)
    assert (found.fault_class is None) == paired, found.as_json()
    if not paired:
        assert found.fault_class == "nat-mapping-expired"
