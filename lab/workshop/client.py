"""What the trainee's and trainer's terminals do: talk to the supervisor, enter nodes, show hints.

Every command acts on the seat of the account that runs it; root (the trainer) may name
another account's. The kernel enforces the same: an account's lab lives in a sandbox only
that account and root may enter or signal, and its seat is readable by them alone.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lab.capture import SNAPLEN
from lab.errors import BadRequest, LabError
from lab.sandbox import join_argv, search_path
from lab.sandbox.identity import hand_to_lab
from lab.schema.load import LoadedScenario
from lab.workshop import state
from lab.workshop.state import Seat

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
CHECK_MARGIN_S = 60.0  # beyond the checks' own windows: the start steps, a re-arm, a report


class NotRunning(LabError):
    pass


def _whose(seat: Seat) -> str:
    return "" if seat.account == state.account_name() else f" of {seat.account}"


def running(seat: Seat) -> dict[str, Any]:
    current = seat.read()
    if current is None:
        raise NotRunning(f"no workshop lab is running{_whose(seat)}; start one with: lab start NAME")
    if current.get("pid") and not state.alive(current["pid"], current.get("started_at")):
        raise NotRunning(f"the workshop lab of {current['scenario']}{_whose(seat)} died; clean up with: lab stop")
    return current


def start(seat: Seat, sc: LoadedScenario, out: Path, params: list[str], lang: str) -> dict[str, Any]:
    seat.claim()
    current = seat.read()
    if current is not None:
        alive = current.get("pid") and state.alive(current["pid"], current.get("started_at"))
        shown = f"{current['scenario']} " if os.geteuid() == 0 else ""  # a trainee's view never names the fault
        raise LabError(f"a workshop lab{_whose(seat)} is already {'running' if alive else 'left over'}: "
                       f"{shown}(started {current['started']}); run lab stop first")
    seat.new_token()  # the trainee's page of `lab serve`: a new lab, a new secret
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)  # the trainee's captures, keys and logs: the trainee's and root's only
    hand_to_lab(out)
    seat.write({"account": seat.account, "scenario": sc.name, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                "started_epoch": time.time(),
                "lang": lang, "hints_shown": 0, "checks_run": 0, "last_verdict": None, "ready": False, "pid": None,
                "path": str(sc.path), "params": params, "check_timeout_s": check_timeout(sc)})
    with (out / "supervisor.log").open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "lab.workshop.supervisor", str(seat.room), seat.account,
                                 str(sc.path), str(out), *params], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)  # outlives this command
    # the supervisor waits outside its sandbox: this pid is how the lab is entered, signalled, stopped
    seat.update(pid=proc.pid, started_at=state.start_time(proc.pid))
    deadline = time.monotonic() + READY_TIMEOUT
    while not (seat.read() or {}).get("ready"):
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                proc.terminate()
                proc.wait()
            seat.clear()
            tail = (out / "supervisor.log").read_text(errors="replace").strip().splitlines()[-3:]
            raise LabError("the workshop lab did not come up: " + " / ".join(tail))
        time.sleep(0.05)  # the supervisor writes `ready` into the state file once the lab is up
    return seat.read()


def check_timeout(sc: LoadedScenario) -> float:
    """How long a `lab check` may take: its checks' windows (each polls for at most its own), then margin."""
    return sum(c.within for c in sc.spec.healthy) + CHECK_MARGIN_S


def request(seat: Seat, cmd: str) -> dict[str, Any]:
    current = running(seat)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(current.get("check_timeout_s", CHECK_MARGIN_S))
            sock.connect(str(seat.socket))
            with sock.makefile("rw") as stream:
                stream.write(json.dumps({"cmd": cmd}) + "\n")
                stream.flush()
                answer = stream.readline()
    except OSError as exc:
        raise LabError(f"the workshop lab{_whose(seat)} did not answer: {exc}") from None
    if not answer:
        raise LabError(f"the workshop lab{_whose(seat)} closed the connection without an answer")
    return json.loads(answer)


def shell(seat: Seat, node: str, command: list[str]) -> None:
    """Replaces this process: a shell (or one command) in the node, inside the lab's sandbox."""
    current = running(seat)
    env = [f"{k}={v}" for k, v in current["env"].get(node, {}).items()]
    argv = command or ["bash", "--norc", "-i"]
    _enter(current, node, ["env", f"PS1=[lab {node}] \\w# ", *env, *argv])


def capture(seat: Seat, node: str, intf: str, count: int | None) -> None:
    """Replaces this process: tcpdump on a node's interface, inside the lab's sandbox, writing a
    pcap stream to standard output as packets come (`lab capture gw1:wan | wireshark -k -i -`)."""
    current = running(seat)
    known = current.get("interfaces", {}).get(node, {})
    if node in current["nodes"] and intf not in known:
        raise BadRequest(f"no interface '{intf}' on {node}; allowed: {', '.join(known) or 'none'}")
    _enter(current, node, ["tcpdump", "-i", intf, "-n", "-s", str(SNAPLEN), "-U", "-Z", "root", "-w", "-",
                           *(["-c", str(count)] if count else [])])


def _enter(current: dict[str, Any], node: str, argv: list[str]) -> None:
    if node not in current["nodes"]:
        raise BadRequest(f"no node '{node}'; allowed: {', '.join(current['nodes'])}")
    enter = [*join_argv(current["pid"]), "mnexec", "-a", str(current["nodes"][node]), *argv]
    # as root of the lab, with root's search path (swanctl, ip, nft are in sbin)
    os.execve(enter[0], enter, {**os.environ, "PATH": search_path(os.environ.get("PATH", ""))})


def next_hint(seat: Seat, sc: LoadedScenario, number: int | None) -> tuple[int, Any]:
    current = running(seat)
    hints = sc.spec.hints
    if not hints:
        raise LabError(f"{sc.name} has no hints")
    n = number if number is not None else min(current["hints_shown"] + 1, len(hints))
    if not 1 <= n <= len(hints):
        raise BadRequest(f"no hint {n}; allowed: 1 to {len(hints)}")
    seat.update(lambda now: {"hints_shown": max(now.get("hints_shown", 0), n)})
    return n, hints[n - 1]


def stop(seat: Seat) -> str:
    current = seat.read()
    if current is None:
        return f"no workshop lab is running{_whose(seat)}"
    pid = current.get("pid")
    if pid and state.alive(pid, current.get("started_at")):
        try:
            request(seat, "stop")
        except LabError:
            os.kill(pid, signal.SIGTERM)  # the supervisor's sandbox passes it on: an orderly teardown
        deadline = time.monotonic() + STOP_TIMEOUT
        while state.alive(pid, current.get("started_at")):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)  # its sandbox, and all of the lab, goes with it
                break
            time.sleep(0.05)
    seat.clear()
    shown = current["scenario"] if os.geteuid() == 0 else "your lab"  # a trainee's view never names the fault
    return f"stopped {shown}{_whose(seat)}"
