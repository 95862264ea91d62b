"""Install truth: every program and plugin the lab uses comes from a Debian package that the
Makefile installs. Proved from this machine's dpkg database, so a package that was only ever
installed by hand (and keeps CI green here) fails this test."""
import functools
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lab import preflight
from tests import repo
from lab.schema.load import load_scenario
from lab.strongswan import render, settings

pytestmark = pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs Debian's dpkg")


def makefile_lists() -> set[str]:
    """The packages of the Makefile's APT lists (continuation lines joined)."""
    text = (repo.ROOT / "Makefile").read_text().replace("\\\n", " ")
    found = re.findall(r"^(?:TEST_)?APT_PACKAGES\s*:=\s*(.*)$", text, re.M)
    assert len(found) == 2, "the Makefile's two package lists moved"
    return {p for line in found for p in line.split()}


@functools.cache
def _owner(path: str) -> str | None:
    """The package that ships `path`; Debian's merged /usr ships /usr/sbin/ip as /bin/ip."""
    variants = [path, re.sub(r"^/usr", "", path)]
    variants += [v.replace("/sbin/", "/bin/") for v in variants] + [v.replace("/bin/", "/sbin/") for v in variants]
    for candidate in dict.fromkeys(variants):
        out = subprocess.run(["dpkg-query", "-S", candidate], capture_output=True, text=True)
        if out.returncode == 0:
            return out.stdout.split(":")[0].split(",")[0].strip()
    return None


@functools.cache
def _dpkg() -> dict[str, tuple[bool, set[str]]]:
    """Every installed package: (essential, what it depends on), from one dpkg-query."""
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Status}\t${Essential}\t"
                          "${Depends}, ${Pre-Depends}\n"], capture_output=True, text=True, check=True).stdout
    packages = {}
    for line in out.splitlines():
        name, status, essential, depends = line.split("\t")
        if status != "installed":
            continue
        names = {re.sub(r"\(.*?\)|:any", "", alt).strip() for clause in depends.split(",") for alt in clause.split("|")}
        packages[name] = (essential == "yes", names - {""})
    return packages


def closure(packages: set[str]) -> set[str]:
    """The packages and everything they depend on, transitively (as installed here)."""
    installed, seen, todo = _dpkg(), set(), list(packages)
    while todo:
        package = todo.pop()
        if package in seen or package not in installed:
            continue
        seen.add(package)
        todo += installed[package][1]
    return seen


def requirements() -> list[tuple[str, str, str]]:
    """(what, path, package) for everything the lab, `make` and the tests take from Debian."""
    reqs = [(f"program {p.name}", p.path, p.package) for p in preflight.PROGRAMS.values()]
    reqs += [(f"plugin {p.name}", p.path, p.package) for p in preflight.PLUGINS.values()]
    reqs += [(f"make setup: {pkg}", path, pkg) for pkg, path in preflight.SETUP_FILES.items()]
    reqs += [(f"tests: {pkg}", path, pkg) for pkg, path in preflight.TEST_FILES.items()]
    return reqs


def problems(lists: set[str]) -> list[str]:
    covered = closure(lists) | {name for name, (essential, _) in _dpkg().items() if essential}
    out = []
    for what, path, package in requirements():
        owner = _owner(path)
        if owner != package:
            out.append(f"{what}: {path} is shipped by {owner or 'no installed package'}, "
                       f"lab/preflight.py says {package}")
        elif package not in covered:
            out.append(f"{what}: package {package} is not installed by the Makefile (nor needed by what it installs)")
    needed = {package for _, _, package in requirements()}
    out += [f"the Makefile installs {p}, which nothing in lab/preflight.py needs"
            for p in sorted(lists) if not closure({p}) & needed]
    return out


def test_every_program_and_plugin_comes_from_a_listed_package():
    assert problems(makefile_lists()) == []


def test_removing_any_package_from_the_makefile_fails():
    """Every listed package is needed: without it, something is missing, unless another listed
    package depends on it and so installs it all the same (iproute2 comes with charon)."""
    lists = makefile_lists()
    failing = {package for package in lists if problems(lists - {package})}
    pulled_in = {package for package in lists if package in closure(lists - {package})}
    assert lists - pulled_in <= failing, f"removal went unnoticed: {sorted(lists - pulled_in - failing)}"
    assert "libstrongswan-standard-plugins" in failing  # the one a fresh machine lacked


def test_every_rendered_plugin_is_declared():
    sc = load_scenario("psk-mismatch")
    keys = settings.keys(render.strongswan_conf("gw1", "r", sc.gateways["gw1"], Path("/s"), Path("/l")))
    loads = [value.split() for key, value in keys.items() if key.endswith(".load")]
    assert len(loads) == 2  # charon's and swanctl's
    used = {p for load in loads for p in load} | set(render.PKI_PLUGINS)
    assert used <= set(preflight.PLUGINS), used - set(preflight.PLUGINS)
    assert "updown" not in used  # no plugin that runs scripts
