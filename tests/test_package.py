"""The package as a user gets it, the way CI makes it: `python -m build` (an sdist, then the wheel
built from that sdist), a fresh venv (with Debian's site packages, for Mininet, as the Makefile
makes one), `pip install` of the wheel, and the commands run from an empty folder, far from any
checkout."""
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from lab import __version__
from tests import repo
from tests.field_data import FIELD, NEEDED


def _sources(into: Path) -> Path:
    """The files of this checkout a clone would have (tracked, and new ones not ignored), copied."""
    if (repo.ROOT / ".git").exists():
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=repo.ROOT, capture_output=True, check=True).stdout.decode().split("\0")
        for name in filter(None, listed):
            source = repo.ROOT / name
            if source.is_file() or source.is_symlink():
                (into / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, into / name, follow_symlinks=False)
    else:  # an unpacked sdist
        shutil.copytree(repo.ROOT, into, symlinks=True, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".venv", "results", "bench", "build", "dist", "*.egg-info"))
    return into


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the wheel, the venv's `lab`, an empty folder to run it from)."""
    top = tmp_path_factory.mktemp("package")
    source = _sources(top / "clone")
    built = subprocess.run([sys.executable, "-m", "build", "--outdir", str(top / "dist"), str(source)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    [wheel] = (top / "dist").glob("ipsec_lab-*.whl")
    python = Path(sys.base_prefix) / "bin" / "python3"  # the system's, as the Makefile makes its venv
    subprocess.run([str(python), "-m", "venv", "--system-site-packages", str(top / "venv")], check=True, timeout=120)
    pip = subprocess.run([str(top / "venv" / "bin" / "python"), "-m", "pip", "install", "-q",
                          "--disable-pip-version-check", str(wheel)], capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-3000:]
    (top / "empty").mkdir()
    return wheel, top / "venv" / "bin" / "lab", top / "empty"


def _lab(installed, *args: str, **kwargs) -> subprocess.CompletedProcess:
    _, lab, empty = installed
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LAB_PATH", "VIRTUAL_ENV")}
    return subprocess.run([str(lab), *args], cwd=empty, capture_output=True, text=True, timeout=300, env=env, **kwargs)


def test_the_wheel_carries_everything_the_lab_reads(installed):
    names = set(zipfile.ZipFile(installed[0]).namelist())
    for folder, expected in ((repo.SCENARIOS, "lab/scenarios"), (repo.TOPOLOGIES, "lab/topologies")):
        assert {f"{expected}/{p.name}" for p in folder.glob("*.yaml")} <= names
    for data in ("lab/diagnose/catalogue.yaml", "lab/schema/data/proposal_keywords.txt",
                 "lab/schema/data/notify_types.txt", "lab/strongswan/templates/swanctl.conf.j2",
                 "lab/report/templates/report.html.j2", "lab/floor/floor.yaml",
                 "lab/serve/templates/trainee.html.j2", "lab/serve/static/page.js", "lab/serve/vendor/xterm.js",
                 "lab/serve/vendor/LICENSE.xterm"):
        assert data in names, data
    meta = zipfile.ZipFile(installed[0]).read(next(n for n in names if n.endswith("dist-info/METADATA"))).decode()
    assert f"Version: {__version__}" in meta and "License-Expression: MIT" in meta
    assert any(n.endswith("dist-info/licenses/LICENSE") for n in names)


def test_every_package_of_the_source_is_listed():
    """pyproject.toml names its packages (two are folders mapped into lab): none is left out."""
    config = tomllib.loads((repo.ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.relative_to(repo.ROOT).parts) for p in [repo.ROOT / "lab", *(repo.ROOT / "lab").rglob("*")]
             if p.is_dir() and p.name != "__pycache__" and any(p.iterdir())}
    mapped = {name for name in config["package-dir"]}
    assert set(config["packages"]) == found | mapped
    assert {config["package-dir"][m] for m in mapped} == {"scenarios", "topologies"}


def test_the_installed_commands_from_an_empty_folder(installed):
    version = _lab(installed, "--version")
    assert (version.returncode, version.stdout.strip()) == (0, f"ipsec-lab {__version__}")
    listed = _lab(installed, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    doc = json.loads(listed.stdout)
    assert doc["schema_version"] == 1 and doc["exit_code"] == 0
    assert {s["name"] for s in doc["scenarios"]} == {p.stem for p in repo.SCENARIOS.glob("*.yaml")}
    assert all(s["valid"] and s["origin"] == "catalogue" and "site-packages" in s["path"] for s in doc["scenarios"])
    valid = _lab(installed, "validate", "--all", "--strict")
    assert valid.returncode == 0, valid.stdout[-2000:] + valid.stderr[-2000:]


@NEEDED
def test_the_installed_diagnose_reads_a_shipped_capture(installed):
    found = _lab(installed, "diagnose", "--json", str(FIELD / "captures" / "tcpdump__ikev2four.pcap"))
    doc = json.loads(found.stdout)
    assert (found.returncode, doc["exit_code"], doc["diagnoses"][0]["verdict"]) == (0, 0, "healthy")
    assert doc["diagnoses"][0]["evidence"]  # the catalogue was read: a verdict with its evidence


@pytest.mark.lab
def test_the_installed_lab_runs_a_scenario(installed):
    """As root this runs in a sandbox as ipsec-lab, which cannot read pytest's folders (mode 0700):
    the sandbox binds the venv in (lab.sandbox.python_paths)."""
    run = _lab(installed, "run", "psk-mismatch")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = installed[2] / "results" / "psk-mismatch" / "report.html"
    assert report.is_file() and run.stdout.rstrip().endswith(f"report: {os.path.relpath(report, installed[2])}")
