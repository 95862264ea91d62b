"""The relay as a lab process: dummy interface, config file, start, readiness."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from lab.errors import LabError, died, exit_reason
from lab.network import Network, stop_process
from lab.schema.relay import TcpEncap

READY_TIMEOUT = 10.0


def add_addresses(net: Network, node: str, encap: TcpEncap) -> None:
    """Before charon starts: the addresses charon and the relay talk over, on the node's own
    loopback (private to its namespace; this kernel has no dummy interfaces)."""
    net.exec(node, ["ip", "-batch", "-"], input="\n".join(
        f"addr add {addr}/32 dev lo" for addr in encap.addresses()))


class RelayProcess:
    def __init__(self, net: Network, node: str, encap: TcpEncap, folder: Path):
        self.node = node
        self._stopped = False  # by the lab's teardown: its exit is no finding
        self.log = folder / f"{node}.relay.log"
        config = folder / node / "relay.json"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(json.dumps({**encap.model_dump(), "log": str(self.log)}, indent=2))
        stderr = folder / node / "relay.stderr"
        with stderr.open("w") as err:
            self.proc = net.spawn(node, [sys.executable, "-m", "lab.transport.relay", str(config)],
                                  stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + READY_TIMEOUT
        while "] ready" not in self.log_text():
            if self.proc.poll() is not None:
                raise died(f"TCP relay on {node}", self.proc.returncode, stderr, self.log)
            if time.monotonic() > deadline:
                raise LabError(f"TCP relay on {node} did not start within {READY_TIMEOUT:g}s: "
                               f"{exit_reason(stderr, self.log)}")
            time.sleep(0.01)

    def exited(self) -> int | None:
        """The relay's exit status when it ended before the lab stopped it (else None)."""
        return None if self._stopped else self.proc.poll()

    def stop(self) -> None:
        self._stopped = True
        stop_process(self.proc)

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""
