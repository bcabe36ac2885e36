"""What the live tests share: a loopback MJPEG stream of the street clip, a live engine on
it, waiting for a condition, and an HTTP GET that returns (status, body)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from conftest import STREET, need


def wait_for(predicate, timeout: float, what: str) -> float:
    """Seconds until ``predicate()`` is true; AssertionError after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.02)
    return time.monotonic() - start


def get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def open_replay():
    """The first 60 frames of the street clip at half size, served at 25 fps (started)."""
    from edgepose.live.replay import ReplayServer

    return ReplayServer.from_video(need(STREET), fps=25, limit=60, scale=0.5).start()


def open_engine(url: str, model_path, **overrides):
    """A live engine (not started) on ``url`` with the full model, one thread, and short
    stall and open timeouts so the fault tests are quick; ``events`` collects its events."""
    from edgepose.live import LiveEngine

    options = {"max_people": 2, "threads": 1, "capture": {"stall_s": 1.0, "open_s": 3.0}, **overrides}
    live = LiveEngine(url, model=model_path("full"), detector=model_path("detector"), **options)
    live.events = []
    live.on_event(live.events.append)
    return live
