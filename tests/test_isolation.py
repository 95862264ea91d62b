"""No lab is host root, and no trainee reaches another's lab: what the kernel enforces once every lab
lives in a sandbox of its own (lab.sandbox), tried as a curious trainee and a hostile scenario would."""
import os
import pwd
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from lab import nftcheck
from tests import repo
from lab.checks.command import CommandCheck
from lab.errors import LabError
from lab.run.lab import RunningLab
from lab.run.worker import call
from lab.schema.load import load_scenario
from lab.steps.network import NftStep
from tests.leaks import charons_below

pytestmark = pytest.mark.lab
SECRET = "/etc/shadow"  # readable by root only on every Debian machine


@pytest.fixture
def two_labs(accounts, room, no_leaks):
    alice, bob = accounts
    for account in accounts:
        started = account.lab("start", "psk-mismatch", "--lang", "en")
        assert started.returncode == 0, started.stdout + started.stderr
    yield alice, bob
    for account in accounts:
        account.lab("stop")


def _supervisor(room: Path, account) -> int:
    import json
    return json.loads((room / account.name / "state.json").read_text())["pid"]


def test_a_trainee_cannot_reach_another_trainees_lab_or_the_host(two_labs, room):
    alice, bob = two_labs
    in_node = lambda *cmd: alice.lab("shell", "gw1", "--", *cmd)  # noqa: E731
    bob_conf = bob.home / "results" / "workshop" / "lab" / "gw1" / "swanctl" / "swanctl.conf"
    assert bob_conf.is_file()  # it is there: what follows is refused, not missing

    # files: another trainee's configuration, a root-only host file, the host's folders
    for path in (str(bob_conf), SECRET):
        read = in_node("cat", path)
        assert read.returncode != 0 and "Permission denied" in read.stderr, (path, read.stdout, read.stderr)
    for path in ("/etc/x", os.path.join(pwd.getpwuid(0).pw_dir, "x"), "/usr/x"):  # root's home, wherever it is
        wrote = in_node("sh", "-c", f"echo x > {path}")
        assert wrote.returncode != 0 and not Path(path).exists(), (path, wrote.stderr)
    # a node's /tmp is the lab's own, never the host's
    marker = f"/tmp/ipsec-lab-isolation-{os.getpid()}"
    assert in_node("sh", "-c", f"echo x > {marker}").returncode == 0 and not Path(marker).exists()
    # the node runs as root of the lab only: root inside, alice outside
    assert in_node("id", "-u").stdout.strip() == "0"

    # processes: bob's charon is invisible from alice's lab, and cannot be signalled from her account
    bob_charons = charons_below(_supervisor(room, bob))
    assert len(bob_charons) == 2
    assert all(pwd.getpwuid(os.stat(f"/proc/{pid}").st_uid).pw_name == bob.name for pid in bob_charons)
    listed = in_node("ps", "-e", "-o", "comm=").stdout.split()
    assert listed.count("charon") == 2  # alice's own two, not bob's
    for pid in bob_charons:
        from_node = in_node("kill", "-0", str(pid))
        assert from_node.returncode != 0
        from_account = alice.run("/bin/kill", "-0", str(pid))
        assert from_account.returncode != 0 and "not permitted" in from_account.stderr, from_account.stderr

    # bob's sandbox cannot be entered, nor his supervisor's socket reached
    enter = alice.run("/usr/bin/nsenter", f"--target={_supervisor(room, bob)}", "--user", "--net", "--", "true")
    assert enter.returncode != 0 and ("Permission denied" in enter.stderr or "not permitted" in enter.stderr), \
        enter.stderr
    connect = alice.run(sys.executable, "-c", "import socket,sys; s=socket.socket(socket.AF_UNIX); "
                        f"s.connect({str(room / bob.name / 'control.sock')!r})")
    assert connect.returncode != 0 and "Permission denied" in connect.stderr, connect.stderr
    for args in (["stop", "--user", bob.name], ["check", "--user", bob.name]):
        assert alice.lab(*args).returncode == 2
    assert "running" in bob.lab("status").stdout  # untouched by all of the above


def test_an_ordinary_account_runs_a_scenario_and_nothing_runs_as_root(accounts, no_leaks):
    alice = accounts[0]
    run = alice.start_lab("run", "psk-mismatch", "--out", "results")
    owners: set[str] = set()
    while run.poll() is None:
        owners |= {pwd.getpwuid(os.stat(f"/proc/{pid}").st_uid).pw_name for pid in charons_below(run.pid)
                   if os.path.exists(f"/proc/{pid}")}
        time.sleep(0.05)
    out = run.stdout.read()
    assert run.returncode == 0, out
    assert owners == {alice.name}, owners
    result = alice.home / "results" / "psk-mismatch" / "result.json"
    assert result.is_file() and os.stat(result).st_uid == pwd.getpwnam(alice.name).pw_uid


def test_labs_started_by_root_run_as_the_lab_account(lab_dir, no_leaks):
    run = subprocess.Popen([sys.executable, "-m", "lab", "run", "psk-mismatch", "--out", str(lab_dir), "-q"],
                           cwd=repo.ROOT)
    owners: set[str] = set()
    while run.poll() is None:
        owners |= {pwd.getpwuid(os.stat(f"/proc/{pid}").st_uid).pw_name for pid in charons_below(run.pid)
                   if os.path.exists(f"/proc/{pid}")}
        time.sleep(0.05)
    assert run.returncode == 0
    assert owners == {"ipsec-lab"}, owners
    assert os.stat(lab_dir / "psk-mismatch" / "result.json").st_uid == 0  # root's results are root's


def test_a_hostile_scenario_that_slipped_past_validation_still_reads_no_host_secret(lab_dir, no_leaks):
    """Validation refuses these; built here without it, on purpose: the sandbox refuses them again."""
    sc = load_scenario("psk-mismatch")
    reads = [CommandCheck.model_construct(kind="command", node="gw1", argv=["nft", "-f", SECRET], pattern=".",
                                          expect="present", min_count=1, max_count=None, exit=None, within=0.5,
                                          interval=0.1, name="reads a host secret", context=False)]
    include = NftStep.model_construct(kind="nft", node="gw1", ruleset=f'include "{SECRET}"\n')
    observed = call(_hostile, sc, lab_dir, reads[0], include, writable=(lab_dir,))
    assert "Permission denied" in observed["command"], observed
    assert "Permission denied" in observed["nft"], observed
    # `lab validate`'s own nft check runs in the same kind of sandbox
    complaints = nftcheck.check({"gw1": (["wan"], [nftcheck.Ruleset("x", f'include "{SECRET}"\n')])})
    assert "Permission denied" in complaints["x"], complaints


def _hostile(sc, folder, check, step) -> dict:
    with RunningLab(sc, folder, "hostile") as lab:
        command = lab.exec(check.node, check.argv, check=False)
        try:
            step.apply(lab)
            nft = "applied"
        except LabError as exc:
            nft = str(exc)
    return {"command": command.stdout + command.stderr, "nft": nft}


def test_no_lab_is_built_outside_a_sandbox(tmp_path):
    """Not even by a caller that forgot one: it would be host root, its runtime folder in the host's /tmp."""
    with pytest.raises(LabError, match="only inside a sandbox"):
        RunningLab(load_scenario("psk-mismatch"), tmp_path, "nosandbox")
    assert not list(Path(tempfile.gettempdir()).glob("ipsec-lab-nosandbox-*"))
