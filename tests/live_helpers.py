"""What the live tests (and run's unattended ones) share: a loopback MJPEG stream of the
street clip, a live engine on it, waiting for a condition, an HTTP GET that returns
(status, body), and systemd's NOTIFY_SOCKET as a real unix datagram socket."""

from __future__ import annotations

import secrets
import socket
import threading
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


class NotifySocket:
    """A unix datagram socket in the abstract namespace, as systemd's NOTIFY_SOCKET; a
    thread collects (monotonic time, {KEY: value}) for every datagram."""

    def __init__(self) -> None:
        self.name = f"@edgepose-test-{secrets.token_hex(6)}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name[1:])
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        while not self._done.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            self.messages.append((time.monotonic(), fields))

    def wait_for(self, test, timeout: float = 120.0, proc=None) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for _, fields in self.messages[seen:]:
                if test(fields):
                    return fields
                seen += 1
            if proc is not None and proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"no such notification; got {[m for _, m in self.messages]}")

    def close(self) -> None:
        self._done.set()
        self._thread.join()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

