"""What `lab diagnose` is given: phase and run folders of `lab run`, captures (pcap, pcapng) and charon
logs, found by what they are (a capture by its magic number, a log by its lines), never by name;
`-` is standard input. Only artifacts are read: never a scenario file, result.json or a declared
diagnosis.

Everything given is untrusted: only regular files are read (opened non-blocking and checked with
fstat, so a FIFO, a device or a socket is refused without a read that could block or never end),
symbolic links inside folders are not followed, and what is read is bounded: files per folder
tree, bytes per file and per run (a log or capture past its budget is refused with the limit).
"""
from __future__ import annotations

import json
import os
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lab.capture.file import is_capture
from lab.diagnose.logs import looks_like_charon_log
from lab.schema.scenario import Phase

PHASES = tuple(str(p) for p in Phase)  # the phase folders of a run (lab run)
MAX_FILES = 2000  # in one folder tree: a diagnosis reads artifacts, not a whole disk
MAX_DEPTH = 3
MAX_FILE_BYTES = 1 << 30  # one capture or log
MAX_RUN_BYTES = 2 << 30  # everything of one `lab diagnose`
MAX_STDIN_BYTES = 256 << 20
MAX_META_BYTES = 64 << 10  # NAME.capture.json: a few fields
PROBE_BYTES = 64 << 10  # what is read of a file to tell what it is
STDIN = "-"


@dataclass
class CaptureFile:
    path: Path
    mac: str | None = None  # the capturing interface's MAC (lab captures): packet directions
    where: str | None = None  # node:intf
    node: str | None = None
    size: int = 0


@dataclass
class LogSource:
    path: Path  # where to read it
    shown: Path  # how to cite it (`-` for standard input)
    size: int = 0


@dataclass
class Inputs:
    """One diagnosis worth of artifacts."""

    label: str
    captures: list[CaptureFile] = field(default_factory=list)
    logs: list[LogSource] = field(default_factory=list)


class BadInput(ValueError):
    """A PATH that is neither a capture, a charon log, nor a folder holding them, or past a bound."""


def open_regular(path: Path) -> tuple[int, os.stat_result]:
    """A descriptor of `path` if it is a regular file: opened without blocking (a FIFO with no
    writer would block a plain open forever), then checked on the descriptor itself."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise BadInput(f"{path}: cannot open ({exc.strerror})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        what = ("a FIFO" if stat.S_ISFIFO(info.st_mode) else "a socket" if stat.S_ISSOCK(info.st_mode)
                else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "not a regular file")
        raise BadInput(f"{path}: {what}; allowed: regular files (captures, charon logs) and folders of them")
    os.set_blocking(fd, True)
    return fd, info


def _head(path: Path) -> tuple[bytes, int]:
    fd, info = open_regular(path)
    with os.fdopen(fd, "rb") as stream:
        return stream.read(PROBE_BYTES), info.st_size


def kind(head: bytes) -> str | None:
    """'capture', 'log' or None, from a file's first bytes."""
    if is_capture(head):  # as the capture reader takes it: pcap, pcapng, gzip
        return "capture"
    return "log" if looks_like_charon_log(head) else None


def _meta(path: Path) -> dict:
    """A lab capture has its capture point beside it (NAME.capture.json): node, interface, MAC.
    Read only if it is a small regular file: a huge or hostile one is ignored."""
    meta = path.with_name(path.name.removesuffix(path.suffix) + ".capture.json")
    try:
        fd, info = open_regular(meta)
    except BadInput:
        return {}
    with os.fdopen(fd, "rb") as stream:
        if info.st_size > MAX_META_BYTES:
            return {}
        try:
            doc = json.loads(stream.read(MAX_META_BYTES))
        except ValueError:
            return {}
    return doc if isinstance(doc, dict) else {}


def _capture(path: Path, size: int) -> CaptureFile:
    info = _meta(path)
    node, intf, mac = info.get("node"), info.get("intf"), info.get("mac")
    if not all(isinstance(v, str) and len(v) <= 64 for v in (node, intf)):
        return CaptureFile(path, size=size)
    return CaptureFile(path, mac if isinstance(mac, str) and len(mac) <= 17 else None, f"{node}:{intf}", node,
                       size=size)


def _files(folder: Path) -> list[Path]:
    """Regular files of a folder tree (symbolic links not followed), refused past MAX_FILES."""
    out: list[Path] = []
    todo = [(folder, 0)]
    while todo:
        here, depth = todo.pop()
        try:
            with os.scandir(here) as entries:
                found = []
                for entry in entries:
                    found.append(entry)
                    if len(out) + len(found) > MAX_FILES:
                        raise BadInput(f"{folder}: more than {MAX_FILES} files; allowed: at most {MAX_FILES} "
                                       f"files in a folder tree (give the phase folder, or the files)")
        except OSError as exc:
            raise BadInput(f"{here}: cannot read the folder ({exc.strerror})") from None
        for entry in sorted(found, key=lambda e: e.name):
            if entry.is_symlink():
                continue  # what a folder holds, not what it points to
            if entry.is_dir(follow_symlinks=False):
                if depth < MAX_DEPTH:
                    todo.append((Path(entry.path), depth + 1))
            elif entry.is_file(follow_symlinks=False):
                out.append(Path(entry.path))
    return out


class _Budget:
    def __init__(self) -> None:
        self.left = MAX_RUN_BYTES

    def take(self, path: Path, size: int) -> None:
        if size > MAX_FILE_BYTES:
            raise BadInput(f"{path}: {size} bytes; allowed: at most {MAX_FILE_BYTES} bytes a file")
        self.left -= size
        if self.left < 0:
            raise BadInput(f"{path}: the files given hold more than {MAX_RUN_BYTES} bytes; "
                           f"allowed: at most {MAX_RUN_BYTES} bytes in one diagnosis")


def _collect(files: list[Path], into: Inputs, budget: _Budget, strict: bool = False) -> None:
    """Captures and logs among `files`; with `strict` (files named on the command line) a file that
    is neither is an error, in a folder it is skipped."""
    for path in files:
        try:
            head, size = _head(path)
        except BadInput:
            if strict:
                raise
            continue  # a FIFO or device inside a folder is not an artifact
        found = kind(head)
        if found is None:
            if strict:
                raise BadInput(f"{path}: neither a capture (pcap, pcapng) nor a charon log")
            continue
        budget.take(path, size)
        if found == "capture":
            into.captures.append(_capture(path, size))
        else:
            into.logs.append(LogSource(path, path, size))


def _stdin(spool: Path) -> Path:
    """Standard input spooled to a file (a pipe is read once, and bounded)."""
    source = sys.stdin.buffer
    with spool.open("wb") as out:
        left = MAX_STDIN_BYTES + 1
        while left > 0:
            chunk = source.read(min(1 << 20, left))
            if not chunk:
                break
            out.write(chunk)
            left -= len(chunk)
    if left <= 0:
        raise BadInput(f"-: more than {MAX_STDIN_BYTES} bytes on standard input; "
                       f"allowed: at most {MAX_STDIN_BYTES} bytes")
    return spool


def gather(paths: list[Path], spool_dir: Path | None = None) -> list[Inputs]:
    """A run folder (results/NAME) becomes one diagnosis per phase; everything else given together
    is one diagnosis. `-` reads standard input (spooled into `spool_dir`)."""
    budget = _Budget()
    together = Inputs(", ".join(str(p) for p in paths))
    separate: list[Inputs] = []
    for path in paths:
        if str(path) == STDIN:
            spool = _stdin(Path(spool_dir or tempfile.gettempdir()) / "stdin")
            head, size = _head(spool)
            found = kind(head)
            if found is None:
                raise BadInput("-: standard input is neither a capture (pcap, pcapng) nor a charon log")
            budget.take(Path(STDIN), size)
            if found == "capture":
                together.captures.append(CaptureFile(spool, size=size))
            else:
                together.logs.append(LogSource(spool, Path(STDIN), size))
            continue
        try:
            is_dir = stat.S_ISDIR(os.stat(path).st_mode)
        except OSError as exc:
            raise BadInput(f"{path}: {'no such file or folder' if isinstance(exc, FileNotFoundError) else exc.strerror}") \
                from None
        if is_dir:
            phases = [path / p for p in PHASES if (path / p).is_dir() and not (path / p).is_symlink()]
            if phases:
                for phase in phases:
                    inputs = Inputs(str(phase))
                    _collect(_files(phase), inputs, budget)
                    separate.append(inputs)
            else:
                _collect(_files(path), together, budget)
        else:
            _collect([path], together, budget, strict=True)
    if together.captures or together.logs or not separate:
        separate.insert(0, together)
    return separate
