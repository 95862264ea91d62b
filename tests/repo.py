"""The repository these tests belong to, and the catalogue as the installed package has it."""
from pathlib import Path

from lab.schema import locate

ROOT = Path(__file__).resolve().parent.parent  # the checkout: tests live in it, the package need not
SCENARIOS = locate.catalogue()
TOPOLOGIES = locate.topologies()
