"""Runs `lab serve`: the room's pages on the address the trainer chose, until Ctrl-C or SIGTERM.

It writes where it listens into the room (`.serve.json`, readable by every account: `lab
start` and `lab status` print a trainee's page from it), and keeps the trainer's secret in
the room too (`.trainer-token`, root's alone), so a restarted server keeps every URL handed out.
"""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
from pathlib import Path

from aiohttp import web

from lab.serve.app import make_app
from lab.serve.room import Room
from lab.workshop import state

TRAINER_TOKEN = ".trainer-token"


def trainer_token(room: Path) -> str:
    path = room / TRAINER_TOKEN
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            if os.fstat(fd).st_uid == 0:
                token = os.read(fd, 200).decode(errors="replace").strip()
                if len(token) >= 32:
                    return token
        finally:
            os.close(fd)
    except OSError:
        pass
    token = secrets.token_urlsafe(state.TOKEN_BYTES)
    state.write_new(path, token + "\n", 0o600)
    return token


def run(host: str, port: int, url: str | None, announce) -> None:
    """Serve until interrupted; `announce(trainer_url, room)` once the socket is bound."""
    room_path = state.room()
    os.environ[state.ROOM_VAR] = str(room_path)  # what the trainees' commands run under (runas keeps it)
    asyncio.run(_serve(room_path, host, port, url, announce))


async def _serve(room_path: Path, host: str, port: int, url: str | None, announce) -> None:
    room = Room(room_path)
    token = trainer_token(room_path)
    runner = web.AppRunner(make_app(room, token), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, shutdown_timeout=2)
    await site.start()
    bound = runner.addresses[0]
    shown = f"[{host}]" if ":" in host else host
    base = (url or f"http://{shown}:{bound[1]}").rstrip("/")
    where = room_path / state.SERVE_FILE
    state.write_new(where, json.dumps({"url": base, "pid": os.getpid(), "started_at": state.start_time(os.getpid())}),
                    0o644)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        room.scan()
        announce(f"{base}/trainer/{token}/", room)
        await stop.wait()
    finally:
        where.unlink(missing_ok=True)
        await runner.cleanup()
