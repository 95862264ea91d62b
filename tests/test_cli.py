"""The `lab` command as users run it: exit codes, files outside scenarios/, bad input, teardown."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import repo
from lab.schema.load import load_scenario
from tests.leaks import charons_below
from tests.login import LOGIN_PATH, as_from_a_terminal

LAB = [sys.executable, "-m", "lab"]


def lab(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*LAB, *args], capture_output=True, text=True, cwd=repo.ROOT, timeout=120, **kwargs)


def test_list_names_first():
    out = lab("list")
    assert out.returncode == 0
    names = [line.split("\t")[0] for line in out.stdout.splitlines()]
    assert names == sorted(p.stem for p in repo.SCENARIOS.glob("*.yaml"))


def test_malformed_scenario_exits_2_and_builds_nothing(tmp_path, no_leaks):
    bad = tmp_path / "bad.yaml"
    text = (repo.SCENARIOS / "psk-mismatch.yaml").read_text().replace("from: h1, to: 10.2.0.10, expect: fails",
                                                                       "from: nobody, to: 10.2.0.10, expect: fails")
    bad.write_text(text)
    out = lab("run", str(bad), "--out", str(tmp_path / "out"))
    assert out.returncode == 2
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "from: nobody" in l)
    assert f"{bad}:{line}: symptoms[3].from: unknown node 'nobody'" in out.stderr
    assert "nothing was built" in out.stderr
    assert not (tmp_path / "out").exists()


def test_unknown_scenario_name_exits_2():
    out = lab("run", "no-such-scenario")
    assert out.returncode == 2 and "psk-mismatch" in out.stderr


@pytest.mark.lab
def test_scenario_file_outside_scenarios_dir(tmp_path, no_leaks):
    """Topology found by a path relative to the scenario file."""
    (tmp_path / "topo").mkdir()
    shutil.copy(repo.TOPOLOGIES / "site-to-site.yaml", tmp_path / "topo" / "mine.yaml")
    text = (repo.SCENARIOS / "id-mismatch.yaml").read_text()
    text = text.replace("name: id-mismatch", "name: my-id-case").replace("topology: site-to-site", "topology: topo/mine.yaml")
    (tmp_path / "case.yaml").write_text(text)
    out = lab("run", str(tmp_path / "case.yaml"), "--out", str(tmp_path / "out"))
    assert out.returncode == 0, out.stdout + out.stderr
    doc = json.loads((tmp_path / "out" / "my-id-case" / "result.json").read_text())
    assert doc["passed"] and [p["name"] for p in doc["phases"]] == ["baseline", "fault", "fix"]


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    text = (repo.SCENARIOS / "psk-mismatch.yaml").read_text()
    assert old in text
    path = tmp_path / "variant.yaml"
    path.write_text(text.replace(old, new))
    return path


@pytest.mark.lab
def test_symptom_not_observed_exits_1(tmp_path, no_leaks):
    path = _variant(tmp_path, 'pattern: "received AUTHENTICATION_FAILED notify error"}',
                    'pattern: "this line is never logged", within: 0.3}')
    out = lab("run", str(path), "--out", str(tmp_path))
    assert out.returncode == 1, out.stdout + out.stderr
    doc = json.loads((tmp_path / "psk-mismatch" / "result.json").read_text())
    fault = doc["phases"][1]
    assert not doc["passed"] and not fault["passed"]
    [failed] = [c for c in fault["checks"] if not c["passed"]]
    assert "no match in" in failed["observed"]


@pytest.mark.lab
def test_failing_step_exits_3_and_tears_down(tmp_path, no_leaks):
    path = _variant(tmp_path, "    - kind: swanctl\n      node: gw2\n      set:\n        secrets: [{ids: [branch.example.net, hq.example.net], secret: \"lab-Branch-HQ-2025\"}]",
                    # valid, but the kernel has no such key (an off-link next hop, this test's step before, is
                    # now found at load: tests/bad-input/route-step-via-offlink)
                    "    - {kind: sysctl, node: inet, key: net.ipv4.no_such_key, value: 1}")
    out = lab("run", str(path), "--out", str(tmp_path))
    assert out.returncode == 3, out.stdout + out.stderr
    doc = json.loads((tmp_path / "psk-mismatch" / "result.json").read_text())
    assert "sysctl -qw net.ipv4.no_such_key=1 failed" in doc["phases"][1]["error"]


@pytest.mark.lab
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_tears_down(tmp_path, sig, no_leaks):
    # dpd-nat-timeout's phases wait on timers for seconds: the signal lands while labs are up,
    # however loaded the machine (a fast scenario's phases may be over before they overlap)
    proc = subprocess.Popen([*LAB, "run", "dpd-nat-timeout", "--out", str(tmp_path)], cwd=repo.ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200"},
                            preexec_fn=as_from_a_terminal)
    deadline = time.monotonic() + 60
    while len(charons_below(proc.pid)) < 8:  # two phase labs up (HQ and three branches each)
        assert time.monotonic() < deadline and proc.poll() is None, "the labs did not come up"
        time.sleep(0.05)
    proc.send_signal(sig)
    rest = proc.communicate(timeout=60)[0]
    assert proc.returncode == 130, rest
    assert "torn down" in rest


@pytest.mark.lab
def test_port_parameter_moves_the_whole_case(tmp_path, no_leaks):
    out = lab("run", "tcp-asym", "--param", "port=10443", "--out", str(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    doc = json.loads((tmp_path / "tcp-asym" / "result.json").read_text())
    fault = {c["name"]: c["observed"] for c in doc["phases"][1]["checks"]}
    assert "out 203.0.113.2:10443 > 192.0.2.10:" in fault["fgt's SYN/ACK from 203.0.113.2 leaves on wan2"]
    assert "on fgt:wan2" in fault["fgt's SYN/ACK from 203.0.113.2 leaves on wan2"]
    assert "in 192.0.2.10:" in fault["the peer's SYN to 203.0.113.2:10443 arrives on wan1, and is retransmitted"]


@pytest.mark.lab
def test_junit_counts_and_failure_observations(tmp_path, no_leaks):
    import xml.etree.ElementTree as ET

    ok = lab("run", "id-mismatch", "--out", str(tmp_path), "--junit", str(tmp_path / "ok.xml"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    root = ET.parse(tmp_path / "ok.xml").getroot()
    assert root.tag == "testsuites" and (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "0", "0")
    assert [c.get("name") for c in root.iter("testcase")] == ["baseline", "fault", "fix"]

    path = _variant(tmp_path, 'pattern: "received AUTHENTICATION_FAILED notify error"}',
                    'pattern: "this line is never logged", within: 0.3}')
    bad = lab("run", str(path), "--out", str(tmp_path), "--junit", str(tmp_path / "bad.xml"))
    assert bad.returncode == 1
    root = ET.parse(tmp_path / "bad.xml").getroot()
    assert (root.get("tests"), root.get("failures")) == ("3", "1")
    [failure] = list(root.iter("failure"))
    assert "this line is never logged" in failure.get("message") and "no match in" in failure.get("message")


def test_run_needs_a_name_or_all():
    assert lab("run").returncode == 2
    assert lab("run", "psk-mismatch", "--all").returncode == 2


@pytest.mark.lab
def test_all_with_junit_counts_every_phase(catalogue):
    import xml.etree.ElementTree as ET

    assert catalogue.run.returncode == 0, catalogue.run.stdout[-3000:] + catalogue.run.stderr[-3000:]
    root = ET.parse(catalogue.out / "all.xml").getroot()
    names = sorted(p.stem for p in repo.SCENARIOS.glob("*.yaml"))
    phases = sum(len(load_scenario(n).spec.phases()) for n in names)
    assert int(root.get("tests")) == phases == len(list(root.iter("testcase")))
    assert (root.get("failures"), root.get("errors")) == ("0", "0")
    assert sorted({c.get("classname").removeprefix("ipsec-lab.") for c in root.iter("testcase")}) == names


@pytest.mark.lab
def test_keep_holds_a_failing_lab_open(tmp_path, no_leaks):
    import re
    import shlex

    path = _variant(tmp_path, 'pattern: "received AUTHENTICATION_FAILED notify error"}',
                    'pattern: "this line is never logged", within: 0.3}')
    proc = subprocess.Popen([*LAB, "run", str(path), "--keep", "--out", str(tmp_path)], cwd=repo.ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    enter = {}
    for line in proc.stderr:
        match = re.match(r"\s+(\w+): (/usr/bin/nsenter .* mnexec -a \d+ .*)$", line)
        if match:
            enter[match.group(1)] = shlex.split(match.group(2))
        if "SIGTERM" in line:
            break
    assert enter["gw1"][-1] == "bash"  # the printed command, run as printed but for the shell
    inside = subprocess.run([*enter["gw1"][:-1], "sh", "-c", "ip -br addr; swanctl --list-conns"], capture_output=True,
                            text=True, env={**os.environ, "PATH": LOGIN_PATH})  # typed by an account: no sbin
    assert "203.0.113.2/30" in inside.stdout  # the failing fault lab is still up
    assert "hq: IKEv2" in inside.stdout, inside.stderr  # root's tools and the node's own charon
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 130


@pytest.mark.lab
def test_soak_records_runs_and_judges_every_phase(tmp_path, no_leaks):
    """cert-expired has a partial fix: its phase must be diagnosed as declared, not as healthy."""
    out = lab("soak", "cert-expired", "--runs", "1", "--out", str(tmp_path / "soak.json"))
    assert out.returncode == 0, out.stdout + out.stderr
    [record] = json.loads((tmp_path / "soak.json").read_text())["scenarios"]
    assert (record["runs"], record["passed"], record["failures"]) == (1, 1, [])
    assert not (tmp_path / "soak-failures").exists()  # only failing runs are kept


def test_a_run_never_replaces_a_folder_it_did_not_write(tmp_path):
    """A scenario named like a workshop's folder, or any folder of the user's, under --out: refused,
    untouched, nothing built; an earlier run's folder (it carries the run's mark) is replaced."""
    from lab.run.scenarios import RUN_MARK, unreplaceable

    mine = tmp_path / "psk-mismatch"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    out = lab("run", "psk-mismatch", "--out", str(tmp_path))
    assert out.returncode == 2 and "is not the results of an earlier run" in out.stderr, out.stderr
    assert (mine / "notes.txt").read_text() == "mine"
    (mine / RUN_MARK).touch()
    assert unreplaceable(["psk-mismatch", "absent"], tmp_path) == []


@pytest.mark.lab
def test_a_run_with_tmpdir_elsewhere_leaves_nothing_there(tmp_path, no_leaks):
    """Runtime files (vici sockets, a lab's scratch) are the sandbox's own, whatever TMPDIR says."""
    elsewhere = tmp_path / "tmpdir"
    elsewhere.mkdir()
    os.chmod(elsewhere, 0o1777)
    out = lab("run", "psk-mismatch", "--out", str(tmp_path / "out"), env={**os.environ, "TMPDIR": str(elsewhere)})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert list(elsewhere.iterdir()) == []
