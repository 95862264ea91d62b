"""Finding the files a scenario names, without ever opening one it may not name.

A scenario file is untrusted, so what it names (its `topology`, the scenario it
`extends`) is looked up, not opened: a name in topologies/ (scenarios/), or a relative
.yaml path that stays inside the scenario's own folder or that library folder once
symlinks are resolved. Anything else is refused without being read, and the refusal
does not repeat the path. A file the user names on the command line is theirs to name.
"""
from __future__ import annotations

import re
from pathlib import Path

from lab import paths
from lab.schema.errors import InputError, Problem

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def scenario_names() -> list[str]:
    return sorted(p.stem for p in paths.SCENARIOS.glob("*.yaml"))


def topology_names() -> list[str]:
    return sorted(p.stem for p in paths.TOPOLOGIES.glob("*.yaml"))


def find_scenario(name_or_path: str) -> Path:
    """A name from scenarios/, or a path (given by the user) to a scenario file anywhere."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return candidate
    path = paths.SCENARIOS / f"{name_or_path}.yaml"
    if not _NAME.fullmatch(name_or_path) or not path.is_file():
        raise InputError([Problem(paths.SCENARIOS, None, "", f"no scenario '{name_or_path[:60]}'; "
                                                             f"scenarios: {', '.join(scenario_names())}")])
    return path


def named_file(ref: str, referrer: Path, library: Path) -> Path | None:
    """The file `ref` (from the file `referrer`) names: `library/<ref>.yaml` for a plain name,
    else a relative .yaml path that resolves inside referrer's folder or `library`."""
    if _NAME.fullmatch(ref):
        path = library / f"{ref}.yaml"
        return path if path.is_file() else None
    if ref.startswith("/") or "\\" in ref or not ref.endswith((".yaml", ".yml")):
        return None
    folders = [referrer.parent.resolve(), library.resolve()]
    for base in folders:
        path = (base / ref).resolve()
        if any(path.is_relative_to(folder) for folder in folders) and path.is_file():
            return path
    return None
