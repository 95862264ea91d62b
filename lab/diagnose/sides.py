"""Both sides at once: placeholder."""
from __future__ import annotations


def differences(obs, peers) -> list[dict]:
    return []
