"""Trust on any machine: a missing package stops a run before anything is built, a daemon that
dies says why, and a run killed at any moment leaves nothing behind."""
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from lab import preflight
from tests import repo
from lab.cli import app
from lab.errors import LabError
from lab.run.lab import RunningLab
from lab.run.worker import call
from lab.schema.load import load_scenario
from lab.strongswan import render
from tests.leaks import charons_below, snapshot

LAB = [sys.executable, "-m", "lab"]


@pytest.mark.lab
def test_missing_plugin_stops_the_run_before_building(tmp_path, monkeypatch, no_leaks):
    monkeypatch.setattr(preflight, "PLUGIN_DIR", tmp_path / "no-plugins")
    result = CliRunner().invoke(app, ["run", "psk-mismatch", "--out", str(tmp_path / "out")])
    assert result.exit_code == 3, result.output
    assert "nothing was built" in result.output
    assert "strongSwan plugin openssl" in result.output and "libstrongswan-standard-plugins" in result.output
    assert "apt-get install --no-install-recommends" in result.output
    assert not (tmp_path / "out").exists()


def test_doctor_names_each_missing_piece_and_its_package(tmp_path, monkeypatch):
    monkeypatch.setattr(preflight, "PLUGIN_DIR", tmp_path)
    monkeypatch.setitem(preflight.PROGRAMS, "tcpdump",
                        preflight.Program("tcpdump", str(tmp_path / "tcpdump"), "tcpdump", "captures"))
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 3
    lines = result.output.splitlines()
    assert any("MISSING program tcpdump" in line and "(tcpdump)" in line for line in lines)
    assert any("MISSING strongSwan plugin kernel-libipsec" in line and "libcharon-extra-plugins" in line
               for line in lines)
    assert "install with: sudo apt-get install --no-install-recommends" in lines[-1]


@pytest.mark.lab
def test_a_daemon_that_dies_says_why(lab_dir, monkeypatch, no_leaks):
    # a critical plugin ('!') that does not exist: charon aborts at start, as it did without openssl
    monkeypatch.setattr(render, "CHARON_PLUGINS", (*render.CHARON_PLUGINS, "nosuchplugin!"))
    with pytest.raises(LabError) as info:
        call(_build, load_scenario("psk-mismatch"), lab_dir, writable=(lab_dir,))
    message = str(info.value)
    assert message.startswith("charon on gw1 exited (")
    assert "plugin 'nosuchplugin': failed to load" in message and "critical plugin" in message
    assert "charon.stdout" in message


KILL_MOMENTS = 20
SEED = int(os.environ.get("IPSEC_LAB_KILL_SEED", time.time_ns() % 10**6))


@pytest.mark.lab
def test_kill_9_at_any_moment_leaves_nothing_without_lab_clean(tmp_path):
    """`lab run` (a scenario with a PKI, three phases side by side) killed with SIGKILL at random
    moments, from its start to its report: the lab's sandboxes end with it, by the kernel, and
    nothing is left on the host. Half the kills hit `lab run` alone (its workers follow it and
    tear their labs down), half its whole process group (the sandboxes themselves die)."""
    import random

    rng = random.Random(SEED)
    seen = {"charon": 0}
    for i in range(KILL_MOMENTS):
        before = snapshot()
        out = tmp_path / f"run{i}"
        run = subprocess.Popen([*LAB, "run", "cert-revoked", "--out", str(out)], cwd=repo.ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        moment = rng.uniform(0.0, 3.2)  # the run takes 2.5-3 s: start, PKI, phases, teardown, report
        deadline = time.monotonic() + moment
        while time.monotonic() < deadline and run.poll() is None:
            seen["charon"] = max(seen["charon"], len(charons_below(run.pid)))
            time.sleep(0.02)
        whole_group = i % 2 == 1
        try:
            if whole_group:
                os.killpg(run.pid, signal.SIGKILL)  # as an OOM kill or a CI timeout does
            else:
                os.kill(run.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # the run was over at that moment: what it left is checked all the same
        run.wait()
        deadline = time.monotonic() + 10  # a worker that follows its parent tears its lab down first
        while (left := snapshot().left_over(before)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not left, (f"kill {i} at {moment:.2f}s ({'group' if whole_group else 'lab run'}; "
                          f"IPSEC_LAB_KILL_SEED={SEED}) left: {left}")
    assert seen["charon"] >= 2, "no kill landed while a lab ran: this test would prove little"
    dry = subprocess.run([*LAB, "clean", "--dry-run"], capture_output=True, text=True, cwd=repo.ROOT)
    assert dry.returncode == 0 and dry.stdout.startswith("nothing left"), dry.stdout


def _build(sc, folder):
    with RunningLab(sc, folder, "died1"):
        pass


@pytest.mark.lab
def test_a_killed_run_takes_its_labs_with_it_at_once(tmp_path):
    """`lab run` alone killed mid-phase: its workers follow it at once (each tears its lab
    down), not when their phases would have ended (dpd-nat-timeout's fault phase runs 12 s)."""
    before = snapshot()
    run = subprocess.Popen([*LAB, "run", "dpd-nat-timeout", "--out", str(tmp_path)], cwd=repo.ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while len(charons_below(run.pid)) < 12:  # three phase labs of HQ and three branches
        assert time.monotonic() < deadline and run.poll() is None, "the labs did not come up"
        time.sleep(0.05)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    killed = time.monotonic()
    while (left := snapshot().left_over(before)) and time.monotonic() < killed + 5:
        time.sleep(0.05)
    assert not left, f"5 s after lab run was killed: {left}"
