"""The classroom in a browser (headless Chromium over CDP): two trainees' pages and the
trainer's page of `lab serve`, with real labs of two ordinary accounts. Trainee A types
`swanctl --list-sas` in the browser terminal of gw1 and sees its output; A's token opens nothing
of B's; the trainer's page follows A's check turning healthy within 2 s and a charon killed in
B's lab at once; the grades have both rows."""
from __future__ import annotations

import asyncio
import csv
import io
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests import repo
from lab.workshop.state import Seat
from lab.browser import Browser

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is installed by make test")]
LAB = [sys.executable, "-m", "lab"]
FIX_PSK = "sed -i s/lab-Branch-HQ-2025/lab-Branch-HQ-2026/ $SWANCTL_DIR/swanctl.conf && swanctl --load-all"
# what an xterm.js terminal shows, as text
SCREEN = ("(function (t) { if (!t) return ''; var b = t.buffer.active, out = []; for (var i = 0; i < b.length; i++) "
          "{ var l = b.getLine(i); if (l) out.push(l.translateToString(true)); } return out.join('\\n'); })"
          "(window.labTerminals[%r])")
SERVE_TIMEOUT_S = 60


def trainer(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([*LAB, *args], capture_output=True, text=True, cwd=repo.ROOT, timeout=timeout)


@dataclass
class Room:
    trainer: str  # the trainer's page
    pages: dict[str, str]  # account -> its page
    server: subprocess.Popen


@pytest.fixture
def classroom(accounts, room, no_leaks):
    """psk-mismatch started for both accounts by the trainer, and `lab serve` on a free port."""
    names = ",".join(a.name for a in accounts)
    started = trainer("start", "psk-mismatch", "--for", names, "--lang", "en")
    server = None
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        server = subprocess.Popen([*LAB, "serve", "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, cwd=repo.ROOT)
        deadline, trainer_url = time.monotonic() + SERVE_TIMEOUT_S, None
        while trainer_url is None:
            assert time.monotonic() < deadline and server.poll() is None, "lab serve did not start"
            line = server.stdout.readline()
            if "the trainer's page" in line:
                trainer_url = line.split()[-1]
        base = trainer_url.split("/trainer/")[0]
        pages = {a.name: f"{base}/t/{Seat(a.name, room).token()}/" for a in accounts}
        status = trainer("status", "--all").stdout
        assert all(url in status for url in pages.values()), status  # the trainer's list of pages to hand out
        yield Room(trainer_url, pages, server)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        for account in accounts:
            account.lab("stop")


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.text()


def test_two_trainees_and_the_trainer_in_a_browser(classroom, accounts, room, tmp_path):
    a, b = accounts
    asyncio.run(_classroom(classroom, a, b, room, tmp_path))


async def _classroom(classroom: Room, a, b, room: Path, tmp_path: Path) -> None:
    page_a, page_b = classroom.pages[a.name], classroom.pages[b.name]
    token_a = page_a.rstrip("/").rsplit("/", 1)[1]
    base = page_a.split("/t/")[0]

    # A's token opens nothing of B's, nor the trainer's; a token one character off opens nothing
    for url in (f"{base}/trainer/{token_a}/", f"{base}/trainer/{token_a}/grades.csv", f"{base}/trainer/{token_a}/room",
                f"{base}/t/{token_a[:-1]}/state", f"{base}/t/{token_a}x/state", f"{base}/t/{a.name}/state",
                f"{base}/t/{token_a}/../{b.name}/state", f"{base}/t/{token_a}/capture/gw1/wan/pcap"):
        status, _ = await _get(url)
        assert status == 404, url
    # and B cannot read A's token where the server keeps it; A's own terminal shows A her page
    assert b.run("cat", str(room / a.name / "token")).returncode != 0
    assert f"page: {page_a}" in a.lab("status").stdout

    async with Browser(tmp_path / "profile") as browser:
        trainee_a, trainee_b = await browser.page(page_a), await browser.page(page_b)
        room_page = await browser.page(classroom.trainer)
        for account in (a, b):
            await room_page.wait(f"!!document.querySelector('#room tr[data-account={account.name}]')")

        # A fixes the lab from a shell of hers; the trainer's page follows her check within 2 s
        assert a.lab("shell", "gw2", "--", "sh", "-c", FIX_PSK).returncode == 0
        await room_page.eval(
            "window.healthyAt = null; setInterval(function () { var row = document.querySelector("
            f"'#room tr[data-account={a.name}]'); if (!window.healthyAt && row && row.classList.contains('passed'))"
            " window.healthyAt = Date.now(); }, 20)")
        await trainee_a.eval(
            "window.doneAt = null; setInterval(function () { if (!window.doneAt && document.getElementById("
            "'check-state').innerText.indexOf('healthy: well done') >= 0) window.doneAt = Date.now(); }, 20);"
            "document.getElementById('check').click()")
        done = await trainee_a.wait("window.doneAt", timeout=120)
        seen = await room_page.wait("window.healthyAt", timeout=5)
        print(f"the trainer's page showed A healthy {seen - done} ms after her page did")
        assert seen - done <= 2000, f"the trainer's page followed {seen - done} ms later"
        assert await trainee_a.eval("document.querySelectorAll('#checks tbody tr.failed').length") == 0

        # A types swanctl --list-sas in the terminal of gw1 and sees her tunnel; B's is still down
        for page in (trainee_a, trainee_b):
            await page.eval("document.querySelector('button.node[data-node=gw1]').click()")
            await page.wait((SCREEN % "gw1") + ".indexOf('[lab gw1]') >= 0")
            await page.call("Runtime.evaluate", {"expression": "window.labTerminals.gw1.focus()"})
            await page.type("swanctl --list-sas")
        await trainee_a.wait((SCREEN % "gw1") + ".indexOf('ESTABLISHED') >= 0")
        shown = await trainee_a.eval(SCREEN % "gw1")
        assert "hq: #" in shown and "net: #" in shown, shown
        await trainee_b.wait((SCREEN % "gw1") + ".split('[lab gw1]').length >= 3")  # the command ran, a prompt again
        assert "ESTABLISHED" not in await trainee_b.eval(SCREEN % "gw1")

        # A kills charon on gw1 of B's lab? She cannot; B's own kill is a finding, on the trainer's page at once
        killed = b.lab("shell", "gw1", "--", "sh", "-c", "kill -9 $(cat /run/charon.pid)")
        assert killed.returncode == 0, killed.stderr
        killed_at = time.monotonic()
        await room_page.wait(f"document.querySelector('#room tr[data-account={b.name}] .gone') && "
                             f"document.querySelector('#room tr[data-account={b.name}] .gone').innerText"
                             ".indexOf('charon on gw1 is gone since') >= 0", timeout=5)
        print(f"B's dead charon on the trainer's page {time.monotonic() - killed_at:.2f} s after the kill")
        assert time.monotonic() - killed_at < 2.5
        await trainee_b.wait("document.getElementById('gone').innerText.indexOf('charon on gw1 is gone') >= 0", 5)

    # the terminal tells it too, and lab check says it first; the trainer's diagnose --live says it
    assert "charon on gw1 is gone since" in b.lab("status").stdout
    checked = b.lab("check")
    assert checked.returncode == 1
    first = checked.stdout.split("FAIL every daemon of the lab runs", 1)
    assert len(first) == 2 and "charon on gw1 is gone since" in first[1].splitlines()[1], checked.stdout
    live = trainer("diagnose", "--live", "--user", b.name)
    assert "finding: charon on gw1 is gone since" in live.stderr, live.stderr

    # the grades: one row per trainee
    status, text = await _get(classroom.trainer + "grades.csv")
    assert status == 200
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(text))}
    assert set(rows) == {a.name, b.name}
    assert rows[a.name]["scenario"] == "psk-mismatch" and rows[a.name]["fixed at"] and rows[a.name]["checks"] == "1"
    assert rows[b.name]["fixed at"] == "" and rows[b.name]["checks"] == "1" and rows[b.name]["hints"] == "0"
    assert float(rows[a.name]["minutes to fix"]) >= 0


def test_lab_capture_streams_a_pcap(workshop_one):
    """`lab capture gw1:wan` as the trainee: a pcap stream on stdout, packets as they come."""
    account = workshop_one
    got = account.run("sh", "-c", f"{sys.executable} -m lab capture gw1:wan --count 4 > capture.pcap 2> capture.err & "
                      "until grep -q 'listening on' capture.err; do sleep 0.05; done; "  # tcpdump is ready
                      f"{sys.executable} -m lab shell gw1 -- swanctl --initiate --child net >/dev/null; wait; "
                      "od -An -tx1 -N4 capture.pcap; stat -c %s capture.pcap", timeout=120)
    magic, size = got.stdout.split("\n")[0].split(), int(got.stdout.split("\n")[1])
    assert magic == ["d4", "c3", "b2", "a1"] and size > 24 + 4 * 16, got.stdout + got.stderr
    refused = account.lab("capture", "gw1:nope")
    assert refused.returncode == 2 and "no interface 'nope' on gw1; allowed: lan, wan" in refused.stderr, refused.stderr


@pytest.fixture
def workshop_one(accounts, room, no_leaks):
    account = accounts[0]
    started = account.lab("start", "psk-mismatch")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield account
    finally:
        account.lab("stop")
