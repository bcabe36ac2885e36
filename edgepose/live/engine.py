"""The live engine: a camera, stream or video file -> newest frame -> one Pipeline on its
own thread -> results and events for any number of consumers.

    >>> from edgepose.live import LiveEngine
    >>> engine = LiveEngine("0", model="full", max_people=2)     # or an Options
    >>> engine.on_result(lambda r: print(r.record["poses"]))     # called on the engine's thread
    >>> engine.on_event(print)          # person_entered / person_left / count_changed / camera
    >>> with engine:                    # start() ... stop()
    ...     for item in engine.subscribe():   # LiveResult or event dict, newest first served
    ...         ...

The capture thread (:mod:`edgepose.live.capture`) keeps only the newest frame, so when
inference is slower than the camera, frames are dropped (counted), never queued. When the
camera is lost it is opened again with backoff; the pipeline stays, its tracks reset.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Self

from edgepose.errors import InputError, UsageError
from edgepose.live.capture import Capture
from edgepose.live.publish import (
    AsyncSubscription,
    LiveResult,
    PeopleEvents,
    Subscription,
    percentiles,
    rss_mb,
)
from edgepose.options import Options
from edgepose.sinks import JsonLinesSink

log = logging.getLogger(__name__)

LATENCY_WINDOW = 1000  # frames in the latency percentiles of health()
FPS_WINDOW_S = 2.0


class LiveEngine:
    """Poses from a live source, on two threads (capture, inference).

    ``source``: a camera index, a V4L2 device path, a stream URL, 'picamera2' or a video
    file (played at its own rate, unless ``realtime`` is off; ``loop`` plays it again at
    its end). ``pipeline``: a
    :class:`~edgepose.Pipeline` to use (the engine closes it on stop), else one is made
    from ``options`` and ``overrides``. ``capture`` keywords go to
    :class:`~edgepose.live.capture.Capture` (stall_s, open_s, backoff_s, ...).
    ``leave_after``: frames a track id may be missing before ``person_left``.
    """

    def __init__(self, source: str, options: Options | None = None, *, pipeline=None,
                 loop: bool = False, realtime: bool = True, layout: str = "blazepose",
                 leave_after: int = 3, capture: dict | None = None, **overrides) -> None:
        self.source = str(source)
        self.layout = layout
        self._options = options
        self._overrides = overrides
        self.pipeline = pipeline
        self.capture = Capture(self.source, loop=loop, realtime=realtime, on_state=self._on_state,
                               **(capture or {}))
        self.people = PeopleEvents(leave_after)
        self.frames = 0
        self.errors = 0
        self.started_at: float | None = None
        self.last_result: LiveResult | None = None
        self._result_callbacks: list[Callable] = []
        self._event_callbacks: list[Callable] = []
        self._turn_callbacks: list[Callable] = []
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()
        self._latency: collections.deque = collections.deque(maxlen=LATENCY_WINDOW)
        self._times: collections.deque = collections.deque(maxlen=256)
        self._reset = threading.Event()
        self._lost_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.finished = threading.Event()  # set when the source ended or stop() ran

    # consumers
    def on_result(self, callback: Callable[[LiveResult], None]) -> None:
        """Call ``callback(LiveResult)`` for each processed frame (on the inference thread:
        keep it short)."""
        self._result_callbacks.append(callback)

    def on_event(self, callback: Callable[[dict], None]) -> None:
        """Call ``callback(event)`` for each event: {"event": "person_entered" | "person_left",
        "id", "frame", "timestamp_ms"}, {"event": "count_changed", "people", "previous", ...},
        {"event": "camera", "state", "reason"}. When the camera is lost or a file ends,
        everyone still seen leaves (person_left, then count_changed to 0)."""
        self._event_callbacks.append(callback)

    def on_turn(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` on each turn of the inference loop: after each frame, and at
        least every 0.1 s while it waits for one (the camera lost included); a hung
        inference stops the calls. For a watchdog (``edgepose serve`` pings systemd's)."""
        self._turn_callbacks.append(callback)

    def subscribe(self, maxsize: int = 2, results: bool = True, events: bool = True) -> Subscription:
        """A :class:`Subscription` to results and/or events (close it when done)."""
        return self._add(Subscription(maxsize), results, events)

    def subscribe_async(self, maxsize: int = 2, results: bool = True, events: bool = True,
                        loop: asyncio.AbstractEventLoop | None = None) -> AsyncSubscription:
        """An :class:`AsyncSubscription` on ``loop`` (default: the running one)."""
        return self._add(AsyncSubscription(loop or asyncio.get_running_loop(), maxsize), results, events)

    def _add(self, sub: Subscription, results: bool, events: bool) -> Subscription:
        sub.wants = (results, events)
        with self._lock:
            self._subs.append(sub)
        sub._unsubscribe = self._remove
        return sub

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    # life
    @property
    def state(self) -> str:
        """The camera's state: starting, ok, lost, reconnecting, ended or stopped."""
        return self.capture.state

    def start(self) -> LiveEngine:
        """Open the pipeline (here, so a bad model or option fails at once) and start the
        threads. The source itself may be absent: it is opened, and again, on the capture thread."""
        if self._thread is not None:
            raise UsageError("this LiveEngine was started already")
        if self.pipeline is None:
            from edgepose import Pipeline

            self.pipeline = Pipeline(self._options, **self._overrides)
        if self.pipeline.options.static_image_mode:
            self.pipeline.close()
            raise InputError("a live engine follows people over frames: static_image_mode must be off")
        self.started_at = time.monotonic()
        self.capture.start()
        self._thread = threading.Thread(target=self._infer, name="live-inference", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop both threads, close the pipeline and every subscription. Safe to call twice."""
        self._stop.set()
        self.capture.stop()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.pipeline is not None and (self._thread is None or not self._thread.is_alive()):
            self.pipeline.close()
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            sub.close()
        self.finished.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the source ended (a video file, without loop) or stop() ran."""
        return self.finished.wait(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # the inference thread
    def _infer(self) -> None:
        slot = self.capture.latest
        while not self._stop.is_set():
            for callback in self._turn_callbacks:
                try:
                    callback()
                except Exception:  # a consumer's bug must not stop the engine
                    log.exception("live: a turn callback failed")
            item = slot.take(timeout=0.1)
            if self._reset.is_set():  # the camera was lost: new tracks, nobody seen yet
                self._reset.clear()
                self.pipeline.reset()
                self._clear_people()
                if item is not None and item.captured_at < self._lost_at:
                    item = None  # read before the loss was noticed
            if item is None:
                if self.capture.state == "ended":  # the file ended: everyone has left
                    self._clear_people()
                    self.finished.set()
                    return
                continue
            frame = item.frame
            try:
                result = self.pipeline.process(frame.image, frame.timestamp_ms)
            except InputError as exc:  # a bad frame: say so, go on with the next
                self.errors += 1
                log.warning("live: frame %d skipped: %s", frame.index, exc)
                continue
            except Exception:  # a kiosk goes on; the log says what failed, and how often
                self.errors += 1
                if self.errors == 1 or self.errors % 100 == 0:
                    log.exception("live: frame %d failed (%d failures so far)", frame.index, self.errors)
                continue
            now = time.monotonic()
            record = JsonLinesSink.record(self.capture.name, frame, result, "video")
            live = LiveResult(frame, result, record, item.captured_at,
                              (now - item.captured_at) * 1000.0, self.layout)
            self.frames += 1
            self.last_result = live
            self._latency.append(live.latency_ms)
            self._times.append(now)
            self._publish(live, True)
            for event in self.people.update([p.track_id for p in result.poses], frame.index,
                                            frame.timestamp_ms):
                self._publish(event, False)

    def _clear_people(self) -> None:
        last = self.last_result
        for event in self.people.clear(last.frame.index if last else 0,
                                       last.frame.timestamp_ms if last else None):
            self._publish(event, False)

    def _on_state(self, state: str, reason: str) -> None:
        """From the capture thread: log, publish, and after a loss forget the people."""
        if state == "lost":
            self._lost_at = time.monotonic()
            self._reset.set()  # the inference thread resets the tracks and the people
        self._publish({"event": "camera", "state": state, "reason": reason,
                       "source": self.capture.name}, False)

    def _publish(self, item, is_result: bool) -> None:
        callbacks = self._result_callbacks if is_result else self._event_callbacks
        for callback in callbacks:
            try:
                callback(item)
            except Exception:  # a consumer's bug must not stop the engine
                log.exception("live: a %s callback failed", "result" if is_result else "event")
        with self._lock:
            subs = [s for s in self._subs if s.wants[0 if is_result else 1]]
        for sub in subs:
            sub.push(item)

    # numbers
    @property
    def fps(self) -> float | None:
        """Processed frames per second over the last two seconds."""
        now = time.monotonic()
        recent = [t for t in list(self._times) if now - t <= FPS_WINDOW_S]
        if len(recent) < 2:
            return 0.0 if self.started_at and now - self.started_at > FPS_WINDOW_S else None
        return (len(recent) - 1) / (recent[-1] - recent[0]) if recent[-1] > recent[0] else None

    def health(self) -> dict:
        """camera, frames, dropped, fps, last_frame_age_s, latency_ms {p50, p99},
        rss_mb, uptime_s, reconnects, source: what /health serves."""
        now = time.monotonic()
        last = self.last_result
        fps = self.fps
        return {
            "camera": self.state,
            "reason": self.capture.reason,
            "source": self.capture.name,
            "frames": self.frames,
            "dropped": self.capture.latest.dropped,
            "captured": self.capture.frames,
            "fps": None if fps is None else round(fps, 2),
            "last_frame_age_s": None if last is None else round(now - last.captured_at, 3),
            "latency_ms": percentiles(list(self._latency)),
            "rss_mb": None if (rss := rss_mb()) is None else round(rss, 1),
            "uptime_s": None if self.started_at is None else round(now - self.started_at, 2),
            "reconnects": self.capture.reconnects,
            "errors": self.errors,
            "people": self.people.count,
        }
