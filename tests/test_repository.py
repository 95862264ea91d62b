"""The repository is the whole project: no path of one machine in the code, the tests or the
build, and every file of data the tests read is in it, with where it comes from."""
import os
import re
from pathlib import Path

from tests import repo
from tests.field_data import FIELD

SCANNED = ["lab", "tests", "Makefile", "pyproject.toml"]
# Folders that exist on one machine and not on another: a user's or root's home, this project's
# own working tree, software installed by hand.
MACHINE = re.compile(r"(?<![\w.~-])/(?:work|root|home|opt|srv|mnt|media|Users|var/lib/ipsec-lab)/")


def _files() -> list[Path]:
    found = []
    for name in SCANNED:
        top = repo.ROOT / name
        if top.is_file():
            found.append(top)
            continue
        for folder, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if d not in ("__pycache__", "data")]  # data: copied unchanged, see SOURCES
            # a symbolic link is a hostile input's target (/etc/passwd), not text of ours
            found += [Path(folder) / f for f in files if not (Path(folder) / f).is_symlink()]
    return found


def test_no_path_of_this_machine():
    """A clone anywhere else must work: no file names a machine's folders, nor where this checkout is."""
    here = {str(repo.ROOT), str(Path.home())} - {"/"}  # not its parent: a clone in /tmp/x is fine
    found = []
    for path in _files():
        text = path.read_text(errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if MACHINE.search(line) or any(f"{place}/" in line for place in here):
                found.append(f"{path.relative_to(repo.ROOT)}:{number}: {line.strip()[:120]}")
    assert not found, "\n".join(found)


def test_the_scan_sees_a_machine_path(tmp_path):
    """The pattern is not vacuous: each form it exists for is caught, a system path is not."""
    for line in ['FIELD = Path("/{}/shared/field-data")', "cd /{}/ipsec-lab", "~/x /{}/alice/cases",
                 "pip install --find-links /{}/wheels"]:
        for folder in ("work", "root", "home", "opt"):  # written apart: this file is scanned too
            assert MACHINE.search(line.format(folder)), line
    for line in ["/etc/subuid", "/usr/bin/newuidmap", "/tmp/ipsec-lab-pwned", "/run/ipsec-lab/room", "a/work/b"]:
        assert not MACHINE.search(line), line


def _sources() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in (FIELD / "SOURCES").read_text().splitlines():
        if line and not line.startswith("#"):
            path, origin, licence = line.split("\t")
            rows[path] = (origin, licence)
    return rows


def test_every_data_file_says_where_it_comes_from():
    """tests/data/SOURCES: each file's origin (a public repository at a fixed commit) and licence."""
    sources = _sources()
    on_disk = {p.relative_to(FIELD).as_posix() for p in FIELD.rglob("*")
               if p.is_file() and p.name not in ("SOURCES", "README.md")}
    assert on_disk == set(sources)
    for path, (origin, licence) in sources.items():
        assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+/(blob|tree)/[\w.]+/\S+", origin), path
        assert origin.endswith(Path(path).name.split("__")[-1]), (path, origin)
        assert licence, path
