"""What lets ``edgepose run`` on a live source (camera, stream) go on unattended:

- :class:`StallGuard`: the source is read on its own thread (:mod:`edgepose.reader`, shared
  with the live engine's capture), so a read that blocks cannot
  hold the run for ever; the run ends with exit code 3 (``errors.SourceLost``) when it
  reports the source ``lost`` (a video file named by a URL read to its end is not lost);
- :class:`AppendingJsonLines`: ``--json`` appended to a line at a time, so the restarts of
  a service add to one file and a run killed outright (the watchdog, SIGKILL, power)
  keeps every line it wrote.
"""

from __future__ import annotations

import logging
import os
import queue
from collections.abc import Iterator
from pathlib import Path

import cv2

from edgepose.fileio import check_writable
from edgepose.reader import SourceReader
from edgepose.sinks import JsonLinesSink
from edgepose.sources import Frame, Source

log = logging.getLogger(__name__)


class StallGuard(Source):
    """A live source (camera, stream) read on its own thread (a
    :class:`~edgepose.reader.SourceReader`), one frame ahead, so that a read that blocks
    (an RTSP server gone quiet, a camera unplugged) cannot hold the caller: iterating ends
    when the reader waited ``timeout`` seconds for a frame, with ``lost`` saying so, as it
    ends when the source ends (``lost`` says that too). Ends at once when ``stop``
    (anything with ``is_set()``) is set. An error of the source is raised to the caller
    when no frame came before it; after frames it ends the iteration, in ``lost``."""

    POLL_S = 0.05

    def __init__(self, source: Source, timeout: float, stop=None) -> None:
        self.source, self.timeout, self.stop = source, timeout, stop
        self.kind, self.name, self.total, self.fps = source.kind, source.name, source.total, source.fps
        self.lost: str | None = None
        self.read = 0
        self._frames: queue.Queue = queue.Queue(maxsize=1)
        self.reader = SourceReader(source, self._hand_over)

    def _hand_over(self, frame: Frame) -> bool:  # on the reader's thread
        while not self.reader.abandoned.is_set():
            try:
                self._frames.put(frame, timeout=self.POLL_S)
                return True
            except queue.Full:
                pass
        return False

    def _next(self) -> Frame | None:
        """The next frame; None when there is none to come (``lost`` says why, or a stop)."""
        while self.stop is None or not self.stop.is_set():
            try:
                return self._frames.get(timeout=self.POLL_S)
            except queue.Empty:
                pass
            if self.reader.done.is_set():
                try:  # the last frame, handed over just before the reader ended
                    return self._frames.get_nowait()
                except queue.Empty:
                    break
            if self.reader.waiting_for() >= self.timeout:
                self.lost = f"no frame for {self.timeout:g} s after {self.read} frame(s): the {self.kind} stalled"
                return None
        else:
            return None
        if self.reader.error is not None:
            if not self.read:
                raise self.reader.error
            self.lost = f"the {self.kind} failed after {self.read} frame(s): {self.reader.error}"
        elif not self._whole_file():
            self.lost = f"the {self.kind} ended after {self.read} frame(s)"
        return None

    def __iter__(self) -> Iterator[Frame]:
        if self.reader._thread.ident is None:
            self.reader.start()
        while (frame := self._next()) is not None:
            self.read += 1
            yield frame

    def _whole_file(self) -> bool:
        """True when a URL named a video file (http://host/clip.mp4) and every frame its
        container announced was read: that end is the file's, not a lost stream's."""
        cap = getattr(self.source, "cap", None)
        try:
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap is not None else 0
        except (cv2.error, OverflowError, ValueError):
            return False
        return 0 < count and self.read >= count - 1

    def close(self) -> None:
        """Stop the reader; close the source once the reader let go of it (a read still
        blocked after a second is left to end with the process)."""
        self.reader.abandon()
        if not self.reader.join(timeout=1.0):
            log.info("%s: a read is still blocked; the source is left open", self.name)
            return
        self.source.close()


class AppendingJsonLines(JsonLinesSink):
    """JSON Lines appended to ``path`` (made with its folders when missing), each line
    flushed as it is written. A last line cut short by an earlier run that was killed is
    removed first, so the file holds whole lines only. Each run starts again at frame 0."""

    TAIL = 1 << 20  # a line longer than this is not looked for

    def __init__(self, path: str | os.PathLike, source_name: str, mode: str | None = None) -> None:
        path = Path(path)
        check_writable(path.parent, path)
        try:
            self._cut_partial_line(path)
            stream = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (closed by close())
        except OSError as exc:
            raise self._error_for(path, exc) from None
        super().__init__(stream, source_name, mode)
        self.path = path

    @classmethod
    def _cut_partial_line(cls, path: Path) -> None:
        if not path.is_file():
            return
        with open(path, "rb+") as file:
            size = file.seek(0, os.SEEK_END)
            start = max(0, size - cls.TAIL)
            file.seek(start)
            tail = file.read()
            if not tail or tail.endswith(b"\n"):
                return
            end = tail.rfind(b"\n")
            if end >= 0:
                file.truncate(start + end + 1)
            elif start == 0:
                file.truncate(0)

    @staticmethod
    def _error_for(path: Path, exc: OSError):
        from edgepose.errors import InputError

        return InputError(f"could not write {path}: {exc.strerror or exc}")

    def close(self) -> None:
        stream = self._file
        super().close()  # flushes
        if stream is not None:
            stream.close()

    def discard(self) -> None:  # what was appended stays: it is whole lines
        self.close()
