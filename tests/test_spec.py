"""Scenario and topology validation: every shipped file loads; bad input names file:line and what is allowed."""
from pathlib import Path

import pytest

from lab import paths
from lab.spec.errors import SpecError
from lab.spec.load import load_scenario, scenario_names

SITE = paths.TOPOLOGIES / "site-to-site.yaml"
GOOD = (paths.SCENARIOS / "psk-mismatch.yaml").read_text()


@pytest.mark.parametrize("name", scenario_names())
def test_shipped_scenarios_load(name):
    sc = load_scenario(name)
    assert sc.name == name
    assert sc.spec.symptoms and sc.spec.healthy
    assert (paths.CASES / sc.spec.source.case).name.endswith(".zh.txt")


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(path: Path) -> list:
    with pytest.raises(SpecError) as info:
        load_scenario(path)
    return info.value.problems


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_invalid_yaml_reports_line(tmp_path):
    text = GOOD.replace("start:\n", "start:\n  - {kind: initiate, node: gw1\n", 1)
    [p] = problems(write(tmp_path, text))
    assert "invalid YAML" in p.message and p.line is not None


def test_unknown_key_names_line_and_allowed_keys(tmp_path):
    text = GOOD.replace("  - {kind: initiate, node: gw1, child: net}",
                        "  - {kind: initiate, node: gw1, child: net, colour: red}")
    [p] = problems(write(tmp_path, text))
    assert p.line == line_of(text, "colour: red")
    assert "unknown key 'colour'" in p.message and "allowed keys: child" in p.message
    assert str(p).startswith(f"{tmp_path / 's.yaml'}:{p.line}:")


def test_unknown_top_level_key(tmp_path):
    text = GOOD + "colour: red\n"
    [p] = problems(write(tmp_path, text))
    assert p.line == line_of(text, "colour: red") and "allowed keys:" in p.message and "symptoms" in p.message


def test_unknown_node_names_line_and_nodes(tmp_path):
    text = GOOD.replace("{kind: ping, from: h1, to: 10.2.0.10, expect: fails",
                        "{kind: ping, from: h9, to: 10.2.0.10, expect: fails")
    [p] = problems(write(tmp_path, text))
    assert p.line == line_of(text, "from: h9") and p.key == "symptoms[3].from"
    assert "unknown node 'h9'" in p.message and "gw1" in p.message


def test_step_on_wrong_role(tmp_path):
    text = GOOD.replace("    - kind: swanctl\n      node: gw2\n      set:\n        secrets: [{ids: [branch.example.net, hq.example.net], secret: \"lab-Branch-HQ-2025\"}]",
                        "    - kind: swanctl\n      node: inet\n      set:\n        secrets: []")
    [p] = problems(write(tmp_path, text))
    assert "node 'inet' is a router" in p.message and "gw1, gw2" in p.message


def test_unknown_step_kind_lists_kinds(tmp_path):
    text = GOOD.replace("{kind: initiate, node: gw1, child: net}", "{kind: reboot, node: gw1}")
    ps = problems(write(tmp_path, text))
    assert any("'reboot'" in p.message and "'initiate'" in p.message and "'nft'" in p.message for p in ps)
    assert all(p.line == line_of(text, "kind: reboot") for p in ps)


def test_bad_value_in_swanctl_patch_is_located(tmp_path):
    text = GOOD.replace("      set:\n        secrets: [{ids: [branch.example.net, hq.example.net], secret: \"lab-Branch-HQ-2025\"}]",
                        "      set:\n        connections: {branch: {version: 3}}", 1)
    [p] = problems(write(tmp_path, text))
    assert p.line == line_of(text, "version: 3") and "1 or 2" in p.message


def test_unknown_child_in_initiate(tmp_path):
    text = GOOD.replace("{kind: initiate, node: gw1, child: net}", "{kind: initiate, node: gw1, child: lan}")
    [p] = problems(write(tmp_path, text))
    assert "no child 'lan'" in p.message and "net" in p.message


def test_duplicate_key(tmp_path):
    text = GOOD.replace("topology: site-to-site\n", "topology: site-to-site\ntopology: other\n")
    [p] = problems(write(tmp_path, text))
    assert "duplicate key" in p.message and p.line == line_of(text, "topology: other")


def test_address_outside_lab_ranges(tmp_path):
    topo = SITE.read_text().replace("addr: [203.0.113.2/30]", "addr: [8.8.8.2/30]")
    write(tmp_path, topo, "site.yaml")
    text = GOOD.replace("topology: site-to-site", "topology: site.yaml")
    [p] = problems(write(tmp_path, text))
    assert p.file == tmp_path / "site.yaml" and p.line == line_of(topo, "8.8.8.2")
    assert "outside the lab's ranges" in p.message and "192.0.2.0/24" in p.message


def test_unknown_timer_reference(tmp_path):
    text = GOOD.replace("topology: site-to-site\n",
                        "topology: site-to-site\nipsec:\n  gw1:\n    connections:\n      hq:\n        dpd_delay: ${dpd}\n")
    [p] = problems(write(tmp_path, text))
    assert "unknown reference '${dpd}'" in p.message and "retransmit_timeout" in p.message
    assert p.line == line_of(text, "${dpd}")


def test_outage_check_needs_a_monitor_started_in_start(tmp_path):
    text = GOOD.replace("healthy:\n", "healthy:\n  - {kind: outage, monitor: lan}\n", 1)
    [p] = problems(write(tmp_path, text))
    assert "unknown monitor 'lan'" in p.message and "monitor steps in start: none" in p.message
    assert p.line == line_of(text, "monitor: lan")


def test_whole_second_timers_are_written_into_text_without_a_fraction():
    sc = load_scenario("ikev1-cloud-responder")
    assert "timeout 4s" in sc.spec.fault.steps[0].ruleset and "timeout 12s" in sc.spec.fault.steps[0].ruleset


def test_missing_topology(tmp_path):
    [p] = problems(write(tmp_path, GOOD.replace("topology: site-to-site", "topology: nowhere")))
    assert "no topology 'nowhere'" in p.message and "site-to-site" in p.message


def test_missing_bilingual_text(tmp_path):
    text = GOOD.replace('  zh: "预共享密钥不一致:AUTHENTICATION_FAILED"\n', "", 1)
    [p] = problems(write(tmp_path, text))
    assert p.key == "title.zh" and "required" in p.message.lower()


def test_sysctl_step_only_touches_namespaced_keys(tmp_path):
    text = GOOD.replace("    - kind: swanctl\n      node: gw2\n      set:\n        secrets: [{ids: [branch.example.net, hq.example.net], secret: \"lab-Branch-HQ-2025\"}]",
                        "    - {kind: sysctl, node: inet, key: kernel.panic, value: 1}", 1)
    [p] = problems(write(tmp_path, text))
    assert "net.* keys only" in p.message


def test_timer_references_resolve_to_lab_values():
    sc = load_scenario("udp500-blocked")
    assert sc.ipsec["gw1"]["charon"]["retransmit_timeout"] == sc.timers["retransmit_timeout"].lab
    assert sc.timers["ike_give_up"].production == 165


def test_unknown_certificate_reference(tmp_path):
    text = (paths.SCENARIOS / "cert-chain-incomplete.yaml").read_text().replace(
        "set: {trust: [root, issuing]}", "set: {trust: [root, issuer]}")
    [p] = problems(write(tmp_path, text.replace("topology: site-to-site", f"topology: {SITE}")))
    assert "unknown CA 'issuer'" in p.message and "pki cas: root, issuing" in p.message
    assert p.line == line_of(text, "set: {trust: [root, issuer]}")


def test_pki_issuer_must_exist(tmp_path):
    text = (paths.SCENARIOS / "cert-chain-incomplete.yaml").read_text().replace(
        "issuing: {cn: Lab Issuing CA 2026, issuer: root}", "issuing: {cn: Lab Issuing CA 2026, issuer: toor}")
    [p] = problems(write(tmp_path, text.replace("topology: site-to-site", f"topology: {SITE}")))
    assert "unknown CA 'toor'" in p.message and p.key == "pki"


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
    with pytest.raises(SpecError, match="no parameter 'prot'; parameters: port"):
        load_scenario(path, {"prot": "1"})
    with pytest.raises(SpecError, match="'https' is not a valid port"):
        load_scenario(path, {"port": "https"})


def test_extends_merges_and_appends():
    child, parent = load_scenario("tcp-asym-auto"), load_scenario("tcp-asym")
    assert child.name == "tcp-asym-auto" and child.tcp_encap["peer"].mode == "auto"
    assert child.tcp_encap["peer"].auto_threshold == child.timers["auto_transport_threshold"].lab
    assert child.spec.symptoms == parent.spec.symptoms
    assert child.spec.healthy[:len(parent.spec.healthy)] == parent.spec.healthy
    assert len(child.spec.healthy) == len(parent.spec.healthy) + 2
    assert [c.name for c in child.spec.captures] == ["fgt-wan1", "fgt-wan2", "peer-wan"]


def test_extends_locates_problems_in_the_child(tmp_path):
    text = "extends: psk-mismatch\nname: child\nhints+:\n  - {en: only english}\n"
    [p] = problems(write(tmp_path, text))
    assert p.file == tmp_path / "s.yaml" and p.key.startswith("hints[") and "zh" in p.key


def test_extends_unknown_parent(tmp_path):
    [p] = problems(write(tmp_path, "extends: nothing-here\nname: child\n"))
    assert "no scenario 'nothing-here' to extend" in p.message and p.line == 1


def test_scenario_name_matches_file_name(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "SCENARIOS", tmp_path)
    text = GOOD.replace("topology: site-to-site", f"topology: {SITE}")
    [p] = problems(write(tmp_path, text, "other-name.yaml"))
    assert "differs from the file name" in p.message and p.key == "name"


def test_relayed_gateway_ports_must_match_the_relay(tmp_path):
    topo = (paths.TOPOLOGIES / "dual-wan.yaml").read_text().replace("port_nat_t: 4510", "port_nat_t: 4500")
    write(tmp_path, topo, "dual.yaml")
    text = (paths.SCENARIOS / "tcp-asym.yaml").read_text().replace("topology: dual-wan", "topology: dual.yaml")
    ps = problems(write(tmp_path, text))
    wrong = [p for p in ps if "charon.port_nat_t must be tcp_encap.charon_port (4510), not 4500" in p.message]
    assert {p.key for p in wrong} == {"ipsec.fgt.charon.port_nat_t", "ipsec.peer.charon.port_nat_t"}  # one anchor
    assert {(p.file, p.line) for p in wrong} == {(tmp_path / "dual.yaml", line_of(topo, "port_nat_t: 4500"))}
