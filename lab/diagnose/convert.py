"""A charon file log rewritten in another dialect, every message kept: what the same moment looks
like from syslog, the journal, swanctl --log, Android, a firewall distribution or a forum post.

Each writer follows the source of the program that writes that dialect (see dialects.py): where
that program drops a field (the journal's short output drops thread, group and IKE_SA; swanctl
--log the IKE_SA; the Android app the IKE_SA), the rendering drops it too. Lines of the source
that are not charon's are left out. Used to build the diagnosis corpus (tests/diagnose/corpus).
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Callable, Iterable, Iterator

from lab.diagnose.dialects import Record, parse

DAY = datetime(2026, 12, 5)  # the date a time of day is placed on
HOST = "gw"
PID = 4242
_CLOCK = re.compile(r"(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?")


def _when(record: Record, number: int) -> datetime:
    found = _CLOCK.search(record.time or "")
    if not found:
        return DAY + timedelta(seconds=number)
    h, m, s, frac = found.groups()
    return DAY.replace(hour=int(h), minute=int(m), second=int(s),
                       microsecond=int((frac or "0")[:6].ljust(6, "0")))


def _core(r: Record, name: bool = True, level: bool = False) -> str:
    group = f"{r.group}1" if level else r.group
    ike = ""
    if name and r.uid:
        ike = f" <{r.ike}|{r.uid}>" if r.ike else f" <{r.uid}>"
    return f"{(r.thread or 0):02d}[{group}]{ike} {r.text}"


def _syslog_time(t: datetime) -> str:
    return t.strftime("%b ") + f"{t.day:>2}" + t.strftime(" %H:%M:%S")


Writer = Callable[[Record, datetime, int], str]

WRITERS: dict[str, Writer] = {
    # the file logger with another time_format, milliseconds, log_level and without ike_name
    "filelog": lambda r, t, n: f"{t.strftime('%Y-%m-%dT%H:%M:%S')}.{t.microsecond // 1000:03d} {_core(r, False, True)}",
    "filelog-notime": lambda r, t, n: _core(r),
    "filelog-json": lambda r, t, n: json.dumps({
        "time": t.strftime("%b %e %T"), "thread": r.thread or 0, "group": r.group, "level": 1,
        **({"ikesa-uniqueid": r.uid} if r.uid else {}), **({"ikesa-name": r.ike} if r.ike else {}),
        "msg": r.text}, separators=(",", ":")),
    "syslog-rfc3164": lambda r, t, n: f"{_syslog_time(t)} {HOST} charon: {_core(r)}",
    "syslog-rfc5424": lambda r, t, n: f"<30>1 {t.strftime('%Y-%m-%dT%H:%M:%S')}.{t.microsecond:06d}+00:00 {HOST} "
                                      f"charon {PID} - - {_core(r)}",
    "opnsense": lambda r, t, n: f"<30>1 {t.strftime('%Y-%m-%dT%H:%M:%S')}+01:00 {HOST}.localdomain charon {PID} - "
                                f"[meta sequenceId=\"{n}\"] {_core(r)}",
    "pfsense": lambda r, t, n: f"{_syslog_time(t)} charon: {_core(r)}",
    "charon-nm": lambda r, t, n: f"{t.strftime('%b %d %H:%M:%S')} laptop charon-nm[{PID}]: {_core(r)}",
    "journald-short": lambda r, t, n: f"{t.strftime('%b %d %H:%M:%S')} {HOST} charon-systemd[{PID}]: {r.text}",
    "journald-short-iso": lambda r, t, n: f"{t.strftime('%Y-%m-%dT%H:%M:%S')}+0000 {HOST} charon-systemd[{PID}]: "
                                          f"{r.text}",
    "journald-json": lambda r, t, n: json.dumps({
        "__REALTIME_TIMESTAMP": str(int(t.timestamp() * 1_000_000)), "_HOSTNAME": HOST, "PRIORITY": "6",
        "SYSLOG_IDENTIFIER": "charon-systemd", "_PID": str(PID), "MESSAGE": r.text, "GROUP": r.group,
        "LEVEL": "1", "THREAD": str(r.thread or 0),
        **({"IKE_SA_UNIQUE_ID": r.uid} if r.uid else {}), **({"IKE_SA_NAME": r.ike} if r.ike else {})}),
    "swanctl-log": lambda r, t, n: f"{(r.thread or 0):02d}[{r.group}] {r.text}",
    "logcat-brief": lambda r, t, n: f"I/charon  ({PID:>5}): {(r.thread or 0):02d}[{r.group}] {r.text}",
    "logcat-threadtime": lambda r, t, n: f"{t.strftime('%m-%d %H:%M:%S')}.{t.microsecond // 1000:03d} {PID:>5} "
                                         f"{PID + (r.thread or 0):>5} I charon  : {(r.thread or 0):02d}[{r.group}] {r.text}",
    "android-app": lambda r, t, n: f"{_syslog_time(t)} {(r.thread or 0):02d}[{r.group}] {r.text}",
    "bare": lambda r, t, n: r.text,
}
# other programs' lines, as a syslog or a paste mixes them in
NOISE = ("{t} {host} sshd[812]: Accepted publickey for admin from 192.0.2.77 port 51234 ssh2",
         "{t} {host} kernel: [ 1234.567890] eth0: link up, 1000 Mbps, full duplex",
         "{t} {host} systemd[1]: Started Session 42 of user admin.",
         "$ sudo journalctl -u strongswan --since today")
MIXED = ("syslog-rfc3164", "journald-short", "bare", "filelog", "swanctl-log")


def records(lines: Iterable[str]) -> Iterator[Record]:
    for line in lines:
        record = parse(line)
        if record is not None:
            yield record


def convert(lines: Iterable[str], dialect: str) -> list[str]:
    """`lines` of a charon log (any dialect) written as `dialect`, or `mixed`: the dialects of
    MIXED in turn, a block of lines each, with other programs' lines between them."""
    out = []
    for number, record in enumerate(records(lines), 1):
        when = _when(record, number)
        if dialect == "mixed":
            if number % 25 == 0:
                out.append(NOISE[number // 25 % len(NOISE)].format(t=_syslog_time(when), host=HOST))
            writer = WRITERS[MIXED[number // 40 % len(MIXED)]]
        else:
            writer = WRITERS[dialect]
        out.append(writer(record, when, number))
    return out


DIALECTS = (*WRITERS, "mixed")
