"""Every scenario on a real lab: its phases hold, and its symptom checks fail on its baseline."""
import json

import pytest

from lab.diagnose.engine import run as diagnose
from lab.progress import Progress
from lab.run.phase import run_phase
from lab.run.scenarios import new_run_id
from lab.run.worker import call
from lab.schema.load import load_scenario
from lab.schema.locate import catalogue_names

pytestmark = pytest.mark.lab
SCENARIOS = catalogue_names()


@pytest.mark.parametrize("name", SCENARIOS)
def test_phases(name, catalogue):
    """The scenario's run in the catalogue run (`lab run --all`, as CI runs it)."""
    from scapy.utils import rdpcap

    assert not catalogue.left, f"left behind: {catalogue.left}"
    sc = load_scenario(name)
    doc = json.loads((catalogue.out / name / "result.json").read_text())
    failed = [(p["name"], c["name"], c["observed"]) for p in doc["phases"] for c in p["checks"] if not c["passed"]]
    assert doc["passed"], failed
    assert [p["name"] for p in doc["phases"]] == list(sc.spec.phases())
    for phase in doc["phases"]:
        assert phase["passed"] and phase["duration_s"] > 0 and phase["checks"]
        for check in phase["checks"]:
            assert set(check) >= {"name", "kind", "expect", "passed", "observed", "linux"} and check["linux"]
            assert check["observed"] and check["observed"] != check["expect"]
    assert {"name", "production_s", "lab_s"} <= set(doc["timers"][0])
    for artifact in doc["artifacts"]:
        path = catalogue.out / name / artifact
        assert path.is_file(), artifact
        if path.suffix == ".pcap":
            rdpcap(str(path))  # opens as a pcap, as Wireshark would
    assert any(a.endswith(".charon.log") for a in doc["artifacts"])
    # traffic monitors: outage seconds in every phase, and a measured outage where one is a symptom
    monitors = [s.name for s in sc.spec.start if s.kind == "monitor"]
    for phase in doc["phases"]:
        assert sorted(phase["traffic"]) == sorted(monitors)
        for record in phase["traffic"].values():
            assert record["sent"] > 0 and record["longest_s"] == max(record["outages_s"], default=0)
        for check in phase["checks"]:
            if check["kind"] == "outage":
                assert check["measured"]["sent"] > 0
    # a capture that lost packets could hide what an absent-check looks for
    assert not [n for p in doc["phases"] for n in p["notes"] if "kernel drops" in n]
    # lab diagnose, from each phase's captures and logs alone, names the declared fault and nothing else
    verdicts = {p["name"]: (p["diagnosis"]["verdict"], p["diagnosis"]["step"], p["diagnosis"]["class"])
                for p in doc["phases"]}
    expected = {phase: ("healthy", None, None) if (d := sc.spec.expected_diagnosis(phase)) == "healthy"
                else ("fault", d.step, d.class_) for phase in sc.spec.phases()}  # None: test_catalogue_declares_...
    assert verdicts == expected, [p["diagnosis"] for p in doc["phases"]]


@pytest.mark.parametrize("name", SCENARIOS)
def test_symptoms_fail_on_baseline(name, lab_dir, no_leaks):
    """A symptom that also shows on a healthy lab proves nothing (nor does what a partial fix
    is expected to leave broken)."""
    sc = load_scenario(name)
    partial = sc.spec.partial_fix.expect if sc.spec.partial_fix else []
    evidence = [c for c in [*sc.spec.symptoms, *partial] if not c.context]  # context is true when healthy too
    result = call(run_phase, sc, "baseline", lab_dir / "baseline", new_run_id(), Progress(quiet=True),
                  evidence, "symptoms-on-baseline", writable=(lab_dir,))
    assert result.error is None
    held = [(c.name, c.observed) for c in result.checks if c.passed]
    assert not held, f"symptom checks that also hold without the fault: {held}"
    assert evidence and len(result.checks) == len(evidence)



# Scenarios whose fault class shows in one gateway's own charon log, and those gateways (the
# others see nothing of it: tests/test_diagnose_field_failures.py says why, case by case).
ONE_LOG = {"nat-exemption-missing": ["gw1"], "pfs-mismatch-at-rekey": ["gw1", "gw2"],
           "vip-pool-exhausted": ["gw", "rw3"], "dpd-clear-after-peer-reboot": ["gw2"],
           "wan-failover-no-mobike": ["br"]}


@pytest.mark.parametrize("name", sorted(ONE_LOG))
def test_fault_class_from_one_gateways_log(name, catalogue):
    """What an engineer pastes is often one gateway's log: the catalogue run's fault phase, one log at a time."""
    expected = load_scenario(name).spec.diagnosis
    for node in ONE_LOG[name]:
        [found] = diagnose([catalogue.out / name / "fault" / f"{node}.charon.log"])
        assert (found.step, found.fault_class) == (expected.step, expected.class_), (node, found.as_json())
