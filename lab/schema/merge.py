"""Deep merge of configuration dicts: scenario over topology, fix over fault."""
from __future__ import annotations

import copy
from typing import Any


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; anything else (lists included) is replaced whole, except
    that `key+: [...]` appends to the list `key` of the base."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if key.endswith("+") and isinstance(value, list):
            out[key[:-1]] = list(out.get(key[:-1], [])) + copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
