"""The kiosk web app over a :class:`~edgepose.live.LiveEngine` (``edgepose serve``), on
aiohttp: one well-kept library that is both the HTTP server and the WebSocket server, so
no ASGI server is needed beside it (``pip install 'edgepose[serve]'``).

Routes: ``/`` the page (edgepose/live/static/index.html: the video with the skeleton drawn on
a canvas from the pose JSON, a HUD, a banner while the camera is lost),
``/config`` (skeleton edges and colours of edgepose.draw, for the page), ``/video`` (MJPEG
of the processed frames; ``?overlay=1``: with the skeleton drawn on the server),
``/ws`` (one JSON Lines object per processed frame, and event objects), ``/health``
(JSON; 503 while the camera is not ok). With a token, every route answers 401 unless the
request has ``Authorization: Bearer TOKEN`` or ``?token=TOKEN``. Files are read from the
package once, by fixed names: no part of a request path reaches the file system.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import json
import logging
import threading
from importlib import resources
from urllib.parse import urlsplit

from edgepose.errors import InputError
from edgepose.live.engine import LiveEngine
from edgepose.live.publish import LiveResult

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "::1", "localhost")
BOUNDARY = "edgeposeframe"
PAGES = {"/": ("index.html", "text/html")}  # the page holds its script: one token check
TOKEN_ENV = "EDGEPOSE_TOKEN"


def import_aiohttp():
    try:
        import aiohttp
        from aiohttp import web
    except ImportError:
        raise InputError("edgepose serve needs aiohttp: pip install 'edgepose[serve]'") from None
    return aiohttp, web


def check_bind(host: str, token: str | None) -> None:
    """InputError when ``host`` is not loopback and there is no token."""
    if host not in LOOPBACK and not token:
        raise InputError(f"--host {host} serves video and poses to the network: give --token TOKEN "
                         f"(or set {TOKEN_ENV}), or keep the default --host 127.0.0.1")


def page_config(layout: str) -> dict:
    """What the page draws with, from edgepose.draw and edgepose.skeletons (colours as RGB)."""
    from edgepose.draw import PALETTE
    from edgepose.skeletons import (
        BLAZEPOSE_CONNECTIONS,
        BLAZEPOSE_TO_COCO,
        COCO_CONNECTIONS,
    )

    coco = layout == "coco"
    return {"layout": layout, "min_visibility": 0.5,
            "edges": [list(e) for e in (COCO_CONNECTIONS if coco else BLAZEPOSE_CONNECTIONS)],
            "points": list(BLAZEPOSE_TO_COCO) if coco else None,
            "palette": [[c[2], c[1], c[0]] for c in PALETTE], "untracked": [255, 255, 255]}


def make_app(engine: LiveEngine, token: str | None = None, loopback: bool = True):
    """The aiohttp Application serving ``engine``. ``loopback`` (it listens on loopback
    only): requests must name a loopback host, so that a web page in the kiosk's browser
    cannot reach it through DNS rebinding. A WebSocket handshake from a page of another
    origin (its Origin header) is refused whatever the address."""
    _, web = import_aiohttp()
    static = resources.files("edgepose.live") / "static"
    files = {route: (static.joinpath(name).read_bytes(), kind) for route, (name, kind) in PAGES.items()}
    config = page_config(engine.layout)
    # JPEG encoding off the event loop, on one thread: bounded CPU, and one malloc arena
    # rather than one per pool thread (flatter RSS over days)
    encoder = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="live-jpeg")
    subs: set = set()
    sockets: set = set()

    @web.middleware
    async def auth(request, handler):
        if loopback and _hostname(request.host) not in LOOPBACK:
            return web.Response(status=403, text=f"403: this server answers to {LOOPBACK[0]} only\n")
        origin = request.headers.get("Origin")
        if request.path == "/ws" and origin and urlsplit(origin).netloc != request.host:
            return web.Response(status=403, text="403: a page of another origin\n")
        if token is not None:
            given = request.query.get("token", "")
            header = request.headers.get("Authorization", "")
            if header.startswith("Bearer "):
                given = header[len("Bearer "):]
            if not hmac.compare_digest(given.encode(), token.encode()):
                return web.Response(status=401, text="401: a token is needed (Authorization: "
                                    "Bearer TOKEN, or ?token=TOKEN)\n")
        return await handler(request)

    async def page(request):
        body, kind = files[request.path]
        return web.Response(body=body, content_type=kind, headers={"Cache-Control": "no-cache"})

    async def get_config(request):
        return web.json_response(config)

    async def health(request):
        facts = engine.health()
        return web.json_response(facts, status=200 if facts["camera"] == "ok" else 503)

    async def video(request):
        annotated = request.query.get("overlay", "") in ("1", "true", "yes")
        response = web.StreamResponse(headers={
            "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
            "Cache-Control": "no-cache"})
        await response.prepare(request)
        sub = engine.subscribe_async(maxsize=1, events=False)
        subs.add(sub)
        loop = asyncio.get_running_loop()
        try:
            async for item in sub:
                data = await loop.run_in_executor(encoder, item.jpeg, annotated)
                await response.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                     f"{len(data)}\r\n\r\n".encode("ascii") + data + b"\r\n")
        except ConnectionError:
            pass  # the viewer went away
        finally:
            sub.close()
            subs.discard(sub)
        return response

    async def websocket(request):
        ws = web.WebSocketResponse(heartbeat=20)
        await ws.prepare(request)
        sub = engine.subscribe_async(maxsize=16)
        subs.add(sub)
        sockets.add(ws)

        async def read():  # incoming messages are ignored; reading sees the close
            async for _ in ws:
                pass
            sub.close()

        reader = asyncio.ensure_future(read())
        try:
            await ws.send_str(json.dumps({"event": "camera", "state": engine.state,
                                          "reason": engine.capture.reason, "source": engine.capture.name}))
            async for item in sub:
                await ws.send_str(item.json() if isinstance(item, LiveResult) else json.dumps(item))
        except ConnectionError:
            pass  # the client went away
        finally:
            sub.close()
            subs.discard(sub)
            sockets.discard(ws)
            reader.cancel()
            await ws.close()
        return ws

    async def on_shutdown(app):
        for sub in list(subs):
            sub.close()
        for ws in list(sockets):
            await ws.close(code=1001, message=b"server stopping")

    async def on_cleanup(app):
        encoder.shutdown(wait=False)

    app = web.Application(middlewares=[auth])
    for route in files:
        app.router.add_get(route, page)
    app.router.add_get("/config", get_config)
    app.router.add_get("/health", health)
    app.router.add_get("/video", video)
    app.router.add_get("/ws", websocket)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app


def _hostname(host: str) -> str:
    """The name in a Host header, without its port ("[::1]:8080" -> "::1")."""
    return urlsplit("//" + host).hostname or ""


async def start_site(app, host: str, port: int):
    """Start serving ``app``: (runner, the port bound). InputError when the address cannot
    be bound (in use, not this machine's)."""
    _, web = import_aiohttp()
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise InputError(f"could not listen on {host}:{port}: {exc.strerror or exc} "
                         "(another program on that port? give --port)") from None
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, bound


class BackgroundServer:
    """The web app on its own thread and event loop, beside your own code:

    >>> server = BackgroundServer(engine, port=0).start()   # server.url
    >>> server.stop()
    """

    def __init__(self, engine: LiveEngine, host: str = "127.0.0.1", port: int = 8080,
                 token: str | None = None) -> None:
        check_bind(host, token)
        self.engine, self.host, self.port, self.token = engine, host, port, token
        self._loop = asyncio.new_event_loop()
        self._runner = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="live-web", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> BackgroundServer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        self._runner, self.port = future.result(timeout=30)
        return self

    async def _start(self):
        app = make_app(self.engine, self.token, loopback=self.host in LOOPBACK)
        return await start_site(app, self.host, self.port)

    def stop(self) -> None:
        """Stop serving (safe to call twice)."""
        if self._loop.is_closed():
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
