"""A lab node serves the run's CRLs over HTTP: the distribution point certificates name."""
from __future__ import annotations

import subprocess
import sys
import time
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from lab.errors import LabError, died
from lab.schema.refs import Listener, Ref
from lab.schema.types import IpAddr
from lab.steps import Step, register

if TYPE_CHECKING:
    from lab.run.lab import RunningLab

READY_TIMEOUT = 10.0


@register
class ServeStep(Step):
    """python's http.server in the node, on `address:port`, publishing what the scenario's PKI
    makes public (its CRLs, under the file names of their URLs)."""

    kind: Literal["serve"] = "serve"
    address: IpAddr
    port: int = Field(80, ge=1, le=65535)

    def refs(self) -> list[Ref]:
        return [*super().refs(), Listener((), self.node, self.address, self.port)]

    def argv(self) -> list[str]:
        return [sys.executable, "-u", "-m", "http.server", "--bind", self.address, "--directory", "pki/http", str(self.port)]

    def apply(self, lab: "RunningLab") -> None:
        if lab.credentials is None:
            raise LabError(f"[{self.node}] serve: the scenario has no PKI to publish")
        log = lab.phase_dir / f"{self.node}.http.log"
        argv = self.argv()
        argv[argv.index("pki/http")] = str(lab.credentials.http)
        with log.open("w") as out:
            proc = lab.spawn(self.node, argv, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_TIMEOUT
        while "Serving HTTP" not in log.read_text():
            if proc.poll() is not None:
                raise died(f"http server on {self.node}", proc.returncode, log)
            if time.monotonic() > deadline:
                raise LabError(f"[{self.node}] http server did not start within {READY_TIMEOUT:g}s")
            time.sleep(0.02)

    def linux(self) -> str:
        return f"[{self.node}] python3 -m http.server --bind {self.address} --directory pki/http {self.port}"
