"""A live capture in the browser: `lab capture NODE:IF` run as the trainee, its pcap stream
read as it comes, the last packets drawn as the report draws them (lab.report.ladder), and
everything captured (up to KEEP_PACKETS) downloadable as a pcap.

Decoding is the report's own (scapy, in a worker thread, at most every REDRAW_S); the stream
is parsed here only into records (the pcap format's 16-byte header and its data).
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import struct
import sys
import tempfile
import time
from pathlib import Path

from lab.serve.room import as_account

GLOBAL_HEADER = 24
RECORD_HEADER = 16
KEEP_PACKETS = 10000  # the download: about the last 10,000 packets, at most KEEP_BYTES
KEEP_BYTES = 16 << 20
DRAWN_PACKETS = 60  # the ladder: the last packets, as many as read at a glance
REDRAW_S = 1.0
MAX_RECORD = 262144 + RECORD_HEADER  # tcpdump's largest snap length: a longer record is not a pcap


class LiveCapture:
    """One `lab capture` for one page: its process, its packets, its drawing."""

    def __init__(self, account: str, node: str, intf: str):
        self.account, self.node, self.intf = account, node, intf
        self.header = b""
        self.records: collections.deque[bytes] = collections.deque()
        self.kept_bytes = 0
        self.total = 0
        self.error: str | None = None
        self.proc: asyncio.subprocess.Process | None = None
        self.changed = asyncio.Event()

    async def run(self) -> None:
        """Read the stream until it ends (or this task is cancelled: the process is stopped)."""
        self.proc = await asyncio.create_subprocess_exec(
            *as_account(self.account, sys.executable, "-m", "lab", "capture", f"{self.node}:{self.intf}"),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            stream = self.proc.stdout
            self.header = await stream.readexactly(GLOBAL_HEADER)
            little = self.header[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")
            while True:
                head = await stream.readexactly(RECORD_HEADER)
                length = struct.unpack("<I" if little else ">I", head[8:12])[0]
                if length > MAX_RECORD:
                    raise ValueError(f"a record of {length} bytes")
                self._keep(head + await stream.readexactly(length))
        except asyncio.IncompleteReadError:
            err = (await self.proc.stderr.read(4000)).decode(errors="replace").strip().splitlines()
            self.error = err[-1] if err else "the capture ended"
        except ValueError as exc:
            self.error = f"not a pcap stream: {exc}"
        finally:
            await self.stop()
            self.changed.set()

    def _keep(self, record: bytes) -> None:
        self.records.append(record)
        self.kept_bytes += len(record)
        self.total += 1
        while len(self.records) > KEEP_PACKETS or self.kept_bytes > KEEP_BYTES:
            self.kept_bytes -= len(self.records.popleft())
        self.changed.set()

    def pcap(self, last: int | None = None) -> bytes:
        records = list(self.records)[-last:] if last else list(self.records)
        return self.header + b"".join(records) if self.header else b""

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()


def draw(pcap: bytes, mac: str, nat_t_ports: frozenset[int], owners: dict, name: str, started: float,
         href: str) -> str:
    """The ladder of these packets, as the report draws it (SVG, every text escaped)."""
    from lab.report import html, ladder

    with tempfile.TemporaryDirectory(prefix="ipsec-lab-live-") as tmp:
        path = Path(tmp) / "live.pcap"
        path.write_bytes(pcap)
        capture = ladder.read(path, mac, nat_t_ports)
    laid = ladder.layout(capture, owners)
    if not laid.rows:
        return ""
    view = html.CaptureView(name, name, html.FileLink(href, name), capture, laid)
    return str(html.ladder_svg(view, started))


async def frames(live: LiveCapture, mac: str, nat_t_ports: frozenset[int], owners: dict):
    """What the page is sent: whenever packets came, at most every REDRAW_S, the ladder of the
    last ones and the counts; the decoding runs in a worker thread."""
    loop = asyncio.get_running_loop()
    started = time.time()
    while True:
        await live.changed.wait()
        live.changed.clear()
        shown = live.total
        svg = ""
        if live.records:
            # the packet numbers are those of the last DRAWN_PACKETS; the link downloads them all
            svg = await loop.run_in_executor(None, draw, live.pcap(DRAWN_PACKETS), mac, nat_t_ports, owners,
                                             f"{live.node}:{live.intf}", started, f"capture/{live.node}/{live.intf}/pcap")
        yield {"packets": shown, "kept": len(live.records), "svg": svg, "error": live.error}
        if live.error is not None:
            return
        await asyncio.sleep(REDRAW_S)
