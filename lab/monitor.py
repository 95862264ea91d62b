"""Steady pings from a LAN host for a whole phase: when traffic stopped, and for how long.

`ping -O -D` prints "no answer yet" for each ping still unanswered when the next one
leaves, and stamps every line with the time, so the log shows losses as they happen. An
outage is the time between the answered pings either side of a run of lost ones (or from
the start, or until now, when the run is at the start or still on).
"""
from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lab.network import Network, stop_process

_LINE = re.compile(r"^\[(\d+\.\d+)\] (.*)$", re.M)
_SEQ = re.compile(r"icmp_seq=(\d+)")
_REPLY = re.compile(r"icmp_seq=(\d+) ttl=")


@dataclass
class Outage:
    start_s: float  # since the monitor started
    duration_s: float
    ended: bool  # traffic came back afterwards


@dataclass
class PingRecord:
    every: float
    sent: int
    answered: int
    outages: list[Outage]

    @property
    def longest_s(self) -> float:
        return max((o.duration_s for o in self.outages), default=0.0)

    def longest_after(self, offset_s: float) -> float:
        """The longest outage, counting only its part after `offset_s` into the record."""
        return max((o.start_s + o.duration_s - max(o.start_s, offset_s) for o in self.outages
                    if o.start_s + o.duration_s > offset_s), default=0.0)

    def summary(self) -> dict:
        return {"every_s": self.every, "sent": self.sent, "answered": self.answered,
                "outages_s": [round(o.duration_s, 2) for o in self.outages],
                "longest_s": round(self.longest_s, 2),
                "ongoing": bool(self.outages) and not self.outages[-1].ended}

    def text(self) -> str:
        answered = f"{self.answered}/{self.sent} pings answered"
        if not self.outages:
            return answered + ", no outage"
        worst = max(self.outages, key=lambda o: o.duration_s)
        return (f"{answered}; {len(self.outages)} outage(s), longest {worst.duration_s:.2f} s "
                f"from {worst.start_s:.1f} s" + ("" if worst.ended else " (still on)"))


def parse(text: str, every: float, started: float, now: float) -> PingRecord:
    """A `ping -O -D -i every` log started at `started` (wall clock), read at `now`."""
    replies: dict[int, float] = {}
    sent = 0
    for stamp, line in _LINE.findall(text):
        seq = _SEQ.search(line)
        if not seq:
            continue
        sent = max(sent, int(seq.group(1)))
        if _REPLY.search(line):
            replies.setdefault(int(seq.group(1)), float(stamp))
    outages: list[Outage] = []
    seq = 1
    while seq <= sent:
        if seq in replies:
            seq += 1
            continue
        first = seq
        while seq <= sent and seq not in replies:
            seq += 1
        before = replies.get(first - 1, started)
        after = replies.get(seq)
        outages.append(Outage(before - started, (after if after is not None else now) - before, after is not None))
    return PingRecord(every, sent, len(replies), outages)


class PingMonitor:
    """`argv`: the monitor step's `ping -O -D -i EVERY ...`."""

    def __init__(self, net: Network, name: str, node: str, argv: list[str], every: float, folder: Path):
        self.every = every
        self.log: Path = folder / f"{name}.ping.log"
        self.started = time.time()  # wall clock, as ping -D stamps its lines
        with self.log.open("w") as out:
            self.proc = net.spawn(node, argv, stdout=out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        stop_process(self.proc)

    def record(self) -> PingRecord:
        return parse(self.log.read_text(), self.every, self.started, time.time())
