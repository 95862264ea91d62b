"""The PKI of a scenario, made fresh for every run with strongSwan's `pki` tool: CAs, intermediates,
gateway certificates, and CRLs.

Keys and certificates never enter the repository; they live in the run's output. Validity is
relative to the moment they are made (an expired certificate is one whose not_after lies in the
past), so no clock is ever moved. A CA's CRL (DER, named as its URL says) lists the serials of the
certificates it revokes and is served over HTTP by a lab node (the `serve` step).
"""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from lab.errors import LabError
from lab.preflight import program
from lab.schema.pki import Authority, Pki
from lab.strongswan.render import PKI_PLUGINS

DATEFORM = "%Y-%m-%d %H:%M:%S"
DONE = ".complete"


class Credentials:
    """The files of a generated PKI: `cert(name)`, `key(name)`, the CRLs in `http`."""

    def __init__(self, pki: Pki, directory: Path):
        self.dir = directory
        if (directory / DONE).exists():
            return  # made once for the run (lab.run.scenarios), shared by its phases
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "pki.conf"
        conf.write_text(f"pki {{\n    load = {' '.join(PKI_PLUGINS)}\n}}\n")
        self._env = {**os.environ, "STRONGSWAN_CONF": str(conf)}
        now = time.time()
        for name, ca in pki.cas.items():
            self._pki(name, "--gen", *ca.key.pki_args(), output=self.key(name))
            if ca.issuer is None:
                self._pki(name, "--self", "--ca", "--in", str(self.key(name)), *ca.key.pki_args()[:2],
                          "--dn", ca.subject(), *self._validity(ca, now))
            else:
                self._issue(name, ca, pki, now, ca=True)
        for name, cert in pki.certs.items():
            self._pki(name, "--gen", *cert.key.pki_args(), output=self.key(name))
            self._issue(name, cert, pki, now, ca=False)
        self.http.mkdir(exist_ok=True)
        for name, ca in pki.cas.items():
            if ca.crl is not None:
                revoked = [a for c in ca.crl.revoked for a in ("--cert", str(self.cert(c)))]
                self._pki(name, "--signcrl", "--cacert", str(self.cert(name)), "--cakey", str(self.key(name)),
                          "--reason", "key-compromise", "--lifetime", "30", *revoked,
                          output=self.http / ca.crl.url.rsplit("/", 1)[1], der=True)
        (directory / DONE).touch()

    def cert(self, name: str) -> Path:
        return self.dir / f"{name}.crt.pem"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key.pem"

    @property
    def http(self) -> Path:
        """What the lab's web server publishes: the CRLs, under the names their URLs give."""
        return self.dir / "http"

    def _issue(self, name: str, entry: Authority, pki: Pki, now: float, ca: bool) -> None:
        issuer = pki.cas[entry.issuer]
        args = ["--issue", "--cacert", str(self.cert(entry.issuer)), "--cakey", str(self.key(entry.issuer)),
                "--in", str(self.key(name)), "--type", "priv", "--dn", entry.subject(), *self._validity(entry, now)]
        args += [a for san in getattr(entry, "san", []) for a in ("--san", san)]
        if getattr(entry, "serial", None):
            args += ["--serial", entry.serial]
        if issuer.crl is not None:
            args += ["--crl", issuer.crl.url]  # the CRL distribution point of the issuing CA
        self._pki(name, *args, *(["--ca"] if ca else []))

    @staticmethod
    def _validity(entry: Authority, now: float) -> list[str]:
        def stamp(offset: int) -> str:
            return time.strftime(DATEFORM, time.localtime(now + offset))
        return ["--not-before", stamp(entry.valid.not_before), "--not-after", stamp(entry.valid.not_after),
                "--dateform", DATEFORM]

    def _pki(self, name: str, *args: str, output: Path | None = None, der: bool = False) -> None:
        argv = [program("pki"), *args, "--outform", "der" if der else "pem"]
        proc = subprocess.run(argv, capture_output=True, env=self._env)
        if proc.returncode != 0:
            raise LabError(f"pki for '{name}' failed: {proc.stderr.decode(errors='replace').strip()}")
        path = output or self.cert(name)
        # private keys are readable by root only, though made for one run (results are uploaded)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if path.name.endswith(".key.pem") else 0o644)
        with os.fdopen(fd, "wb") as out:
            out.write(proc.stdout)
