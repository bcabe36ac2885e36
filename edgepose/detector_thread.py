"""The person detector on its own thread, off the frame's critical path (video mode).

The pipeline hands the newest frame to :class:`DetectorThread` when the detection
schedule asks for a search and the thread is idle (a frame that comes while it is busy is
not queued: the next search takes a newer frame), and takes the detections back on a later
frame, when they are ready, with what it handed in beside the frame (the pipeline: the
tracks' crops on the searched frame). A detection of someone tracked on the searched
frame and still tracked is that person (matched where both were, on that frame: people
move between the two frames); the others are merged as the frame's own detections would
be (``Estimator.claims`` against the tracks' current crops, then the duplicate rules).
Meanwhile tracked people are followed from their landmarks as ever.

One detection runs at a time, on the detector the pipeline owns; the caller may run it
synchronously only after :meth:`DetectorThread.wait` (models are not safe to run from
two threads at once). :meth:`forget` drops the results of frames before a reset;
:meth:`close` stops and joins the thread (the pipeline's close() calls it).
"""

from __future__ import annotations

import threading

import numpy as np

from edgepose.profiler import StageClock
from edgepose.types import Detection


class DetectorThread:
    """One worker thread around ``detector`` (a PersonDetector). Started on the first
    :meth:`submit`, so a pipeline that never searches asynchronously has no thread."""

    def __init__(self, detector) -> None:
        self.detector = detector
        self._cond = threading.Condition()
        self._job: tuple | None = None        # (generation, image, color, min_score, context)
        self._result: tuple | None = None     # (generation, detections, context)
        self._error: BaseException | None = None
        self._busy = False
        self._stop = False
        self._generation = 0
        self._thread: threading.Thread | None = None
        self.last_ms = 0.0  # the last search's duration, off the frame's path

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._busy

    def submit(self, image: np.ndarray, color: str, min_score: float | None, context=None) -> bool:
        """Search ``image`` (the thread keeps a copy) unless a search is under way;
        whether it was taken. ``context`` comes back with the detections."""
        with self._cond:
            if self._busy or self._stop:
                return False
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="edgepose-person-detector",
                                                daemon=True)
                self._thread.start()
            self._job = (self._generation, image.copy(), color, min_score, context)
            self._busy = True
            self._cond.notify_all()
            return True

    def take(self) -> tuple[list[Detection], object] | None:
        """(detections, context) of the last finished search (once), None when none is
        ready. An error the detector raised on the thread is raised here, in the caller's."""
        with self._cond:
            error, self._error = self._error, None
            result, self._result = self._result, None
        if error is not None:
            raise error
        if result is None or result[0] != self._generation:
            return None
        return result[1], result[2]

    def wait(self) -> None:
        """Until no search runs (before the caller runs the detector itself)."""
        with self._cond:
            while self._busy:
                self._cond.wait()

    def forget(self) -> None:
        """Drop the results of searches started before now (a reset: a new stream)."""
        with self._cond:
            self._generation += 1
            self._result = None
            self._error = None

    def close(self) -> None:
        """Stop the thread and join it (the search under way finishes first). Safe twice."""
        with self._cond:
            self._stop = True
            self._job = None
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._job is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    self._busy = False
                    self._cond.notify_all()
                    return
                generation, image, color, min_score, context = self._job
                self._job = None
            clock = StageClock()
            found, error = None, None
            try:
                found = self.detector.detect(image, color, min_score, clock)
            except BaseException as exc:  # noqa: BLE001  handed to the caller's thread
                error = exc
            with self._cond:
                self._busy = False
                self.last_ms = sum(clock.ms.values())
                if error is not None:
                    self._error = error
                elif generation == self._generation:
                    self._result = (generation, found, context)
                self._cond.notify_all()
