"""`edgepose serve` and its web app on loopback, over the live engine on a local MJPEG
stream of the street clip: /health codes and fields, the token on every route, no path to
the file system, the WebSocket's JSON Lines objects, DNS rebinding and cross-origin
WebSockets refused; the command's refusal without a token, its stop on signals and at the
end of a file, and what it tells systemd (READY, watchdog pings through a camera outage,
STOPPING) on a real NOTIFY_SOCKET."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, STREET, need
from live_helpers import NotifySocket, get, wait_for

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

RECORD_KEYS = {"source", "frame", "image", "mode", "timestamp_ms", "stages_ms", "poses", "image_size"}


@pytest.fixture(scope="module")
def web(engine):
    from edgepose.live.web import BackgroundServer

    with BackgroundServer(engine, port=0) as server:
        yield server


def test_health_codes_and_fields(engine, replay, web):
    wait_for(lambda: engine.state == "ok", 15, "ok")
    status, body = get(web.url + "/health")
    health = json.loads(body)
    assert status == 200 and health["camera"] == "ok"
    assert {"camera", "frames", "fps", "last_frame_age_s", "latency_ms", "rss_mb", "uptime_s"} <= health.keys()
    assert health["frames"] > 0 and health["rss_mb"] > 10 and health["latency_ms"]["p99"] >= health["latency_ms"]["p50"]
    replay.kill()
    try:
        wait_for(lambda: engine.state != "ok", 10, "loss")
        status, body = get(web.url + "/health")
        assert status == 503 and json.loads(body)["camera"] in ("lost", "reconnecting")
    finally:
        replay.start()
    wait_for(lambda: get(web.url + "/health")[0] == 200, 20, "200 again")


def test_routes_never_reach_the_file_system(web):
    assert get(web.url + "/")[0] == 200
    for path in ("/index.html", "/static/index.html", "/../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                 "/edgepose/live/static/index.html", "/config/../../pyproject.toml"):
        assert get(web.url + path)[0] == 404, path


def test_websocket_sends_json_lines_records_and_events(engine, web):
    import asyncio

    import aiohttp

    records = {}
    engine.on_result(lambda r: records.setdefault(r.frame.index, r.record))

    async def read(n: int) -> list[dict]:
        async with aiohttp.ClientSession() as session, session.ws_connect(web.url.replace("http", "ws") + "/ws") as ws:
            return [json.loads((await ws.receive(timeout=10)).data) for _ in range(n)]

    items = asyncio.run(read(20))
    assert items[0]["event"] == "camera" and items[0]["state"] == "ok"
    frames = [i for i in items if "event" not in i]
    assert len(frames) >= 5
    for item in frames:
        assert item.keys() == RECORD_KEYS and item["mode"] == "video"
        # the sinks' own serialisation of that frame, unchanged
        assert item == json.loads(json.dumps(records[item["frame"]]))
        for pose in item["poses"]:
            assert len(pose["keypoints"]) == 33 and len(pose["keypoints"][0]) == 5 and len(pose["bbox"]) == 4
    assert [f["frame"] for f in frames] == sorted(f["frame"] for f in frames)


def test_token_is_checked_on_every_route(engine):
    import asyncio

    import aiohttp

    from edgepose.errors import InputError
    from edgepose.live.web import BackgroundServer

    with pytest.raises(InputError, match="--token"):
        BackgroundServer(engine, host="0.0.0.0", port=0)
    with BackgroundServer(engine, port=0, token="s3cret") as server:
        for path in ("/", "/health", "/config", "/video", "/ws"):
            assert get(server.url + path)[0] == 401, path
            assert get(server.url + path + "?token=wrong")[0] == 401, path
        assert get(server.url + "/?token=s3cret")[0] == 200
        assert get(server.url + "/config", {"Authorization": "Bearer s3cret"})[0] == 200
        assert get(server.url + "/health", {"Authorization": "Bearer nope"})[0] == 401

        async def ws(query: str) -> dict:
            async with aiohttp.ClientSession() as session, session.ws_connect(
                    server.url.replace("http", "ws") + "/ws" + query) as sock:
                return json.loads((await sock.receive(timeout=10)).data)

        assert asyncio.run(ws("?token=s3cret"))["event"] == "camera"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            asyncio.run(ws(""))
        assert refused.value.status == 401


def serve(*args, env=None):
    command = [sys.executable, "-m", "edgepose", "serve", *args]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def test_serve_refuses_a_public_address_without_token():
    proc = serve("0", "--host", "0.0.0.0", env={"EDGEPOSE_TOKEN": ""})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and not out
    assert err.strip().count("\n") == 0 and "--token" in err


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_serve_stops_cleanly_on_signals(model_path, signal_name):
    import signal

    proc = serve(str(need(STREET)), "--port", "0", "--loop", "--threads", "1",
                 "--model", model_path("full"), "--detector", model_path("detector"))
    try:
        line = proc.stdout.readline()
        assert line.startswith("edgepose serve: http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split()[2]
        wait_for(lambda: get(url + "health")[0] == 200, 60, "health 200")
        proc.send_signal(getattr(signal, signal_name))
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert f"stopped by {signal_name}" in out and "frame(s) processed" in out


def test_serve_tells_systemd_ready_pings_through_an_outage_and_stopping(replay, model_path):
    """deploy/edgepose-serve.service is Type=notify with WatchdogSec: READY=1 once serve
    listens, WATCHDOG=1 from each turn of the engine's loop, also while the camera is cut
    (an outage shows a banner; it must not get serve restarted), STOPPING=1 on SIGTERM."""
    import signal
    import time

    with NotifySocket() as sock:
        proc = serve(replay.url, "--port", "0", "--threads", "1", "--model", model_path("full"),
                     "--detector", model_path("detector"),
                     env={"NOTIFY_SOCKET": sock.name, "WATCHDOG_USEC": "200000"})  # a ping per 0.1 s
        try:
            line = proc.stdout.readline()
            assert line.startswith("edgepose serve: http://127.0.0.1:"), line + proc.stderr.read()
            url = line.split()[2]
            ready = sock.wait_for(lambda f: "READY" in f, 60, proc)
            assert ready["READY"] == "1" and ready["STATUS"].startswith(f"serving {url}")
            assert get(url + "health")[0] in (200, 503)  # listening when READY came
            wait_for(lambda: get(url + "health")[0] == 200, 60, "frames")
            replay.kill()  # the camera is cut
            try:
                wait_for(lambda: get(url + "health")[0] == 503, 15, "the camera lost")
                cut = time.monotonic()
                time.sleep(1.5)
                pings = [m for t, m in sock.messages if t > cut and m.get("WATCHDOG") == "1"]
                assert len(pings) >= 5, sock.messages[-5:]
                assert all(m["STATUS"].startswith(("camera lost", "camera reconnecting")) for m in pings), pings
            finally:
                replay.start()
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped by SIGTERM" in out
    last = sock.messages[-1][1]
    assert last["STOPPING"] == "1" and last["STATUS"].startswith("stopping: camera"), sock.messages[-3:]
    assert sum("READY" in m for _, m in sock.messages) == 1


def test_serve_ends_with_its_file(tmp_path, model_path):
    import cv2

    from edgepose.sources import read_video

    frames, _ = read_video(need(STREET), 15)
    short = tmp_path / "short.avi"
    writer = cv2.VideoWriter(str(short), cv2.VideoWriter_fourcc(*"MJPG"), 25, (1280, 720))
    for frame in frames:
        writer.write(frame)
    writer.release()
    proc = serve(str(short), "--port", "0", "--threads", "1", "--model", model_path("full"),
                 "--detector", model_path("detector"))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "short.avi ended" in err and "--loop" in err and "frame(s) processed" in out


def test_loopback_server_refuses_other_hosts_and_cross_origin_websockets(web):
    """DNS rebinding (a page of evil.example resolving to 127.0.0.1) and a WebSocket opened
    by a page of another origin are refused."""
    port = web.url.rsplit(":", 1)[1]
    assert get(web.url + "/health", {"Host": "evil.example:" + port})[0] == 403
    assert get(web.url + "/health", {"Host": "localhost:" + port})[0] in (200, 503)
    import asyncio

    import aiohttp

    async def first(origin: str) -> dict:
        async with aiohttp.ClientSession() as session, session.ws_connect(
                web.url.replace("http", "ws") + "/ws", origin=origin) as sock:
            return json.loads((await sock.receive(timeout=10)).data)

    assert asyncio.run(first(web.url))["event"] == "camera"  # the page's own origin
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        asyncio.run(first("http://evil.example"))
    assert refused.value.status == 403


def _first_jpeg(url: str) -> bytes:
    """The first JPEG part of an MJPEG (multipart/x-mixed-replace) response."""
    import urllib.request

    with urllib.request.urlopen(url, timeout=15) as stream:
        assert stream.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        head = b""
        while b"\r\n\r\n" not in head:
            head += stream.read(1)
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        return stream.read(length)


def test_video_streams_the_processed_frames_raw_or_drawn(engine, web):
    import cv2
    import numpy as np

    wait_for(lambda: engine.state == "ok", 15, "ok")
    raw = cv2.imdecode(np.frombuffer(_first_jpeg(web.url + "/video"), np.uint8), cv2.IMREAD_COLOR)
    drawn = cv2.imdecode(np.frombuffer(_first_jpeg(web.url + "/video?overlay=1"), np.uint8), cv2.IMREAD_COLOR)
    width, height = engine.last_result.record["image_size"]
    assert raw.shape == drawn.shape == (height, width, 3)


def test_page_config_comes_from_edgepose_draw_and_the_page_loads_nothing_from_elsewhere(web):
    from edgepose.draw import PALETTE
    from edgepose.live.web import page_config

    coco = page_config("coco")
    assert len(coco["points"]) == 17 and max(max(e) for e in coco["edges"]) == 16
    blazepose = json.loads(get(web.url + "/config")[1])
    assert max(max(e) for e in blazepose["edges"]) == 32 and blazepose["points"] is None
    assert blazepose["palette"] == [[r, g, b] for b, g, r in PALETTE]  # BGR -> RGB
    page = get(web.url + "/")[1].decode()
    assert "://" not in page.replace("wss://", "").replace("ws://", "")


def test_people_events_reach_the_websocket(engine, web):
    """The clip loops every 2.4 s: people jump back to where they were, new tracks start,
    old ones end; the WebSocket carries the events with the frames."""
    import asyncio

    import aiohttp

    async def events_until_both(timeout: float) -> list[dict]:
        seen: list[dict] = []
        async with aiohttp.ClientSession() as session, session.ws_connect(web.url.replace("http", "ws") + "/ws") as ws:
            deadline = asyncio.get_running_loop().time() + timeout
            while {"person_entered", "person_left"} - {e["event"] for e in seen}:
                msg = await ws.receive(timeout=max(0.1, deadline - asyncio.get_running_loop().time()))
                item = json.loads(msg.data)
                if "event" in item:
                    seen.append(item)
        return seen

    wait_for(lambda: engine.state == "ok", 15, "ok")
    seen = asyncio.run(events_until_both(30))
    entered = next(e for e in seen if e["event"] == "person_entered")
    assert isinstance(entered["id"], int) and entered["id"] >= 0 and isinstance(entered["frame"], int)
    for event in seen:
        if event["event"] in ("person_entered", "person_left"):
            assert event.keys() == {"event", "id", "frame", "timestamp_ms"}
        elif event["event"] == "count_changed":
            assert event.keys() == {"event", "people", "previous", "frame", "timestamp_ms"}
