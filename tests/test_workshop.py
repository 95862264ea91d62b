"""Workshop mode end to end, with trainees as ordinary accounts: start broken, check fails, fix by
hand in a node shell, check passes, stop; a training room of two accounts, each reaching only its
own lab; a trainer (root) who sees and stops every lab; faults that come back until fixed."""
import os
import subprocess
import sys
import time

import pytest

from tests import repo

pytestmark = pytest.mark.lab
LAB = [sys.executable, "-m", "lab"]


def trainer(*args: str) -> subprocess.CompletedProcess:
    """`lab ARGS` as root, the trainer."""
    return subprocess.run([*LAB, *args], capture_output=True, text=True, cwd=repo.ROOT, timeout=180)


@pytest.fixture
def workshop(accounts, room, no_leaks):
    yield accounts
    for account in accounts:
        account.lab("stop")  # even when the test failed half-way
    trainer("stop")


def test_trainee_fixes_psk_mismatch_by_hand(workshop):
    alice = workshop[0]
    started = alice.lab("start", "psk-mismatch")
    assert started.returncode == 0, started.stdout + started.stderr
    assert "IKE_AUTH is refused" in started.stdout and "IKE_AUTH 被拒绝" in started.stdout
    assert "lab-Branch-HQ-2026" not in started.stdout and "PSK mismatch" not in started.stdout  # no answer
    results = alice.home / "results" / "workshop"
    assert oct(results.stat().st_mode & 0o777) == "0o700" and results.stat().st_uid == _uid(alice)

    again = alice.lab("start", "udp500-blocked")
    assert again.returncode != 0 and "is already running: (started" in again.stderr, again.stderr

    # a check whose client gives up (Ctrl-C, a timeout) does not take the lab down with it
    room = os.environ["LAB_ROOM"]
    gave_up = alice.run(sys.executable, "-c", "import socket; s = socket.socket(socket.AF_UNIX); "
                        f"s.connect('{room}/{alice.name}/control.sock'); s.sendall(b'{{\"cmd\": \"check\"}}\\n')")
    assert gave_up.returncode == 0, gave_up.stderr
    broken = alice.lab("check")
    assert broken.returncode == 1 and "FAIL tunnel gw1 hq/net established" in broken.stdout, broken.stdout

    assert "hint 1/3" in alice.lab("hint").stdout and "hint 2/3" in alice.lab("hint", "--lang", "en").stdout
    conf = alice.lab("shell", "gw1", "--", "sh", "-c", "echo $STRONGSWAN_CONF").stdout.strip()
    assert conf.endswith("/gw1/strongswan.conf"), conf
    assert alice.lab("shell", "gw1", "--", "swanctl", "--list-conns").stdout.count("hq:") == 1

    fixed = alice.lab("shell", "gw2", "--", "sh", "-c",
                      "sed -i s/lab-Branch-HQ-2025/lab-Branch-HQ-2026/ $SWANCTL_DIR/swanctl.conf && swanctl --load-all")
    assert fixed.returncode == 0 and "opening directory" not in fixed.stderr, fixed.stderr

    healthy = alice.lab("check")
    assert healthy.returncode == 0, healthy.stdout
    assert "healthy" in healthy.stdout and "FAIL" not in healthy.stdout

    status = alice.lab("status").stdout
    assert "running" in status and "psk-mismatch" not in status  # the trainee's view never names the fault
    assert alice.lab("stop").stdout.startswith("stopped your lab")
    assert "no workshop lab" in alice.lab("status").stdout


def test_commands_without_a_lab_say_so(workshop):
    alice = workshop[0]
    for args in (["check"], ["hint"], ["shell", "gw1"]):
        out = alice.lab(*args)
        assert out.returncode == 3 and "no workshop lab is running" in out.stderr, (args, out.stderr)
    assert alice.lab("stop").stdout.strip() == "no workshop lab is running"


def test_a_training_room_keeps_each_trainees_lab_apart(workshop, room, tmp_path):
    alice, bob = workshop
    assert alice.lab("start", "psk-mismatch").returncode == 0
    assert bob.lab("start", "id-mismatch").returncode == 0
    fixed = alice.lab("shell", "gw2", "--", "sh", "-c",
                      "sed -i s/lab-Branch-HQ-2025/lab-Branch-HQ-2026/ $SWANCTL_DIR/swanctl.conf && swanctl --load-all")
    assert fixed.returncode == 0
    assert alice.lab("check").returncode == 0  # hers is fixed
    assert bob.lab("check").returncode == 1  # bob's is untouched

    # the account decides whose lab a command acts on; naming another's is refused
    for args in (["stop", "--user", bob.name], ["check", "--user", bob.name], ["shell", "gw1", "--user", bob.name]):
        refused = alice.lab(*args)
        assert refused.returncode == 2 and "only root" in refused.stderr, (args, refused.stderr)
    assert alice.lab("status", "--all").returncode == 2

    # the trainer sees every lab, and can stop any
    listed = trainer("status", "--all", "--html", str(tmp_path / "room.html"))
    lines = {line.split()[0]: line for line in listed.stdout.splitlines() if line.split()}
    assert "psk-mismatch" in lines[alice.name] and "checks 1" in lines[alice.name] and "last: healthy" in lines[alice.name]
    assert "id-mismatch" in lines[bob.name] and "last: not healthy" in lines[bob.name]
    assert alice.name in (tmp_path / "room.html").read_text()
    assert trainer("check", "--user", bob.name).returncode == 1
    assert trainer("stop", "--user", bob.name).stdout.startswith(f"stopped id-mismatch of {bob.name}")
    assert alice.lab("stop").stdout.startswith("stopped your lab")
    assert oct(room.stat().st_mode & 0o7777) == "0o1733"


def test_the_trainer_starts_a_room_in_one_command(workshop):
    names = ",".join(a.name for a in workshop)
    started = trainer("start", "psk-mismatch", "--for", names, "--lang", "en")
    assert started.returncode == 0, started.stdout + started.stderr
    for account in workshop:
        assert f"{account.name}: started" in started.stdout
        assert "running" in account.lab("status").stdout  # the account's own lab
        assert account.lab("check").returncode == 1
    refused = workshop[0].lab("start", "psk-mismatch", "--for", workshop[1].name)
    assert refused.returncode == 2 and "only root" in refused.stderr


def test_a_fault_that_heals_itself_keeps_coming_back_until_fixed(workshop):
    """rekey-reauth-collision recovers after its first collision; in a workshop its trigger (the
    path's losses) is re-armed, and `lab check` re-arms it once more and judges only what
    happens from then on, so it fails until the fix holds, and passes once it does."""
    alice = workshop[0]
    started = alice.lab("start", "rekey-reauth-collision")
    assert started.returncode == 0, started.stdout + started.stderr
    assert "The fault comes back every 20 s" in started.stdout
    broken = alice.lab("check")
    assert broken.returncode == 1 and "FAIL no renewal runs into a rekeyed IKE_SA" in broken.stdout, broken.stdout
    assert "since this check began" not in broken.stdout.split("FAIL no renewal")[1].splitlines()[1]  # it saw one
    fixed = alice.lab("shell", "gw1", "--", "sh", "-c",
                      'sed -i -e "s/rekey_time = \\"0s\\"/rekey_time = \\"7s\\"/" -e "s/reauth_time = \\"7s\\"/reauth_time = \\"0s\\"/"'
                      ' $SWANCTL_DIR/swanctl.conf && swanctl --load-all && swanctl --terminate --ike hq')
    assert fixed.returncode == 0, fixed.stderr
    healthy = alice.lab("check")
    assert healthy.returncode == 0, healthy.stdout
    assert "no match in" in healthy.stdout and "since this check began" in healthy.stdout
    status = alice.lab("status").stdout
    assert "fault re-armed" in status and "last: healthy" in status


def test_a_cloud_that_outlives_its_phase_1_keeps_breaking_the_site_until_fixed(workshop):
    """ikev1-cloud-responder heals after its first outage, with the site as initiator from then
    on; the re-armed fault makes the site the responder again, so `lab check` still fails after
    the heal, and passes once the site drops the cloud's Main Mode openings and opens the tunnel."""
    alice = workshop[0]
    started = alice.lab("start", "ikev1-cloud-responder")
    assert started.returncode == 0, started.stdout + started.stderr
    assert "The fault comes back every 30 s" in started.stdout
    deadline = time.monotonic() + 30
    while "_i* " not in alice.lab("shell", "gw1", "--", "swanctl", "--list-sas").stdout:  # healed: gw1 initiator
        assert time.monotonic() < deadline, "the first outage did not heal within 30 s"
        time.sleep(0.5)
    broken = alice.lab("check")
    assert broken.returncode == 1 and "FAIL no outage across two of the site's renegotiations" in broken.stdout, \
        broken.stdout
    fixed = alice.lab("shell", "gw1", "--", "nft", "add table inet local_in; add chain inet local_in input { type filter "
                      "hook input priority filter; }; add rule inet local_in input ip saddr 198.51.100.2 udp dport 500 "
                      "@th,128,64 0 drop")
    assert fixed.returncode == 0, fixed.stderr
    # the trainee opens the tunnel from the site; whether this one attempt completes is not the
    # point: a re-arm landing mid-way (both ends terminate) fails it and charon tries again, and
    # `lab check` re-arms before it judges
    alice.lab("shell", "gw1", "--", "swanctl", "--initiate", "--child", "net")
    healthy = alice.lab("check")
    assert healthy.returncode == 0, healthy.stdout


def test_a_wan_failover_that_heals_keeps_coming_back_until_mobike(workshop):
    """wan-failover-no-mobike heals after DPD (the tunnel then runs over wan2); the re-armed
    failover puts it back on wan1 and fails wan1 again, so `lab check` fails until MOBIKE is on."""
    alice = workshop[0]
    started = alice.lab("start", "wan-failover-no-mobike")
    assert started.returncode == 0, started.stdout + started.stderr
    assert "The fault comes back every 30 s" in started.stdout
    broken = alice.lab("check")
    assert broken.returncode == 1 and "FAIL traffic goes on across wan1's failure" in broken.stdout, broken.stdout
    fixed = alice.lab("shell", "hq", "--", "sh", "-c",
                'sed -i "s/mobike = \\"no\\"/mobike = \\"yes\\"/" $SWANCTL_DIR/swanctl.conf && swanctl --load-all')
    assert fixed.returncode == 0, fixed.stderr
    healthy = alice.lab("check")  # re-arms (a new IKE_SA, now with MOBIKE) and fails wan1 again
    assert healthy.returncode == 0, healthy.stdout


def test_a_tunnel_that_cannot_come_back_fails_the_check_and_the_lab_stays(workshop):
    """pfs-mismatch-at-rekey: after the first rekeying the CHILD_SA cannot be built again; `lab
    check` retries the start steps on that lab (none of them may fail), reports it broken, and
    passes once both sides use the same PFS."""
    alice = workshop[0]
    started = alice.lab("start", "pfs-mismatch-at-rekey")
    assert started.returncode == 0, started.stdout + started.stderr
    deadline = time.monotonic() + 20
    while "net:" in alice.lab("shell", "gw1", "--", "swanctl", "--list-sas").stdout:  # until the CHILD_SA expired
        assert time.monotonic() < deadline, "the CHILD_SA did not expire"
        time.sleep(0.5)
    broken = alice.lab("check")
    assert broken.returncode == 1 and "FAIL the CHILD_SA is rekeyed" in broken.stdout, broken.stdout + broken.stderr
    fixed = alice.lab("shell", "gw2", "--", "sh", "-c", 'sed -i "s/esp_proposals = \\"aes256-sha256\\"/esp_proposals = '
                '\\"aes256-sha256-modp2048\\"/" $SWANCTL_DIR/swanctl.conf && swanctl --load-all')
    assert fixed.returncode == 0, fixed.stderr
    assert alice.lab("check").returncode == 0


def _uid(account) -> int:
    import pwd
    return pwd.getpwnam(account.name).pw_uid
