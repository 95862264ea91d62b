"""Trust on any machine: a missing package stops a run before anything is built, a daemon that
dies says why, and `lab clean` removes what a killed run left without touching a live one."""
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from lab import paths, preflight
from lab.cli import app
from lab.errors import LabError
from lab.running_lab import RunningLab
from lab.schema.load import load_scenario
from lab.strongswan import render
from tests.leaks import lab_charons_of, snapshot

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
def test_a_daemon_that_dies_says_why(tmp_path, monkeypatch, no_leaks):
    # a critical plugin ('!') that does not exist: charon aborts at start, as it did without openssl
    monkeypatch.setattr(render, "CHARON_PLUGINS", (*render.CHARON_PLUGINS, "nosuchplugin!"))
    with pytest.raises(LabError) as info:
        with RunningLab(load_scenario("psk-mismatch"), tmp_path, "died1"):
            pass
    message = str(info.value)
    assert message.startswith("charon on gw1 exited (")
    assert "plugin 'nosuchplugin': failed to load" in message and "critical plugin" in message
    assert "charon.stdout" in message


def _runs_owned_by(root: int) -> set[str]:
    """Run ids of labs owned by `root` or by one of its phase workers."""
    from lab import owner
    from tests.leaks import descends
    runs = set()
    for other in map(int, filter(str.isdigit, os.listdir("/proc"))):
        marked = owner.process_marks(other)
        if marked and marked[1] and descends(marked[1].pid, root):
            runs.add(marked[0])
    return runs


@pytest.mark.lab
def test_clean_after_kill_9_removes_the_dead_run_and_spares_a_live_one(tmp_path):
    before = snapshot()
    victim = subprocess.Popen([*LAB, "run", "dpd-nat-timeout", "--out", str(tmp_path / "victim")], cwd=paths.ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    survivor = subprocess.Popen([*LAB, "run", "psk-mismatch", "--out", str(tmp_path / "survivor")], cwd=paths.ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    # mid-phase: charon (HQ and three branches of a phase lab), tcpdump and the NAT branches'
    # pings are running. A lab still being built has only node shells, which end with their
    # owner, and kill -9 would leave nothing to clean
    while not ((dead := _runs_owned_by(victim.pid)) and (live := _runs_owned_by(survivor.pid))
               and len(lab_charons_of(victim.pid)) >= 4):
        assert time.monotonic() < deadline, "the two runs did not both build a lab"
        time.sleep(0.05)
    os.killpg(victim.pid, signal.SIGKILL)  # lab run and its whole session, as an OOM kill or a CI timeout does
    victim.wait()
    deadline = time.monotonic() + 5
    # the phase workers die a moment after `lab run` is reaped; until then their labs are live
    while not snapshot().left_over(before).get("procs"):
        assert time.monotonic() < deadline, "kill -9 left nothing: this test would prove nothing"
        time.sleep(0.05)

    dry = subprocess.run([*LAB, "clean", "--dry-run"], capture_output=True, text=True, cwd=paths.ROOT)
    assert dry.returncode == 0
    assert all(f"would remove run {run}" in dry.stdout for run in dead), dry.stdout
    assert not any(run in dry.stdout for run in live), dry.stdout
    out = subprocess.run([*LAB, "clean"], capture_output=True, text=True, cwd=paths.ROOT)
    assert out.returncode == 0 and "removed" in out.stdout, out.stdout + out.stderr

    rest = survivor.communicate(timeout=120)[0]
    assert survivor.returncode == 0, rest
    deadline = time.monotonic() + 5
    while (left := snapshot().left_over(before)) and time.monotonic() < deadline:
        time.sleep(0.1)  # the init process reaps what was killed
    assert not left, f"left behind: {left}"
    again = subprocess.run([*LAB, "clean", "--dry-run"], capture_output=True, text=True, cwd=paths.ROOT)
    assert again.stdout.startswith("nothing left")
