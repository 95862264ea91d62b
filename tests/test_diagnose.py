"""`lab diagnose` on logs, captures and folders: the traps of real data, strongSwan's own failure
tests, every field capture, and the command's contract (exit codes, JSON, bad input)."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import repo
from lab.diagnose.engine import run
from tests.field_data import FIELD, NEEDED

HERE = Path(__file__).parent / "diagnose"
LAB = [sys.executable, "-m", "lab"]

# strongSwan's failure tests (tests/data/strongswan-tests): the class their asserted log lines make
STRONGSWAN = {
    "ikev2-net2net-psk-fail": (3, "psk-mismatch"),
    "ikev1-net2net-psk-fail": (3, "psk-mismatch"),  # decryption failed, never AUTHENTICATION_FAILED
    "ikev2-crl-revoked": (3, "cert-revoked"),
    "ikev2-ocsp-revoked": (3, "cert-revoked"),
    "ikev2-ocsp-untrusted-cert": (3, "cert-status-unavailable"),
    "ikev2-ocsp-timeouts-unknown": (3, "cert-status-unavailable"),
    "ikev2-multi-ca-skipped": (3, "cert-status-unavailable"),
    "ikev2-multi-ca-pathlen": (3, "cert-untrusted"),
    "ikev2-rw-eap-tls-only": (3, "cert-untrusted"),
    "ikev2-multi-ca-crls": (3, "ts-mismatch"),  # the IKE_SA stays up
    "ikev2-rw-initiator-only": (1, "ike-unreachable"),
    "ikev2-dpd-clear": (1, "ike-unreachable"),  # established, then the path is cut
}


def _bre(pattern: str) -> str:
    """grep's basic regex as evaltest.dat writes it: parentheses are literal, \\" is a quote."""
    return pattern.replace('\\"', '"').replace("(", r"\(").replace(")", r"\)")


@NEEDED
@pytest.mark.parametrize("test", sorted(STRONGSWAN))
def test_strongswan_failure_tests(test):
    logs = HERE / "strongswan" / test
    # every log line strongSwan's test asserts (YES) is in our rendering of that host's log
    for line in (FIELD / "strongswan-tests" / test / "evaltest.dat").read_text().splitlines():
        host, command, pattern, *hit = line.split("::")
        if "daemon.log" in command and hit == ["YES"]:
            text = (logs / f"{host}.log").read_text()
            assert re.search(_bre(pattern), text), f"{host}: {pattern}"
    [found] = run([logs])
    assert (found.verdict, found.step, found.fault_class) == ("fault", *STRONGSWAN[test]), found.as_json()
    assert found.evidence and all(e["kind"] == "log" for e in found.evidence)


def _log(tmp_path: Path, *lines: str, name: str = "charon.log") -> Path:
    path = tmp_path / name
    path.write_text("".join(f"10:00:{i:02d} 0{i % 9}[{sub}] {text}\n" for i, (sub, text) in
                            enumerate(line.split(" ", 1) for line in lines)))
    return path


ESTABLISHED = ("IKE IKE_SA hq[1] established between 203.0.113.2[a]...198.51.100.2[b]",
               "IKE CHILD_SA net{1} established with SPIs c1_i c2_o and TS 10.1.0.0/24 === 10.2.0.0/24")


@pytest.mark.parametrize("first", [
    "IKE received NO_PROPOSAL_CHOSEN notify error",
    "IKE peer didn't accept DH group ECP_256, it requested MODP_2048",
    "IKE retransmit 1 of request with message ID 0",
    "ENC parsed IKE_SA_INIT response 0 [ N(COOKIE) ]",
])
def test_a_hitch_then_success_is_healthy(tmp_path, first):
    [found] = run([_log(tmp_path, "IKE initiating IKE_SA hq[1] to 198.51.100.2", first, *ESTABLISHED)])
    assert found.verdict == "healthy", found.as_json()
    assert found.exit_code == 0


def test_ikev1_psk_mismatch_is_a_decryption_failure(tmp_path):
    [found] = run([_log(tmp_path, "IKE initiating Main Mode IKE_SA gw[1] to 198.51.100.2",
                        "ENC invalid HASH_V1 payload length, decryption failed?")])
    assert found.fault_class == "psk-mismatch"


def test_ikev1_initiator_without_a_psk(tmp_path):
    """It sends INVALID_KEY_INFORMATION (17, named INVALID_KE_PAYLOAD by charon): a key problem, not DH."""
    [found] = run([_log(tmp_path, "IKE initiating Main Mode IKE_SA gw[1] to 198.51.100.2",
                        "IKE no shared key found for 'a' - 'b'",
                        "ENC generating INFORMATIONAL_V1 request 1 [ N(INVAL_KE) ]")])
    assert found.fault_class == "psk-mismatch"


def test_a_bad_ke_value_answered_with_no_proposal_chosen(tmp_path):
    [found] = run([_log(tmp_path, "IKE 198.51.100.2 is initiating an IKE_SA", "IKE applying DH public value failed",
                        "ENC generating IKE_SA_INIT response 0 [ N(NO_PROP) ]")])
    assert (found.step, found.fault_class) == (2, "invalid-ke")


def test_a_ts_failure_leaves_the_ike_sa_up(tmp_path):
    [found] = run([_log(tmp_path, "IKE initiating IKE_SA hq[1] to 198.51.100.2", ESTABLISHED[0],
                        "IKE received TS_UNACCEPTABLE notify, no CHILD_SA built",
                        "IKE failed to establish CHILD_SA, keeping IKE_SA")])
    assert (found.verdict, found.fault_class) == ("fault", "ts-mismatch")


def test_only_the_initiators_log_names_step_3_not_the_class(tmp_path):
    [found] = run([_log(tmp_path, "IKE initiating IKE_SA hq[1] to 198.51.100.2",
                        "IKE received AUTHENTICATION_FAILED notify error")])
    assert (found.step, found.fault_class) == (3, "auth-failed")


@pytest.mark.parametrize("between, verdict", [
    ((), "id-mismatch"),  # no candidate carries the id: the certificate does not
    (("CFG   using certificate \"CN=hq.example.net\"", "CFG no issuer certificate found for \"CN=hq.example.net\""),
     "cert-untrusted"),
])
def test_a_certificate_without_the_identity_is_not_an_untrusted_chain(tmp_path, between, verdict):
    [found] = run([_log(tmp_path, "IKE initiating IKE_SA hq[1] to 198.51.100.2",
                        "IKE received end entity cert \"CN=vpn-gw.example.com\"", *between,
                        "CFG no trusted ECDSA public key found for 'hq.example.net'")])
    assert (found.step, found.fault_class) == (3, verdict), found.as_json()


def _pcap(path: Path, *packets) -> Path:
    from scapy.layers.inet import ICMP, IP, UDP
    from scapy.utils import wrpcap

    # an IKE_SA_INIT request header: SPIi, zero SPIr, next payload SA, v2.0, exchange 34, initiator
    header = b"\x01" * 8 + bytes(8) + bytes([33, 0x20, 34, 0x08]) + bytes(4) + (28).to_bytes(4, "big")
    wrpcap(str(path), [IP(src=src, dst=dst) / (UDP(sport=500, dport=500) / header if ike else ICMP())
                       for src, dst, ike in packets])
    return path


@pytest.mark.parametrize("ike, verdict", [(True, "cleartext-leak"), (False, None)])
def test_protected_traffic_in_clear_on_a_wan_only(tmp_path, ike, verdict):
    """A ping from 10.1.0.10 to 10.2.0.10 inside the negotiated selectors is a leak on a capture that
    also carries IKE (a WAN); on a capture without IKE or ESP (a LAN) it is what the LAN carries."""
    log = _log(tmp_path, "IKE initiating IKE_SA hq[1] to 198.51.100.2", *ESTABLISHED)
    packets = [("203.0.113.2", "198.51.100.2", True)] if ike else []
    pcap = _pcap(tmp_path / "wan.pcap", *packets, ("10.1.0.10", "10.2.0.10", False))
    [found] = run([log, pcap])
    assert found.fault_class == verdict, found.as_json()


@pytest.mark.parametrize("fmt", [
    "Dec  1 10:00:0{i} moon charon: 12[IKE] {text}",
    "2026-12-01T10:00:0{i}.123456+00:00 moon charon-systemd[77]: 12[IKE] {text}",
    "[IKE] {text}",  # swanctl --log
    "10:00:0{i} 12[IKE] <hq|1> {text}",
    "12[IKE] {text}",  # filelog without a time
])
def test_log_formats(tmp_path, fmt):
    path = tmp_path / "log.txt"
    lines = ["initiating IKE_SA hq[1] to 198.51.100.2",
             "tried 1 shared key for 'a' - 'b', but MAC mismatched"]
    path.write_text("some other daemon: hello\n" + "".join(fmt.format(i=i, text=t) + "\n" for i, t in enumerate(lines)))
    [found] = run([path])
    assert found.fault_class == "psk-mismatch"
    assert found.evidence[0]["line"] == 3 and found.evidence[0]["file"] == str(path)


def test_no_ike_at_all_is_indeterminate(tmp_path):
    [found] = run([_log(tmp_path, "DMN Starting IKE charon daemon (strongSwan 5.9.8)")])
    assert found.verdict == "indeterminate" and found.reason and found.exit_code == 4


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*LAB, "diagnose", *args], capture_output=True, text=True, cwd=repo.ROOT, timeout=60)


def test_cli_text_json_and_exit_codes(tmp_path):
    logs = HERE / "strongswan" / "ikev2-net2net-psk-fail"
    out = _cli(str(logs))
    assert out.returncode == 1 and "psk-mismatch" in out.stdout and "MAC mismatched" in out.stdout
    assert "第 3 步" in out.stdout and "step 3" in out.stdout
    [doc] = json.loads(_cli(str(logs), "--json").stdout)["diagnoses"]  # lab's one JSON document
    assert {"verdict", "step", "class", "evidence", "ruled_out", "next"} <= set(doc)
    assert doc["class"] == "psk-mismatch" and set(doc["next"]) == {"en", "zh"}
    zh = _cli(str(logs), "--lang", "zh")
    assert "预共享密钥不一致" in zh.stdout and "Pre-shared key mismatch" not in zh.stdout


@pytest.mark.parametrize("args", [["/no/such/file"], ["--lang", "fr", "x"], ["--ike-port", "70000", "x"], []])
def test_cli_bad_input(tmp_path, args):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01garbage")
    out = _cli(*[str(junk) if a == "x" else a for a in args])
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr


def test_cli_refuses_a_file_that_is_neither(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("nothing of charon here\n")
    out = _cli(str(junk))
    assert out.returncode == 2 and "neither a capture" in out.stderr


# Every public capture (tests/data/captures), with the verdict an engineer signs for it
# (the reasoning per file: the study of the captures, packet by packet).
FIELD_VERDICTS = {
    "openswan__lp08-parentR1__parentR1notify.pcap": ("fault", "invalid-ke"),  # two INVALID_KE answers, nothing after
    "suricata-verify__IKEv2_SA_INIT_2-8-weak.pcap": ("indeterminate", None),  # one request, one direction
    "tcpdump__ISAKMP_sa_setup.pcap": ("healthy", None),  # Main Mode + Quick Mode
    "tcpdump__espudp1.pcap": ("indeterminate", None),  # ESP only, no IKE
    "tcpdump__ikev2four.pcap": ("healthy", None),  # a COOKIE round, then success
    "tcpdump__ikev2pI2.pcap": ("indeterminate", None),  # initiator's direction only
    "tcpdump__isakmp4500.pcap": ("indeterminate", None),  # the responder keeps resending QM2: no phase 2 there
    "zeek-spicy-ipsec__IPsec_ESP-AH_tunnel_mode.cap": ("indeterminate", None),  # no IKE to judge
    "zeek-spicy-ipsec__ikev1-certs.pcap": ("healthy", None),
    "zeek-spicy-ipsec__ipsec-ikev1-isakmp-aggressive-mode.pcap": ("healthy", None),
    "zeek-spicy-ipsec__ipsec-ikev1-isakmp-main-mode.pcap": ("healthy", None),
    "zeek-spicy-ipsec__ipsec-ikev1-payload-bad-length.pcap": ("indeterminate", None),  # one malformed MM1
    "zeek-spicy-ipsec__ipsec-ikev1-zero-length.pcap": ("indeterminate", None),
    "zeek-spicy-ipsec__ipsec.cap": ("healthy", None),  # a spurious NO_PROPOSAL_CHOSEN, then success
    "zeek-spicy-ipsec__ipsec_client.pcap": ("fault", "ike-fragments-dropped"),  # fragmented IKE_AUTH x3, no answer
}


@NEEDED
def test_every_field_capture_is_covered():
    on_disk = {p.name for p in (FIELD / "captures").iterdir() if p.suffix in (".pcap", ".cap", ".pcapng")}
    assert on_disk == set(FIELD_VERDICTS)


@NEEDED
@pytest.mark.parametrize("name", sorted(FIELD_VERDICTS))
def test_field_captures(name):
    [found] = run([FIELD / "captures" / name])
    assert (found.verdict, found.fault_class) == FIELD_VERDICTS[name], found.as_json()
    if found.verdict == "indeterminate":
        assert found.reason["en"] and found.reason["zh"]
    else:
        assert found.evidence and all(e["kind"] == "packet" and e["number"] >= 1 for e in found.evidence)


# -- IKEv1 (Main, Aggressive, Quick Mode): charon 5.9.8's own wording (sa/ikev1/tasks, phase1.c) ----------

MM_UP = ("IKE initiating Main Mode IKE_SA gw[1] to 198.51.100.2",
         "IKE IKE_SA gw[1] established between 203.0.113.2[a]...198.51.100.2[b]")


@pytest.mark.parametrize("lines, step, fault", [
    (("IKE 203.0.113.2 is initiating a Main Mode IKE_SA", "IKE no proposal found",
      "ENC generating INFORMATIONAL_V1 request 1 [ N(NO_PROP) ]"), 2, "ike-proposal-mismatch"),
    ((MM_UP[0], "IKE received NO_PROPOSAL_CHOSEN error notify"), 2, "ike-proposal-mismatch"),
    ((*MM_UP, "IKE received NO_PROPOSAL_CHOSEN error notify"), 2, "child-proposal-mismatch"),
    (("IKE 203.0.113.2 is initiating a Main Mode IKE_SA", MM_UP[1],
      "IKE no matching proposal found, sending NO_PROPOSAL_CHOSEN"), 2, "child-proposal-mismatch"),  # PFS group
    ((*MM_UP, "IKE received INVALID_ID_INFORMATION error notify"), 3, "ts-mismatch"),
    (("IKE 203.0.113.2 is initiating a Main Mode IKE_SA", MM_UP[1],
      "IKE no matching CHILD_SA config found for 10.1.0.0/24 === 10.2.0.0/24"), 3, "ts-mismatch"),
    ((MM_UP[0], "IKE received INVALID_ID_INFORMATION error notify"), 3, "id-mismatch"),
    (("IKE 203.0.113.2 is initiating a Main Mode IKE_SA",
      "CFG looking for pre-shared key peer configs matching 198.51.100.2...203.0.113.2[a]",
      "IKE found 1 matching config, but none allows pre-shared key authentication using Main Mode"),
     3, "auth-method-mismatch"),
    (("IKE 203.0.113.2 is initiating a Aggressive Mode IKE_SA",
      "IKE Aggressive Mode PSK disabled for security reasons"), 3, "auth-method-mismatch"),
    (("IKE 203.0.113.2 is initiating a Main Mode IKE_SA", "IKE no peer config found"), 3, "id-mismatch"),
    ((*MM_UP, "IKE CHILD_SA net{1} established with SPIs c1_i c2_o and TS 10.1.0.0/24 === 10.2.0.0/24",
      "IKE closing expired CHILD_SA net{1} with SPIs c1_i c2_o and TS 10.1.0.0/24 === 10.2.0.0/24"),
     2, "phase2-expired"),
])
def test_ikev1_failure_classes(tmp_path, lines, step, fault):
    [found] = run([_log(tmp_path, *lines)])
    assert (found.verdict, found.step, found.fault_class) == ("fault", step, fault), found.as_json()


# -- one side only, honestly --------------------------------------------------------------------------

RESPONDER_UP = ("IKE 203.0.113.2 is initiating an IKE_SA",
                "IKE authentication of 'hq' (myself) with ECDSA_WITH_SHA256_DER successful",
                "IKE IKE_SA branch[1] established between 198.51.100.2[hq]...203.0.113.2[branch]",
                "IKE CHILD_SA net{1} established with SPIs c1_i c2_o and TS 10.2.0.0/23 === 10.1.0.0/24")


def test_the_peer_refusing_after_install_is_a_fault_here(tmp_path):
    [found] = run([_log(tmp_path, *RESPONDER_UP, "ENC parsed INFORMATIONAL request 2 [ N(AUTH_FAILED) ]",
                        "IKE received DELETE for IKE_SA branch[1]",
                        "IKE deleting IKE_SA branch[1] between 198.51.100.2[hq]...203.0.113.2[branch]")])
    assert (found.verdict, found.step, found.fault_class) == ("fault", 3, "auth-failed")
    assert any("certificate" in c["en"] for c in found.candidates)  # it authenticated with a certificate


@pytest.mark.parametrize("error", [
    "ENC generating IKE_AUTH response 1 [ N(TS_UNACCEPT) ]",
    "ENC parsed CREATE_CHILD_SA response 5 [ N(NO_PROP) ]",
    "IKE received INTERNAL_ADDRESS_FAILURE notify error",
    "IKE giving up after 5 retransmits",
])
def test_never_healthy_after_an_unresolved_error(tmp_path, error):
    [found] = run([_log(tmp_path, *RESPONDER_UP, error)])
    assert found.verdict == "fault", found.as_json()


def test_narrowed_selectors_are_a_ts_mismatch(tmp_path):
    [found] = run([_log(tmp_path, *RESPONDER_UP[:3], "CFG selecting traffic selectors for us:",
                        "CFG  config: 10.2.0.0/23, received: 10.2.0.0/24 => match: 10.2.0.0/24",
                        "CFG selecting traffic selectors for other:",
                        "CFG  config: 10.1.0.0/24, received: 10.1.0.0/24 => match: 10.1.0.0/24",
                        "IKE CHILD_SA net{1} established with SPIs c1_i c2_o and TS 10.2.0.0/24 === 10.1.0.0/24")])
    assert (found.step, found.fault_class) == (3, "ts-mismatch")


@pytest.mark.parametrize("config", ["0.0.0.0/0", "10.0.0.0/8"])
def test_a_hub_narrowing_its_wide_remote_range_is_healthy(tmp_path, config):
    """A responder offering a catch-all or a hub's wide remote range narrows by design."""
    side = "us" if config == "0.0.0.0/0" else "other"
    [found] = run([_log(tmp_path, *RESPONDER_UP[:3], f"CFG selecting traffic selectors for {side}:",
                        f"CFG  config: {config}, received: 10.1.0.0/24 => match: 10.1.0.0/24", RESPONDER_UP[3])])
    assert found.verdict == "healthy", found.as_json()


# -- many peers ---------------------------------------------------------------------------------------

def _spoke(i: int, secret_ok: bool) -> list[str]:
    peer = f"198.51.100.{4 * i + 2}"
    lines = [f"IKE <{i}> {peer} is initiating an IKE_SA",
             f"CFG <{i}> looking for peer configs matching 203.0.113.2[hq]...{peer}[br{i}]"]
    if secret_ok:
        return lines + [f"IKE <b{i}|{i}> IKE_SA b{i}[{i}] established between 203.0.113.2[hq]...{peer}[br{i}]"]
    return lines + [f"IKE <b{i}|{i}> tried 1 shared key for 'hq' - 'br{i}', but MAC mismatched"]


def test_one_bad_spoke_among_many_is_named_and_not_resolved_by_the_others(tmp_path):
    lines = [line for i in range(1, 31) for line in _spoke(i, i != 17)]
    [found] = run([_log(tmp_path, *lines)])
    assert (found.verdict, found.fault_class) == ("fault", "psk-mismatch"), found.as_json()
    assert len(found.faulty) == 1 and "br17" in found.faulty[0]
    bad = [p for p in found.peers if p["verdict"] != "healthy"]
    assert len(bad) == 1 and "br17" in bad[0]["peer"]
