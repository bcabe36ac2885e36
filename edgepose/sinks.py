"""Where the results of a run go: annotated images (one file or a folder), a video file,
an OpenCV window, JSON Lines.

Every sink has one interface, so that a frame loop is ``source -> pipeline -> sinks``::

    for frame in source:
        result = pipe.process(frame.image, frame.timestamp_ms)
        canvas = draw_poses(frame.image, result.poses) if any(s.wants_canvas for s in sinks) else None
        for sink in sinks:
            sink.write(frame, result, canvas)

``wants_canvas`` says whether a sink shows the annotated image (files, video, window) or
only the numbers (JSON Lines); ``stopped`` turns true when the user asked a sink to stop
(q or Esc in a window); ``close()`` releases what the sink holds and is safe to call
twice. A network sink (an MJPEG stream, poses over a WebSocket) is one more subclass.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import IO

import numpy as np

from edgepose.errors import InputError
from edgepose.sources import IMAGE_EXTENSIONS, Frame, Source
from edgepose.types import FrameResult

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov")
DEFAULT_FPS = 30.0


class Sink:
    """Base class: receives every frame with its result and, when ``wants_canvas``, the
    annotated image (BGR uint8, the frame's size)."""

    wants_canvas = False
    path: Path | None = None  # the file or folder written, None for a window or a stream

    def __init__(self) -> None:
        self.written = 0
        self.stopped = False

    def write(self, frame: Frame, result: FrameResult, canvas: np.ndarray | None) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ImageSink(Sink):
    """Annotated frames as image files: ``single``, one file (its suffix picks the format);
    else a folder with one JPEG per frame, named after the frame's image (``by_name``, for
    image sources) or its index (000000.jpg, for videos and cameras)."""

    wants_canvas = True

    def __init__(self, path: str | os.PathLike, single: bool = False, by_name: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        self.single = single
        self.by_name = by_name
        if single:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        else:
            self.path.mkdir(parents=True, exist_ok=True)

    def target(self, frame: Frame) -> Path:
        if self.single:
            return self.path
        if self.by_name:
            return self.path / (Path(frame.name).stem + ".jpg")
        return self.path / f"{frame.index:06d}.jpg"

    def write(self, frame: Frame, result: FrameResult, canvas: np.ndarray | None) -> None:
        import cv2

        target = self.target(frame)
        ok, data = cv2.imencode(target.suffix or ".jpg", canvas)
        if not ok:
            raise InputError(f"could not encode {target}")
        try:
            data.tofile(target)
        except OSError as exc:
            raise InputError(f"could not write {target}: {exc.strerror}") from None
        self.written += 1


class VideoSink(Sink):
    """Annotated frames as a video file: MJPG in .avi, mp4v otherwise. The size is the first
    frame's; ``fps`` is the rate written into the file."""

    wants_canvas = True

    def __init__(self, path: str | os.PathLike, fps: float | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.fps = fps if fps and fps > 0 else DEFAULT_FPS
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = None

    def write(self, frame: Frame, result: FrameResult, canvas: np.ndarray | None) -> None:
        import cv2

        if self._writer is None:
            codec = "MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"
            h, w = canvas.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*codec),
                                           self.fps, (w, h))
            if not self._writer.isOpened():
                raise InputError(f"could not write video {self.path}: try a .avi file")
        self._writer.write(canvas)
        self.written += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


def annotated_sink(path: str | os.PathLike, source: Source) -> Sink:
    """The sink a path names: a video file (.mp4, .avi, .mkv, .mov), one image file (only
    for a one-image source), or else a folder of images."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return VideoSink(path, source.fps)
    if suffix in IMAGE_EXTENSIONS:
        if not (source.kind == "image" and source.total == 1):
            raise InputError(f"{path} is one image but the source has many frames: "
                             "give a folder or a .mp4/.avi file")
        return ImageSink(path, single=True)
    return ImageSink(path, by_name=source.kind == "image")


def display_available() -> bool:
    """False on Linux without DISPLAY or WAYLAND_DISPLAY (a window cannot open there)."""
    return not sys.platform.startswith("linux") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class WindowSink(Sink):
    """An OpenCV window; fails early with a clear line when there is no display. Sets
    ``stopped`` when the user presses q or Esc."""

    wants_canvas = True

    def __init__(self, title: str) -> None:
        import cv2

        from edgepose.opencv_gui import window_problem

        super().__init__()
        if not display_available():
            raise InputError("a window needs a display (DISPLAY is not set): write the frames "
                             "to files instead")
        self.title = title
        # asked before OpenCV: a Qt build with no X server aborts the process
        problem = window_problem(cv2.getBuildInformation())
        if problem:
            raise InputError(problem)
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise InputError(f"OpenCV could not open a window ({exc.err or exc}): write the "
                             "frames to files instead") from None
        self._open = True

    def write(self, frame: Frame, result: FrameResult, canvas: np.ndarray | None) -> None:
        import cv2

        cv2.imshow(self.title, canvas)
        self.written += 1
        if (cv2.waitKey(1) & 0xFF) in (ord("q"), 27):
            self.stopped = True

    def close(self) -> None:
        import cv2

        if self._open:
            cv2.destroyWindow(self.title)
            self._open = False


class JsonLinesSink(Sink):
    """One JSON object per frame and line: source, frame, image, timestamp_ms, stages_ms,
    poses, image_size (README "JSON Lines"). Writes to a file it opens (and closes), or to
    a stream it is given (e.g. stdout, flushed but left open)."""

    def __init__(self, target: str | os.PathLike | IO[str], source_name: str) -> None:
        super().__init__()
        self.source_name = source_name
        if hasattr(target, "write"):
            self._file, self._owned = target, False
        else:
            self.path = Path(target)
            self._file, self._owned = open(self.path, "w", encoding="utf-8"), True

    @staticmethod
    def record(source_name: str, frame: Frame, result: FrameResult) -> dict:
        return {"source": source_name, "frame": frame.index, "image": frame.name,
                **result.to_dict(), "image_size": list(result.image_size)}

    def write(self, frame: Frame, result: FrameResult, canvas: np.ndarray | None) -> None:
        self._file.write(json.dumps(self.record(self.source_name, frame, result)) + "\n")
        self.written += 1

    def close(self) -> None:
        if self._file is None:
            return
        if self._owned:
            self._file.close()
        else:
            self._file.flush()
        self._file = None
