"""Peers at one address: road warriors behind one NAT are told apart by their identities (and the
ports their NAT gave them); a site-to-site peer is one peer whatever its attempts."""
from types import SimpleNamespace

from lab.diagnose import peers as P
from lab.diagnose.engine import observe, run
from lab.diagnose.sources import gather
from tests.test_diagnose import _log

NAT = "198.51.100.2"
GW = "203.0.113.2"


def _attempt(uid: int, ports: tuple[int, int], ident: str | None, *after: str) -> list[str]:
    """A client's IKE_SA at the gateway, from behind the NAT at its own ports: IKE_SA_INIT, then
    (with an identity) IKE_AUTH and what followed."""
    init, auth = ports
    lines = [f"NET <{uid}> received packet: from {NAT}[{init}] to {GW}[500] (464 bytes)",
             f"IKE <{uid}> {NAT} is initiating an IKE_SA",
             f"NET <{uid}> sending packet: from {GW}[500] to {NAT}[{init}] (472 bytes)"]
    if ident is None:
        return lines + [f"IKE <{uid}> {line}" for line in after]
    lines += [f"NET <{uid}> received packet: from {NAT}[{auth}] to {GW}[4500] (304 bytes)",
              f"CFG <{uid}> looking for peer configs matching {GW}[vpn.example.net]...{NAT}[{ident}]"]
    return lines + [f"IKE <rw|{uid}> {line}" for line in after]


def _up(uid: int, ident: str) -> list[str]:
    return [f"IKE_SA rw[{uid}] established between {GW}[vpn.example.net]...{NAT}[{ident}]",
            f"CHILD_SA lan{{{uid}}} established with SPIs c{uid:07x}_i d{uid:07x}_o and TS 10.0.0.0/24 === 10.99.0.{uid}/32"]


def _bad_psk(ident: str) -> list[str]:
    return [f"tried 1 shared key for 'vpn.example.net' - '{ident}', but MAC mismatched",
            "sending AUTHENTICATION_FAILED notify"]


def _diagnose(tmp_path, *lines: str):
    [found] = run([_log(tmp_path, *lines)])
    return found


def _verdicts(found) -> dict[str, str]:
    return {p["peer"].split()[0]: p["verdict"] for p in found.peers}


def test_the_client_with_the_wrong_psk_is_named_among_clients_behind_one_nat(tmp_path):
    found = _diagnose(tmp_path, *_attempt(1, (500, 4500), "rw1.example.net", *_up(1, "rw1.example.net")),
                      *_attempt(2, (1024, 40001), "rw2.example.net", *_bad_psk("rw2.example.net")),
                      *_attempt(3, (1025, 40002), "rw3.example.net", *_up(3, "rw3.example.net")))
    assert (found.verdict, found.fault_class) == ("fault", "psk-mismatch"), found.as_json()
    assert found.faulty == [f"rw2.example.net [{NAT}]"]  # it never got as far as its IKE_SA's name
    assert _verdicts(found) == {"rw2.example.net": "fault", "rw1.example.net": "healthy",
                                "rw3.example.net": "healthy"}


def test_the_client_left_without_a_virtual_ip_is_named(tmp_path):
    no_vip = ["pool 'rw' is full, unable to assign address",
              "no virtual IP found for %any requested by 'rw3.example.net'",
              "no virtual IP found, sending INTERNAL_ADDRESS_FAILURE",
              f"IKE_SA rw[3] established between {GW}[vpn.example.net]...{NAT}[rw3.example.net]",
              "configuration payload negotiation failed, no CHILD_SA built"]
    found = _diagnose(tmp_path, *_attempt(1, (500, 4500), "rw1.example.net", *_up(1, "rw1.example.net")),
                      *_attempt(2, (90, 60649), "rw2.example.net", *_up(2, "rw2.example.net")),
                      *_attempt(3, (421, 38049), "rw3.example.net", *no_vip))
    assert (found.verdict, found.fault_class) == ("fault", "vip-pool-exhausted"), found.as_json()
    assert len(found.faulty) == 1 and found.faulty[0].startswith("rw3.example.net ")
    assert _verdicts(found) == {"rw3.example.net": "fault", "rw1.example.net": "healthy",
                                "rw2.example.net": "healthy"}


def test_an_attempt_without_identity_goes_to_the_client_of_its_port_else_to_the_address(tmp_path):
    path = _log(tmp_path, *_attempt(1, (500, 4500), "rw1.example.net", *_up(1, "rw1.example.net")),
                *_attempt(2, (1024, 40001), "rw2.example.net", *_up(2, "rw2.example.net")),
                *_attempt(3, (1024, 0), None, "received NO_PROPOSAL_CHOSEN notify error"),
                *_attempt(4, (2048, 0), None, "received NO_PROPOSAL_CHOSEN notify error"))
    [inputs] = gather([path])
    peers = {p.label(): sorted(sa for g in p.groups for sa in g.sas) for p in P.partition(observe(inputs))}
    assert peers == {f"rw1.example.net [{NAT}] (IKE_SA rw)": ["1"], f"rw2.example.net [{NAT}] (IKE_SA rw)": ["2", "3"],
                     f"[{NAT}]": ["4"]}


def test_a_site_to_site_peer_failing_then_succeeding_is_one_peer_and_healthy(tmp_path):
    """Attempts without identity, a wrong PSK, then the same peer up: one peer, resolved."""
    path = _log(tmp_path, *_attempt(1, (500, 0), None, "received NO_PROPOSAL_CHOSEN notify error"),
                *_attempt(2, (500, 4500), "br1.example.net", *_bad_psk("br1.example.net")),
                *_attempt(3, (500, 4500), "br1.example.net", *_up(3, "br1.example.net")))
    [inputs] = gather([path])
    assert len(P.partition(observe(inputs))) == 1
    found = run([path])[0]
    assert found.verdict == "healthy" and not found.peers and not found.faulty, found.as_json()


def test_a_peer_that_corrected_its_identity_at_the_same_ports_is_one_peer(tmp_path):
    """Two identities seen at one port are one machine (an id-mismatch, fixed), not two clients."""
    path = _log(tmp_path, *_attempt(1, (500, 4500), "old.example.net", *_bad_psk("old.example.net")),
                *_attempt(2, (500, 4500), "br1.example.net", *_up(2, "br1.example.net")))
    [inputs] = gather([path])
    assert len(P.partition(observe(inputs))) == 1
    assert run([path])[0].verdict == "healthy"


def test_packets_at_a_shared_address_go_to_the_client_of_their_port():
    def packet(sport: int) -> SimpleNamespace:
        return SimpleNamespace(src=NAT, sport=sport, dst=GW, dport=4500)
    pair = frozenset((NAT, GW))
    one = P.Peer("rw1", pairs={pair}, ports={(NAT, 4500)})
    two = P.Peer("rw2", pairs={pair}, ports={(NAT, 40001)})
    P._rivals([one, two])
    assert one.holds(packet(4500)) and not two.holds(packet(4500))
    assert two.holds(packet(40001)) and not one.holds(packet(40001))
    assert one.holds(packet(5555)) and two.holds(packet(5555))  # no one's port: evidence of both
    of = P.owner([one, two])
    assert [of(SimpleNamespace(packet=packet(p))) for p in (4500, 40001, 5555)] == [0, 1, None]
