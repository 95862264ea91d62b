"""What a script sees: one table of exit codes (lab.exitcodes, the README's table), each command run
into each code it can end with; one JSON document per `--json` command, with its schema's version."""
import fcntl
import json
import os
import re
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from lab.exitcodes import ExitCode
from tests import repo
from tests.field_data import FIELD, NEEDED
from tests.login import as_from_a_terminal

LAB = [sys.executable, "-m", "lab"]
CAPTURES = FIELD / "captures"


def lab(*args: str, cwd: Path = repo.ROOT, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*LAB, *args], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env={**os.environ, **(env or {})}, **kwargs)


def document(out: subprocess.CompletedProcess, command: str) -> dict:
    """The one JSON document a --json command prints, checked against its exit code."""
    doc = json.loads(out.stdout)
    assert (doc["command"], doc["schema_version"], doc["exit_code"]) == (command, 1, out.returncode), doc
    return doc


def test_the_readme_shows_the_table_of_the_code():
    text = (repo.ROOT / "README.md").read_text()
    section = text.split("### Exit codes", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| \*\*(\d+)\*\* \| (.+?) \|$", section, re.M)
    assert [(int(code), meaning) for code, meaning in rows] == [(int(c), c.meaning) for c in ExitCode]


# -- command by command: the codes each ends with, without building a lab --------------------------

def _bad_scenario(tmp_path: Path) -> Path:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "broken.yaml").write_text("name: broken\ntopology: site-to-site\n")
    return folder


# (command, code, argv); run's 0, 1, 3 and 130 build labs: tests/test_cli.py (test_symptom_not_observed_exits_1,
# test_failing_step_exits_3_and_tears_down, test_interrupt_tears_down) and test_run_json_of_two_scenarios below;
# a workshop lab's 0, 1 and 2: test_a_workshop_lab_through_scripts below.
CASES = [
    ("list", 0, ["list"]),
    ("list", 2, ["list", "--path", "{tmp}/no-such-folder"]),
    ("list", 2, ["list", "--path", "{bad}"]),  # a scenario of yours that is not valid, named
    ("validate", 0, ["validate", "psk-mismatch", str(repo.TOPOLOGIES / "site-to-site.yaml")]),
    ("validate", 2, ["validate", "no-such-scenario"]),
    ("validate", 2, ["validate"]),
    ("run", 2, ["run", "no-such-scenario"]),
    ("run", 2, ["run"]),
    ("run", 2, ["run", "psk-mismatch", "--param", "x"]),
    ("bench", 2, ["bench", "no-such-scenario"]),
    ("soak", 2, ["soak", "no-such-scenario"]),
    ("start", 2, ["start", "no-such-scenario"]),
    ("diagnose", 0, ["diagnose", str(CAPTURES / "tcpdump__ikev2four.pcap")]),
    ("diagnose", 1, ["diagnose", str(CAPTURES / "openswan__lp08-parentR1__parentR1notify.pcap")]),
    ("diagnose", 4, ["diagnose", str(CAPTURES / "tcpdump__espudp1.pcap")]),
    ("diagnose", 2, ["diagnose", "{tmp}/no-such-file.pcap"]),
    ("diagnose", 2, ["diagnose", "--lang", "fr", str(CAPTURES / "tcpdump__ikev2four.pcap")]),
    ("merge", 2, ["merge", "{tmp}/no-such-folder"]),
    pytest.param("doctor", 0, ["doctor"], marks=pytest.mark.lab),  # 3 on a machine that cannot run labs
    ("clean", 0, ["clean", "--dry-run"]),
    ("status", 0, ["status"]),
    ("status", 2, ["status", "--user", "no-such-account"]),
    ("stop", 0, ["stop"]),  # nothing to stop is not an error
    ("stop", 2, ["stop", "--user", "no-such-account"]),
    ("check", 3, ["check"]),  # no lab running
    ("check", 2, ["check", "--user", "no-such-account"]),
    ("hint", 3, ["hint"]),
    ("shell", 3, ["shell", "gw1"]),
    ("diagnose", 3, ["diagnose", "--live"]),
    ("capture", 2, ["capture", "gw1"]),
    ("capture", 3, ["capture", "gw1:wan"]),
    ("serve", 2, ["serve", "--listen", "no-such-address"]),
]


@NEEDED
@pytest.mark.parametrize("command, code, args", CASES)
def test_each_command_ends_with_its_code(command, code, args, tmp_path, room):
    bad = _bad_scenario(tmp_path)
    argv = [a.format(tmp=tmp_path, bad=bad) for a in args]
    out = lab(*argv, env={"LAB_ROOM": str(room)})
    assert out.returncode == code, (argv, out.stdout[-1500:], out.stderr[-1500:])
    assert "Traceback" not in out.stderr
    if code == ExitCode.BAD_INPUT:
        assert out.stderr.strip(), argv  # says what was wrong


def test_every_command_is_in_the_table_above():
    from lab.cli import app

    tested = {case.values[0] if hasattr(case, "values") else case[0] for case in CASES}
    assert {c.name or c.callback.__name__ for c in app.registered_commands} <= tested


def _unread(pipe) -> int:
    """Bytes in a pipe that its reader has not taken yet (FIONREAD answers on either end)."""
    return struct.unpack("i", fcntl.ioctl(pipe.fileno(), termios.FIONREAD, b"\0" * 4))[0]


def test_an_interrupted_command_exits_130():
    """Ctrl-C in any command: here lab diagnose, waiting on standard input."""
    proc = subprocess.Popen([*LAB, "diagnose", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=repo.ROOT, start_new_session=True,
                            preexec_fn=as_from_a_terminal)
    # Signalled once it reads (what it was given is gone from the pipe): a signal while Python
    # starts would not be the command's Ctrl-C.
    proc.stdin.write(b"2026-12-06 ")
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while _unread(proc.stdin):
        assert time.monotonic() < deadline and proc.poll() is None, "lab diagnose - never read its input"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == ExitCode.INTERRUPTED, err


# -- one JSON document per --json command --------------------------------------------------------

def test_list_json(tmp_path):
    out = lab("list", "--json", "--path", str(_bad_scenario(tmp_path)))
    doc = document(out, "list")
    names = {s["name"]: s for s in doc["scenarios"]}
    assert set(names) == {p.stem for p in repo.SCENARIOS.glob("*.yaml")} | {"broken"}
    assert names["broken"]["origin"] == "user" and not names["broken"]["valid"] and names["broken"]["problems"]
    psk = names["psk-mismatch"]
    assert psk["valid"] and psk["title"]["zh"] and psk["diagnosis"] == {"step": 3, "class": "psk-mismatch"}
    assert psk["phases"] == ["baseline", "fault", "fix"]


def test_validate_json(tmp_path):
    doc = document(lab("validate", "--json", "--strict", "psk-mismatch", "no-such-scenario"), "validate")
    ok, missing = doc["files"]
    assert ok["ok"] and not missing["ok"] and "no scenario 'no-such-scenario'" in missing["problems"][0]["message"]
    assert doc["strict"] is True


@NEEDED
@pytest.mark.parametrize("lang", ["en", "zh", "both"])
def test_diagnose_json_in_each_language(lang):
    doc = document(lab("diagnose", "--json", "--lang", lang, str(CAPTURES / "openswan__lp08-parentR1__parentR1notify.pcap")),
                   "diagnose")
    [found] = doc["diagnoses"]
    assert found["class"] == "invalid-ke" and doc["lang"] == lang
    title = found["title"]
    if lang == "both":
        assert set(title) == {"en", "zh"}
    else:
        assert isinstance(title, str) and bool(re.search(r"[\u4e00-\u9fff]", title)) == (lang == "zh")


def test_status_json(room):
    doc = document(lab("status", "--all", "--json", "--html", str(room / "status.html"), env={"LAB_ROOM": str(room)}),
                   "status")
    assert doc["labs"] == [] and Path(doc["page"]).is_file()


def test_bad_input_is_a_json_document_too():
    doc = document(lab("run", "--json", "no-such-scenario"), "run")
    assert doc["exit_code"] == 2 and "no scenario 'no-such-scenario'" in doc["problems"][0]["message"]


@pytest.mark.lab
def test_run_json_of_two_scenarios(tmp_path, no_leaks):
    """`lab run psk-mismatch id-mismatch --json`: one document, progress on stderr."""
    out = lab("run", "psk-mismatch", "id-mismatch", "--json", "--out", str(tmp_path))
    doc = document(out, "run")
    assert doc["passed"] and [s["scenario"] for s in doc["scenarios"]] == ["psk-mismatch", "id-mismatch"]
    psk = doc["scenarios"][0]
    assert Path(psk["report"]).is_file() and Path(psk["result"]).is_file()
    assert [p["name"] for p in psk["phases"]] == ["baseline", "fault", "fix"]
    assert psk["phases"][1]["diagnosis"]["class"] == "psk-mismatch" and not psk["phases"][1]["checks_failed"]
    assert "PASS" in out.stderr and "report:" in out.stderr  # what people read went to stderr


@pytest.mark.lab
def test_a_workshop_lab_through_scripts(room, no_leaks):
    """A lab asked for a node or a hint it does not have: bad input (2); check and status as JSON."""
    env = {"LAB_ROOM": str(room)}
    try:
        assert lab("start", "psk-mismatch", "--out", str(room / "out"), env=env).returncode == 0
        for args, code in ((["hint", "9"], 2), (["hint", "0"], 2), (["shell", "gw9", "--", "true"], 2),
                           (["hint"], 0), (["shell", "gw1", "--", "true"], 0)):
            out = lab(*args, env=env)
            assert out.returncode == code, (args, out.stdout, out.stderr)
        check = document(lab("check", "--json", env=env), "check")
        # the trainee's view: the checks, never the scenario's name (it names the fault)
        assert "scenario" not in check and check["passed"] is False and check["exit_code"] == 1
        status = document(lab("status", "--json", env=env), "status")
        assert [r["scenario"] for r in status["labs"]] == ["psk-mismatch"] and status["labs"][0]["alive"]
    finally:
        assert lab("stop", env=env).returncode == 0


@pytest.mark.lab
def test_bench_measures_what_it_is_given_and_stops_on_sigterm(tmp_path, no_leaks):
    out = tmp_path / "bench.json"
    done = lab("bench", "psk-mismatch", "--repeat", "1", "-j", "2", "--out", str(out))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert [s["scenario"] for s in doc["scenarios"]] == ["psk-mismatch"] and doc["scenarios_given"] == ["psk-mismatch"]
    assert set(doc["catalogue_s"]) == {"jobs=1", "jobs=2"} and "spokes" not in doc and "training_room" not in doc
    # SIGTERM while it measures: every lab torn down (no_leaks), the figures so far written, 130
    out.unlink()
    proc = subprocess.Popen([*LAB, "bench", "psk-mismatch", "--repeat", "1", "--out", str(out)], cwd=repo.ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not out.exists() and time.monotonic() < deadline:  # the floor measured: labs are being run now
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == ExitCode.INTERRUPTED, err[-2000:]
    partial = json.loads(out.read_text())
    assert partial["interrupted"] is True and "median_s" in partial["floor"]
