"""One running lab: network, charon daemons and captures of one phase, and their teardown.

A lab is built inside a sandbox (lab.sandbox): its processes, namespaces and runtime files
end with the sandbox whatever happens. Teardown is still orderly, for what it leaves on
disk: captures are flushed before the daemons stop, and what every daemon said is kept.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from lab.capture.tcpdump import PacketCapture
from lab.errors import LabError
from lab.monitor import PingMonitor
from lab.network import Network, stop_process
from lab.sandbox import outer_pid
from lab.schema.load import LoadedScenario
from lab.strongswan.charon import CharonDaemon
from lab.strongswan.pki import DONE, Credentials
from lab.transport.process import RelayProcess, add_addresses


@dataclass(frozen=True)
class Gone:
    """A daemon of the lab that ended without the lab stopping it: a finding, never a detail."""

    what: str  # charon, relay or capture
    node: str
    name: str  # the capture point (a capture), else the node
    status: int  # its exit code, or minus the signal that killed it

    @property
    def key(self) -> str:
        return f"{self.what} {self.name}"

    def how(self) -> dict[str, str]:
        """How it ended, in English and Chinese."""
        if self.status < 0:
            try:
                sig = signal.Signals(-self.status).name
            except ValueError:
                sig = f"signal {-self.status}"
            return {"en": f"killed by {sig}", "zh": f"被 {sig} 终止"}
        return {"en": f"exited with status {self.status}", "zh": f"退出码 {self.status}"}

    def where(self) -> dict[str, str]:
        if self.what == "capture":
            return {"en": f"the capture {self.name} ({self.node})", "zh": f"抓包 {self.name}({self.node})"}
        what = {"charon": "charon", "relay": "the TCP relay"}[self.what]
        return {"en": f"{what} on {self.node}", "zh": f"{self.node} 上的 {'charon' if self.what == 'charon' else 'TCP 中继'}"}


class RunningLab:
    """One phase's lab (or a workshop's), built on enter and torn down on exit."""

    def __init__(self, scenario: LoadedScenario, phase_dir: Path, run_id: str):
        if outer_pid() is None:  # nothing of a lab is host root, nor left in the host's /tmp
            raise LabError("a lab is built only inside a sandbox of its own (lab.run.worker.call)")
        self.scenario = scenario
        self.phase_dir = phase_dir
        self.run_id = run_id
        # unix socket paths are limited to 108 bytes, so vici sockets live here (the sandbox's
        # private /tmp: it goes with the sandbox)
        self.runtime_dir = Path(tempfile.mkdtemp(prefix=f"ipsec-lab-{run_id}-"))
        self.network: Network | None = None
        self.credentials: Credentials | None = None
        self._charons: dict[str, CharonDaemon] = {}
        self._captures: dict[str, PacketCapture] = {}
        self._relays: dict[str, RelayProcess] = {}
        self.monitors: dict[str, PingMonitor] = {}
        self._procs: list[subprocess.Popen] = []
        # What log and capture checks read: everything of the phase, or (a workshop's `lab
        # check`) only what came after observe_from_now(): the lab now, not its history.
        self.since: float | None = None
        self._log_marks: dict[tuple[str, str], int] = {}

    def __enter__(self) -> "RunningLab":
        try:
            self.build()
        except BaseException:
            with _signals_deferred():
                self.teardown()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        with _signals_deferred():
            self.teardown()

    def build(self) -> None:
        self.phase_dir.mkdir(parents=True, exist_ok=True)
        pki = self.scenario.pki
        shared = self.phase_dir.parent / "pki"  # made once for the run when its phases run side by side
        where = shared if (shared / DONE).exists() else self.phase_dir / "pki"
        self.credentials = Credentials(pki, where) if (pki.cas or pki.certs) else None
        self.network = net = Network(self.scenario.topology, self.run_id)
        # Captures first, so they see the first IKE packet.
        nat_t_ports = self.scenario.nat_t_ports()
        for point in self.scenario.spec.captures:
            self._captures[point.name] = PacketCapture(net, point, self.phase_dir, nat_t_ports)
        for node, encap in self.scenario.tcp_encap.items():
            add_addresses(net, node, encap)
        for node, config in self.scenario.gateways.items():
            charon = CharonDaemon(net, node, config, self.phase_dir, self.runtime_dir, self.run_id, self.credentials)
            self._charons[node] = charon
            charon.start()
        for node, encap in self.scenario.tcp_encap.items():
            self._relays[node] = RelayProcess(net, node, encap, self.phase_dir)

    def teardown(self) -> None:
        errors = []
        # Captures end first: what charon and the kernel say while the lab comes apart (ICMP port
        # unreachable for a daemon already gone) is no part of the phase.
        parts = [*(("capture " + c.point.name, c) for c in self._captures.values()),
                 *(("charon " + n, c) for n, c in self._charons.items()),
                 *(("relay " + n, r) for n, r in self._relays.items()),
                 *(("monitor " + n, m) for n, m in self.monitors.items())]
        for name, part in parts:
            try:
                part.stop()
            except Exception as exc:  # keep tearing down the rest
                errors.append(f"{name}: {exc}")
        for proc in self._procs:
            stop_process(proc)
        if self.network is not None:
            self.network.stop()
            self.network = None
        if errors:
            raise LabError("teardown: " + "; ".join(errors))

    # -- what steps and checks use ------------------------------------------
    def spawn(self, node: str, argv: list[str], **kwargs: Any) -> subprocess.Popen:
        """A process of a step (a web server, traffic), stopped at teardown."""
        proc = self._net().spawn(node, argv, **kwargs)
        self._procs.append(proc)
        return proc

    def exec(self, node: str, argv: list[str], input: str | None = None, check: bool = True,
             timeout: float = 30) -> subprocess.CompletedProcess:
        return self._net().exec(node, argv, input=input, check=check, timeout=timeout)

    def mac(self, node: str, intf: str) -> str:
        return self._net().mac(node, intf)

    def node_pids(self) -> dict[str, int]:
        """The shell of each node, as the sandbox numbers it: `mnexec -a PID` enters its namespaces."""
        return {name: node.pid for name, node in self._net().nodes.items()}

    def interfaces(self) -> dict[str, dict[str, str]]:
        """Each node's interfaces of the topology and their MAC (how a capture of one tells in from out)."""
        found: dict[str, dict[str, str]] = {}
        for link in self.scenario.topology.links:
            for end in link.ends:
                found.setdefault(end.node, {})[end.intf] = self.mac(end.node, end.intf)
        return found

    def charon_env(self, node: str) -> dict[str, str]:
        return self._charons[node].env if node in self._charons else {}

    def charon(self, node: str) -> CharonDaemon:
        return self._charons[node]

    def capture(self, name: str) -> PacketCapture:
        return self._captures[name]

    def relay(self, node: str) -> RelayProcess:
        return self._relays[node]

    def daemons(self) -> list[str]:
        """What the lab keeps running, each as Gone.key names it."""
        return [*(f"charon {n}" for n in self._charons), *(f"relay {n}" for n in self._relays),
                *(f"capture {n}" for n in self._captures)]

    def gone(self) -> list[Gone]:
        """Daemons that ended while the lab runs (killed from a node's shell, crashed): none the
        lab stopped itself (a restart step, the teardown)."""
        found = []
        for what, parts in (("charon", self._charons), ("relay", self._relays), ("capture", self._captures)):
            for name, part in list(parts.items()):
                status = part.exited()
                if status is not None:
                    found.append(Gone(what, part.point.node if what == "capture" else name, name, status))
        return found

    def observe_from_now(self) -> None:
        self.since = time.time()  # pcap time stamps are wall clock
        self._log_marks = {(n, "charon"): len(c.log_lines()) for n, c in self._charons.items()}
        self._log_marks |= {(n, "relay"): len(r.log_text().splitlines()) for n, r in self._relays.items()}

    def log_mark(self, node: str, source: str) -> int:
        """Lines of a node's log that came before observe_from_now() (0: none are skipped)."""
        return self._log_marks.get((node, source), 0)

    def start_monitor(self, name: str, node: str, argv: list[str], every: float) -> None:
        """A monitor started again (a workshop's `lab check` retries the start steps) starts its
        record afresh: the old ping stops first, or both would write the one log."""
        if name in self.monitors:
            self.monitors[name].stop()
        self.monitors[name] = PingMonitor(self._net(), name, node, argv, every, self.phase_dir)

    def _net(self) -> Network:
        if self.network is None:
            raise LabError("the lab is not built")
        return self.network


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """A second Ctrl-C (or SIGTERM) must not cut a teardown short: hold it until the end."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:
            raise KeyboardInterrupt
