"""Scenario and topology files: loading, validation, error positions."""
from lab.spec.errors import SpecError
from lab.spec.load import find_scenario, load_scenario, load_topology, scenario_names

__all__ = ["SpecError", "find_scenario", "load_scenario", "load_topology", "scenario_names"]
