"""No untrusted text acts on a terminal, a JUnit reader or a browser: escape sequences through every
path (scenario text, check names, file names on the command line, --param values) reach no
stdout or stderr raw, rich markup in data prints as written, JUnit XML always parses, and the
HTML report escapes what it shows."""
import io
import json
import os
import subprocess
import sys
import xml.dom.minidom
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests import repo
from lab.checks import CheckResult
from lab.progress import Progress, Terminal

LAB = [sys.executable, "-m", "lab"]
ESC = "\x1b"
# an OSC 52 clipboard write, a window title, a screen clear, a carriage return painting over a line
SEQUENCES = "\x1b]52;c;SGVsbG8=\x07\x1b]0;pwned\x07\x1b[2J\rHEALTHY"
MARKUP = "[link=http://evil.example]docs[/link] [/bold] [red]x :warning:"


def lab(*args: str, cwd: Path = repo.ROOT) -> subprocess.CompletedProcess:
    """A lab command, its output as bytes: what a terminal would be given."""
    return subprocess.run([*LAB, *args], capture_output=True, cwd=cwd, timeout=300,
                          env={**os.environ, "COLUMNS": "200", "PYTHONPATH": str(repo.ROOT)})


def no_escape(proc: subprocess.CompletedProcess) -> str:
    assert b"\x1b" not in proc.stdout and b"\x1b" not in proc.stderr, (proc.stdout, proc.stderr)
    assert b"Traceback" not in proc.stderr, proc.stderr
    return (proc.stdout + proc.stderr).decode()


def hostile_folder(tmp_path: Path) -> Path:
    folder = tmp_path / f"d{SEQUENCES}"
    folder.mkdir()
    return folder


def _scenario(title: str = "ok", check_name: str = "ok", hint: str = "ok") -> str:
    """psk-mismatch with these texts (as YAML double-quoted strings: a control character is
    written as an escape, "\\u001b") and a symptom that is never observed."""
    title, check_name, hint = json.dumps(title), json.dumps(check_name), json.dumps(hint)
    return (f"extends: psk-mismatch\nname: hostile-terminal\ntitle: {{en: {title}, zh: {title}}}\n"
            f"symptoms+:\n  - {{kind: log, node: gw1, name: {check_name}, pattern: never-logged, within: 0.2}}\n"
            f"hints: [{{en: {hint}, zh: x}}]\n")


# -- the terminal itself -----------------------------------------------------------------------

def test_a_terminal_console_never_reads_data_as_markup_or_lets_a_control_through():
    buffer = io.StringIO()
    console = Terminal(file=buffer, color_system=None)
    console.print(f"{MARKUP} {SEQUENCES}")
    console.print(f"{MARKUP}", markup=True)  # not even when asked
    console.render_str("live line [/bold]\x1b[31m")  # what a live status line is rendered with
    out = buffer.getvalue()
    assert ESC not in out and "\r" not in out
    assert out.count("[link=http://evil.example]docs[/link] [/bold]") == 2 and ":warning:" in out


def test_titles_and_check_names_print_as_written():
    buffer = io.StringIO()
    progress = Progress(Terminal(file=buffer, color_system=None))
    progress.scenario("s", MARKUP)
    progress.phase("fault", MARKUP)
    progress.step(f"fault: {MARKUP}{SEQUENCES}")
    progress.check(CheckResult(name=MARKUP + SEQUENCES, kind="log", expect=MARKUP, passed=False,
                               observed=SEQUENCES, duration_s=0.1, mode="eventually", linux=SEQUENCES))
    progress.phase_done("fault", False, 1.0, f"charon died:\n{SEQUENCES}\nPASSED")
    progress.verdict("s", False, 1.0, Path(f"/tmp/{SEQUENCES}"))
    out = buffer.getvalue()
    assert ESC not in out and "\r" not in out and out.count(MARKUP) >= 3
    assert "\nPASSED" not in out  # an error's lines are indented under its phase, never a line of their own


# -- JUnit ---------------------------------------------------------------------------------------

def test_junit_parses_whatever_the_text_holds(tmp_path):
    from lab import junit

    every = "".join(map(chr, range(0x20))) + "".join(map(chr, range(0x7f, 0xa0))) + "\u202e\u2028\ufffe\uffff\ud800"
    every += "<>&\"']]>"
    check = {"name": f"check {every}", "expect": every, "mode": "eventually", "passed": False, "observed": every}
    docs = [{"scenario": "s", "duration_s": 1.0, "phases": [
        {"name": "fault", "passed": False, "duration_s": 1.0, "checks": [check]},
        {"name": "fix", "passed": False, "duration_s": 1.0, "error": f"error {every}", "checks": [check]}]}]
    path = tmp_path / "junit.xml"
    junit.write(docs, path)
    root = ET.parse(path).getroot()  # expat: well-formed XML 1.0
    xml.dom.minidom.parse(str(path))
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None and "\\x1b" in failure.get("message") and "<>&" in failure.get("message")
    assert root.find("testsuite/testcase/error") is not None


# -- the lab command, end to end -----------------------------------------------------------------

def test_validate_shows_file_names_and_problems_without_escapes(tmp_path):
    folder = hostile_folder(tmp_path)
    (folder / f"s{SEQUENCES}.yaml").write_text(_scenario(title=MARKUP))
    (folder / "bad.yaml").write_text(_scenario(check_name=SEQUENCES, hint="\x1b[2J"))
    proc = lab("validate", str(folder / f"s{SEQUENCES}.yaml"), str(folder / "bad.yaml"),
               str(folder / f"missing{SEQUENCES}.yaml"), f"no-such-{SEQUENCES}")
    out = no_escape(proc)
    assert proc.returncode == 2 and "control character U+001B written as an escape" in out
    assert "\\x1b]0;pwned\\x07" in out  # the file names, written out


def test_list_shows_names_and_problems_without_escapes(tmp_path, monkeypatch):
    from lab.cli import app

    (tmp_path / "psk-mismatch.yaml").write_text((repo.SCENARIOS / "psk-mismatch.yaml").read_text())
    (tmp_path / "hostile-terminal.yaml").write_text(_scenario(title=MARKUP))
    (tmp_path / f"x{SEQUENCES}.yaml").write_text(_scenario(title=MARKUP))
    result = CliRunner().invoke(app, ["list", "--path", str(tmp_path)])
    assert ESC not in result.output and "\r" not in result.output, result.output
    assert f"hostile-terminal\t{MARKUP} / {MARKUP}" in result.output  # the title as written
    assert result.exit_code == 2 and "x\\x1b]52" in result.output and "INVALID" in result.output


def test_params_and_account_names_from_the_command_line_are_written_out():
    proc = lab("run", "tcp-asym", "--param", f"port={SEQUENCES}")
    assert proc.returncode == 2 and "--param port=\\x1b]52" in no_escape(proc)
    proc = lab("run", "tcp-asym", "--param", f"x{SEQUENCES}=1")
    assert proc.returncode == 2 and "no such parameter" in no_escape(proc)
    proc = lab("hint", "--user", f"t{SEQUENCES}")
    assert proc.returncode == 2 and "\\x1b]52" in no_escape(proc)
    proc = lab("hint", "--user", "nobody-runs-this-lab")
    no_escape(proc)


@pytest.mark.lab
def test_a_hostile_run_reaches_no_terminal_junit_or_report_raw(tmp_path, no_leaks):
    """A quick scenario kept in a folder whose name holds escape sequences, markup in its title and
    check names, HTML in its hint, results in a folder named like it: every line of the run is
    plain text, the JUnit XML parses, the report shows the markup as text."""
    folder = hostile_folder(tmp_path)
    html_bait = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    scenario = folder / "s.yaml"
    scenario.write_text(_scenario(title=MARKUP, check_name=f"{MARKUP} {html_bait}", hint=html_bait))
    out_dir, junit = folder / f"out{SEQUENCES}", folder / "junit.xml"
    proc = lab("run", str(scenario), "--out", str(out_dir), "--junit", str(junit))
    out = no_escape(proc)
    assert proc.returncode == 1, out  # the symptom that is never logged fails the fault phase
    assert MARKUP in out and "MarkupError" not in out
    failure = ET.parse(junit).getroot().find("testsuite/testcase/failure")
    assert failure is not None and MARKUP in failure.get("message")
    report = (out_dir / "hostile-terminal" / "report.html").read_text()
    assert html_bait not in report and "&lt;script&gt;alert(1)&lt;/script&gt;" in report
