"""The HTML report as a person sees it: rendered by headless Chromium, no console errors,
a ladder arrow for every IKE message in the capture, a screenshot kept."""
import shutil
import subprocess

import pytest

from lab import paths
from lab.capture import packets
from lab.progress import Progress
from lab.runner import run_scenario
from lab.schema.load import load_scenario

pytestmark = pytest.mark.lab
CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]
SCREENSHOT = paths.ROOT / "results" / "test-artifacts" / "report-udp500-blocked.png"


def chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=90)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is installed by make test")
def test_report_renders_topology_and_ladder(tmp_path, no_leaks):
    import json
    import re

    sc = load_scenario("udp500-blocked")
    run_scenario(sc, tmp_path, Progress(quiet=True))
    report = tmp_path / "udp500-blocked" / "report.html"
    dom = chromium(tmp_path, "--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console

    html = dom.stdout
    assert html.count('class="node ') == len(sc.topology.nodes)
    assert 'data-node="inet"' in html and "FAULT" in html  # where the fault sits
    fault = html.split('id="phase-fault"')[1].split('id="phase-fix"')[0]
    ladder = fault.split('data-capture="gw1-wan"')[1].split("</svg>")[0]
    meta = json.loads((tmp_path / "udp500-blocked" / "fault" / "gw1-wan.capture.json").read_text())
    ike = [p for p in packets.read(tmp_path / "udp500-blocked" / "fault" / "gw1-wan.pcap", meta["mac"]) if p.ike]
    assert len(ike) >= 3
    assert len(re.findall(r'class="rung" data-kind="ike"', ladder)) == len(ike)
    # every IKE_SA_INIT after the first is a retransmission, and drawn as one
    assert ladder.count('class="arrow ike retransmit"') == len(ike) - 1

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shot = chromium(tmp_path, "--window-size=1400,2400", f"--screenshot={SCREENSHOT}", report.as_uri())
    assert shot.returncode == 0 and SCREENSHOT.stat().st_size > 10000
