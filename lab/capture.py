"""tcpdump on one node interface for the whole phase, written as a pcap for Wireshark."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from lab.errors import LabError
from lab.spec.base import IfName, NodeName, Spec

if TYPE_CHECKING:
    from lab.lab import Lab

READY_TIMEOUT = 5.0
SNAPLEN = 65535 + 14  # the largest IPv4 packet and its Ethernet header
BUFFER_KIB = 16384


class CaptureSpec(Spec):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    node: NodeName
    intf: IfName


class Capture:
    def __init__(self, lab: "Lab", spec: CaptureSpec):
        self.spec = spec
        self.path: Path = lab.phase_dir / f"{spec.name}.pcap"
        self.mac = lab.mac(spec.node, spec.intf)
        self.nat_t_ports = lab.nat_t_ports()
        self._decoded: dict[str, tuple[int, list]] = {}
        # what the report needs to read the pcap once the lab is gone
        (lab.phase_dir / f"{spec.name}.capture.json").write_text(json.dumps(
            {"node": spec.node, "intf": spec.intf, "mac": self.mac}))
        err = lab.phase_dir / f"{spec.name}.tcpdump.log"
        self._stderr = err.open("w+")
        # -U: each packet reaches the file at once, so checks can read it while it grows;
        # -Z root: Debian's tcpdump otherwise drops to a user that cannot write here.
        # -s/-B: on a veth (offloads on) libpcap gives every ring slot the full snap length,
        # so "-s 0" (256 KiB) in the default 2 MiB ring leaves 8 slots and a burst of
        # 65000-byte pings loses hundreds of packets; no lab packet exceeds 64 KiB.
        self.proc = lab.spawn(spec.node, ["tcpdump", "-i", spec.intf, "-n", "-s", str(SNAPLEN),
                                          "-B", str(BUFFER_KIB), "-U", "--immediate-mode",
                                          "-Z", "root", "-w", str(self.path)],
                              stdout=subprocess.DEVNULL, stderr=self._stderr)
        self._wait_listening(err)

    def _wait_listening(self, err: Path) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while "listening on" not in err.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"tcpdump on {self.spec.node}:{self.spec.intf} did not start: {err.read_text().strip()}")
            time.sleep(0.01)

    def packets(self, bpf: str = ""):
        """The pcap decoded, filtered by `bpf`. Checks poll this every 50 ms: while the file has
        not grown (a pcap only grows), the last decoding for the same filter still holds."""
        from lab import packets
        size = self.path.stat().st_size if self.path.exists() else 0
        if size < 24:
            return []
        cached = self._decoded.get(bpf)
        if cached is None or cached[0] != size:
            cached = self._decoded[bpf] = (size, packets.read(self.path, self.mac, bpf, self.nat_t_ports))
        return cached[1]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # tcpdump flushes and closes the pcap on SIGINT
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()


def kernel_drops(phase_dir: Path) -> dict[str, int]:
    """Packets each capture of a finished phase lost (tcpdump counts them when it exits):
    a check on such a capture saw less than the wire carried."""
    drops = {}
    for log in sorted(phase_dir.glob("*.tcpdump.log")):
        found = re.search(r"(\d+) packets? dropped by kernel", log.read_text())
        if found and int(found.group(1)):
            drops[log.name.removesuffix(".tcpdump.log")] = int(found.group(1))
    return drops
