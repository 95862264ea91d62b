"""Scenario and topology loading: every shipped file loads, references resolve, variants merge.
Bad input is data: tests/bad-input/ (test_bad_input.py)."""
from pathlib import Path

import pytest

from tests import repo
from lab.schema.errors import InputError
from lab.schema.load import load_scenario
from lab.schema.locate import catalogue_names

SITE = repo.TOPOLOGIES / "site-to-site.yaml"
GOOD = (repo.SCENARIOS / "psk-mismatch.yaml").read_text()


@pytest.mark.parametrize("name", catalogue_names())
def test_shipped_scenarios_load(name):
    sc = load_scenario(name)
    assert sc.name == name
    assert sc.spec.symptoms and sc.spec.healthy
    assert sc.spec.source.case.endswith(".zh.txt")  # every catalogue scenario names its case write-up


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(path: Path) -> list:
    with pytest.raises(InputError) as info:
        load_scenario(path)
    return info.value.problems


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_whole_second_timers_are_written_into_text_without_a_fraction():
    sc = load_scenario("ikev1-cloud-responder")
    assert "timeout 4s" in sc.spec.fault.steps[0].ruleset and "timeout 12s" in sc.spec.fault.steps[0].ruleset


def test_timer_references_resolve_to_lab_values():
    sc = load_scenario("udp500-blocked")
    assert sc.gateways["gw1"].charon.retransmit_timeout == sc.timers["retransmit_timeout"].lab
    assert sc.timers["ike_give_up"].production == 165


PARAMS = GOOD.replace("topology: site-to-site\n", """topology: site-to-site
params:
  port: {default: 443, description: {en: IKE TCP port, zh: IKE TCP 端口}}
""").replace("platform: strongSwan swanctl.conf on gw2\n      commands: |\n        secrets",
             "platform: strongSwan swanctl.conf on gw2\n      commands: |\n        # port ${port}\n        secrets", 1)


def test_params_default_override_and_embedding(tmp_path):
    path = write(tmp_path, PARAMS)
    assert "# port 443" in load_scenario(path).spec.fault.vendor[0].commands
    assert "# port 10443" in load_scenario(path, {"port": "10443"}).spec.fault.vendor[0].commands


def test_unknown_or_bad_param(tmp_path):
    path = write(tmp_path, PARAMS)
    with pytest.raises(InputError, match="--param prot: no such parameter; allowed: port"):
        load_scenario(path, {"prot": "1"})
    # typed as the default: a whole number in range, no Python int() leniency (" 1", "1_0", "١٢")
    for given in ("https", "70000", "-1", " 1", "1_0", "\u0661\u0662", "0x10", "1.0", ""):
        with pytest.raises(InputError) as info:
            load_scenario(path, {"port": given})
        [problem] = info.value.problems
        assert problem.line == line_of(PARAMS, "port: {default") and problem.key == "params.port"
        assert "not a value this parameter takes; allowed: a whole number from 0 to 65535 (the default is 443)" \
            in problem.message
    assert load_scenario(path, {"port": "10443"}).params == {"port": "10443"}


def test_a_name_parameter_takes_names_and_a_declared_range_bounds_numbers(tmp_path):
    text = PARAMS.replace("port: {default: 443,", "port: {default: 443, min: 1, max: 1024,").replace(
        "params:\n", "params:\n  mode: {default: tcp}\n")
    path = write(tmp_path, text)
    for name, given in (("port", "1025"), ("port", "0"), ("mode", "tcp; reboot"), ("mode", "include"), ("mode", "7")):
        with pytest.raises(InputError, match=f"--param {name}="):
            load_scenario(path, {name: given})
    assert load_scenario(path, {"port": "1024", "mode": "udp"})
    bad = write(tmp_path, PARAMS.replace("port: {default: 443,", "port: {default: 443, max: 100,"), "b.yaml")
    [problem] = problems(bad)
    assert "default 443 lies outside min 0 .. max 100" in problem.message


def test_extends_merges_and_appends():
    child, parent = load_scenario("tcp-asym-auto"), load_scenario("tcp-asym")
    assert child.name == "tcp-asym-auto" and child.tcp_encap["peer"].mode == "auto"
    assert child.tcp_encap["peer"].auto_threshold == child.timers["auto_transport_threshold"].lab
    assert child.spec.symptoms == parent.spec.symptoms
    assert child.spec.healthy[:len(parent.spec.healthy)] == parent.spec.healthy
    assert len(child.spec.healthy) == len(parent.spec.healthy) + 2
    assert [c.name for c in child.spec.captures] == ["fgt-wan1", "fgt-wan2", "peer-wan"]


def test_scenario_name_matches_file_name_where_names_are_looked_up(tmp_path, monkeypatch):
    path = write(tmp_path, GOOD, "other-name.yaml")
    assert load_scenario(path).name == "psk-mismatch"  # a file given by its path may be named anything
    monkeypatch.setenv("LAB_PATH", str(tmp_path))  # found by name here, so named after its file
    [p] = problems(path)
    assert "differs from the file name" in p.message and p.key == "name"


def test_user_folders_are_searched_before_the_catalogue(tmp_path, monkeypatch):
    from lab.schema import locate

    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    mine.mkdir()
    theirs.mkdir()
    write(mine, GOOD.replace('en: "PSK mismatch: AUTHENTICATION_FAILED"', "en: mine"), "psk-mismatch.yaml")
    write(theirs, GOOD.replace("name: psk-mismatch", "name: other"), "other.yaml")
    write(theirs, SITE.read_text(), "a-topology.yaml")  # a topology beside them is not a scenario
    monkeypatch.setenv("LAB_PATH", f"{theirs}:")
    locate.use_folders([mine])  # --path: before LAB_PATH
    try:
        assert load_scenario("psk-mismatch").path == mine / "psk-mismatch.yaml"
        assert load_scenario("psk-mismatch").spec.title.en == "mine"
        assert load_scenario("other").path == theirs / "other.yaml"
        assert load_scenario("id-mismatch").path == repo.SCENARIOS / "id-mismatch.yaml"
        files = locate.scenario_files()
        assert "a-topology" not in files and files["other"] == theirs / "other.yaml"
        assert set(locate.catalogue_names()) < set(files)
        with pytest.raises(InputError) as info:
            load_scenario("nowhere")
        assert f"no scenario 'nowhere' in {mine}, {theirs} and the catalogue" in str(info.value)
    finally:
        locate.use_folders([])


def test_each_file_is_read_once(monkeypatch):
    """tcp-asym-auto extends tcp-asym, both on dual-wan: three files, each read once."""
    from collections import Counter

    from lab.schema import yamlfile

    reads, load = Counter(), yamlfile.load
    monkeypatch.setattr(yamlfile, "load", lambda path: reads.update([Path(path).name]) or load(path))
    load_scenario("tcp-asym-auto")
    assert reads == Counter({"tcp-asym-auto.yaml": 1, "tcp-asym.yaml": 1, "dual-wan.yaml": 1})


def _with_source(source: str) -> str:
    """psk-mismatch.yaml with its `source:` block replaced by `source: SOURCE`."""
    lines, out, skipping = GOOD.splitlines(), [], False
    for line in lines:
        if line.startswith("source:"):
            skipping = True
            out.append(f"source: {source}")
            continue
        if skipping and line.startswith(" "):
            continue
        skipping = False
        out.append(line)
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("source, key, value", [
    ("{case: ikev2-three-step-triage.zh.txt}", "case", "ikev2-three-step-triage.zh.txt"),
    ("ikev2-three-step-triage.zh.txt", "case", "ikev2-three-step-triage.zh.txt"),
    ("https://docs.strongswan.org/docs/5.9/howtos/ipsecProtocol.html", "url",
     "https://docs.strongswan.org/docs/5.9/howtos/ipsecProtocol.html"),
    ('"ticket INC-4711: branch Hangzhou cannot reach HQ since 2026-03-02"', "ticket",
     "ticket INC-4711: branch Hangzhou cannot reach HQ since 2026-03-02"),
    ("{ticket: INC-4711, section: {en: the second call, zh: 第二次通话}}", "ticket", "INC-4711"),
])
def test_source_is_a_case_a_web_address_or_a_ticket(tmp_path, source, key, value):
    sc = load_scenario(write(tmp_path, _with_source(source)))
    assert getattr(sc.spec.source, key) == value and sc.spec.source.shown() == value


@pytest.mark.parametrize("source, message", [
    ("{case: a.txt, url: 'https://example.net/'}", "case and url given; allowed: exactly one of"),
    ("{section: {en: a, zh: b}}", "none given; allowed: exactly one of"),
    ("{url: 'javascript:alert(1)'}", "is not a web address"),
    ("{case: ../../etc/passwd.txt}", "is not a case file name"),
])
def test_a_bad_source_is_named(tmp_path, source, message):
    ps = problems(write(tmp_path, _with_source(source)))
    assert any(message in p.message and p.key.startswith("source") for p in ps), ps


def test_diagnosis_is_optional_but_strict_requires_it(tmp_path):
    from lab import validate

    text = "\n".join(line for line in GOOD.splitlines() if not line.startswith("diagnosis:"))
    sc = load_scenario(write(tmp_path, text))
    assert sc.spec.diagnosis is None and sc.spec.expected_diagnosis("fault") is None
    assert sc.spec.expected_diagnosis("baseline") == "healthy"
    [p] = validate.strict_problems(sc, sc.doc)
    assert p.key == "diagnosis" and "required with --strict" in p.message


@pytest.mark.parametrize("name", catalogue_names())
def test_the_catalogue_is_strict(name):
    from lab import validate

    sc = load_scenario(name)
    assert validate.strict_problems(sc, sc.doc) == []


def test_a_misspelt_phase_is_an_error():
    from lab.schema.scenario import Phase

    spec = load_scenario("psk-mismatch").spec
    assert spec.phases() == (Phase.BASELINE, Phase.FAULT, Phase.FIX) == ("baseline", "fault", "fix")
    for call in (spec.checks, spec.sections, spec.expected_diagnosis):
        with pytest.raises(ValueError, match="'fualt' is not a valid Phase"):
            call("fualt")
    with pytest.raises(ValueError, match="no partial fix"):
        spec.checks("partial")


def test_relayed_gateway_ports_must_match_the_relay(tmp_path):
    topo = (repo.TOPOLOGIES / "dual-wan.yaml").read_text().replace("port_nat_t: 4510", "port_nat_t: 4500")
    write(tmp_path, topo, "dual.yaml")
    text = (repo.SCENARIOS / "tcp-asym.yaml").read_text().replace("topology: dual-wan", "topology: dual.yaml")
    ps = problems(write(tmp_path, text))
    wrong = [p for p in ps if "charon.port_nat_t must be tcp_encap.charon_port (4510), not 4500" in p.message]
    assert {p.key for p in wrong} == {"ipsec.fgt.charon.port_nat_t", "ipsec.peer.charon.port_nat_t"}  # one anchor
    assert {(p.file, p.line) for p in wrong} == {(tmp_path / "dual.yaml", line_of(topo, "port_nat_t: 4500"))}


def test_repeated_groups_write_out_every_member():
    small, big = load_scenario("dpd-nat-timeout"), load_scenario("dpd-nat-timeout", {"spokes": "60"})
    assert sorted(n for n in small.topology.nodes if n.startswith("br")) == ["br1", "br2", "br3"]
    assert len([n for n in big.topology.nodes if n.startswith("br")]) == 60
    assert big.topology.addresses("nat60") == ["198.51.100.238/30", "192.168.70.1/24"]
    hq = big.gateways["hq"]
    assert len(hq.connections) == 60 and len(hq.secrets) == 60  # secrets+ appends, member by member
    assert hq.connections["branch42"].children["net"].remote_ts == ["10.42.0.0/24"]


@pytest.mark.parametrize("count, message", [(0, "from 1 to 100"), (101, "from 1 to 100"), ("x", "from 1 to 100")])
def test_repeat_count_is_bounded(tmp_path, count, message):
    topo = (repo.TOPOLOGIES / "hub-spoke-nat.yaml").read_text().replace("count: ${spokes}", f"count: {count}")
    write(tmp_path, topo, "hub.yaml")
    text = (repo.SCENARIOS / "dpd-nat-timeout.yaml").read_text().replace("topology: hub-spoke-nat",
                                                                          "topology: hub.yaml")
    [p] = problems(write(tmp_path, text))
    assert p.key == "repeat[0].count" and message in p.message and p.file == tmp_path / "hub.yaml"


def test_a_partial_fix_is_a_phase_of_its_own():
    spec = load_scenario("ike-fragmentation").spec
    assert spec.phases() == ("baseline", "fault", "partial", "fix")
    assert spec.sections("partial") == ["setup", "fault", "partial_fix", "start"]
    assert spec.checks("partial") == spec.partial_fix.expect
    assert spec.expected_diagnosis("partial").class_ == "ike-fragments-dropped"
    assert load_scenario("psk-mismatch").spec.phases() == ("baseline", "fault", "fix")


def test_a_partial_fix_declares_a_diagnosis_of_the_right_step(tmp_path):
    text = (repo.SCENARIOS / "ike-fragmentation.yaml").read_text()
    bad = text.replace("  diagnosis: {step: 1, class: ike-fragments-dropped}", "  diagnosis: {step: 2, class: ike-fragments-dropped}")
    [p] = problems(write(tmp_path, bad, "ike-fragmentation.yaml"))
    assert "partial_fix.diagnosis: class ike-fragments-dropped is a step 1 fault" in p.message


@pytest.mark.parametrize("argv", [
    ["ip", "route", "show", "type", "blackhole"], ["ip", "-4", "route", "get", "10.2.0.10"],
    ["nft", "-n", "list", "ruleset"], ["conntrack", "-L"], ["swanctl", "--list-sas"],
    ["sysctl", "-n", "net.ipv4.ip_forward"], ["nft", "list", "table", "inet", "gw-local-out"],
    ["ip", "route", "get", "10.1.0.10", "from", "10.2.0.10", "iif", "lan"], ["conntrack", "-L", "-p", "udp", "--dport", "4500"],
    ["swanctl", "--list-sas", "--ike", "hq", "--child", "net", "--raw"],
])
def test_command_checks_run_what_reads(argv):
    from lab.checks.command import CommandCheck

    assert CommandCheck.model_validate({"node": "gw1", "argv": argv, "pattern": "x"}).argv == argv


@pytest.mark.parametrize("argv", [
    ["ip", "-n", "other", "route", "show"], ["ip", "netns", "exec", "x", "sh"], ["ip", "route", "add", "blackhole", "0/0"],
    ["ip", "route", "flush", "table", "main"], ["nft", "flush", "ruleset"], ["nft", "-f", "/etc/passwd"],
    ["conntrack", "-F"], ["swanctl", "--load-all"], ["sysctl", "-w", "net.ipv4.ip_forward=0"],
    ["sysctl", "-n", "kernel.hostname"], ["sh", "-c", "id"], ["ip", "route", "show;reboot"], ["ip", "route show"], [],
    # options that read a file, reach elsewhere or change the lab, after a subcommand that reads
    ["swanctl", "--list-sas", "--options", "/etc/shadow"], ["swanctl", "--list-sas", "--uri", "unix:///run/x.vici"],
    ["swanctl", "--list-conns", "--debug", "4"], ["nft", "list", "ruleset", "--file=/etc/shadow"],
    ["nft", "-I", "/etc", "list", "ruleset"], ["nft", "-N", "list", "ruleset"], ["nft", "-u", "list", "ruleset"],
    ["nft", "list", "ruleset", ";", "flush", "ruleset"], ["nft", "list", "table", "inet", "x", "include", "y"],
    ["conntrack", "-L", "--zero"], ["conntrack", "-L", "-z"], ["conntrack", "-L", "-o", "labels"],
    ["conntrack", "-E"], ["conntrack", "-D", "-s", "10.1.0.10"], ["ip", "-b", "/etc/passwd"],
    ["ip", "-batch", "-"], ["ip", "route", "show", "table", "all", "extra"], ["sysctl", "-p", "/etc/sysctl.conf"],
    ["sysctl", "-n", "net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding"], ["ip", "-c", "route", "show"],
    ["ip", "route", "get", "8.8.8.8"], ["swanctl", "--list-sas", "--raw", "--pretty"],
])
def test_command_checks_refuse_what_changes_or_escapes(argv):
    from pydantic import ValidationError

    from lab.checks.command import CommandCheck

    with pytest.raises(ValidationError, match="not a (command|program a check may run|read-only form)"):
        CommandCheck.model_validate({"node": "gw1", "argv": argv, "pattern": "x"})


def test_route_and_rule_steps_followed_through_each_phase(tmp_path):
    """What the kernel takes passes: a route or rule added by one step is there for a later one to
    delete (in the order a phase applies them), replace never collides, and a delete names only
    what it must match (no metric: any)."""
    text = """extends: psk-mismatch
name: routes
setup:
  - {kind: route, node: gw1, dst: 10.9.0.0/24, via: 203.0.113.1, metric: 7, action: add}
  - {kind: route, node: gw1, dst: default, via: 203.0.113.1}
  - {kind: rule, node: gw1, from: 10.1.0.0/24, table: 100, priority: 100}
  - {kind: sysctl, node: gw1, key: net.ipv4.conf.wan.rp_filter, value: 0}
  - {kind: sysctl, node: gw1, key: net.ipv4.conf.ipsec0.rp_filter, value: 0}
fault:
  summary: {en: x, zh: x}
  steps:
    - {kind: route, node: gw1, dst: 10.9.0.0/24, action: delete}
    - {kind: rule, node: gw1, table: 100, priority: 100, action: delete}
fix:
  summary: {en: x, zh: x}
  steps:
    - {kind: route, node: gw1, dst: 10.9.0.0/24, via: 203.0.113.1, metric: 7, action: add}
    - {kind: rule, node: gw1, from: 10.1.0.0/24, table: 100, priority: 100}
"""
    load_scenario(write(tmp_path, text, "routes.yaml"))
    twice = text.replace("    - {kind: rule, node: gw1, table: 100, priority: 100, action: delete}\n", "")
    [problem] = problems(write(tmp_path, twice, "twice.yaml"))
    assert problem.key == "fix.steps[1]" and "has this rule already" in problem.message
