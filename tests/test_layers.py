"""The schema layer is a leaf: reading and validating files imports nothing that runs a lab."""
import subprocess
import sys

from lab import paths

RUNTIME = ("scapy", "mininet", "lab.run", "lab.network", "lab.strongswan.charon",
           "lab.capture.tcpdump", "lab.capture.packets", "lab.transport.relay", "lab.transport.process",
           "lab.monitor", "lab.report", "lab.workshop")
PROBE = """
import sys
from typer.testing import CliRunner
from lab.cli import app
result = CliRunner().invoke(app, ["validate", *sys.argv[1:]])
assert result.exit_code == 0, result.output
print("\\n".join(sorted(sys.modules)))
"""


def test_validate_imports_no_runtime():
    out = subprocess.run([sys.executable, "-c", PROBE, "psk-mismatch", "tcp-asym", "topologies/dual-wan.yaml"],
                         capture_output=True, text=True, cwd=paths.ROOT, check=True).stdout.split()
    loaded = [m for m in out if m.startswith(RUNTIME)]
    assert not loaded, loaded
    assert "lab.schema.load" in out and "lab.steps.network" in out  # it did validate


def test_every_role_of_the_schema_has_a_unit():
    from typing import get_args

    from lab.network.roles import ROLES
    from lab.schema.topology import Role
    assert set(get_args(Role)) == set(ROLES)


SPINE = ("lab.run.scenarios", "lab.run.scheduler", "lab.run.worker", "lab.run.phase", "lab.run.lab")
COMPONENTS = ("lab.strongswan.charon", "lab.capture.tcpdump", "lab.transport.process", "lab.monitor")


def _imports(module: str) -> set[str]:
    """The lab modules `module`'s source imports (at any level, TYPE_CHECKING included)."""
    import ast
    import importlib.util

    tree = ast.parse(open(importlib.util.find_spec(module).origin).read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lab"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("lab"))
    return found


def test_the_spine_imports_only_downwards():
    """scenarios -> scheduler -> worker -> phase -> lab: no module imports one above it."""
    for i, module in enumerate(SPINE):
        above = set(SPINE[:i])
        assert not _imports(module) & above, (module, _imports(module) & above)


def test_components_are_given_what_they_use_not_the_running_lab():
    for module in COMPONENTS:
        assert not {m for m in _imports(module) if m.startswith("lab.run")}, module
