"""Record charon's own syslog and journal loggers (in a lab sandbox; run by hand, the logs are committed in
tests/diagnose/corpus/recorded/ and labelled in manifest.yaml; needs Debian's charon-systemd).

Two network namespaces joined by a veth pair (documentation addresses), each side a daemon in a
mount namespace of its own where /dev/log (charon's sys_logger, through glibc's syslog()) or
/run/systemd/journal/socket (charon-systemd's journal logger, sd_journal_send's native protocol)
is a socket this script reads. What arrives is written as a syslog daemon (RFC 3164) or
journalctl (short, json) would show it: the messages, threads, groups and IKE_SA fields are
charon's own.

    .venv/bin/python -m tests.diagnose.corpus.record_loggers
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).parent / "recorded"
ADDR = {"a": "192.0.2.1", "b": "192.0.2.2"}
NETS = {"a": "10.1.0.0/24", "b": "10.2.0.0/23"}
LAN = {"a": "10.1.0.1/24", "b": "10.2.0.1/23"}
# case: per side, what differs from the healthy set-up (connections and secrets)
CASES = {
    "psk-mismatch": {"b": {"secret": "lab-Other-2026"}},
    "proposal-mismatch": {"b": {"proposals": "aes128gcm16-prfsha256-ecp256"}},
    "id-mismatch": {"a": {"local_id": "branch01.example.net"}},
    "ts-narrowed": {"a": {"remote_ts": "10.2.0.0/24"}},
    "ikev1-psk-mismatch": {"a": {"version": 1}, "b": {"version": 1, "secret": "lab-Other-2026"}},
    "ikev1-proposal-mismatch": {"a": {"version": 1}, "b": {"version": 1, "proposals": "aes128-sha1-modp1024"}},
}
SIDE = r'''
import os, socket, subprocess, sys, threading, time, signal
work, mode = sys.argv[1], sys.argv[2]
subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run"], check=True)
subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/dev"], check=True)
for name, major, minor in (("null", 1, 3), ("zero", 1, 5), ("random", 1, 8), ("urandom", 1, 9)):
    os.mknod("/dev/" + name, 0o666 | 0o020000, os.makedev(major, minor))
os.makedirs("/dev/net")
os.mknod("/dev/net/tun", 0o666 | 0o020000, os.makedev(10, 200))
path = "/dev/log" if mode == "syslog" else "/run/systemd/journal/socket"
os.makedirs(os.path.dirname(path), exist_ok=True)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
out = open(os.path.join(work, "received"), "wb")
def receive():
    while True:
        data = sock.recv(1 << 16)
        out.write(len(data).to_bytes(4, "big") + data)
        out.flush()
threading.Thread(target=receive, daemon=True).start()
daemon = "/usr/lib/ipsec/charon" if mode == "syslog" else "/usr/sbin/charon-systemd"
env = dict(os.environ, STRONGSWAN_CONF=os.path.join(work, "strongswan.conf"))
proc = subprocess.Popen([daemon], env=env, stdout=open(os.path.join(work, "stdout"), "wb"), stderr=subprocess.STDOUT)
deadline = time.monotonic() + 40
while not os.path.exists(os.path.join(work, "stop")) and time.monotonic() < deadline and proc.poll() is None:
    time.sleep(0.1)
proc.send_signal(signal.SIGTERM)
proc.wait(10)
time.sleep(0.3)
'''


def _conf(side: str, mode: str, work: Path, change: dict) -> None:
    other = "b" if side == "a" else "a"
    section = "charon" if mode == "syslog" else "charon-systemd"
    logger = ("syslog { daemon { default = 1\n ike_name = yes\n cfg = 2 } }" if mode == "syslog"
              else "journal { default = 1\n cfg = 2 }")
    (work / "strongswan.conf").write_text(f"""{section} {{
  load = random nonce openssl kdf pem pkcs1 x509 pubkey kernel-libipsec kernel-netlink socket-default vici
  retransmit_timeout = 0.5
  retransmit_base = 1.0
  retransmit_tries = 2
  plugins {{ vici {{ socket = unix://{work}/vici }} }}
  {logger}
}}
""")
    ids = {"a": "branch.example.net", "b": "hq.example.net"}
    local_id = change.get("local_id", ids[side])
    proposals = change.get("proposals", "aes256-sha256-modp2048")
    (work / "swanctl.conf").write_text(f"""connections {{
  {"hq" if side == "a" else "branch"} {{
    version = {change.get("version", 2)}
    local_addrs = {ADDR[side]}
    remote_addrs = {ADDR[other]}
    proposals = {proposals}
    local {{ auth = psk
      id = {local_id} }}
    remote {{ auth = psk
      id = {ids[other]} }}
    children {{ net {{ local_ts = {NETS[side]}
      remote_ts = {change.get("remote_ts", NETS[other])}
      esp_proposals = aes256-sha256 }} }}
  }}
}}
secrets {{ ike-1 {{ id-1 = {ids[side]}
  id-2 = {ids[other]}
  secret = {change.get("secret", "lab-Shared-2026")} }} }}
""")


def _frames(raw: bytes) -> list[bytes]:
    out, at = [], 0
    while at + 4 <= len(raw):
        size = int.from_bytes(raw[at:at + 4], "big")
        out.append(raw[at + 4:at + 4 + size])
        at += 4 + size
    return out


def _journal_fields(datagram: bytes) -> dict:
    """sd_journal_send's native protocol: KEY=value lines, or KEY\\n<64-bit length><value>\\n."""
    fields, at = {}, 0
    while at < len(datagram):
        end = datagram.index(b"\n", at)
        line = datagram[at:end]
        if b"=" in line:
            key, _, value = line.partition(b"=")
            at = end + 1
        else:
            key, size = line, int.from_bytes(datagram[end + 1:end + 9], "little")
            value = datagram[end + 9:end + 9 + size]
            at = end + 9 + size + 1
        fields[key.decode()] = value.decode("utf-8", "replace")
    return fields


def _write(case: str, side: str, mode: str, work: Path, host: str) -> list[Path]:
    raw = (work / "received").read_bytes()
    written = []
    if mode == "syslog":
        lines = []
        for frame in _frames(raw):
            text = frame.decode("utf-8", "replace").rstrip("\n")
            body = text.split(">", 1)[1] if text.startswith("<") else text  # glibc: <PRI>Mmm dd hh:mm:ss ident[pid]: msg
            lines.append(f"{body[:15]} {host} {body[16:]}")  # as a syslog daemon writes it: the host added
        target = OUT / f"{case}.{side}.syslog.log"
        target.write_text("\n".join(lines) + "\n")
        written.append(target)
    else:
        entries = [_journal_fields(f) for f in _frames(raw)]
        stamp = time.strftime("%b %d %H:%M:%S")
        short = [f"{stamp} {host} charon-systemd[{e.get('_PID', os.getpid())}]: {e.get('MESSAGE', '')}"
                 for e in entries]
        target = OUT / f"{case}.{side}.journal-short.log"
        target.write_text("\n".join(short) + "\n")
        docs = [json.dumps({"_HOSTNAME": host, "SYSLOG_IDENTIFIER": "charon-systemd", **e}) for e in entries]
        target_json = OUT / f"{case}.{side}.journal-json.log"
        target_json.write_text("\n".join(docs) + "\n")
        written += [target, target_json]
    return written


def record(case: str, mode: str) -> list[Path]:
    tag = f"ipsl-rec-{os.getpid()}"
    spaces = {s: f"{tag}-{s}" for s in "ab"}
    written = []
    with tempfile.TemporaryDirectory(prefix="ipsec-lab-record-") as tmp:
        try:
            for ns in spaces.values():
                subprocess.run(["ip", "netns", "add", ns], check=True)
                subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
            subprocess.run(["ip", "link", "add", "va", "netns", spaces["a"], "type", "veth", "peer", "name", "vb",
                            "netns", spaces["b"]], check=True)
            for side, intf in (("a", "va"), ("b", "vb")):
                subprocess.run(["ip", "-n", spaces[side], "addr", "add", f"{ADDR[side]}/24", "dev", intf], check=True)
                subprocess.run(["ip", "-n", spaces[side], "link", "set", intf, "up"], check=True)
                # an address inside the side's own subnet: kernel-libipsec 5.9.8 routes only then
                subprocess.run(["ip", "-n", spaces[side], "addr", "add", LAN[side], "dev", "lo"], check=True)
            procs, works = {}, {}
            for side in "ab":
                work = works[side] = Path(tmp) / side
                work.mkdir()
                _conf(side, mode, work, CASES[case].get(side, {}))
                procs[side] = subprocess.Popen(["ip", "netns", "exec", spaces[side], "unshare", "--mount",
                                                "--propagation", "private", sys.executable, "-c", SIDE, str(work), mode])
            for side in "ab":
                for _ in range(100):
                    if (works[side] / "vici").exists():
                        break
                    time.sleep(0.1)
                subprocess.run(["ip", "netns", "exec", spaces[side], "swanctl", "--load-all", "--file",
                                str(works[side] / "swanctl.conf"), "--uri", f"unix://{works[side]}/vici"],
                               capture_output=True, timeout=20)
            subprocess.run(["ip", "netns", "exec", spaces["a"], "swanctl", "--initiate", "--child", "net", "--timeout",
                            "6", "--uri", f"unix://{works['a']}/vici"], capture_output=True, timeout=20)
            time.sleep(1.5)
            for side in "ab":
                (works[side] / "stop").touch()
            for side in "ab":
                procs[side].wait(20)
                written += _write(case, side, mode, works[side], {"a": "branch", "b": "hq"}[side])
        finally:
            for ns in spaces.values():
                subprocess.run(["ip", "netns", "pids", ns], capture_output=True)
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    return written


if __name__ == "__main__":
    from lab import sandbox
    from lab.sandbox.identity import hand_to_lab

    OUT.mkdir(exist_ok=True)
    hand_to_lab(OUT)
    sandbox.enter(sandbox.View(writable=(OUT.resolve(),)))  # its daemons are a lab's: never host root
    for name in sys.argv[1:] or CASES:
        for logger in ("syslog", "journal"):
            for path in record(name, logger):
                print(path, len(path.read_text().splitlines()), "lines")
