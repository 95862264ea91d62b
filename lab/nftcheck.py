"""nftables rulesets checked by nft itself, before anything is built, in a throwaway namespace.

Per node, the rulesets a fix phase would load, in its order (the topology's, the NAT
table, then the fault's and the fix's nft steps), are loaded into a fresh network namespace
that holds only the node's interface names: a syntax error, an unknown interface or a
`delete table` of a table that never existed is found at `lab validate`, with its file and
line, not after a whole phase. The checking process runs in a lab sandbox (lab.sandbox), as
an ordinary account that cannot read a host file nft could be asked to include, and its
namespace dies with it: nothing of the host is touched. Without a sandbox the check is skipped.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lab.preflight import program

TIMEOUT = 30


@dataclass
class Ruleset:
    where: str  # an opaque key the caller maps back to file:line
    text: str


def check(nodes: dict[str, tuple[list[str], list[Ruleset]]]) -> dict[str, str]:
    """node -> (interface names, rulesets in load order); returns where -> nft's complaint.
    One throwaway namespace per node, all at once (a namespace dies without being waited on).
    All of them get TIMEOUT seconds together; one that takes longer is killed with its whole
    process group (the checker and the nft it started) and its last ruleset is blamed."""
    if not sandbox_possible():
        return {}
    children = []
    for intfs, rulesets in nodes.values():
        if rulesets:
            request = {"interfaces": intfs, "rulesets": [[r.where, r.text] for r in rulesets]}
            proc = subprocess.Popen([sys.executable, "-m", "lab.nftcheck"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    start_new_session=True, cwd=Path(__file__).parent.parent)
            children.append((proc, json.dumps(request), rulesets[-1].where))
    complaints: dict[str, str] = {}
    deadline = time.monotonic() + TIMEOUT
    try:
        for proc, request, last in children:
            try:
                out, err = proc.communicate(request, timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                complaints[last] = f"nft gave no answer within {TIMEOUT:g} s (killed)"
                continue
            if proc.returncode != 0:
                raise RuntimeError(f"nft check failed: {err.strip()[-300:]}")
            complaints.update(json.loads(out))
    finally:
        for proc, _, _ in children:
            if proc.returncode is None:
                _kill_group(proc)
    return complaints


def _kill_group(proc: subprocess.Popen) -> None:
    """The checker leads a session of its own: the group is it and every nft it started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


def _in_fresh_namespace(node: dict) -> dict[str, str]:
    nft, ip = program("nft"), program("ip")
    intfs = list(dict.fromkeys(node["interfaces"]))
    subprocess.run([ip, "-batch", "-"], check=True, capture_output=True, text=True, input="\n".join(
        f"link add {intf} type veth peer name nftcheck{i}" for i, intf in enumerate(intfs)))
    for where, text in node["rulesets"]:
        proc = subprocess.run([nft, "-f", "-"], input=text, capture_output=True, text=True, timeout=TIMEOUT)
        if proc.returncode != 0:
            lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
            return {where: "; ".join(line.removeprefix("/dev/stdin:") for line in lines[:3])}
    return {}


def sandbox_possible() -> bool:
    from lab.sandbox import SandboxUnavailable, lab_identity
    try:
        lab_identity()
        return True
    except SandboxUnavailable:
        return False


if __name__ == "__main__":
    from lab import sandbox
    request = json.loads(sys.stdin.read())
    sandbox.enter(sandbox.View())
    print(json.dumps(_in_fresh_namespace(request)))
