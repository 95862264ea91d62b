"""The routes of `lab serve`: a page per trainee behind the secret in its URL, the trainer's
page behind the trainer's, and nothing else.

Every trainee route starts from the token in its path and acts on that token's seat alone;
none takes an account's name. Whatever a trainee's action runs (a check, a hint, a shell, a
capture) runs as that trainee's account (lab.serve.room.run_as), exactly as their own
terminal would; root only reads the room. Unknown tokens and unknown paths are the same 404.
"""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import sys
from importlib.resources import files
from pathlib import Path

import jinja2
from aiohttp import web

from lab.serve import live, terminal, views
from lab.serve.room import Room, SeatView, run_as
from lab.visible import visible

STATIC = files("lab.serve") / "static"
VENDOR = files("lab.serve") / "vendor"  # xterm.js, as npm gives it (vendor/README)
VENDOR_FILES = ("xterm.js", "xterm.css", "addon-fit.js")
STATIC_FILES = ("room.css", "page.js", "trainee.js", "trainer.js")
TYPES = {".js": "text/javascript", ".css": "text/css"}
KEEPALIVE_S = 15
HINT_TIMEOUT_S = 60
CHECK_MARGIN_S = 60  # beyond the lab's own check timeout: a Python to start, a report to write
LIVE_PER_SEAT = 4  # live captures a trainee keeps open at once (each holds up to live.KEEP_BYTES)
TERMINALS_PER_SEAT = 12  # terminals a trainee keeps open at once
HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                                      "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
           "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
_PAGES = jinja2.Environment(loader=jinja2.PackageLoader("lab.serve", "templates"), autoescape=True,
                            undefined=jinja2.StrictUndefined)
ROOM_KEY = web.AppKey("room", Room)
TRAINER_KEY = web.AppKey("trainer", str)
LIVE_KEY = web.AppKey("live", dict)


@web.middleware
async def _headers(request: web.Request, handler):
    response = await handler(request)
    if not response.prepared:
        response.headers.update(HEADERS)
    return response


def make_app(room: Room, trainer_token: str) -> web.Application:
    app = web.Application(middlewares=[_headers], client_max_size=64 * 1024)
    app[ROOM_KEY], app[TRAINER_KEY], app[LIVE_KEY] = room, trainer_token, {}
    app.router.add_get("/", _index)
    app.router.add_get("/static/{name}", _static)
    app.router.add_get("/vendor/{name}", _vendor)
    app.router.add_get("/t/{token}/", _trainee_page)
    app.router.add_get("/t/{token}/state", _trainee_state)
    app.router.add_get("/t/{token}/events", _trainee_events)
    app.router.add_post("/t/{token}/hint", _hint)
    app.router.add_post("/t/{token}/check", _check)
    app.router.add_get("/t/{token}/terminal/{node}", _terminal)
    app.router.add_get("/t/{token}/capture/{node}/{intf}", _capture)
    app.router.add_get("/t/{token}/capture/{node}/{intf}/pcap", _capture_pcap)
    app.router.add_get("/trainer/{token}/", _trainer_page)
    app.router.add_get("/trainer/{token}/room", _trainer_room)
    app.router.add_get("/trainer/{token}/events", _trainer_events)
    app.router.add_get("/trainer/{token}/grades.csv", _grades)

    async def watching(app: web.Application):
        room.scan()
        task = asyncio.create_task(room.watch())
        yield
        task.cancel()
        for capture in list(app[LIVE_KEY].values()):
            await capture.stop()
    app.cleanup_ctx.append(watching)
    return app


# -- who is asking ------------------------------------------------------------------------

def _seat(request: web.Request) -> SeatView:
    view = request.app[ROOM_KEY].by_token(request.match_info["token"])
    if view is None:
        raise web.HTTPNotFound()
    return view


def _trainer(request: web.Request) -> None:
    if not hmac.compare_digest(request.match_info["token"].encode(), request.app[TRAINER_KEY].encode()):
        raise web.HTTPNotFound()


def _same_origin(request: web.Request) -> None:
    """A WebSocket or a POST from a page of this server only (a browser names the page's origin)."""
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        raise web.HTTPForbidden()


# -- files -----------------------------------------------------------------------------------

async def _index(request: web.Request) -> web.Response:
    return web.Response(text=_PAGES.get_template("index.html.j2").render(), content_type="text/html")


async def _static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name == "report.css":  # the report's own styles: ladders look the same on both
        from lab.report.html import stylesheet
        return web.Response(text=stylesheet(), content_type="text/css")
    if name not in STATIC_FILES:
        raise web.HTTPNotFound()
    return web.Response(body=(STATIC / name).read_bytes(), content_type=TYPES[Path(name).suffix])


async def _vendor(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in VENDOR_FILES:
        raise web.HTTPNotFound()
    return web.Response(body=(VENDOR / name).read_bytes(), content_type=TYPES[Path(name).suffix])


# -- a trainee's page ----------------------------------------------------------------------

async def _trainee_page(request: web.Request) -> web.Response:
    view = _seat(request)
    await request.app[ROOM_KEY].briefing(view)
    return web.Response(text=_PAGES.get_template("trainee.html.j2").render(state=views.trainee(view)),
                        content_type="text/html")


async def _trainee_state(request: web.Request) -> web.Response:
    view = _seat(request)
    await request.app[ROOM_KEY].briefing(view)
    return web.json_response(views.trainee(view))


async def _trainee_events(request: web.Request) -> web.StreamResponse:
    view, room = _seat(request), request.app[ROOM_KEY]

    async def payload() -> str | None:
        current = room.seats.get(view.account)
        if current is None or current.token != view.token:
            return None  # the lab was stopped, or started again with a new token: this page is over
        await room.briefing(current)
        return json.dumps(views.trainee(current), ensure_ascii=False)
    return await _events(request, room, payload)


async def _events(request: web.Request, room: Room, payload) -> web.StreamResponse:
    """Server-sent events: the payload now, then whenever it changes; a comment every
    KEEPALIVE_S keeps proxies from closing an idle stream."""
    response = web.StreamResponse(headers={**HEADERS, "Content-Type": "text/event-stream"})
    await response.prepare(request)
    seen, sent = room.version, None
    while True:
        data = await payload()
        if data is None:
            await response.write(b"event: gone\ndata: {}\n\n")
            return response
        if data != sent:
            await response.write(f"data: {data}\n\n".encode())
            sent = data
        else:
            await response.write(b": keep-alive\n\n")
        seen = await room.wait_change(seen, KEEPALIVE_S)


async def _hint(request: web.Request) -> web.Response:
    _same_origin(request)
    view = _seat(request)
    code, out, err = await run_as(view.account, sys.executable, "-m", "lab", "hint", "--json", timeout=HINT_TIMEOUT_S)
    if code != 0:
        return web.json_response({"error": visible(_last_line(err))}, status=409)
    try:
        hint = json.loads(out)
        return web.json_response({"number": int(hint["number"]), "of": int(hint["of"]),
                                  "hint": {"en": str(hint["hint"]["en"]), "zh": str(hint["hint"]["zh"])}})
    except (ValueError, KeyError, TypeError):
        return web.json_response({"error": "the hint could not be read"}, status=500)


async def _check(request: web.Request) -> web.Response:
    _same_origin(request)
    view, room = _seat(request), request.app[ROOM_KEY]
    if "check" in view.busy:
        return web.json_response({"error": "a check is already running"}, status=409)
    view.busy.add("check")
    await room.bump()
    try:
        code, out, err = await run_as(view.account, sys.executable, "-m", "lab", "check", "--json",
                                      timeout=CHECK_MARGIN_S + 600)
    finally:
        view.busy.discard("check")
        await room.bump()
    if code not in (0, 1):
        return web.json_response({"error": visible(_last_line(err))}, status=409)
    try:
        report = json.loads(out)
        shown = {"number": int(report["number"]), "passed": bool(report["passed"]), "rearmed": bool(report["rearmed"]),
                 "error": None if report.get("error") is None else str(report["error"]),
                 "checks": [{"title": {"en": str(c["title"]["en"]), "zh": str(c["title"]["zh"])},
                             "passed": bool(c["passed"]), "observed": str(c["observed"])} for c in report["checks"]]}
    except (ValueError, KeyError, TypeError):
        return web.json_response({"error": "the check's result could not be read"}, status=500)
    return web.json_response(shown)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "it failed"


async def _terminal(request: web.Request) -> web.WebSocketResponse:
    _same_origin(request)
    view = _seat(request)
    node = request.match_info["node"]
    if node not in view.record.nodes or not view.record.alive:
        raise web.HTTPNotFound()
    if view.terminals >= TERMINALS_PER_SEAT:
        raise web.HTTPTooManyRequests(text=f"at most {TERMINALS_PER_SEAT} terminals at once")
    ws = web.WebSocketResponse(max_msg_size=64 * 1024, heartbeat=30)
    await ws.prepare(request)
    view.terminals += 1
    try:
        await terminal.bridge(ws, view.account, node, {"LAB_ROOM": str(request.app[ROOM_KEY].path)})
    finally:
        view.terminals -= 1
    return ws


def _point(request: web.Request) -> tuple[SeatView, str, str]:
    view = _seat(request)
    node, intf = request.match_info["node"], request.match_info["intf"]
    if intf not in view.record.interfaces.get(node, {}):
        raise web.HTTPNotFound()
    return view, node, intf


async def _capture(request: web.Request) -> web.WebSocketResponse:
    _same_origin(request)
    view, node, intf = _point(request)
    briefing = await request.app[ROOM_KEY].briefing(view)
    captures = request.app[LIVE_KEY]
    mine = [k for k in captures if k[0] == view.account]
    if len(mine) >= LIVE_PER_SEAT and (view.account, node, intf) not in captures:
        raise web.HTTPTooManyRequests(text=f"at most {LIVE_PER_SEAT} live captures a trainee")
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    key = (view.account, node, intf)
    if key in captures:
        await captures[key].stop()
    capture = captures[key] = live.LiveCapture(view.account, node, intf)
    reading = asyncio.create_task(capture.run())
    ports = frozenset(briefing.nat_t_ports) if briefing else frozenset({4500})
    owners = dict(briefing.owners) if briefing else {}

    async def send() -> None:
        async for frame in live.frames(capture, view.record.interfaces[node][intf], ports, owners):
            await ws.send_str(json.dumps(frame, ensure_ascii=False))

    sending = asyncio.create_task(send())
    try:
        async for _ in ws:  # the page says nothing; it closes when it is done
            pass
    finally:
        sending.cancel()
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
        await capture.stop()  # its packets stay for the download until the next capture of this point
    return ws


async def _capture_pcap(request: web.Request) -> web.Response:
    view, node, intf = _point(request)
    capture = request.app[LIVE_KEY].get((view.account, node, intf))
    if capture is None or not capture.header:
        raise web.HTTPNotFound()
    return web.Response(body=capture.pcap(), content_type="application/vnd.tcpdump.pcap",
                        headers={"Content-Disposition": f'attachment; filename="{node}-{intf}.pcap"'})


# -- the trainer's page ----------------------------------------------------------------------

async def _trainer_page(request: web.Request) -> web.Response:
    _trainer(request)
    return web.Response(text=_PAGES.get_template("trainer.html.j2").render(), content_type="text/html")


async def _room_payload(room: Room) -> str:
    for view in list(room.seats.values()):
        await room.briefing(view)
    return json.dumps(views.trainer(list(room.seats.values())), ensure_ascii=False)


async def _trainer_room(request: web.Request) -> web.Response:
    _trainer(request)
    return web.Response(text=await _room_payload(request.app[ROOM_KEY]), content_type="application/json")


async def _trainer_events(request: web.Request) -> web.StreamResponse:
    _trainer(request)
    room = request.app[ROOM_KEY]
    return await _events(request, room, lambda: _room_payload(room))


async def _grades(request: web.Request) -> web.Response:
    _trainer(request)
    return web.Response(text=views.grades(list(request.app[ROOM_KEY].seats.values())), content_type="text/csv",
                        charset="utf-8", headers={"Content-Disposition": 'attachment; filename="grades.csv"'})
