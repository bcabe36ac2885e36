"""``edgepose serve SOURCE``: the kiosk web app (a page with the live view, a WebSocket of
poses and events, /health) over the live engine, until SIGTERM, SIGINT or SIGHUP
(edgepose.stopping, as run). Under systemd (Type=notify, edgepose.systemd): READY=1 once
it listens, watchdog pings from each turn of the engine's loop, STOPPING=1 on the way out."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from edgepose.cli.options import HelpFormatter, add_option_flags, options_from_args
from edgepose.errors import InputError
from edgepose.stopping import StopSignals
from edgepose.systemd import Watchdog, notify


def add_parser(subparsers) -> argparse.ArgumentParser:
    serve = subparsers.add_parser(
        "serve", help="serve a live camera or stream as a kiosk web page, WebSocket and /health",
        formatter_class=HelpFormatter,
        description="Find poses in a live SOURCE and serve them: / (the live view, for a "
                    "kiosk browser), /ws (one JSON Lines object per frame, and events), "
                    "/video (MJPEG), /health. A lost camera is opened again until it returns. "
                    "Needs pip install 'edgepose[serve]'.")
    serve.add_argument("source", help="camera index (0), V4L2 device (/dev/video0), stream URL "
                       "(rtsp://, http://), 'picamera2', or a video file (played at its own rate)")
    web = serve.add_argument_group("web app")
    web.add_argument("--host", default="127.0.0.1",
                     help="address to listen on; any other than loopback needs --token")
    web.add_argument("--port", type=int, default=8080, help="port to listen on (0: any free port)")
    web.add_argument("--token", default=None,
                     help="every request must carry it (Authorization: Bearer TOKEN or "
                          "?token=TOKEN); default: $EDGEPOSE_TOKEN")
    web.add_argument("--loop", action="store_true",
                     help="play a video file again when it ends (else serve stops there)")
    web.add_argument("--layout", choices=("blazepose", "coco"), default="blazepose",
                     help="skeleton drawn on the page")
    add_option_flags(serve, skip_fields=("static_image_mode",))
    serve.set_defaults(func=cmd_serve)
    return serve


def cmd_serve(args: argparse.Namespace) -> int:
    import asyncio

    from edgepose.live import LiveEngine
    from edgepose.live.web import TOKEN_ENV, check_bind, import_aiohttp

    # a kiosk's log (journal) says every change of the camera's state, ok included
    logging.getLogger("edgepose.live").setLevel(logging.INFO)
    token = args.token or os.environ.get(TOKEN_ENV) or None
    check_bind(args.host, token)
    import_aiohttp()
    if not (0 <= args.port <= 65535):
        raise InputError(f"--port {args.port}: give a port from 1 to 65535 (0: any free port)")
    spec = args.source
    if not (spec.isdigit() or "://" in spec or spec.startswith("/dev/")
            or spec.lower() in ("picamera2", "picam")):
        from edgepose.sources import open_live

        open_live(spec).close()  # a file that is missing or cannot be read: say so now
    opts = options_from_args(args)
    engine = LiveEngine(spec, opts, loop=args.loop, layout=args.layout)
    _watch(engine)
    # from the start (a stop while the models load is a stop too) to the summary
    with StopSignals() as stop:
        try:
            engine.start()
            how = (f"stopped by {stop.name} while starting" if stop.is_set()
                   else asyncio.run(_serve(engine, args.host, args.port, token, stop)))
        except KeyboardInterrupt:  # a second signal while the first was honoured
            how = f"stopped by {stop.name}, forced by a second signal"
        finally:
            notify(STOPPING=1, STATUS=f"stopping: {_status(engine)}")
            engine.stop()
    h = engine.health()
    lat = h["latency_ms"]
    latency = f", latency p50 {lat['p50']:.0f} ms p99 {lat['p99']:.0f} ms" if h["frames"] else ""
    print(f"edgepose serve: {how}; {h['frames']} frame(s) processed, {h['dropped']} dropped, "
          f"{h['reconnects']} reconnect(s){latency}, up {h['uptime_s'] or 0:.0f} s", flush=True)
    return 0


def _status(engine) -> str:
    """systemd's STATUS line: the camera's state and the rate."""
    fps = engine.fps
    return f"camera {engine.state}, {engine.frames} frame(s)" + (f", {fps:.1f} FPS" if fps else "")


def _watch(engine) -> None:
    """systemd's watchdog pinged from each turn of the inference loop (it turns while the
    camera is lost too: an outage is not a hang; a hung inference stops the pings)."""
    watchdog = Watchdog()
    engine.on_turn(lambda: watchdog.ping(lambda: _status(engine)))


async def _serve(engine, host: str, port: int, token: str | None, stop) -> str:
    """Serve until a stop signal or the end of a video file: how it ended, in words."""
    import asyncio

    from edgepose.live.web import LOOPBACK, make_app, start_site

    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    stop.on_stop = lambda signum: loop.call_soon_threadsafe(stopped.set)  # wakes the loop
    if stop.is_set():
        return f"stopped by {stop.name} while starting"
    runner, bound = await start_site(make_app(engine, token, loopback=host in LOOPBACK), host, port)
    d = engine.pipeline.describe()
    shown = f"[{host}]" if ":" in host else host
    print(f"edgepose serve: http://{shown}:{bound}/ ({engine.capture.name}, model {d['model']}, "
          f"{d['runtime']}){' token required' if token else ''}", flush=True)
    notify(READY=1, STATUS=f"serving http://{shown}:{bound}/; {_status(engine)}")
    ended = asyncio.ensure_future(asyncio.to_thread(engine.wait))
    waiting = asyncio.ensure_future(stopped.wait())
    await asyncio.wait({ended, waiting}, return_when=asyncio.FIRST_COMPLETED)
    if stop.is_set():
        why = f"stopped by {stop.name}" if stop.name else "stopped"
    else:
        why = f"{engine.capture.name} ended ({engine.capture.reason}; --loop plays it again)"
        print(f"edgepose serve: {why}", file=sys.stderr, flush=True)
    engine.finished.set()  # ends the waiting thread
    waiting.cancel()
    await runner.cleanup()
    return why
