"""Scenario and topology files: loading (load), models, validation errors with positions (errors)."""
