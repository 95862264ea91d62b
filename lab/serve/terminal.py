"""A node's shell in the browser: `lab shell NODE` run as the trainee (never as root) under a
pseudo-terminal, its bytes carried over a WebSocket to xterm.js and back.

The shell is exactly the trainee's own `lab shell`: lab.sandbox.runas drops to the account,
util-linux `setsid --ctty` gives it the terminal as its controlling one (job control, Ctrl-C),
and the lab's client joins the account's sandbox (lab.sandbox.join_argv) and the node (mnexec).
"""
from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios

from aiohttp import WSMsgType, web

from lab.serve.room import as_account

READ_CHUNK = 65536
MAX_SIZE = (500, 200)  # columns, rows
SETSID = "/usr/bin/setsid"


def _resize(fd: int, cols: int, rows: int) -> None:
    cols, rows = max(2, min(cols, MAX_SIZE[0])), max(2, min(rows, MAX_SIZE[1]))
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


async def bridge(ws: web.WebSocketResponse, account: str, node: str, env: dict[str, str]) -> None:
    """Until either side closes: keystrokes (binary frames) to the shell, its output back;
    a text frame {"cols": C, "rows": R} resizes the terminal."""
    master, slave = pty.openpty()
    _resize(master, 100, 30)
    proc = subprocess.Popen(as_account(account, SETSID, "--ctty", "--wait", sys.executable, "-m", "lab", "shell", node),
                            stdin=slave, stdout=slave, stderr=slave, env={**os.environ, **env, "TERM": "xterm-256color"},
                            close_fds=True)
    os.close(slave)
    os.set_blocking(master, False)
    loop = asyncio.get_running_loop()
    output: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=64)

    def readable() -> None:
        try:
            data = os.read(master, READ_CHUNK)
        except OSError:  # EIO: the shell's side is closed
            data = b""
        if not data:
            loop.remove_reader(master)
        with contextlib.suppress(asyncio.QueueFull):  # a browser that cannot keep up loses output, never the server
            output.put_nowait(data or None)

    loop.add_reader(master, readable)

    async def pump() -> None:
        while (data := await output.get()) is not None:
            await ws.send_bytes(data)
        await ws.close()

    pumping = asyncio.create_task(pump())
    try:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                await loop.run_in_executor(None, _write_all, master, msg.data)
            elif msg.type == WSMsgType.TEXT:
                with contextlib.suppress(ValueError, TypeError, KeyError, OSError):
                    size = json.loads(msg.data)
                    _resize(master, int(size["cols"]), int(size["rows"]))
    finally:
        pumping.cancel()
        loop.remove_reader(master)
        os.close(master)  # the shell's terminal hangs up: SIGHUP to its session
        await loop.run_in_executor(None, _reap, proc)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            select.select([], [fd], [], 1.0)


def _reap(proc: subprocess.Popen) -> None:
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
