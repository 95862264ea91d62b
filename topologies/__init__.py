"""The topologies scenarios name: package data of `lab.topologies` (this folder is mapped into
the package by pyproject.toml; nothing here is Python)."""
