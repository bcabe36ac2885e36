"""What the live engine hands out: one :class:`LiveResult` per processed frame, event
dicts (people entering and leaving, the camera's state), and subscriptions that hold only
the newest items, for threads (:class:`Subscription`) and asyncio (:class:`AsyncSubscription`).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import threading
import time

import numpy as np

from edgepose.sources import Frame
from edgepose.types import FrameResult


@dataclasses.dataclass
class LiveResult:
    """One processed frame: ``record`` is its JSON Lines object (README "JSON Lines"),
    ``latency_ms`` the time from the capture thread's read to the result."""

    frame: Frame
    result: FrameResult
    record: dict
    captured_at: float
    latency_ms: float
    layout: str = "blazepose"

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[str, bytes | str] = {}

    def json(self) -> str:
        """The record as one line of JSON, made once whoever asks."""
        return self._cached("json", lambda: json.dumps(self.record))

    def jpeg(self, annotated: bool = False, quality: int = 80) -> bytes:
        """The frame as JPEG (``annotated``: with the skeletons drawn by edgepose.draw),
        encoded once whoever asks."""
        import cv2

        from edgepose.draw import draw_poses

        def encode() -> bytes:
            image = draw_poses(self.frame.image, self.result.poses, self.layout) if annotated else self.frame.image
            return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()

        return self._cached(f"jpeg-{annotated}-{quality}", encode)

    def _cached(self, key: str, make):
        with self._lock:
            if key not in self._cache:
                self._cache[key] = make()
            return self._cache[key]


class PeopleEvents:
    """``person_entered`` / ``person_left`` / ``count_changed`` events from the track ids of
    successive frames. A person has left after ``leave_after`` frames without their id
    (a track missed for a frame or two is not a departure)."""

    def __init__(self, leave_after: int = 3) -> None:
        self.leave_after = max(1, leave_after)
        self._missing: dict[int, int] = {}  # id present (0) or frames since last seen
        self.count = 0

    def update(self, ids: list[int], frame: int, timestamp_ms: float | None) -> list[dict]:
        head = {"frame": frame, "timestamp_ms": timestamp_ms}
        events = []
        seen = {i for i in ids if i >= 0}
        for track_id in sorted(seen - self._missing.keys()):
            events.append({"event": "person_entered", "id": track_id, **head})
        for track_id in list(self._missing):
            if track_id in seen:
                continue
            self._missing[track_id] += 1
            if self._missing[track_id] >= self.leave_after:
                del self._missing[track_id]
                events.append({"event": "person_left", "id": track_id, **head})
        self._missing.update(dict.fromkeys(seen, 0))
        return events + self._count(head)

    def clear(self, frame: int, timestamp_ms: float | None) -> list[dict]:
        """Everyone has left (the camera was lost)."""
        head = {"frame": frame, "timestamp_ms": timestamp_ms}
        events = [{"event": "person_left", "id": i, **head} for i in sorted(self._missing)]
        self._missing.clear()
        return events + self._count(head)

    def _count(self, head: dict) -> list[dict]:
        count = len(self._missing)
        if count == self.count:
            return []
        previous, self.count = self.count, count
        return [{"event": "count_changed", "people": count, "previous": previous, **head}]


class Subscription:
    """The newest ``maxsize`` items (LiveResult or event dict), for a thread:
    ``for item in sub`` (ends when closed), or ``get(timeout)``. Older items are dropped
    when a slow consumer falls behind (counted in ``dropped``)."""

    def __init__(self, maxsize: int = 2) -> None:
        self._items: collections.deque = collections.deque(maxlen=maxsize)
        self._cond = threading.Condition()
        self.dropped = 0
        self.closed = False
        self._unsubscribe = None

    def push(self, item) -> None:
        with self._cond:
            if len(self._items) == self._items.maxlen:
                self.dropped += 1
            self._items.append(item)
            self._cond.notify_all()

    def get(self, timeout: float | None = None):
        """The oldest item held, or None after ``timeout`` s or once closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items and not self.closed:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            return self._items.popleft() if self._items else None

    def __iter__(self):
        while True:
            item = self.get()
            if item is None:
                return
            yield item

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()
        if self._unsubscribe is not None:
            self._unsubscribe(self)
            self._unsubscribe = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AsyncSubscription(Subscription):
    """The same for asyncio: ``await sub.next()`` or ``async for item in sub``; items are
    handed to the event loop with ``call_soon_threadsafe``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int = 2) -> None:
        super().__init__(maxsize)
        self.loop = loop
        self._ready = asyncio.Event()

    def push(self, item) -> None:
        try:
            self.loop.call_soon_threadsafe(self._push, item)
        except RuntimeError:  # the loop is closed
            pass

    def _push(self, item) -> None:
        if len(self._items) == self._items.maxlen:
            self.dropped += 1
        self._items.append(item)
        self._ready.set()

    async def next(self):
        """The oldest item held (waits for one), or None once closed."""
        while not self._items:
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def __aiter__(self):
        return self

    async def __anext__(self):
        item = await self.next()
        if item is None:
            raise StopAsyncIteration
        return item

    def close(self) -> None:
        self.closed = True
        try:
            self.loop.call_soon_threadsafe(self._ready.set)
        except RuntimeError:
            pass
        if self._unsubscribe is not None:
            self._unsubscribe(self)
            self._unsubscribe = None


def rss_mb() -> float | None:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except Exception:
        return None


def percentiles(values, qs=(50, 99)) -> dict[str, float | None]:
    if not len(values):
        return {f"p{q}": None for q in qs}
    got = np.percentile(np.asarray(values, dtype=np.float64), qs)
    return {f"p{q}": round(float(v), 2) for q, v in zip(qs, got)}
