"""charon log lines from any of the places they end up: strongSwan's filelog (with or without a
time stamp and the IKE_SA name), syslog and journal lines, `swanctl --log` output.

Every format carries the same core, `[SUB] text` (a thread number may precede the subsystem
and `<name|id>` may follow it); what comes before is a time stamp and, in syslog, the host
and `charon[pid]:`. A line that has no `[SUB]` is not charon's and is skipped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# what may precede the core: times of several formats, a syslog host and program
_PREFIX = re.compile(
    r"^(?:(?P<time>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?"  # ISO / RFC 3339
    r"|[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}"  # syslog: Dec  1 04:08:23
    r"|\d{2}:\d{2}:\d{2}(?:\.\d+)?)\s+)?"  # filelog time_format %H:%M:%S
    r"(?:(?P<host>[\w.-]+)\s+(?:charon(?:-systemd)?|ipsec|swanctl|strongswan)(?:\[\d+\])?:\s+)?")
_CORE = re.compile(r"(?:\d{1,3})?\[(?P<sub>[A-Z]{3})\]\s(?:<(?:(?P<ike>[^|>]+)\|)?(?P<uid>\d+)>\s)?(?P<text>.*)$")
MAX_LINES = 2_000_000  # a log bigger than this is read up to here, and the diagnosis says so


@dataclass
class LogLine:
    file: Path
    number: int  # 1-based, as `file:line` cites it
    time: str | None  # as written (a time of day, a syslog or an ISO time stamp)
    subsystem: str
    ike: str | None  # the IKE_SA's name (connection), when the log has ike_name
    uid: str | None  # the IKE_SA's unique id, from `<name|id>` or `<id>`
    text: str

    def cite(self) -> str:
        return f"{self.file}:{self.number}"

    def seconds(self) -> float | None:
        """Seconds since midnight, for ordering across files of one day (None without a time)."""
        if not self.time:
            return None
        found = re.search(r"(\d{2}):(\d{2}):(\d{2}(?:\.\d+)?)", self.time)
        return int(found.group(1)) * 3600 + int(found.group(2)) * 60 + float(found.group(3)) if found else None


def parse_line(line: str) -> tuple[str | None, str, str | None, str | None, str] | None:
    """(time, subsystem, IKE_SA name, IKE_SA id, text) of a charon line, None for anything else."""
    prefix = _PREFIX.match(line)
    core = _CORE.match(line, prefix.end() if prefix else 0)
    if core is None:
        return None
    return (prefix.group("time") if prefix else None, core.group("sub"), core.group("ike"), core.group("uid"),
            core.group("text").rstrip())


def read(path: Path) -> list[LogLine]:
    """The charon lines of a file; others (a syslog's other daemons, swanctl's own output) are skipped."""
    lines: list[LogLine] = []
    with path.open(errors="replace") as stream:
        for number, line in enumerate(stream, 1):
            if number > MAX_LINES:
                break
            parsed = parse_line(line)
            if parsed:
                lines.append(LogLine(path, number, *parsed))
    return lines


def looks_like_charon_log(path: Path, probe_lines: int = 200) -> bool:
    try:
        with path.open(errors="replace") as stream:
            head = [stream.readline() for _ in range(probe_lines)]
    except OSError:
        return False
    return any(parse_line(line) for line in head if line)
