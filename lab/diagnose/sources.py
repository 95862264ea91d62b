"""What `lab diagnose` is given: phase and run folders of `lab run`, captures (pcap, pcapng) and charon
logs, found by what they are (a capture by its magic number, a log by its lines), never by name.
Only artifacts are read: never a scenario file, result.json or a declared diagnosis."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from lab.diagnose.logs import looks_like_charon_log

PCAP_MAGIC = {b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1"}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
PHASES = ("baseline", "fault", "partial", "fix")  # the phase folders of a run (lab run)
MAX_FILES = 500  # in one folder tree: a diagnosis reads artifacts, not a whole disk
MAX_DEPTH = 3


@dataclass
class CaptureFile:
    path: Path
    mac: str | None = None  # the capturing interface's MAC (lab captures): packet directions
    where: str | None = None  # node:intf
    node: str | None = None


@dataclass
class Inputs:
    """One diagnosis worth of artifacts."""

    label: str
    captures: list[CaptureFile] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)


class BadInput(ValueError):
    """A PATH that is neither a capture, a charon log, nor a folder holding them."""


def kind(path: Path) -> str | None:
    """'capture', 'log' or None, from the file's content."""
    try:
        with path.open("rb") as stream:
            head = stream.read(4)
    except OSError:
        return None
    if head in PCAP_MAGIC or head == PCAPNG_MAGIC:
        return "capture"
    return "log" if looks_like_charon_log(path) else None


def _capture(path: Path) -> CaptureFile:
    """A lab capture has its capture point beside it (NAME.capture.json): node, interface, MAC."""
    meta = path.with_name(path.name.removesuffix(path.suffix) + ".capture.json")
    try:
        info = json.loads(meta.read_text())
        return CaptureFile(path, info.get("mac"), f"{info['node']}:{info['intf']}", info.get("node"))
    except (OSError, ValueError, KeyError, TypeError):
        return CaptureFile(path)


def _files(folder: Path) -> list[Path]:
    out: list[Path] = []
    todo = [(folder, 0)]
    while todo and len(out) < MAX_FILES:
        here, depth = todo.pop()
        try:
            entries = sorted(here.iterdir())
        except OSError as exc:
            raise BadInput(f"{here}: cannot read the folder ({exc.strerror})") from None
        for entry in entries:
            if entry.is_symlink():
                continue  # what a folder holds, not what it points to
            if entry.is_dir() and depth < MAX_DEPTH:
                todo.append((entry, depth + 1))
            elif entry.is_file():
                out.append(entry)
    return out[:MAX_FILES]


def _collect(files: list[Path], into: Inputs) -> None:
    for path in files:
        found = kind(path)
        if found == "capture":
            into.captures.append(_capture(path))
        elif found == "log":
            into.logs.append(path)


def gather(paths: list[Path]) -> list[Inputs]:
    """A run folder (results/NAME) becomes one diagnosis per phase; everything else given
    together is one diagnosis."""
    together = Inputs(", ".join(str(p) for p in paths))
    separate: list[Inputs] = []
    for path in paths:
        if not path.exists():
            raise BadInput(f"{path}: no such file or folder")
        if path.is_dir():
            phases = [path / p for p in PHASES if (path / p).is_dir()]
            if phases:
                for phase in phases:
                    inputs = Inputs(str(phase))
                    _collect(_files(phase), inputs)
                    separate.append(inputs)
            else:
                _collect(_files(path), together)
        elif kind(path) is None:
            raise BadInput(f"{path}: neither a capture (pcap, pcapng) nor a charon log")
        else:
            _collect([path], together)
    if together.captures or together.logs or not separate:
        separate.insert(0, together)
    return separate
