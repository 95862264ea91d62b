"""Where the project's data lives, whichever directory `lab` is run from."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
TOPOLOGIES = ROOT / "topologies"
CASES = ROOT.parent / "shared" / "cases"
