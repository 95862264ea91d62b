"""Each step kind applied to a real lab (in a sandbox of its own), observed with the check kinds."""
import pytest

from lab.checks import evaluate
from lab.checks.download import DownloadCheck
from lab.checks.log import LogCheck
from lab.checks.tunnel import TunnelCheck
from lab.run.lab import RunningLab
from lab.run.worker import call
from lab.schema.load import load_scenario
from lab.steps.ipsec import InitiateStep, SwanctlStep, TerminateStep
from lab.steps.link import LinkStep
from lab.steps.network import NftStep, RouteStep, RuleStep, SysctlStep
from lab.steps.restart import RestartStep
from lab.steps.serve import ServeStep

pytestmark = pytest.mark.lab


def reaches(lab: RunningLab, node: str, dst: str, src: str | None = None) -> bool:
    argv = ["ping", "-n", "-c1", "-W1"] + (["-I", src] if src else []) + [dst]
    return lab.exec(node, argv, check=False).returncode == 0


def test_kernel_steps(lab_dir, no_leaks):
    call(_kernel_steps, lab_dir, writable=(lab_dir,))


def _kernel_steps(tmp_path):
    with RunningLab(load_scenario("psk-mismatch"), tmp_path, "steps1") as lab:
        assert reaches(lab, "gw1", "198.51.100.2")
        SysctlStep(node="inet", key="net.ipv4.ip_forward", value=0).apply(lab)
        assert not reaches(lab, "gw1", "198.51.100.2")
        SysctlStep(node="inet", key="net.ipv4.ip_forward", value=1).apply(lab)
        assert reaches(lab, "gw1", "198.51.100.2")

        RouteStep(node="gw1", dst="198.51.100.0/30", via="203.0.113.1", table=100).apply(lab)
        rule = RuleStep.model_validate({"node": "gw1", "from": "203.0.113.2/32", "table": 100, "priority": 100})
        rule.apply(lab)
        assert "from 203.0.113.2 lookup 100" in lab.exec("gw1", ["ip", "rule"]).stdout
        RouteStep(node="gw1", action="delete", dst="default").apply(lab)
        assert not reaches(lab, "gw1", "198.51.100.2")  # no source chosen: the rule cannot match
        assert reaches(lab, "gw1", "198.51.100.2", src="203.0.113.2")  # table 100, by the rule
        RuleStep.model_validate({"node": "gw1", "action": "delete", "from": "203.0.113.2/32",
                             "table": 100, "priority": 100}).apply(lab)
        assert not reaches(lab, "gw1", "198.51.100.2", src="203.0.113.2")


def test_strongswan_steps(lab_dir, no_leaks):
    call(_strongswan_steps, lab_dir, writable=(lab_dir,))


def _strongswan_steps(tmp_path):
    up = TunnelCheck(node="gw1", ike="hq", child="net", within=5)
    down = TunnelCheck(node="gw1", ike="hq", expect="down", within=0.5)
    with RunningLab(load_scenario("psk-mismatch"), tmp_path, "steps2") as lab:
        assert evaluate(down, lab).passed  # nothing initiated yet
        InitiateStep(node="gw1", child="net").apply(lab)
        assert evaluate(up, lab).passed
        TerminateStep(node="gw1", ike="hq").apply(lab)
        assert evaluate(down, lab).passed
        TerminateStep(node="gw1", ike="hq").apply(lab)  # nothing left to terminate: still holds
        SwanctlStep(node="gw1", set={"connections": {"hq": {"children": {"net": {"remote_ts": ["10.2.0.0/24"]}}}}}).apply(lab)
        assert 'remote_ts = "10.2.0.0/24"' in (tmp_path / "gw1" / "swanctl" / "swanctl.conf").read_text()
        InitiateStep(node="gw1", child="net").apply(lab)
        assert evaluate(TunnelCheck(node="gw1", ike="hq", child="net", remote_ts=["10.2.0.0/24"]), lab).passed
        assert any("established" in o for o in lab.charon("gw1").outcomes)


def test_ikev1_tunnel(lab_dir, no_leaks):
    """The same nodes speak IKEv1 (Main Mode + Quick Mode) when both sides say version 1."""
    call(_ikev1_tunnel, lab_dir, writable=(lab_dir,))


def _ikev1_tunnel(tmp_path):
    with RunningLab(load_scenario("psk-mismatch"), tmp_path, "steps3") as lab:
        SwanctlStep(node="gw1", set={"connections": {"hq": {"version": 1}}}).apply(lab)
        SwanctlStep(node="gw2", set={"connections": {"branch": {"version": 1}}}).apply(lab)
        InitiateStep(node="gw1", child="net").apply(lab)
        assert evaluate(TunnelCheck(node="gw1", ike="hq", child="net"), lab).passed
        assert any("IKEv1" in line or "ID_PROT" in line for line in lab.charon("gw1").log_lines())


def test_link_step(lab_dir, no_leaks):
    call(_link_step, lab_dir, writable=(lab_dir,))


def _link_step(tmp_path):
    with RunningLab(load_scenario("psk-mismatch"), tmp_path, "steps4") as lab:
        assert reaches(lab, "gw1", "198.51.100.2")
        LinkStep(node="gw1", intf="wan", state="down").apply(lab)
        assert "state DOWN" in lab.exec("gw1", ["ip", "link", "show", "dev", "wan"]).stdout
        assert not reaches(lab, "gw1", "198.51.100.2")  # its routes went with it
        LinkStep(node="gw1", intf="wan", state="up").apply(lab)
        assert "default" not in lab.exec("gw1", ["ip", "route"]).stdout  # up again, the static route is not back
        RouteStep(node="gw1", dst="default", via="203.0.113.1").apply(lab)
        assert reaches(lab, "gw1", "198.51.100.2")


def test_restart_step(lab_dir, no_leaks):
    """TERM: charon deletes its SAs and tells the peer. KILL (a crash, a power cut): the peer is
    told nothing and keeps its SA; the restarted charon has its configuration, no SAs."""
    call(_restart_step, lab_dir, writable=(lab_dir,))


def _restart_step(tmp_path):
    up = TunnelCheck(node="gw1", ike="hq", child="net", within=5)
    hq_down = TunnelCheck(node="gw2", ike="branch", expect="down", within=0.5)
    with RunningLab(load_scenario("psk-mismatch"), tmp_path, "steps5") as lab:
        InitiateStep(node="gw1", child="net").apply(lab)
        assert evaluate(up, lab).passed
        RestartStep(node="gw2").apply(lab)
        assert evaluate(LogCheck(node="gw1", pattern="received DELETE for IKE_SA hq"), lab).passed
        assert evaluate(hq_down, lab).passed
        InitiateStep(node="gw1", child="net").apply(lab)
        assert evaluate(up, lab).passed
        RestartStep(node="gw2", signal="KILL").apply(lab)
        assert evaluate(hq_down, lab).passed
        assert evaluate(TunnelCheck(node="gw1", ike="hq", child="net", within=0.5), lab).passed  # stale, kept
        assert evaluate(LogCheck(node="gw2", pattern="Starting IKE charon daemon", min_count=3), lab).passed
        env = [f"{k}={v}" for k, v in lab.charon_env("gw2").items()]
        assert "branch: IKEv2" in lab.exec("gw2", ["env", *env, "swanctl", "--list-conns"]).stdout  # loaded again


def test_serve_and_download(lab_dir, no_leaks):
    call(_serve_and_download, lab_dir, writable=(lab_dir,))


def _serve_and_download(tmp_path):
    url = "http://10.2.0.10/blob.bin"
    with RunningLab(load_scenario("psk-mismatch"), tmp_path, "steps6") as lab:
        ServeStep(node="h2", address="10.2.0.10", files={"blob.bin": 300000}).apply(lab)
        complete = evaluate(DownloadCheck.model_validate({"from": "gw2", "url": url}), lab)
        assert complete.passed and "300000 of 300000 bytes" in complete.observed
        stalls = DownloadCheck.model_validate({"from": "gw2", "url": url, "expect": "stalls", "within": 1})
        assert not evaluate(stalls, lab).passed  # it completes
        NftStep(node="h2", ruleset="table inet t { chain o { type filter hook output priority filter; "
                                   "tcp sport 80 ip length > 1000 drop; }; }").apply(lab)
        stalled = evaluate(stalls, lab)
        assert stalled.passed and "0 of 300000 bytes" in stalled.observed
        missing = DownloadCheck.model_validate({"from": "gw2", "url": "http://10.2.0.10:81/x", "expect": "stalls",
                                                "within": 1})
        assert not evaluate(missing, lab).passed  # no server is no stall
