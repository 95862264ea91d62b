"""Workshop mode end to end: start broken, check fails, fix by hand in a node shell, check passes, stop;
and a training room: several trainees' labs side by side, each command acting on its own."""
import os
import subprocess
import sys
import time

import pytest

from lab import paths
from lab.workshop.state import Seat

pytestmark = pytest.mark.lab
LAB = [sys.executable, "-m", "lab"]
# this test process's own trainee names, so a trainer's real labs (and other test workers) are untouched
ME = f"t{os.getpid()}"


def lab(*args: str, trainee: str = ME) -> subprocess.CompletedProcess:
    return subprocess.run([*LAB, *args], capture_output=True, text=True, cwd=paths.ROOT, timeout=120,
                          env={**os.environ, "LAB_TRAINEE": trainee})


@pytest.fixture
def workshop(tmp_path, no_leaks):
    yield tmp_path
    for trainee in (ME, f"{ME}-bob"):
        lab("stop", trainee=trainee)  # even when the test fails half-way


def test_trainee_fixes_psk_mismatch_by_hand(workshop):
    started = lab("start", "psk-mismatch", "--out", str(workshop))
    assert started.returncode == 0, started.stdout + started.stderr
    assert "IKE_AUTH is refused" in started.stdout and "IKE_AUTH 被拒绝" in started.stdout
    assert "lab-Branch-HQ-2026" not in started.stdout and "PSK mismatch" not in started.stdout  # no answer

    again = lab("start", "udp500-blocked")
    assert again.returncode != 0 and "is already running: psk-mismatch" in again.stderr

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

    assert "psk-mismatch" in lab("status").stdout and "running" in lab("status").stdout
    assert lab("stop").stdout.startswith("stopped psk-mismatch")
    assert Seat(ME).read() is None and "no workshop lab" in lab("status").stdout


def test_commands_without_a_lab_say_so():
    for args in (["check"], ["hint"], ["shell", "gw1"]):
        out = lab(*args)
        assert out.returncode == 3 and "no workshop lab is running" in out.stderr
    assert lab("stop").stdout.strip() == f"no workshop lab is running for {ME}"


def test_a_training_room_keeps_each_trainees_lab_apart(workshop):
    bob = f"{ME}-bob"
    assert lab("start", "psk-mismatch", "--out", str(workshop)).returncode == 0
    assert lab("start", "id-mismatch", "--out", str(workshop), trainee=bob).returncode == 0
    fixed = lab("shell", "gw2", "--", "sh", "-c",
                "sed -i s/lab-Branch-HQ-2025/lab-Branch-HQ-2026/ $SWANCTL_DIR/swanctl.conf && swanctl --load-all")
    assert fixed.returncode == 0
    assert lab("check").returncode == 0  # mine is fixed
    assert lab("check", trainee=bob).returncode == 1  # bob's is untouched
    room = lab("status", "--all", "--html", str(workshop / "room.html"))
    lines = {line.split()[0]: line for line in room.stdout.splitlines() if line.startswith(ME)}
    assert "psk-mismatch" in lines[ME] and "checks 1" in lines[ME] and "last: healthy" in lines[ME]
    assert "id-mismatch" in lines[bob] and "last: not healthy" in lines[bob]
    assert ME in (workshop / "room.html").read_text()
    assert lab("stop", trainee=bob).stdout.startswith("stopped id-mismatch")
    assert lab("stop").stdout.startswith("stopped psk-mismatch")
    assert oct(os.stat("/run/ipsec-lab/workshop").st_mode & 0o777) == "0o700"


def test_a_fault_that_heals_itself_keeps_coming_back_until_fixed(workshop):
    """rekey-reauth-collision recovers after its first collision; in a workshop its trigger (the
    path's losses) is re-armed, and `lab check` re-arms it once more and judges only what
    happens from then on, so it fails until the fix holds, and passes once it does."""
    started = lab("start", "rekey-reauth-collision", "--out", str(workshop))
    assert started.returncode == 0, started.stdout + started.stderr
    assert "The fault comes back every 20 s" in started.stdout
    broken = lab("check")
    assert broken.returncode == 1 and "FAIL no renewal runs into a rekeyed IKE_SA" in broken.stdout, broken.stdout
    assert "since this check began" not in broken.stdout.split("FAIL no renewal")[1].splitlines()[1]  # it saw one
    fixed = lab("shell", "gw1", "--", "sh", "-c",
                'sed -i -e "s/rekey_time = \\"0s\\"/rekey_time = \\"7s\\"/" -e "s/reauth_time = \\"7s\\"/reauth_time = \\"0s\\"/"'
                ' $SWANCTL_DIR/swanctl.conf && swanctl --load-all && swanctl --terminate --ike hq')
    assert fixed.returncode == 0, fixed.stderr
    healthy = lab("check")
    assert healthy.returncode == 0, healthy.stdout
    assert "no match in" in healthy.stdout and "since this check began" in healthy.stdout
    status = lab("status").stdout
    assert "fault re-armed" in status and "last: healthy" in status


def test_a_cloud_that_outlives_its_phase_1_keeps_breaking_the_site_until_fixed(workshop):
    """ikev1-cloud-responder heals after its first outage, with the site as initiator from then
    on; the re-armed fault makes the site the responder again, so `lab check` still fails after
    the heal, and passes once the site drops the cloud's Main Mode openings and opens the tunnel."""
    started = lab("start", "ikev1-cloud-responder", "--out", str(workshop))
    assert started.returncode == 0, started.stdout + started.stderr
    assert "The fault comes back every 30 s" in started.stdout
    deadline = time.monotonic() + 30
    while "_i* " not in lab("shell", "gw1", "--", "swanctl", "--list-sas").stdout:  # healed: gw1 initiator
        assert time.monotonic() < deadline, "the first outage did not heal within 30 s"
        time.sleep(0.5)
    broken = lab("check")
    assert broken.returncode == 1 and "FAIL no outage across two of the site's renegotiations" in broken.stdout, \
        broken.stdout
    fixed = lab("shell", "gw1", "--", "nft", "add table inet local_in; add chain inet local_in input { type filter hook"
                " input priority filter; }; add rule inet local_in input ip saddr 198.51.100.2 udp dport 500 @th,128,64 0 drop")
    assert fixed.returncode == 0, fixed.stderr
    # the trainee opens the tunnel from the site; whether this one attempt completes is not the
    # point: a re-arm landing mid-way (both ends terminate) fails it and charon tries again, and
    # `lab check` re-arms before it judges
    lab("shell", "gw1", "--", "swanctl", "--initiate", "--child", "net")
    healthy = lab("check")
    assert healthy.returncode == 0, healthy.stdout


def test_a_wan_failover_that_heals_keeps_coming_back_until_mobike(workshop):
    """wan-failover-no-mobike heals after DPD (the tunnel then runs over wan2); the re-armed
    failover puts it back on wan1 and fails wan1 again, so `lab check` fails until MOBIKE is on."""
    started = lab("start", "wan-failover-no-mobike", "--out", str(workshop))
    assert started.returncode == 0, started.stdout + started.stderr
    assert "The fault comes back every 30 s" in started.stdout
    broken = lab("check")
    assert broken.returncode == 1 and "FAIL traffic goes on across wan1's failure" in broken.stdout, broken.stdout
    fixed = lab("shell", "hq", "--", "sh", "-c",
                'sed -i "s/mobike = \\"no\\"/mobike = \\"yes\\"/" $SWANCTL_DIR/swanctl.conf && swanctl --load-all')
    assert fixed.returncode == 0, fixed.stderr
    healthy = lab("check")  # re-arms (a new IKE_SA, now with MOBIKE) and fails wan1 again
    assert healthy.returncode == 0, healthy.stdout


def test_a_tunnel_that_cannot_come_back_fails_the_check_and_the_lab_stays(workshop):
    """pfs-mismatch-at-rekey: after the first rekeying the CHILD_SA cannot be built again; `lab
    check` retries the start steps on that lab (none of them may fail), reports it broken, and
    passes once both sides use the same PFS."""
    started = lab("start", "pfs-mismatch-at-rekey", "--out", str(workshop))
    assert started.returncode == 0, started.stdout + started.stderr
    deadline = time.monotonic() + 20
    while "net:" in lab("shell", "gw1", "--", "swanctl", "--list-sas").stdout:  # until the CHILD_SA expired
        assert time.monotonic() < deadline, "the CHILD_SA did not expire"
        time.sleep(0.5)
    broken = lab("check")
    assert broken.returncode == 1 and "FAIL the CHILD_SA is rekeyed" in broken.stdout, broken.stdout + broken.stderr
    fixed = lab("shell", "gw2", "--", "sh", "-c", 'sed -i "s/esp_proposals = \\"aes256-sha256\\"/esp_proposals = '
                '\\"aes256-sha256-modp2048\\"/" $SWANCTL_DIR/swanctl.conf && swanctl --load-all')
    assert fixed.returncode == 0, fixed.stderr
    assert lab("check").returncode == 0
