"""Assertions over a phase's capture: which packets crossed an interface, and which way."""
from __future__ import annotations

import os
import shlex
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from lab.checks import Check, Probe, register
from lab.schema.ike import notify_short_name
from lab.schema.refs import CaptureRef, Ref
from lab.schema.types import CaptureFilter, FileModel, Identifier, NotifyName

if TYPE_CHECKING:
    from lab.run.lab import RunningLab

SHOWN = 3


class IkeMatch(FileModel):
    exchange: Literal["IKE_SA_INIT", "IKE_AUTH", "CREATE_CHILD_SA", "INFORMATIONAL",
                      "IKEv1_MAIN", "IKEv1_AGGRESSIVE", "IKEv1_INFORMATIONAL", "IKEv1_QUICK"] | None = None
    response: bool | None = None
    notify: NotifyName | None = None

    def matches(self, ike) -> bool:
        return (ike is not None
                and (self.exchange is None or ike.exchange == self.exchange)
                and (self.response is None or ike.response == self.response)
                and (self.notify is None or self.notify in ike.notifies
                     or self.notify in [notify_short_name(n) for n in ike.notifies]))

    def text(self) -> str:
        parts = [self.exchange or "IKE"]
        if self.response is not None:
            parts.append("response" if self.response else "request")
        if self.notify:
            parts.append(f"N({self.notify})")
        return " ".join(parts)


@register
class CaptureCheck(Check):
    kind: Literal["capture"] = "capture"
    capture: Identifier
    # tcpdump/BPF syntax, e.g. "udp port 500 or udp port 4500" (compiled by libpcap at load)
    filter: CaptureFilter = ""
    direction: Literal["in", "out", "any"] = "any"
    ike: IkeMatch | None = None
    # only ESP packets (ESP-in-UDP, or ESP framed in TCP)
    esp: bool = False
    # only TCP segments where an RFC 9329 message starts that is longer than any segment of
    # its stream, so it is always spread over segments (TCP keeps no message boundaries,
    # so shorter messages may be split too when data queues up)
    oversize_message: bool = False
    expect: Literal["present", "absent"] = "present"
    min_count: int = Field(1, ge=1)
    # count distinct values of this field among the matches instead of packets
    # (e.g. sport: a NAT that gave the same flow a new source port)
    count_distinct: Literal["src", "dst", "sport", "dport"] | None = None

    def eventually(self) -> bool:
        return self.expect == "present"

    def refs(self) -> list[Ref]:
        return [CaptureRef(("capture",), self.capture)]

    def describe_match(self) -> str:
        parts = [f"'{self.filter}'" if self.filter else "any packet"]
        if self.ike:
            parts.append(self.ike.text())
        if self.esp:
            parts.append("ESP")
        if self.oversize_message:
            parts.append("message longer than a segment")
        if self.direction != "any":
            parts.append(self.direction)
        return " ".join(parts)

    def describe(self) -> dict[str, str]:
        what = {"en": "packets matching the filter below", "zh": "符合下方过滤条件的报文"}
        if self.ike:
            what = {"en": f"{self.ike.text()} messages", "zh": f"{self.ike.text()} 报文"}
        elif self.esp:
            what = {"en": "ESP packets", "zh": "ESP 报文"}
        elif not self.filter:
            what = {"en": "packets", "zh": "报文"}
        way = {"in": (" arriving", "收到的"), "out": (" leaving", "发出的"), "any": ("", "")}[self.direction]
        if self.expect == "present":
            many = (f" ({self.min_count} or more)", f"(至少 {self.min_count} 个)") if self.min_count > 1 else ("", "")
            return {"en": f"the capture {self.capture} shows{way[0]} {what['en']}{many[0]}",
                    "zh": f"抓包 {self.capture} 中有{way[1]}{what['zh']}{many[1]}"}
        return {"en": f"the capture {self.capture} shows no{way[0]} {what['en']}",
                "zh": f"抓包 {self.capture} 中没有{way[1]}{what['zh']}"}

    def expectation(self) -> str:
        count = f" x{self.min_count}+" if self.min_count > 1 and self.expect == "present" else ""
        if self.count_distinct:
            count = f" with {self.min_count}+ distinct {self.count_distinct}"
        return f"capture {self.capture}: {self.describe_match()} {self.expect}{count}"

    def linux(self, folder: str = "") -> str:
        shown = f" {shlex.quote(self.filter)}" if self.filter else ""
        note = "  # IKE decoded" if self.ike else "  # only ESP (in UDP, or framed in TCP)" if self.esp else ""
        pcap = shlex.quote(os.path.join(folder, f"{self.capture}.pcap"))
        return f"tcpdump -n -e -r {pcap}{shown}" + (" -v" if self.ike else "") + note

    def probe(self, lab: "RunningLab") -> Probe:
        capture = lab.capture(self.capture)
        packets = [p for p in capture.packets(self.filter) if lab.since is None or p.time >= lab.since]
        hits = [p for p in packets
                if (self.direction == "any" or p.direction == self.direction)
                and (self.ike is None or self.ike.matches(p.ike))
                and (not self.esp or p.esp)
                and (not self.oversize_message or p.oversize_message)]
        where = f"{capture.point.node}:{capture.point.intf}"
        if self.count_distinct:
            values = list(dict.fromkeys(getattr(p, self.count_distinct) for p in hits))
            present = len(values) >= self.min_count
            observed = (f"{len(values)} distinct {self.count_distinct} on {where}: "
                        + ", ".join(f"{v} (first: {next(p for p in hits if getattr(p, self.count_distinct) == v).summary()})"
                                    for v in values[:SHOWN])) if values else f"none on {where}"
            return Probe(present == (self.expect == "present"), observed)
        present = len(hits) >= self.min_count
        if hits:
            observed = f"{len(hits)} on {where}: " + "; ".join(p.summary() for p in hits[:SHOWN])
        else:
            observed = f"none on {where} ({len(packets)} packets pass the filter)"
        return Probe(present == (self.expect == "present"), observed)
