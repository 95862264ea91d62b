"""A lab node serves files over HTTP: the run's CRLs (the distribution point certificates
name), and files of a given size to download through a tunnel."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from lab.errors import LabError, died
from lab.schema.refs import Listener, Ref
from lab.schema.types import IpAddr, matching
from lab.steps import Step, register

if TYPE_CHECKING:
    from lab.run.lab import RunningLab

READY_TIMEOUT = 10.0
FileName = matching(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", "a file name",
                    "letters, digits, '.', '_' or '-' (no folders), at most 64 characters")
MAX_FILE = 64 * 1024 * 1024


@register
class ServeStep(Step):
    """python's http.server in the node, on `address:port`, publishing what the scenario's PKI
    makes public (its CRLs, under the file names of their URLs) and `files`: each name with
    its size in bytes, made for the phase (a download that must cross the tunnel)."""

    kind: Literal["serve"] = "serve"
    address: IpAddr
    port: int = Field(80, ge=1, le=65535)
    files: dict[FileName, int] = Field({}, max_length=16)

    def refs(self) -> list[Ref]:
        return [*super().refs(), Listener((), self.node, self.address, self.port, crls=not self.files)]

    @field_validator("files")
    @classmethod
    def _sizes(cls, files: dict[str, int]) -> dict[str, int]:
        wrong = [f"file '{name}' of {size} bytes" for name, size in files.items() if not 1 <= size <= MAX_FILE]
        if wrong:
            raise ValueError(f"{', '.join(wrong)}; allowed: 1 to {MAX_FILE} bytes")
        return files

    def _folder(self) -> str:
        return "www" if self.files else "pki/http"

    def apply(self, lab: "RunningLab") -> None:
        if lab.credentials is None and not self.files:
            raise LabError(f"[{self.node}] serve: nothing to publish (the scenario has no PKI, the step no files)")
        # http.server as lab.httpd runs it: without a reverse DNS lookup that would hang the start
        argv = [sys.executable, "-m", "lab.httpd", self.address, str(self.port), str(self._publish(lab))]
        log = lab.phase_dir / f"{self.node}.http.log"
        with log.open("w") as out:
            proc = lab.spawn(self.node, argv, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_TIMEOUT
        while "Serving HTTP" not in log.read_text():
            if proc.poll() is not None:
                raise died(f"http server on {self.node}", proc.returncode, log)
            if time.monotonic() > deadline:
                raise LabError(f"[{self.node}] http server did not start within {READY_TIMEOUT:g}s")
            time.sleep(0.02)

    def _publish(self, lab: "RunningLab") -> Path:
        """The folder served: the PKI's CRLs alone, or a folder of this server's own (the PKI's
        may be shared by phases running side by side) with the files and any CRLs."""
        if not self.files:
            return lab.credentials.http
        www = lab.runtime_dir / f"www-{self.node}-{self.port}"
        www.mkdir(exist_ok=True)
        if lab.credentials is not None:
            for crl in lab.credentials.http.iterdir():
                shutil.copyfile(crl, www / crl.name)
        for name, size in self.files.items():
            with (www / name).open("wb") as out:
                out.truncate(size)  # zeros: what a check measures is how many bytes arrive
        return www

    def linux(self) -> str:
        # what an engineer types; the lab runs lab.httpd, the same server (see there)
        made = "".join(f"truncate -s {size} www/{name}; " for name, size in self.files.items())
        return (f"[{self.node}] {made}python3 -m http.server --bind {self.address} --directory {self._folder()} "
                f"{self.port}")
