"""Workshop mode end to end: start broken, check fails, fix by hand in a node shell, check passes, stop."""
import subprocess
import sys

import pytest

from lab import paths
from lab.workshop import state

pytestmark = [pytest.mark.lab, pytest.mark.xdist_group("workshop")]  # one workshop state per machine
LAB = [sys.executable, "-m", "lab"]


def lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*LAB, *args], capture_output=True, text=True, cwd=paths.ROOT, timeout=120)


@pytest.fixture
def workshop(tmp_path, no_leaks):
    yield tmp_path
    lab("stop")  # even when the test fails half-way


def test_trainee_fixes_psk_mismatch_by_hand(workshop):
    started = lab("start", "psk-mismatch", "--out", str(workshop))
    assert started.returncode == 0, started.stdout + started.stderr
    assert "IKE_AUTH is refused" in started.stdout and "IKE_AUTH 被拒绝" in started.stdout
    assert "lab-Branch-HQ-2026" not in started.stdout and "PSK mismatch" not in started.stdout  # no answer

    again = lab("start", "udp500-blocked")
    assert again.returncode != 0 and "already running: psk-mismatch" in again.stderr

    broken = lab("check")
    assert broken.returncode == 1 and "FAIL tunnel gw1 hq/net established" in broken.stdout

    assert "hint 1/3" in lab("hint").stdout and "hint 2/3" in lab("hint", "--lang", "en").stdout
    conf = lab("shell", "gw1", "--", "sh", "-c", "echo $STRONGSWAN_CONF").stdout.strip()
    assert conf.endswith("/gw1/strongswan.conf"), conf
    assert lab("shell", "gw1", "--", "swanctl", "--list-conns").stdout.count("hq:") == 1

    fixed = lab("shell", "gw2", "--", "sh", "-c",
                "sed -i s/lab-Branch-HQ-2025/lab-Branch-HQ-2026/ $SWANCTL_DIR/swanctl.conf && swanctl --load-all")
    assert fixed.returncode == 0 and "opening directory" not in fixed.stderr, fixed.stderr

    healthy = lab("check")
    assert healthy.returncode == 0, healthy.stdout
    assert "healthy" in healthy.stdout and "FAIL" not in healthy.stdout

    assert "psk-mismatch: running" in lab("status").stdout
    assert lab("stop").stdout.startswith("stopped psk-mismatch")
    assert state.read() is None and "no workshop lab" in lab("status").stdout


def test_commands_without_a_lab_say_so():
    for args in (["check"], ["hint"], ["shell", "gw1"]):
        out = lab(*args)
        assert out.returncode == 3 and "no workshop lab is running" in out.stderr
    assert lab("stop").stdout.strip() == "no workshop lab is running"
