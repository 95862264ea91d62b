"""Benchmarks: figures beside the floor, measured in the same run (figures, not assertions).

The floor is the smallest lab there is (lab/floor): two namespaces, two charon, IKEv2 up, one
ping, teardown. Every scenario's wall time is written as a ratio to it, so figures from a
loaded or a faster machine stay comparable. Also: the catalogue's wall time one phase at a
time and with -j, how long `lab diagnose` takes on a phase and on a 100 MB capture (and its
peak memory), and the tunnel's round trip over UDP and TCP.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path
from shutil import which as shutil_which

from lab import procfs
from lab.capture.file import PCAP_USEC
from lab.checks import evaluate
from lab.checks.tunnel import TunnelCheck
from lab.errors import LabError
from lab.progress import Progress
from lab.run.lab import RunningLab
from lab.run.phase import diagnose_phase
from lab.run.scenarios import new_run_id, run_scenarios
from lab.run.scheduler import mem_available_mb
from lab.run.worker import call
from lab.sandbox.identity import hand_to_lab
from lab.schema.ike import IKE_PORT, NAT_T_PORT
from lab.schema.load import LoadedScenario, load_scenario

RTT_PINGS = 50
FLOOR = Path(str(files("lab") / "floor" / "floor.yaml"))
SPOKES = Path(str(files("lab") / "floor" / "spokes.yaml"))
SPOKE_COUNTS = (3, 10, 30, 60)
# workshop labs held at once on this machine: (scenario, labs); dpd-nat-timeout is hub-spoke-nat
ROOM = (("tcp-asym", 20), ("dpd-nat-timeout", 10))
# a classroom: this many trainee accounts, each with a lab of this scenario, and `lab serve`
CLASSROOM = ("tcp-asym", 20)
IDLE_WINDOW_S = 10
PAGE_LOADS = 5  # each page loaded this many times (the median is kept)
BIG_CAPTURE_MB = 100
BIG_LOG_MB = 100


def floor(repeat: int) -> dict:
    """Sandbox, build, IKEv2 up, one ping through the tunnel, teardown."""
    sc = load_scenario(FLOOR)
    samples = []
    for _ in range(repeat):
        with _folder() as tmp:
            started = time.monotonic()
            held = call(_floor_lab, sc, tmp, writable=(tmp,))
            samples.append(round(time.monotonic() - started, 3))
            if not held:
                return {"error": "the floor's tunnel or ping did not hold", "samples_s": samples}
    return {"runs": repeat, "median_s": statistics.median(samples), "samples_s": samples}


def _floor_lab(sc: LoadedScenario, folder: Path) -> bool:
    with RunningLab(sc, folder, new_run_id()) as lab:
        for step in sc.spec.start:
            step.apply(lab)
        return all(evaluate(check, lab).passed for check in sc.spec.healthy)


class _folder(tempfile.TemporaryDirectory):
    """A temporary folder a lab may write (handed to the lab's account when root made it)."""

    def __init__(self) -> None:
        super().__init__(prefix="bench-ipsec-lab-")

    def __enter__(self) -> Path:
        path = Path(super().__enter__())
        hand_to_lab(path)
        return path


def bench(names: list[str], out: Path, repeat: int, jobs: int, progress: Progress, everything: bool = True) -> dict:
    """The floor and `names`, and with `everything` (no names given) the rest: lab diagnose on big
    files and its corpus, the tunnel's round trip, hub-spoke-nat at scale, a training room. The
    JSON is written after each part, so an interrupted bench (Ctrl-C, SIGTERM: every lab it
    started is torn down first) leaves the figures it measured, marked `interrupted`."""
    doc: dict = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cpus": os.cpu_count(),
                 "kernel": platform.release(), "python": platform.python_version(), "jobs": jobs,
                 "scenarios_given": names if not everything else None, "scenarios": []}
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        _measure(doc, names, out, repeat, jobs, progress, everything)
    except KeyboardInterrupt:
        doc["interrupted"] = True
        _write(doc, out)
        raise
    return doc


def _write(doc: dict, out: Path) -> None:
    partial = out.with_name(out.name + ".partial")
    partial.write_text(json.dumps(doc, indent=2) + "\n")
    partial.replace(out)  # a reader never sees half a file


def _measure(doc: dict, names: list[str], out: Path, repeat: int, jobs: int, progress: Progress,
             everything: bool) -> None:
    doc["floor"] = base = floor(max(repeat, 5))
    _write(doc, out)
    scenarios = [load_scenario(name) for name in names]
    figures, diagnose_s = doc["scenarios"], []
    for sc in scenarios:
        runs = []
        for _ in range(repeat):
            with _folder() as tmp:
                [result] = run_scenarios([sc], tmp, Progress(quiet=True), jobs=len(sc.spec.phases()))
                for phase in sc.spec.phases():
                    started = time.monotonic()
                    diagnose_phase(tmp / sc.name / phase)
                    diagnose_s.append(time.monotonic() - started)
            runs.append(result)
            progress.step(f"{sc.name}: {result['duration_s']:.2f}s")
        median = statistics.median(r["duration_s"] for r in runs)
        figures.append({
            "scenario": sc.name, "passed": all(r["passed"] for r in runs), "runs": repeat,
            "median_s": round(median, 3),
            "floor_ratio": round(median / base["median_s"], 1) if "median_s" in base else None,
            "phases_median_s": {p["name"]: round(statistics.median(
                q["duration_s"] for r in runs for q in r["phases"] if q["name"] == p["name"]), 3)
                for p in runs[0]["phases"]},
            "timers": runs[0]["timers"],
        })
        _write(doc, out)
    # the scenarios given (the catalogue when none were), one phase at a time and side by side
    doc["catalogue_s"] = {}
    for n in sorted({1, jobs}):
        doc["catalogue_s"][f"jobs={n}"] = catalogue(scenarios, n)
        _write(doc, out)
    if not everything:
        return
    from lab.diagnose.corpus import IN_A_CHECKOUT

    doc["diagnose"] = {"phase_s": {"median": round(statistics.median(diagnose_s), 3),
                                   "max": round(max(diagnose_s), 3), "phases": len(diagnose_s)},
                       f"capture_{BIG_CAPTURE_MB}mb": big_capture(), f"log_{BIG_LOG_MB}mb": big_log(IN_A_CHECKOUT),
                       "corpus": corpus_accuracy(IN_A_CHECKOUT)}
    _write(doc, out)
    doc["tunnel_rtt_ms"] = {mode: tunnel_rtt(mode) for mode in ("udp", "tcp")}
    _write(doc, out)
    doc["spokes"] = []
    for n in SPOKE_COUNTS:
        doc["spokes"].append(spokes(n))
        _write(doc, out)
    doc["training_room"] = []
    for name, count in ROOM:
        doc["training_room"].append(room(name, count))
        _write(doc, out)
    doc["classroom"] = classroom(*CLASSROOM)
    _write(doc, out)


def spokes(count: int) -> dict:
    """hub-spoke-nat with `count` branches: seconds to build, seconds until every branch's tunnel
    is up (all initiating at once), and the resident memory of the lab's processes."""
    sc = load_scenario(SPOKES, {"spokes": str(count)})
    with _folder() as tmp:
        return call(_spokes_lab, sc, count, tmp, writable=(tmp,))


def _spokes_lab(sc: LoadedScenario, count: int, folder: Path) -> dict:
    started = time.monotonic()
    with RunningLab(sc, folder, new_run_id()) as lab:
        built = time.monotonic() - started
        for i in range(1, count + 1):
            lab.charon(f"br{i}").initiate(child="net")
        up = [evaluate(TunnelCheck(node=f"br{i}", ike="hq", child="net", within=120), lab).passed
              for i in range(1, count + 1)]
        tunnels = time.monotonic() - started - built
        # the sandbox's /proc holds the lab's processes only; its init and this worker are not the lab
        memory = sum(_rss_kb(pid) for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                     if pid not in (1, os.getpid()))
    return {"spokes": count, "nodes": len(sc.topology.nodes), "build_s": round(built, 2),
            "tunnels_up_s": round(tunnels, 2), "tunnels_up": sum(up), "memory_mb": round(memory / 1024, 1)}


def room(name: str, count: int) -> dict:
    """`count` workshop labs of `name` started side by side, as a trainer does (lab start
    --for): seconds to start them all, memory they take (MemAvailable before and after,
    so kernel memory counts too) and CPU busy while they sit idle, then they are stopped.
    One account holds one lab in a room: the labs here are this account's, each in a room
    of its own."""
    from lab.workshop import client
    from lab.workshop.state import Seat, account_name

    sc = load_scenario(name)
    before = mem_available_mb()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-ipsec-lab-") as tmp:
        seats = []
        for i in range(count):
            (Path(tmp) / f"room{i}").mkdir()
            seats.append(Seat(account_name(), Path(tmp) / f"room{i}"))
        try:
            for i, seat in enumerate(seats):
                with _deferred(signal.SIGTERM, signal.SIGINT):  # its supervisor recorded in its seat, or not started
                    client.start(seat, sc, Path(tmp) / f"out{i}", [], "en")
            start_s = time.monotonic() - started
            used = before - mem_available_mb()
            busy = _cpu_busy(IDLE_WINDOW_S)
        finally:
            # Ctrl-C or SIGTERM included, at any moment: each seat on its own, so one that fails
            # to stop (or was never started) leaves no other lab running in a room nobody knows
            for seat in seats:
                with _deferred(signal.SIGTERM, signal.SIGINT):
                    try:
                        client.stop(seat)
                    except (LabError, OSError) as exc:
                        print(f"bench: stopping the lab in {seat.room}: {exc}", file=sys.stderr)
    return {"scenario": name, "labs": count, "start_s": round(start_s, 1), "memory_mb": round(used),
            "memory_per_lab_mb": round(used / count, 1), "cpu_busy_idle_pct": round(busy, 1),
            "labs_per_24gib": int(24 * 1024 * 0.9 // (used / count))}


@contextlib.contextmanager
def _deferred(*signums: int):
    """Signals held until the block is over (a teardown a second Ctrl-C must not cut short)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, signums)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def classroom(name: str, count: int) -> dict:
    """A real training room: `count` throwaway accounts (root only: made with useradd, removed
    after), `lab start NAME --for` all of them, `lab serve` beside them. Measured: memory the labs
    and the server take, CPU while they sit idle (the machine's, and the server's own share), and
    how long pages take to load: each trainee's page over HTTP with everything it loads (page,
    state, scripts, styles), and in headless Chromium (until the lab's state is on screen: the
    page's events answered), the trainer's page until every lab is on it."""
    import asyncio
    import pwd
    import shutil

    from lab.workshop.state import Seat

    if os.geteuid() != 0:
        return {"error": "a classroom needs root: its trainees are accounts made for it"}
    accounts = [f"ipslb{os.getpid() % 10000}{i:02d}" for i in range(count)]
    room_dir = Path(tempfile.mkdtemp(prefix="bench-ipsec-lab-room-"))
    os.chmod(room_dir, 0o1733)
    env = {**os.environ, "LAB_ROOM": str(room_dir)}
    lab = [sys.executable, "-m", "lab"]
    server = None
    try:
        for account in accounts:
            subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", account], check=True, capture_output=True)
        before = mem_available_mb()
        started = time.monotonic()
        run = subprocess.run([*lab, "start", name, "--for", ",".join(accounts), "--lang", "en"], env=env,
                             capture_output=True, text=True, timeout=60 * count)
        if run.returncode != 0:
            return {"error": f"lab start --for failed: {run.stdout[-500:]} {run.stderr[-500:]}"}
        start_s = time.monotonic() - started
        labs_mb = before - mem_available_mb()
        server = subprocess.Popen([*lab, "serve", "--listen", "127.0.0.1:0"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        line = ""
        while "the trainer's page" not in line:
            line = server.stdout.readline()
            if not line and server.poll() is not None:
                return {"error": "lab serve did not start"}
        trainer = line.split()[-1]
        base = trainer.split("/trainer/")[0]
        pages = [f"{base}/t/{Seat(a, room_dir).token()}/" for a in accounts]
        loads = asyncio.run(_page_loads(pages, trainer, count))
        uids = {pwd.getpwnam(a).pw_uid for a in accounts}
        server0, labs0 = _cpu_seconds(server.pid), _cpu_of_uids(uids)
        busy = _cpu_busy(IDLE_WINDOW_S)
        server_cpu = 100.0 * (_cpu_seconds(server.pid) - server0) / IDLE_WINDOW_S
        labs_cpu = 100.0 * (_cpu_of_uids(uids) - labs0) / IDLE_WINDOW_S
        # percent of one core; the machine's busy share counts whatever else runs on it too
        return {"scenario": name, "labs": count, "start_s": round(start_s, 1), "labs_memory_mb": round(labs_mb),
                "serve_rss_mb": round(_rss_kb(server.pid) / 1024, 1), "serve_cpu_idle_pct_of_a_core": round(server_cpu, 2),
                "labs_cpu_idle_pct_of_a_core": round(labs_cpu, 2), "machine_busy_pct": round(busy, 1), **loads}
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        for account in accounts:
            try:
                pwd.getpwnam(account)
            except KeyError:
                continue
            subprocess.run([*lab, "stop", "--user", account], env=env, capture_output=True, timeout=120)
            subprocess.run(["userdel", "--remove", account], capture_output=True)
        shutil.rmtree(room_dir, ignore_errors=True)


async def _page_loads(pages: list[str], trainer: str, count: int) -> dict:
    import aiohttp

    from lab.browser import Browser

    async def fetch(http, page: str) -> float:
        begun = time.monotonic()
        async with http.get(page) as response:
            text = await response.text()
        origin = page.split("/t/")[0]
        for asset in ("state", *sorted(set(re.findall(r'(?:href|src)="(/[^"]+)"', text)))):
            async with http.get(origin + asset if asset.startswith("/") else page + asset) as response:
                await response.read()
        return time.monotonic() - begun

    async with aiohttp.ClientSession() as http:
        first = [await fetch(http, page) for page in pages]  # each seat's first: its briefing is read then
        again = [await fetch(http, page) for page in pages for _ in range(PAGE_LOADS)]
    figures = {"http_first_load_s": {"median": round(statistics.median(first), 3), "max": round(max(first), 3)},
               "http_load_s": {"median": round(statistics.median(again), 4), "max": round(max(again), 4)}}
    if shutil_which("chromium"):
        with tempfile.TemporaryDirectory(prefix="bench-ipsec-lab-chromium-") as profile:
            async with Browser(Path(profile)) as browser:
                shown, room_shown = [], []
                for page in pages[:PAGE_LOADS]:
                    begun = time.monotonic()
                    opened = await browser.page(page, wait="document.getElementById('hint-count').textContent")
                    shown.append(time.monotonic() - begun)
                    await opened.close()
                for _ in range(PAGE_LOADS):
                    begun = time.monotonic()
                    opened = await browser.page(trainer, wait=f"document.querySelectorAll('#room tbody tr').length === {count}")
                    room_shown.append(time.monotonic() - begun)
                    await opened.close()
        figures["browser_trainee_page_s"] = round(statistics.median(shown), 3)
        figures["browser_trainer_page_s"] = round(statistics.median(room_shown), 3)
    return figures


def _cpu_seconds(pid: int) -> float:
    """CPU time of process `pid` and its children that ended, in seconds (/proc/PID/stat)."""
    fields = procfs.stat(pid) or []  # an ended process: nothing more to count
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _cpu_of_uids(uids: set[int]) -> float:
    """CPU seconds of every process running as one of `uids` (the trainees' labs: root inside a
    lab is its account outside)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid in uids:
                total += _cpu_seconds(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue  # it ended meanwhile
    return total


def _cpu_busy(seconds: float) -> float:
    """Percent of all cores busy over `seconds` (from /proc/stat)."""
    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # idle + iowait
    total0, idle0 = sample()
    time.sleep(seconds)  # a measurement window, not a wait for something to happen
    total1, idle1 = sample()
    return 100.0 * (1 - (idle1 - idle0) / max(1, total1 - total0))


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def catalogue(scenarios: list, jobs: int) -> float:
    """Wall time of every scenario's three phases, `jobs` phases at a time."""
    with _folder() as tmp:
        started = time.monotonic()
        run_scenarios(scenarios, tmp, Progress(quiet=True), jobs=jobs)
        return round(time.monotonic() - started, 1)


def _diagnose_file(path: Path) -> dict:
    """`lab diagnose --json PATH` in a process of its own: wall time and that process's peak memory."""
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "lab", "diagnose", "--json", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    return {"seconds": round(time.monotonic() - started, 2), "peak_mb": round(usage.ru_maxrss / 1024, 1),
            "bytes": path.stat().st_size}


def big_capture() -> dict:
    """`lab diagnose` on a synthetic capture of BIG_CAPTURE_MB (IKE, then ESP-in-UDP both ways):
    wall time and the peak memory of the process that read it."""
    with tempfile.TemporaryDirectory(prefix="bench-ipsec-lab-") as tmp:
        path = Path(tmp) / "big.pcap"
        _write_capture(path, BIG_CAPTURE_MB * 1024 * 1024)
        return _diagnose_file(path)


def corpus_accuracy(folder: Path) -> dict:
    """lab diagnose on its corpus (a checkout's tests/diagnose/corpus): every labelled log in every dialect."""
    from lab.diagnose import corpus

    if not folder.is_dir():
        return {"skipped": f"no corpus at {folder} (it is in the repository: run make bench in a checkout)"}
    started = time.monotonic()
    table = corpus.table(corpus.evaluate(folder))
    return {**table, "seconds": round(time.monotonic() - started, 1), "markdown": corpus.markdown(table)}


def big_log(folder: Path) -> dict:
    """`lab diagnose` on a charon log of BIG_LOG_MB: the corpus's logs (the catalogue's fault phases,
    charon's own file logger) one after the other until the size is reached; wall time and peak
    memory of the process that read it."""
    if not (folder / "logs").is_dir():
        return {"skipped": f"no corpus at {folder} to make the log of (run make bench in a checkout)"}
    data = b"".join(p.read_bytes() for p in sorted((folder / "logs").iterdir()))
    with tempfile.TemporaryDirectory(prefix="bench-ipsec-lab-") as tmp:
        path = Path(tmp) / "big.log"
        with path.open("wb") as out:
            for _ in range(BIG_LOG_MB * 1024 * 1024 // len(data) + 1):
                out.write(data)
        return _diagnose_file(path)


def _frame(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, src, dst) + udp
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip


def _write_capture(path: Path, size: int) -> None:
    a, b = bytes([203, 0, 113, 2]), bytes([198, 51, 100, 2])
    ike = bytes(8) + b"\x11" * 8 + bytes([33, 0x20, 34, 0x08]) + struct.pack("!II", 0, 28)
    esp_out = _frame(a, b, NAT_T_PORT, NAT_T_PORT, b"\x01\x02\x03\x04" + bytes(1396))
    esp_in = _frame(b, a, NAT_T_PORT, NAT_T_PORT, b"\x05\x06\x07\x08" + bytes(1396))
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", PCAP_USEC, 2, 4, 0, 0, 65535, 1))
        written, t = 24, 1_800_000_000
        for frame in [_frame(a, b, IKE_PORT, IKE_PORT, ike)] + [esp_out, esp_in] * (size // (2 * len(esp_out) + 32)):
            out.write(struct.pack("<IIII", t, 0, len(frame), len(frame)) + frame)
            written += 16 + len(frame)
            t += 1


def tunnel_rtt(mode: str) -> dict:
    """pc1 -> srv through the wan1 tunnel of tcp-asym's healthy lab, the peer's relay in `mode`."""
    sc = load_scenario("tcp-asym")
    sc.tcp_encap["peer"] = sc.tcp_encap["peer"].model_copy(update={"mode": mode})
    with _folder() as tmp:
        return call(_rtt_lab, sc, tmp, writable=(tmp,))


def _rtt_lab(sc: LoadedScenario, folder: Path) -> dict:
    with RunningLab(sc, folder, new_run_id()) as lab:
        for step in sc.spec.start:
            step.apply(lab)
        if not evaluate(TunnelCheck(node="peer", ike="fgt_wan1", child="net1", within=10), lab).passed:
            return {"error": "tunnel did not come up"}
        out = lab.exec("pc1", ["ping", "-n", "-q", "-c", str(RTT_PINGS), "-i", "0.02", "10.20.0.10"], check=False).stdout
    # "rtt min/avg/max/mdev = 0.512/0.733/1.211/0.101 ms"
    line = next((l for l in out.splitlines() if l.startswith("rtt")), None)
    if line is None:
        return {"error": out.strip()[-200:]}
    values = [float(v) for v in line.split("=")[1].split()[0].split("/")]
    return {"pings": RTT_PINGS, **dict(zip(("min", "avg", "max", "mdev"), values))}
