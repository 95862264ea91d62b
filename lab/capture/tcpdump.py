"""tcpdump on one node interface for the whole phase, written as a pcap for Wireshark."""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from lab.capture import SNAPLEN
from lab.errors import LabError, died, exit_reason
from lab.network import Network, stop_process
from lab.schema.scenario import CapturePoint

READY_TIMEOUT = 5.0
BUFFER_KIB = 16384
CAPTURE_PRIORITY = 10  # SCHED_FIFO, above every normal process


def offloads_off(intf: str) -> list[str]:
    return ["ethtool", "-K", intf, "tso", "off", "gso", "off", "gro", "off"]


class PacketCapture:
    """tcpdump on one capture point for the whole phase."""

    def __init__(self, net: Network, point: CapturePoint, folder: Path, nat_t_ports: frozenset[int]):
        self.point = point
        self.path: Path = folder / f"{point.name}.pcap"
        self.mac = net.mac(point.node, point.intf)
        self.nat_t_ports = nat_t_ports
        self._stopped = False  # by the lab's teardown: its exit is no finding
        self._decoded: dict[str, tuple[int, list]] = {}
        # what the report needs to read the pcap once the lab is gone
        (folder / f"{point.name}.capture.json").write_text(json.dumps(
            {"node": point.node, "intf": point.intf, "mac": self.mac}))
        err = folder / f"{point.name}.tcpdump.log"
        self._stderr = err.open("w+")
        # libpcap's immediate mode gives every ring slot the snap length when the interface
        # reports offloads, and the MTU (+18) when it does not: with offloads off, the 16 MiB
        # ring holds some 10,000 packets instead of 256, so a burst of 65000-byte pings fits.
        net.exec(point.node, offloads_off(point.intf))
        # -U: each packet reaches the file at once, so checks can read it while it grows;
        # -Z root: Debian's tcpdump otherwise drops to a user that cannot write here.
        self.proc = net.spawn(point.node, ["tcpdump", "-i", point.intf, "-n", "-s", str(SNAPLEN),
                                          "-B", str(BUFFER_KIB), "-U", "--immediate-mode",
                                          "-Z", "root", "-w", str(self.path)],
                              stdout=subprocess.DEVNULL, stderr=self._stderr)
        # Ahead of whatever else the machine runs: a capture that falls behind loses packets,
        # and a verdict must not rest on what was lost.
        with contextlib.suppress(OSError):
            os.sched_setscheduler(self.proc.pid, os.SCHED_FIFO, os.sched_param(CAPTURE_PRIORITY))
        self._wait_listening(err)

    def _wait_listening(self, err: Path) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while "listening on" not in err.read_text():
            if self.proc.poll() is not None:
                raise died(f"tcpdump on {self.point.node}:{self.point.intf}", self.proc.returncode, err)
            if time.monotonic() > deadline:
                raise LabError(f"tcpdump on {self.point.node}:{self.point.intf} did not start within "
                               f"{READY_TIMEOUT:g}s: {exit_reason(err)}")
            time.sleep(0.01)

    def packets(self, bpf: str = ""):
        """The pcap decoded, filtered by `bpf`. Checks poll this every 50 ms: while the file has
        not grown (a pcap only grows), the last decoding for the same filter still holds."""
        from lab.capture import packets
        size = self.path.stat().st_size if self.path.exists() else 0
        if size < 24:
            return []
        cached = self._decoded.get(bpf)
        if cached is None or cached[0] != size:
            cached = self._decoded[bpf] = (size, packets.read(self.path, self.mac, bpf, self.nat_t_ports))
        return cached[1]

    def exited(self) -> int | None:
        """tcpdump's exit status when it ended before the lab stopped it (else None)."""
        return None if self._stopped else self.proc.poll()

    def stop(self) -> None:
        self._stopped = True
        stop_process(self.proc, signal.SIGINT)  # tcpdump flushes and closes the pcap on SIGINT
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
