"""Headless Chromium driven over the Chrome DevTools Protocol (a WebSocket, aiohttp's client):
pages opened, JavaScript evaluated in them, keys typed as a person types them. Debian's
chromium, a fresh profile each time; no download, no other browser."""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import aiohttp

from lab import procfs

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic", "--remote-debugging-port=0"]
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 10


@contextlib.contextmanager
def environment() -> Iterator[dict[str, str]]:
    """Chromium's environment, with a temporary folder of its own removed after it: Chromium
    keeps its single-instance socket in a folder of TMPDIR and leaves it there when it is killed.
    A short path in the system's: the socket's path must fit in 108 bytes."""
    tmp = tempfile.mkdtemp(prefix="chromium-")
    try:
        yield {**os.environ, "TMPDIR": tmp}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class Browser:
    def __init__(self, profile: Path, width: int = 1280, height: int = 900):
        self.profile, self.size = profile, (width, height)
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future] = {}

    async def __aenter__(self) -> "Browser":
        # undone in reverse: the session, Chromium's process group, then its temporary folder
        self._cleanup = contextlib.AsyncExitStack()
        env = self._cleanup.enter_context(environment())
        self.proc = subprocess.Popen(["chromium", *FLAGS, f"--user-data-dir={self.profile}",
                                      f"--window-size={self.size[0]},{self.size[1]}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                                     start_new_session=True)  # its helpers with it: one group to end
        self._cleanup.push_async_callback(_end, self.proc)
        try:
            port_file = self.profile / "DevToolsActivePort"
            deadline = time.monotonic() + START_TIMEOUT_S
            while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
                assert self.proc.poll() is None, "chromium exited"
                assert time.monotonic() < deadline, "chromium did not open its DevTools port"
                await asyncio.sleep(0.05)
            port, path = port_file.read_text().splitlines()[:2]
            self.http = await self._cleanup.enter_async_context(aiohttp.ClientSession())
            self.ws = await self.http.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0)
        except BaseException:
            await self._cleanup.aclose()
            raise
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc) -> None:
        self._reader.cancel()
        await self.ws.close()
        await self._cleanup.aclose()

    async def _read(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            future = self._waiting.pop(data.get("id"), None)
            if future is not None and not future.done():
                future.set_result(data)

    async def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        number = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._waiting[number] = future
        await self.ws.send_str(json.dumps({"id": number, "method": method, "params": params or {},
                                           **({"sessionId": session} if session else {})}))
        answer = await asyncio.wait_for(future, 60)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    async def page(self, url: str, wait: str = "document.readyState === 'complete'") -> "Page":
        """A new tab at `url`, once `wait` holds in it (JavaScript)."""
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        page = Page(self, attached["sessionId"], target["targetId"])
        await page.call("Page.enable")
        await page.call("Runtime.enable")
        await page.call("Emulation.setDeviceMetricsOverride", {"width": self.size[0], "height": self.size[1],
                                                                "deviceScaleFactor": 1, "mobile": False})
        await page.call("Page.navigate", {"url": url})
        await page.wait(wait)
        return page


async def _end(proc: subprocess.Popen) -> None:
    """Chromium and every helper it started, gone (Debian's `chromium` is a script: the browser is
    its child, not the process started here). SIGTERM to the group lets the browser write its
    profile; whatever still runs after that is killed. Zombies count as gone: they write nothing,
    and reaping them is the machine's init's business."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _running_in_group(proc.pid) and time.monotonic() < deadline:
            proc.poll()
            await asyncio.sleep(0.02)
        if not _running_in_group(proc.pid):
            break
    proc.wait()


def _running_in_group(pgid: int) -> bool:
    """Whether a process of group `pgid` runs (a zombie does not)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := procfs.stat(entry.name)) and fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


class Page:
    def __init__(self, browser: Browser, session: str, target: str):
        self.browser, self.session, self.target = browser, session, target

    async def close(self) -> None:
        await self.browser.send("Target.closeTarget", {"targetId": self.target})

    async def call(self, method: str, params: dict | None = None) -> dict:
        return await self.browser.send(method, params, self.session)

    async def eval(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                      "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails'].get('exception', {}).get('description')}")
        return result["result"].get("value")

    async def wait(self, expression: str, timeout: float = 20) -> Any:
        """Until `expression` is truthy in the page; its value."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = await self.eval(expression)
            except RuntimeError:
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout:g} s: {expression}")
            await asyncio.sleep(0.05)

    async def type(self, text: str) -> None:
        """Keys into the focused element, then Enter, as a person types a command."""
        await self.call("Input.insertText", {"text": text})
        for kind in ("keyDown", "keyUp"):
            await self.call("Input.dispatchKeyEvent", {"type": kind, "key": "Enter", "code": "Enter",
                                                       "windowsVirtualKeyCode": 13, "text": "\r" if kind == "keyDown" else ""})
