"""One charon per IPsec node, with its own config, vici socket, pid file (private /run) and log.

The Python side talks to charon only through vici; swanctl is run inside the
node, exactly as an engineer would, so `lab shell gw1 -- swanctl --list-sas` and
the lab see the same daemon.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.errors import LabError, died
from lab.network import Network, stop_process
from lab.preflight import program
from lab.schema.gateway import GatewayConfig
from lab.strongswan import render

if TYPE_CHECKING:
    from lab.strongswan.pki import Credentials

SWANCTL_DIRS = ("x509ocsp", "x509aa", "x509ac", "x509crl", "pubkey", "rsa", "ecdsa", "bliss", "pkcs8", "pkcs12")
READY_TIMEOUT = 10.0
COUNTERS = ("bytes-in", "bytes-out", "packets-in", "packets-out")


def _text(value: Any) -> Any:
    """vici answers in bytes; checks and reports want text."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, list):
        return [_text(v) for v in value]
    if isinstance(value, dict):
        return {k: _text(v) for k, v in value.items()}
    return value


class CharonDaemon:
    def __init__(self, net: Network, node: str, config: GatewayConfig, folder: Path, runtime_dir: Path,
                 run_id: str, credentials: "Credentials | None"):
        """`folder`: the phase's, where configuration and log go; `runtime_dir`: a short path for
        the vici socket (unix socket paths are limited to 108 bytes)."""
        self.net = net
        self.node = node
        self.config = config
        self.run_id = run_id
        self.credentials = credentials
        self.dir = folder / node
        self.swanctl_dir = self.dir / "swanctl"
        self.swanctl_dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "strongswan.conf"
        self.log = folder / f"{node}.charon.log"
        self.socket = runtime_dir / f"{node}.vici"
        self.env = {"STRONGSWAN_CONF": str(self.conf), "SWANCTL_DIR": str(self.swanctl_dir)}
        self._proc: subprocess.Popen | None = None
        self._stopped = False  # by the lab (teardown, a restart step): its exit is no finding
        self._session = None
        self._socket: socket.socket | None = None
        # one request at a time on the session: checks observed side by side share it
        self._session_lock = threading.Lock()
        self._initiators: list[threading.Thread] = []
        self.outcomes: list[str] = []

    # -- life cycle -------------------------------------------------------
    def start(self) -> None:
        self.conf.write_text(render.strongswan_conf(self.node, self.run_id, self.config, self.socket, self.log))
        self._write_swanctl()
        out = (self.dir / "charon.stdout").open("w")
        self._proc = self.net.spawn(self.node, [program("charon")], env={**os.environ, **self.env},
                                    stdout=out, stderr=subprocess.STDOUT)
        self._stopped = False
        out.close()
        self._session, self._socket = self._connect()
        self.load()
        self._set_mtu()

    def _connect(self):
        import vici

        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self._proc.poll() is not None:
                raise died(f"charon on {self.node}", self._proc.returncode, self.dir / "charon.stdout", self.log)
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(str(self.socket))
                return vici.Session(sock), sock
            except OSError:
                sock.close()
                if time.monotonic() > deadline:
                    raise LabError(f"charon on {self.node}: vici socket did not answer within {READY_TIMEOUT:g}s") from None
                time.sleep(0.01)

    def stop(self, kill: bool = False) -> None:
        """SIGTERM: charon deletes its SAs, telling the peers. kill: SIGKILL, as a crash or a
        power cut leaves them: the peers are told nothing."""
        self._stopped = True
        if self._proc:
            stop_process(self._proc, signal.SIGKILL if kill else signal.SIGTERM, timeout=5)
        for thread in self._initiators:
            thread.join(timeout=2)
        if self._socket is not None:
            self._socket.close()

    def restart(self, kill: bool = False) -> None:
        """Stop (see stop) and start again with the current configuration; the log goes on in
        the same file, as a gateway's log does across a reboot."""
        self.stop(kill=kill)
        self._initiators.clear()
        self.start()

    # -- configuration ----------------------------------------------------
    def _write_swanctl(self) -> None:
        (self.swanctl_dir / "swanctl.conf").write_text(render.swanctl_conf(self.node, self.run_id, self.config))
        self._install_credentials()

    def _install_credentials(self) -> None:
        """swanctl/x509 (own certs), private (their keys), x509ca (trusted and intermediate CAs)."""
        certs, _ = self.config.credential_refs()
        pki = self.credentials
        files = {"x509": {n: pki.cert(n) for n in certs} if certs else {},
                 "private": {n: pki.key(n) for n in certs} if certs else {},
                 "x509ca": {n: pki.cert(n) for n in self.config.trust}}
        for sub, wanted in files.items():
            folder = self.swanctl_dir / sub
            if folder.exists():
                shutil.rmtree(folder)  # a reload must also forget what the change removed
            folder.mkdir(mode=0o700 if sub == "private" else 0o777)  # keys: root only, as swanctl has them
            for name, source in wanted.items():
                shutil.copyfile(source, folder / f"{name}.pem")
        for sub in SWANCTL_DIRS:  # swanctl --load-all complains about each one missing
            (self.swanctl_dir / sub).mkdir(exist_ok=True)

    def load(self) -> None:
        """`swanctl --load-all` inside the node: what an engineer runs after editing."""
        self.net.exec(self.node, ["env", *(f"{k}={v}" for k, v in self.env.items()),
                                  "swanctl", "--load-all", "--clear", "--noprompt"])

    def change(self, patch: dict[str, Any]) -> None:
        """swanctl.conf changes are reloaded; strongswan.conf (`charon`) changes need a restart,
        as on a real gateway whose listen port is changed. So does the tunnel MTU: libipsec
        reads ipsec0's MTU once and sizes its TUN reads by it, so raising the MTU of a running
        daemon truncates packets."""
        before = (self.config.charon, self.config.tunnel_mtu)
        self.config = self.config.patched(patch)
        if (self.config.charon, self.config.tunnel_mtu) != before:
            self.restart()
            return
        self._write_swanctl()
        self.load()

    def _set_mtu(self) -> None:
        if self.config.tunnel_mtu is not None:
            self.net.exec(self.node, ["ip", "link", "set", "dev", "ipsec0", "mtu", str(self.config.tunnel_mtu)])

    # -- control and state -------------------------------------------------
    def initiate(self, child: str | None = None, ike: str | None = None) -> None:
        """Negotiate in the background: success or failure is for the checks to observe."""
        request = {k: v for k, v in (("child", child), ("ike", ike)) if v}
        session, sock = self._connect()
        what = " and ".join(f"{'CHILD_SA' if k == 'child' else 'IKE_SA'} {v}" for k, v in request.items())

        def run() -> None:
            try:
                for _ in session.initiate(request):
                    pass
                self.outcomes.append(f"{self.node} initiated {what}: established.")
            except Exception as exc:  # charon's answer (failure) or charon stopping
                said = str(exc).removeprefix("Command failed: ").rstrip(".")
                self.outcomes.append(f"{self.node} initiated {what}: it did not come up ({said}).")
            finally:
                sock.close()

        thread = threading.Thread(target=run, name=f"initiate-{self.node}", daemon=True)
        thread.start()
        self._initiators.append(thread)

    def terminate(self, child: str | None = None, ike: str | None = None) -> None:
        request = {k: v for k, v in (("child", child), ("ike", ike)) if v}
        request["timeout"] = 5000
        try:
            self._vici("terminate", lambda: list(self._session.terminate(request)))
        except LabError as exc:
            # what is not there is already terminated: a step that clears a tunnel holds
            # whatever state the lab is in (a re-armed fault may find it mid-outage)
            if "no matching SAs to terminate found" not in str(exc):
                raise

    def list_sas(self, ike: str) -> list[dict[str, Any]]:
        """IKE_SAs named `ike`, as [{state, version, proposal, children: [{name, state, local_ts, remote_ts,
        bytes_in, bytes_out, packets_in, packets_out}]}]."""
        result = []
        for entry in self._vici("list-sas", lambda: list(self._session.list_sas({"ike": ike}))):
            for sa in _text(entry).values():
                children = [{"name": c["name"], "state": c["state"],
                             "local_ts": c.get("local-ts", []), "remote_ts": c.get("remote-ts", []),
                             **{k.replace("-", "_"): int(c.get(k, 0)) for k in COUNTERS}}
                            for c in sa.get("child-sas", {}).values()]
                result.append({"state": sa["state"], "version": int(sa.get("version", 0)),
                               "proposal": "-".join(sa[k].lower() for k in ("encr-alg", "integ-alg", "prf-alg", "dh-group")
                                                    if sa.get(k)), "children": children})
        return result

    def _vici(self, command: str, call):
        """A vici request; a daemon that died meanwhile is reported with its reason."""
        try:
            with self._session_lock:
                return call()
        except Exception as exc:  # vici's own errors, or the socket of a dead daemon
            if self._proc is not None and self._proc.poll() is not None:
                raise died(f"charon on {self.node}", self._proc.returncode, self.dir / "charon.stdout",
                           self.log) from None
            raise LabError(f"charon on {self.node}: vici {command}: {exc}") from None

    def exited(self) -> int | None:
        """The exit status of a charon that ended by itself or was killed from outside the lab
        (None while it runs, or when the lab stopped it)."""
        proc = self._proc
        return None if self._stopped or proc is None else proc.poll()

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
