"""The schema layer is a leaf: reading and validating files imports nothing that runs a lab."""
import subprocess
import sys

from lab import paths

RUNTIME = ("scapy", "mininet", "lab.running_lab", "lab.network", "lab.runner", "lab.strongswan.charon",
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
