"""Every YAML block of README.md is checked: the worked example validates and runs as written, the
excerpt of a scenario is that scenario's, the reference lists the keys a scenario has, and the CI
jobs call `lab` with options it has."""
import re
import shlex
import subprocess
import sys

import pytest
import yaml

from lab.schema.load import load_scenario
from lab.schema.scenario import Scenario
from tests import repo

TEXT = (repo.ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```yaml\n(.*?)```", TEXT, re.S)


def _block(first_key: str) -> str:
    [found] = [b for b in BLOCKS if yaml.safe_load(b) and next(iter(yaml.safe_load(b))) == first_key
               and (first_key != "name" or "natt-blocked" in b)]
    return found


def test_every_yaml_block_is_one_of_those_checked_here():
    kinds = [next(iter(yaml.safe_load(b))) for b in BLOCKS]
    assert sorted(kinds) == sorted(["jobs", "lab", "name", "name", "setup"]), kinds


def _worked_example(tmp_path):
    folder = tmp_path / "my-cases"
    folder.mkdir()
    path = folder / "natt-blocked.yaml"
    path.write_text(_block("name"))
    return folder, path


def test_the_worked_example_validates_as_written(tmp_path):
    folder, path = _worked_example(tmp_path)
    out = subprocess.run([sys.executable, "-m", "lab", "validate", str(path)], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == f"{path}: ok", out.stdout + out.stderr
    sc = load_scenario(path)
    assert sc.spec.source.ticket and sc.spec.diagnosis is None
    strict = subprocess.run([sys.executable, "-m", "lab", "validate", "--strict", str(path)], capture_output=True,
                            text=True, cwd=tmp_path)
    assert strict.returncode == 2 and "diagnosis: required with --strict" in strict.stderr  # as the README says


@pytest.mark.lab
def test_the_worked_example_runs_as_written(tmp_path, no_leaks):
    """`lab run natt-blocked --path my-cases`, as the README says, from the folder above my-cases."""
    folder, _ = _worked_example(tmp_path)
    out = subprocess.run([sys.executable, "-m", "lab", "run", "natt-blocked", "--path", "my-cases"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    said = re.search(r"^natt-blocked declares no diagnosis\. .*$", out.stdout, re.M).group()
    assert said in TEXT  # the line the README shows is the line the run prints
    assert "report: results/natt-blocked/report.html" in out.stdout


def test_the_scenario_excerpt_is_the_scenarios_own():
    """The blackhole-missing excerpt: each item it shows is in the scenario file, under the same key."""
    excerpt = yaml.safe_load(_block("setup"))
    own = yaml.safe_load((repo.SCENARIOS / "blackhole-missing.yaml").read_text())
    assert all(item in own["setup"] for item in excerpt["setup"])
    assert all(item in own["fault"]["steps"] for item in excerpt["fault"]["steps"])
    assert all(item in own["symptoms"] for item in excerpt["symptoms"])


def test_the_reference_names_every_key_a_scenario_has():
    reference = yaml.safe_load(next(b for b in BLOCKS if b.startswith("name: my-case")))
    assert set(reference) == set(Scenario.model_fields) | {"extends"}
    # its concrete parts are valid as they are written
    from lab.schema.pki import Pki
    from lab.schema.scenario import CapturePoint
    from lab.schema.topology import References

    Pki.model_validate(reference["pki"])
    References.model_validate({"params": reference["params"], "timers": reference["timers"]})
    [CapturePoint.model_validate(c) for c in reference["captures"]]


def _lab_commands(block: str) -> list[list[str]]:
    """Every `.venv/bin/lab ...` line of a CI job, its CI variables given sample values."""
    found = []
    for line in re.findall(r"\.venv/bin/lab (.+)", block):
        line = re.sub(r"\$\{\{ matrix\.shard \}\}|\$\{CI_NODE_INDEX\}", "1", line)
        found.append(shlex.split(line.replace("${CI_NODE_TOTAL}", "4")))
    return found


@pytest.mark.parametrize("first_key", ["jobs", "lab"])
def test_the_ci_jobs_call_lab_with_options_it_has(first_key):
    import typer

    from lab.cli import app

    commands = _lab_commands(_block(first_key))
    assert commands
    group = typer.main.get_command(app)
    for name, *rest in commands:
        group.commands[name].make_context(name, rest)  # raises on an option lab does not have
