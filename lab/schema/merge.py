"""Deep merge of configuration dicts: scenario over topology, fix over fault."""
from __future__ import annotations

import copy
from typing import Any


class MergeError(ValueError):
    """`key+: [...]` where what it would append to is no list; `path` ends at that `key+`."""

    def __init__(self, path: tuple, found: Any):
        key = str(path[-1])
        super().__init__(f"'{key}' appends to a list, but {key[:-1]} is {type(found).__name__}; allowed: "
                         f"{key} on a list, or {key[:-1]} to replace it")
        self.path = path


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; anything else (lists included) is replaced whole, except
    that `key+: [...]` appends to the list `key` of the base. `base` is left as it was."""
    return merge_into(copy.deepcopy(base), patch)


def merge_into(out: dict[str, Any], patch: dict[str, Any], path: tuple = ()) -> dict[str, Any]:
    """deep_merge into `out` itself: merging many patches costs their size, not `out`'s each time."""
    for key, value in patch.items():
        if isinstance(key, str) and key.endswith("+") and isinstance(value, list):
            current = out.get(key[:-1], [])
            if not isinstance(current, list):
                raise MergeError(path + (key,), current)
            out[key[:-1]] = [*current, *copy.deepcopy(value)]
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            merge_into(out[key], value, path + (key,))
        else:
            out[key] = copy.deepcopy(value)
    return out
