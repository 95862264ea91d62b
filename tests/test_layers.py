"""Layers, checked on the source (what each module imports, at any depth of it) and on what a run
loads: the schema imports nothing above it, the spine imports only downwards, components are
given what they use."""
import ast
import importlib.util
import pkgutil
import subprocess
import sys

from tests import repo

RUNTIME = ("scapy", "mininet", "lab.run", "lab.network", "lab.strongswan.charon",
           "lab.capture", "lab.transport.relay", "lab.transport.process",
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
    out = subprocess.run([sys.executable, "-c", PROBE, "psk-mismatch", "tcp-asym", str(repo.TOPOLOGIES / "dual-wan.yaml")],
                         capture_output=True, text=True, cwd=repo.ROOT, check=True).stdout.split()
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


# Modules below every layer: they import no module of the lab (checked below), so importing them
# lifts nothing above the schema. visible: how untrusted text is shown; bpf: libpcap's compiler.
LEAVES = {"lab", "lab.visible", "lab.bpf"}


def _modules(package: str) -> list[str]:
    spec = importlib.util.find_spec(package)
    return [package] + [f"{package}.{m.name}" for m in pkgutil.iter_modules(spec.submodule_search_locations)]


def _lab_modules(names: set[str]) -> set[str]:
    """Imported names that are modules of the lab (`from lab.schema import types` names lab.schema.types)."""
    return {n for n in names if n == "lab" or (n.startswith("lab.") and importlib.util.find_spec(n.rsplit(".", 1)[0])
                                                and _is_module(n))}


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def test_the_schema_imports_nothing_above_it():
    """Kinds register into the schema (lab.schema.kinds, through entry points): the schema imports no
    step, check, diagnose or runtime module, statically or inside a function."""
    outside = {}
    for module in _modules("lab.schema"):
        found = {m for m in _lab_modules(_imports(module)) if not m.startswith("lab.schema") and m not in LEAVES}
        if found:
            outside[module] = found
    assert not outside, outside


def test_the_leaves_import_no_lab_module():
    for leaf in LEAVES - {"lab"}:
        assert not _lab_modules(_imports(leaf)), leaf
    assert _imports("lab") == set()  # the package's __init__: its version only


def test_every_attribute_of_a_lab_module_exists():
    """`module.name` where module is one of the lab's: the name is there (a module split in parts
    leaves no reader of a name that moved; what no unit test runs is caught here too)."""
    missing = []
    for folder in (repo.ROOT / "lab", repo.ROOT / "tests"):
        for path in folder.rglob("*.py"):
            tree = ast.parse(path.read_text())
            modules = {}
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lab"):
                    modules.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names
                                    if _is_module(f"{node.module}.{a.name}")})
                elif isinstance(node, ast.Import):
                    modules.update({a.asname or a.name: a.name for a in node.names if a.name.startswith("lab")})
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
                    if not hasattr(importlib.import_module(modules[node.value.id]), node.attr):
                        missing.append(f"{path.relative_to(repo.ROOT)}:{node.lineno}: {modules[node.value.id]}.{node.attr}")
    assert not missing, missing
