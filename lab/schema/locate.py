"""Finding scenario and topology files, without ever opening one a file may not name.

Where they are: the catalogue is package data (`lab.scenarios`, `lab.topologies`, found
through importlib.resources, so a wheel installed anywhere finds it as a checkout does); the
user's own scenario folders (`--path DIR`, `LAB_PATH=DIR:DIR`) are searched before it, in
that order. A scenario is named by its file name there (`DIR/NAME.yaml`).

A scenario file is untrusted, so what it names (its `topology`, the scenario it `extends`) is
looked up, not opened: a name (a scenario: in the file's own folder, then the search path; a
topology: in the catalogue's topologies), or a relative .yaml path that stays inside the
file's own folder or that library folder once symlinks are resolved. Anything else is refused
without being read, and the refusal does not repeat the path. A file the user names on the
command line is theirs to name.
"""
from __future__ import annotations

import os
import re
from importlib.resources import files
from pathlib import Path

from lab.schema.errors import InputError, Problem

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
ENV_PATH = "LAB_PATH"
_given: list[Path] = []  # --path, before LAB_PATH


def _package_folder(package: str) -> Path:
    found = files(package)
    if not isinstance(found, Path):  # a zip import: the lab reads its files as a folder tree
        raise RuntimeError(f"{package} is not installed as a folder; allowed: a pip install (wheel or editable)")
    return found


def catalogue() -> Path:
    """The folder of the catalogue's scenarios."""
    return _package_folder("lab.scenarios")


def topologies() -> Path:
    """The folder of the topologies scenarios name."""
    return _package_folder("lab.topologies")


def use_folders(folders: list[Path]) -> None:
    """`lab --path DIR` (repeatable): searched first, before LAB_PATH's and the catalogue."""
    _given[:] = [Path(f) for f in folders]


def user_folders() -> list[Path]:
    """--path folders, then LAB_PATH's (colon-separated, empty parts ignored)."""
    env = [Path(p) for p in os.environ.get(ENV_PATH, "").split(os.pathsep) if p]
    return [*_given, *env]


def search_path() -> list[Path]:
    return [*user_folders(), catalogue()]


def bad_folders() -> list[Path]:
    """User folders that are not folders (named by the user: reported, never guessed at)."""
    return [f for f in user_folders() if not f.is_dir()]


def _names(folder: Path) -> list[str]:
    """The stems of the folder's .yaml files (one that is no scenario name is listed, and found invalid)."""
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def catalogue_names() -> list[str]:
    return _names(catalogue())


def scenario_files() -> dict[str, Path]:
    """Every scenario name on the search path and its file: the first folder that has it wins.
    Topology files kept in a user folder are not scenarios."""
    from lab.schema.load import is_topology

    found: dict[str, Path] = {}
    for folder in search_path():
        for name in _names(folder):
            path = folder / f"{name}.yaml"
            if name not in found and not (folder != catalogue() and _is_topology(path, is_topology)):
                found[name] = path
    return dict(sorted(found.items()))


def _is_topology(path: Path, is_topology) -> bool:
    try:
        return is_topology(path)
    except InputError:
        return False  # a broken file is listed: validating it says what is wrong


def scenario_names() -> list[str]:
    return list(scenario_files())


def topology_names() -> list[str]:
    return _names(topologies())


def find_scenario(name_or_path: str) -> Path:
    """A name on the search path, or a path (given by the user) to a scenario file anywhere."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return candidate
    path = named_in(name_or_path, search_path()) if _NAME.fullmatch(name_or_path) else None
    if path is None:
        where = ", ".join(str(f) for f in user_folders()) + " and " if user_folders() else ""
        raise InputError([Problem(catalogue(), None, "", f"no scenario '{name_or_path[:60]}' in {where}the "
                                                         f"catalogue; scenarios: {', '.join(scenario_names())}")])
    return path


def named_in(name: str, folders: list[Path]) -> Path | None:
    """`FOLDER/<name>.yaml` of the first folder that has it."""
    return next((f / f"{name}.yaml" for f in folders if (f / f"{name}.yaml").is_file()), None)


def in_search_path(path: Path) -> bool:
    """Whether `path` lies directly in a folder scenarios are found in by name (so its name must be its
    file name)."""
    folder = path.parent.resolve()
    return any(folder == f.resolve() for f in search_path() if f.is_dir())


def named_file(ref: str, referrer: Path, library: Path, by_name: list[Path] | None = None) -> Path | None:
    """The file `ref` (from the file `referrer`) names: a plain name in `by_name`'s folders (default:
    `library`), else a relative .yaml path that resolves inside referrer's folder or `library`."""
    if _NAME.fullmatch(ref):
        return named_in(ref, by_name if by_name is not None else [library])
    if ref.startswith("/") or "\\" in ref or not ref.endswith((".yaml", ".yml")):
        return None
    folders = [referrer.parent.resolve(), library.resolve()]
    for base in folders:
        path = (base / ref).resolve()
        if any(path.is_relative_to(folder) for folder in folders) and path.is_file():
            return path
    return None
