"""What the lab needs from the machine, checked before anything is built.

Every requirement names the Debian package that provides it, so whatever is missing comes
with the command that installs it (Mininet's `pathCheck`, for the whole lab at once).
`tests/test_install_truth.py` proves this table against dpkg and against the Makefile's
package lists, so a package that was only ever installed by hand cannot hide here.

Only the standard library is imported at module level: `python3 -m lab.preflight` runs
before the venv exists, and inside the fresh network namespace of the kernel probe.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PLUGIN_DIR = Path("/usr/lib/ipsec/plugins")
CACHE_NAME = "ipsec-lab/kernel-probe.json"  # under the account's cache folder


@dataclass(frozen=True)
class Program:
    name: str  # argv[0] as the lab writes it
    path: str  # where Debian installs it
    package: str
    purpose: str


@dataclass(frozen=True)
class Plugin:
    name: str  # as in strongswan.conf `load`
    package: str

    @property
    def path(self) -> str:
        return str(PLUGIN_DIR / f"libstrongswan-{self.name}.so")


@dataclass(frozen=True)
class Item:
    """One line of `lab doctor`: a requirement and whether the machine meets it."""

    what: str
    ok: bool
    detail: str = ""
    package: str | None = None


PROGRAMS: dict[str, Program] = {p.name: p for p in (
    Program("charon", "/usr/lib/ipsec/charon", "strongswan-charon", "the IKE daemon of every gateway"),
    Program("swanctl", "/usr/sbin/swanctl", "strongswan-swanctl", "loads a gateway's configuration"),
    Program("pki", "/usr/bin/pki", "strongswan-pki", "issues each run's certificates"),
    Program("tcpdump", "/usr/bin/tcpdump", "tcpdump", "captures"),
    Program("nft", "/usr/sbin/nft", "nftables", "filters and NAT inside nodes"),
    Program("ip", "/usr/sbin/ip", "iproute2", "addresses, routes, policy rules"),
    Program("ping", "/usr/bin/ping", "iputils-ping", "traffic and reachability checks"),
    Program("sysctl", "/usr/sbin/sysctl", "procps", "per-namespace kernel settings"),
    Program("ethtool", "/usr/sbin/ethtool", "ethtool", "offloads off, so captures see wire-sized packets"),
    Program("conntrack", "/usr/sbin/conntrack", "conntrack", "reads a NAT node's connection tracking table"),
    Program("curl", "/usr/bin/curl", "curl", "HTTP downloads through a tunnel (download checks)"),
    Program("mnexec", "/usr/bin/mnexec", "mininet", "enters a node's namespaces"),
    Program("env", "/usr/bin/env", "coreutils", "runs swanctl with a node's environment"),
    Program("newuidmap", "/usr/bin/newuidmap", "uidmap", "maps a lab's user ids to the account's subordinate ids"),
    Program("newgidmap", "/usr/bin/newgidmap", "uidmap", "maps a lab's group ids to the account's subordinate ids"),
    Program("nsenter", "/usr/bin/nsenter", "util-linux", "enters a running lab's sandbox (lab shell, --keep)"),
    Program("dot", "/usr/bin/dot", "graphviz", "lays out the report's topology"),
)}

# Every plugin named in a `load` list the lab renders (lab/strongswan/render.py).
PLUGINS: dict[str, Plugin] = {p.name: p for p in (
    *(Plugin(n, "libstrongswan") for n in ("random", "nonce", "kdf", "pem", "pkcs1", "pkcs8", "x509",
                                           "pubkey", "revocation", "constraints", "kernel-netlink")),
    Plugin("openssl", "libstrongswan-standard-plugins"),
    Plugin("kernel-libipsec", "libcharon-extra-plugins"),
    Plugin("curl", "libstrongswan-extra-plugins"),
    Plugin("socket-default", "strongswan-libcharon"),
    Plugin("vici", "strongswan-swanctl"),
)}

# What `make` itself and the test suite use, beyond what a run uses.
SETUP_FILES = {"python3.11-venv": "/usr/lib/python3.11/ensurepip/__init__.py"}  # python3 -m venv
TEST_FILES = {"chromium": "/usr/bin/chromium",
              "fonts-wqy-zenhei": "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
              "strace": "/usr/bin/strace"}

KERNEL_FEATURES = {
    "netns": "network namespaces",
    "veth": "veth pairs",
    "bridge": "Linux bridges",
    "tun": "TUN devices (kernel-libipsec's ipsec0)",
    "sysctl": "per-namespace net.* sysctls",
    "rules": "policy routing (ip rule)",
    "nftables": "nftables with NAT and conntrack",
}


def check(deep_kernel: bool = True) -> list[Item]:
    """Everything the lab needs, each as met or not. Stat calls, and a kernel probe (in a lab
    sandbox, so it also proves one can be made) cached per boot."""
    items = [Item(f"program {p.name}", os.access(p.path, os.X_OK), p.path, p.package) for p in PROGRAMS.values()]
    items += [Item(f"strongSwan plugin {p.name}", os.path.exists(p.path), p.path, p.package)
              for p in PLUGINS.values()]
    items += sandbox_items()
    if deep_kernel and all(i.ok for i in items):
        for feature, error in kernel_features().items():
            items.append(Item(f"kernel: {KERNEL_FEATURES[feature]}", error is None, error or ""))
    return items


def sandbox_items() -> list[Item]:
    """What a lab sandbox needs (lab.sandbox): the account's subordinate ids, user namespaces, TUN."""
    from lab.sandbox.identity import SandboxUnavailable, lab_identity

    try:
        who = lab_identity()
        ids = Item(f"subordinate ids of {who.name}", True,
                   f"uids {who.subuids.start}+{who.subuids.count}, gids {who.subgids.start}+{who.subgids.count}")
    except SandboxUnavailable as exc:
        ids = Item("subordinate ids for the lab's account", False, str(exc))
    try:
        limit = int(Path("/proc/sys/user/max_user_namespaces").read_text())
    except (OSError, ValueError):
        limit = 0
    userns = Item("user namespaces (user.max_user_namespaces)", limit > 0,
                  str(limit) if limit > 0 else "0: as root, run: sysctl -w user.max_user_namespaces=10000")
    tun = Item("TUN device /dev/net/tun (kernel-libipsec's ipsec0)", os.path.exists("/dev/net/tun"),
               "" if os.path.exists("/dev/net/tun") else "as root, run: modprobe tun")
    return [ids, userns, tun]


def missing(items: list[Item]) -> list[Item]:
    return [i for i in items if not i.ok]


def install_hint(items: list[Item]) -> str:
    packages = sorted({i.package for i in items if i.package})
    if not packages:
        return ""
    return ("install with: sudo apt-get install --no-install-recommends " + " ".join(packages)
            + "   (or: make setup)")


def program(name: str) -> str:
    """The path of a program the lab runs; a program missing from the table is a bug here."""
    return PROGRAMS[name].path


def declared(argv0: str) -> bool:
    """Whether a command the lab is about to run is one of PROGRAMS (by name or path)."""
    return argv0 in PROGRAMS or any(p.path == argv0 for p in PROGRAMS.values())


# -- the kernel probe -----------------------------------------------------------------

def _boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def _cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / CACHE_NAME


def kernel_features() -> dict[str, str | None]:
    """feature -> None when it works, else what failed. Probed in a throwaway lab sandbox
    (nothing of the host is touched) and cached in the account's cache until the next boot."""
    cache = _cache()
    try:
        cached = json.loads(cache.read_text())
        if cached.get("boot_id") == _boot_id() and set(cached["features"]) == set(KERNEL_FEATURES):
            return cached["features"]
    except (OSError, ValueError, KeyError):
        pass
    try:
        proc = subprocess.run([sys.executable, "-m", "lab.preflight", "--probe-kernel"], capture_output=True,
                              text=True, timeout=20, cwd=Path(__file__).parent.parent)
    except subprocess.SubprocessError as exc:
        return {f: f"not probed: {exc}" for f in KERNEL_FEATURES} | {"netns": "cannot create a network namespace"}
    try:
        features = json.loads(proc.stdout)
    except ValueError:
        return {f: f"probe failed: {proc.stderr.strip()[-200:]}" for f in KERNEL_FEATURES}
    if all(v is None for v in features.values()):
        try:
            cache.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            cache.write_text(json.dumps({"boot_id": _boot_id(), "features": features}))
        except OSError:
            pass  # no cache: the next run probes again
    return features


def _probe_in_fresh_namespace() -> dict[str, str | None]:
    """Runs inside the throwaway namespace: try each feature for real."""
    import fcntl
    import struct

    results: dict[str, str | None] = {"netns": None}

    def attempt(feature: str, fn) -> None:
        try:
            fn()
            results[feature] = None
        except Exception as exc:  # the probe reports, it does not judge
            results[feature] = f"{type(exc).__name__}: {exc}"

    def veth() -> None:
        from pyroute2 import IPRoute
        with IPRoute() as ipr:
            ipr.link("add", ifname="probe0", kind="veth", peer="probe1")

    def bridge() -> None:
        from pyroute2 import IPRoute
        with IPRoute() as ipr:
            ipr.link("add", ifname="probebr", kind="bridge")

    def tun() -> None:
        tunsetiff, iff_tun, iff_no_pi = 0x400454CA, 0x0001, 0x1000
        fd = os.open("/dev/net/tun", os.O_RDWR)
        try:
            fcntl.ioctl(fd, tunsetiff, struct.pack("16sH", b"probetun", iff_tun | iff_no_pi))
        finally:
            os.close(fd)

    def sysctl() -> None:
        path = Path("/proc/sys/net/ipv4/ip_forward")
        path.write_text("1\n")
        if path.read_text().strip() != "1":
            raise OSError("net.ipv4.ip_forward did not take the value")

    def rules() -> None:
        from pyroute2 import IPRoute
        with IPRoute() as ipr:
            ipr.rule("add", table=100, priority=100, src="10.0.0.0", src_len=8)

    def nftables() -> None:
        ruleset = ("table ip probe {\n chain post { type nat hook postrouting priority srcnat; masquerade; }\n"
                   " chain forward { type filter hook forward priority filter; ct state established accept; }\n}\n")
        proc = subprocess.run([program("nft"), "-f", "-"], input=ruleset, capture_output=True, text=True, timeout=10)
        if proc.returncode != 0:
            raise OSError(proc.stderr.strip().splitlines()[0] if proc.stderr.strip() else f"exit {proc.returncode}")

    for feature, fn in (("veth", veth), ("bridge", bridge), ("tun", tun), ("sysctl", sysctl),
                        ("rules", rules), ("nftables", nftables)):
        attempt(feature, fn)
    return results


def ready(tests: bool = False) -> list[str]:
    """What an ordinary account's `make setup` needs that only root can provide (empty: nothing)."""
    from lab.workshop.state import DEFAULT_ROOM
    files = {**SETUP_FILES, **(TEST_FILES if tests else {})}
    lacking = [f"{i.what} ({i.package or i.detail})" for i in missing(check(deep_kernel=False))]
    lacking += [f"{path} ({package})" for package, path in files.items() if not os.path.exists(path)]
    if not DEFAULT_ROOM.is_dir():
        lacking.append(f"the training room {DEFAULT_ROOM}")
    return lacking


if __name__ == "__main__":
    if sys.argv[1:2] == ["--ready"]:
        lacking = ready(tests="--tests" in sys.argv)
        for item in lacking:
            print(f"missing: {item}")
        sys.exit(1 if lacking else 0)
    if sys.argv[1:] == ["--probe-kernel"]:
        from lab import sandbox
        try:
            sandbox.enter(sandbox.View())
        except sandbox.SandboxUnavailable as exc:
            print(json.dumps({f: f"no lab sandbox: {exc}" for f in KERNEL_FEATURES}))
            sys.exit(0)
        print(json.dumps(_probe_in_fresh_namespace()))
