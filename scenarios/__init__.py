"""The scenario catalogue, one YAML file per scenario: package data of `lab.scenarios` (this
folder is mapped into the package by pyproject.toml; nothing here is Python)."""
