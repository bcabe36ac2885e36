"""A source read on its own thread, so that a read that blocks (an RTSP server gone quiet,
an unplugged camera: OpenCV can block in ``read()`` for good) cannot hold its caller: the
caller watches :meth:`SourceReader.waiting_for` and, past its own limit, abandons the
reader and goes on. The one threaded reader of edgepose's two live loops:

- ``edgepose run`` (:class:`edgepose.unattended.StallGuard`): every frame handed over, one
  frame ahead (``deliver`` blocks until the frame is taken); a stall ends the run;
- the live engine (:class:`edgepose.live.capture.Capture`): the newest frame kept
  (``deliver`` never blocks); a stall abandons the reader and opens the source again on a
  new one.

Nothing but the reader thread touches the source while it reads. Who opens closes: a
reader given an ``opener`` opens the source on its thread and closes it when its reading
ends (a blocked read that returns late closes it then); a reader given an open source
leaves it to the caller (:meth:`join` first).
"""

from __future__ import annotations

import ctypes
import functools
import threading
import time
from collections.abc import Callable

from edgepose.sources import Frame, Source


class SourceReader:
    """Reads ``source`` (a :class:`~edgepose.sources.Source`, or a function that opens one)
    on a daemon thread, calling ``deliver(frame)`` for each frame; ``deliver`` returns
    False to stop reading. After the thread ended, :attr:`error` is what the opening or a
    read raised (None when the source ran out or reading stopped)."""

    def __init__(self, source: Source | Callable[[], Source], deliver: Callable[[Frame], bool],
                 name: str = "edgepose-reader") -> None:
        self._opener = None if hasattr(source, "__iter__") else source
        self.source: Source | None = None if self._opener else source
        self.deliver = deliver
        self.kind = self.source.kind if self.source else ""
        self.fps = self.source.fps if self.source else None
        self.frames = 0  # frames delivered
        self.error: BaseException | None = None
        self.done = threading.Event()  # the thread ended: source ended, failed or was abandoned
        self.abandoned = threading.Event()
        self._reading_since: float | None = time.monotonic()  # None while delivering
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> SourceReader:
        self._reading_since = time.monotonic()
        self._thread.start()
        return self

    def waiting_for(self) -> float:
        """Seconds the reader has waited on the source for its next frame (the opening
        included); 0 while a frame is being delivered."""
        since = self._reading_since
        return 0.0 if since is None else time.monotonic() - since

    def abandon(self) -> None:
        """Stop at the next frame; a read that is blocked is left to return by itself."""
        self.abandoned.set()

    def join(self, timeout: float | None = None) -> bool:
        """True when the thread has ended."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            if self._opener is not None:
                self.source = self._opener()
                self.kind, self.fps = self.source.kind, self.source.fps
            for frame in self.source:
                if self.abandoned.is_set():
                    return
                self._reading_since = None
                self.frames += 1
                if not self.deliver(frame) or self.abandoned.is_set():
                    return
                self._reading_since = time.monotonic()
        except Exception as exc:  # noqa: BLE001 (any failure of a source goes to the caller)
            self.error = exc
        finally:
            if self._opener is not None and self.source is not None:
                self.source.close()
                release_freed_memory()
            self.done.set()


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc
    except (AttributeError, OSError):  # musl, macOS, Windows
        return None


def release_freed_memory() -> None:
    """Hand the memory a closed capture freed back to the system (glibc's malloc_trim; a
    no-op elsewhere). Each reader thread allocates (FFmpeg's buffers) in a malloc arena of
    its own, which keeps freed pages: without this, RSS stepped up by MBs at reconnects
    (benchmarks/results/live_soak*.json)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
