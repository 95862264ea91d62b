"""The PKI of a scenario, made fresh for every run with strongSwan's `pki` tool: CAs, intermediates, gateway certs.

Keys and certificates never enter the repository; they live in the run's output.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from lab.errors import LabError
from lab.preflight import program
from lab.schema.pki import Pki
from lab.strongswan.render import PKI_PLUGINS

LIFETIME_DAYS = "30"


class Credentials:
    """The files of a generated PKI: `cert(name)`, `key(name)`, `ca(name)`."""

    def __init__(self, pki: Pki, directory: Path):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "pki.conf"
        conf.write_text(f"pki {{\n    load = {' '.join(PKI_PLUGINS)}\n}}\n")
        self._env = {**os.environ, "STRONGSWAN_CONF": str(conf)}
        for name, ca in pki.cas.items():
            self._key(name)
            if ca.issuer is None:
                self._pki(name, "--self", "--ca", "--in", str(self.key(name)), "--type", "priv",
                          "--dn", f"CN={ca.cn}")
            else:
                self._issue(name, ca.issuer, ca.cn, [], ca=True)
        for name, cert in pki.certs.items():
            self._key(name)
            self._issue(name, cert.issuer, cert.cn, cert.san, ca=False)

    def cert(self, name: str) -> Path:
        return self.dir / f"{name}.crt.pem"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key.pem"

    def _key(self, name: str) -> None:
        self._pki(name, "--gen", "--type", "ecdsa", "--size", "256", output=self.key(name))

    def _issue(self, name: str, issuer: str, cn: str, sans: list[str], ca: bool) -> None:
        args = ["--issue", "--cacert", str(self.cert(issuer)), "--cakey", str(self.key(issuer)),
                "--in", str(self.key(name)), "--type", "priv", "--dn", f"CN={cn}"]
        args += [a for san in sans for a in ("--san", san)]
        self._pki(name, *args, *(["--ca"] if ca else []))

    def _pki(self, name: str, *args: str, output: Path | None = None) -> None:
        argv = [program("pki"), *args, "--outform", "pem"]
        if "--gen" not in args:
            argv += ["--lifetime", LIFETIME_DAYS]
        proc = subprocess.run(argv, capture_output=True, env=self._env)
        if proc.returncode != 0:
            raise LabError(f"pki for '{name}' failed: {proc.stderr.decode(errors='replace').strip()}")
        (output or self.cert(name)).write_bytes(proc.stdout)
