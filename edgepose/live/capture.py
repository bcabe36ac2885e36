"""The capture side of the live engine: a thread that keeps only the newest frame of a
camera, stream or video file, notices when the source is lost, and opens it again.

Each opening of the source is a :class:`_Connection` with its own reader thread (a
:class:`edgepose.reader.SourceReader`, as ``edgepose run`` uses), which
opens the source and reads it; nothing else touches that capture object, so a read that
blocks (an unplugged camera, an RTSP server that stopped sending) can be abandoned: the
supervisor thread (:class:`Capture`) watches how long ago the reader delivered a frame,
and after ``stall_s`` gives up on it (the reader closes its capture when its read returns,
after the stream's own short timeout) and opens a new connection, with backoff. States:
``starting`` -> ``ok`` -> ``lost`` -> ``reconnecting`` -> ``ok``; ``ended`` when a video
file ended (and looping was not asked); ``stopped`` after :meth:`Capture.stop`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from edgepose.errors import InputError
from edgepose.reader import SourceReader
from edgepose.sources import Frame, Source, is_device_path, live_name, open_live

log = logging.getLogger(__name__)

STATES = ("starting", "ok", "lost", "reconnecting", "ended", "stopped")
CHECK_S = 0.02  # how often the supervisor looks at its connection


@dataclasses.dataclass
class Captured:
    """A frame as the capture thread hands it over: ``frame.timestamp_ms`` is on one clock
    for the engine's life (monotonic, from its start), ``captured_at`` is time.monotonic()
    when the read returned."""

    frame: Frame
    captured_at: float


class LatestFrame:
    """A one-frame slot: ``put`` replaces a frame not yet taken (counted in ``dropped``),
    ``take`` waits for the next one. Latency stays bounded however slow the consumer is."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Captured | None = None
        self.put_count = 0
        self.dropped = 0

    def put(self, item: Captured) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self.put_count += 1
            self._cond.notify_all()

    def take(self, timeout: float) -> Captured | None:
        with self._cond:
            if self._item is None:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def clear(self) -> None:
        with self._cond:
            self._item = None


class _Connection:
    """One opening of the source: a :class:`~edgepose.reader.SourceReader` (which opens it,
    reads it and closes it on its own thread), with what the supervisor watches."""

    def __init__(self, opener: Callable[[], Source], deliver: Callable[[np.ndarray], None],
                 realtime: bool, frozen_check: bool) -> None:
        self.deliver = deliver
        self.realtime = realtime
        self.frozen_check = frozen_check
        self.last_fresh: float | None = None  # when the last frame that differs arrived
        self._previous: bytes | None = None
        self._start = 0.0
        self.reader = SourceReader(opener, self._frame, name="live-reader")
        self.reader.start()

    @property
    def frames(self) -> int:
        return self.reader.frames

    @property
    def kind(self) -> str:
        return self.reader.kind

    @property
    def fps(self) -> float | None:
        return self.reader.fps

    @property
    def error(self) -> str | None:
        exc = self.reader.error
        if exc is None:
            return "no frame could be read" if self.reader.done.is_set() and not self.frames else None
        return str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"

    def _frame(self, frame: Frame) -> bool:  # on the reader's thread
        r = self.reader
        pace = 1.0 / r.fps if self.realtime and r.kind == "video" and r.fps else 0.0
        if r.frames == 1:
            self._start = time.monotonic()
        elif pace:  # a file played at its own rate, as a camera would deliver it
            delay = self._start + (r.frames - 1) * pace - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        now = time.monotonic()
        if self.frozen_check:
            # some drivers report success after an unplug and repeat the last frame:
            # a camera's sensor noise makes real frames differ
            sample = frame.image[::16, ::16].tobytes()
            if sample != self._previous:
                self.last_fresh = now
            self._previous = sample
        else:
            self.last_fresh = now
        self.deliver(frame.image)
        return True

    def frozen_for(self) -> float:
        """Seconds the frames have been the same (0 when not checked, or none came)."""
        return time.monotonic() - self.last_fresh if self.frozen_check and self.last_fresh else 0.0


class Capture:
    """Reads ``spec`` (see :func:`edgepose.sources.open_live`) on a thread, into
    ``latest`` (a :class:`LatestFrame`). ``on_state(state, reason)`` is called (on the
    capture thread) at every change of :attr:`state`.

    ``stall_s``: no frame for this long (after the first) and the source is lost.
    ``frozen_s``: a camera (index or device) that repeats the very same frame this long is
    lost too (some drivers do so after an unplug; sensor noise makes real frames differ).
    ``open_s``: the longest an opening may take before the first frame. ``backoff_s``:
    the first wait before opening again, doubled on each failure up to ``max_backoff_s``.
    ``realtime``: a video file is read at its own frame rate; ``loop``: and played again
    when it ends (else the state becomes ``ended`` and the thread stops).
    """

    def __init__(self, spec: str, *, opener: Callable[[], Source] | None = None,
                 realtime: bool = True, loop: bool = False, stall_s: float = 2.0, frozen_s: float = 5.0,
                 open_s: float = 6.0, backoff_s: float = 0.25, max_backoff_s: float = 1.0,
                 on_state: Callable[[str, str], None] | None = None) -> None:
        self.spec = spec
        self.name = live_name(spec)  # no password of a stream URL in results and logs
        self.opener = opener or (lambda: open_live(spec))
        self.realtime = realtime
        self.loop = loop
        self.stall_s, self.open_s, self.frozen_s = stall_s, open_s, frozen_s
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.on_state = on_state
        self.latest = LatestFrame()
        self.state = "starting"
        self.reason = ""
        self.kind = ""
        self.fps: float | None = None
        self.reconnects = 0  # times the source was lost
        self.frames = 0  # frames handed over
        self.t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: _Connection | None = None

    def start(self) -> Capture:
        self._thread = threading.Thread(target=self._supervise, name="live-capture", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is None:  # never started
            return
        self._thread.join(timeout)
        conn = self._conn
        if conn is not None:
            conn.reader.abandon()
            conn.reader.join(timeout)  # a blocked read returns within the stream timeout
        if self.state != "ended":
            self._set("stopped", "stop asked")

    @property
    def stopped(self) -> bool:
        return self.state in ("ended", "stopped")

    def _deliver(self, image: np.ndarray) -> None:
        now = time.monotonic()
        frame = Frame(image, self.frames, (now - self.t0) * 1000.0, self.name)
        self.frames += 1
        self.latest.put(Captured(frame, now))

    def _set(self, state: str, reason: str = "") -> None:
        if "://" in self.spec:  # no password of a URL in logs or /health
            reason = reason.replace(self.spec, self.name)
        if state == self.state and reason == self.reason:
            return
        self.state, self.reason = state, reason
        level = logging.INFO if state in ("ok", "starting", "stopped", "ended") else logging.WARNING
        log.log(level, "live source %s: %s%s", self.name, state, f" ({reason})" if reason else "")
        if self.on_state is not None:
            try:
                self.on_state(state, reason)
            except Exception:  # a consumer's bug must not stop the capture
                log.exception("live: state callback failed")

    def _supervise(self) -> None:
        failures = 0
        while not self._stop.is_set():
            conn = self._conn = _Connection(self.opener, self._deliver, self.realtime,
                                            frozen_check=self.spec.isdigit() or is_device_path(self.spec))
            reason = self._watch(conn)
            if self._stop.is_set():
                return
            if conn.kind:
                self.kind, self.fps = conn.kind, conn.fps
            if reason is None:  # a video file ended
                if self.loop:
                    continue
                self._set("ended", f"the file ended after {conn.frames} frames")
                return
            if conn.frames:
                failures = 0
            if self.state in ("ok", "starting") or conn.frames:
                self.reconnects += self.state == "ok"
                self._set("lost", reason)
            delay = min(self.backoff_s * 2 ** failures, self.max_backoff_s)
            failures += 1
            if self._stop.wait(delay):
                return
            self._set("reconnecting", reason)

    def _watch(self, conn: _Connection) -> str | None:
        """Wait until ``conn`` ends or stalls: the reason the source is lost, or None when
        a video file came to its end."""
        reader = conn.reader
        while not self._stop.wait(CHECK_S):
            if reader.frames and self.state != "ok":
                self.kind, self.fps = conn.kind, conn.fps
                self._set("ok")
            if reader.done.is_set():
                if conn.error:
                    return conn.error
                if conn.kind == "video":
                    return None
                return "the stream ended"
            limit = self.stall_s if reader.frames else self.open_s
            if (waited := reader.waiting_for()) > limit:
                reader.abandon()
                return f"{'no frame' if reader.frames else 'opening took'} for {waited:.1f} s"
            if conn.frozen_for() > self.frozen_s:
                reader.abandon()
                return f"the same frame for {conn.frozen_for():.1f} s"
        reader.abandon()
        return "stopped"
