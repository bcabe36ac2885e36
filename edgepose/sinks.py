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

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import IO

import numpy as np

from edgepose.errors import InputError
from edgepose.fileio import FILE_MODE, check_writable, same_file
from edgepose.geometry import letterbox_transform
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
        check_writable(self.path.parent if single else self.path, self.path)

    @staticmethod
    def file_name(image_name: str) -> str:
        """The annotated file of an image source's ``image_name`` in the folder."""
        return Path(image_name).stem + ".jpg"

    def target(self, frame: Frame) -> Path:
        if self.single:
            return self.path
        if self.by_name:
            return self.path / self.file_name(frame.name)
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
    frame's: a later frame of another size (a folder of photos) is letterboxed into it,
    since OpenCV's writer silently drops it; ``fps`` is the rate written into the file."""

    wants_canvas = True

    def __init__(self, path: str | os.PathLike, fps: float | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.fps = fps if fps and fps > 0 else DEFAULT_FPS
        check_writable(self.path.parent, self.path)
        # OpenCV's writer says only "not opened": ask the file system first, before the run
        existed = self.path.exists()
        try:
            with open(self.path, "ab"):
                pass
        except OSError as exc:
            raise InputError(f"could not write video {self.path}: {exc.strerror or exc}") from None
        if not existed:
            self.path.unlink()
        self._writer = None

    def write(self, frame: Frame, result: FrameResult, canvas: np.ndarray | None) -> None:
        import cv2

        if self._writer is None:
            suffix = self.path.suffix.lower()
            codec = "MJPG" if suffix == ".avi" else "mp4v"
            self._size = (canvas.shape[1], canvas.shape[0])
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*codec),
                                           self.fps, self._size)
            if not self._writer.isOpened():  # the folder is writable (checked): the codec
                raise InputError(f"OpenCV could not write {self.path}: this build has no {codec} "
                                 f"encoder for {suffix} files"
                                 + ("" if suffix == ".avi" else "; a .avi file (MJPG) works with every build"))
        if (canvas.shape[1], canvas.shape[0]) != self._size:
            w, h = self._size
            to_canvas = letterbox_transform(canvas.shape[1], canvas.shape[0], w, h)
            canvas = cv2.warpAffine(canvas, to_canvas, self._size,
                                    flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        self._writer.write(canvas)
        self.written += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


def check_outputs(source: Source, out: str | None, json_path: str | None) -> None:
    """InputError when an output would overwrite what the source reads (``--out``, or an
    annotated image of a folder named after its input, or ``--json``, is an input file) or
    both outputs are one file: edgepose must never destroy its input."""
    annotated = []  # the files --out writes that can be named before the run
    if out:
        annotated = ([Path(out) / ImageSink.file_name(f.name) for f in source.files]
                     if names_folder(out) else [Path(out)])
    targets = [("--out", t) for t in annotated]
    if json_path and json_path != "-":
        targets.append(("--json", Path(json_path)))
        if any(same_file(json_path, t) for t in annotated):
            raise InputError(f"--json {json_path} is a file --out writes too: give each its own file")
    for flag, target in targets:
        if any(same_file(target, f) for f in source.files):
            raise InputError(f"{flag} {target} is an input of this run: writing it would destroy "
                             f"it; give another path")


def names_folder(path: str | os.PathLike) -> bool:
    """Whether ``--out PATH`` names a folder of images: a folder that exists, a path ending
    in a slash, or one with no suffix."""
    text = os.fspath(path)
    return Path(text).is_dir() or text.endswith(("/", os.sep)) or not Path(text).suffix


def annotated_sink(path: str | os.PathLike, source: Source) -> Sink:
    """The sink a path names: a video file (.mp4, .avi, .mkv, .mov), one image file (only
    for a one-image source), or a folder of images (a path with no suffix, one ending in
    a slash, or a folder that exists). Any other suffix is an InputError: a typo such as
    ``result.xyz`` must not become a folder of JPEGs."""
    text = os.fspath(path)
    path = Path(path)
    suffix = path.suffix.lower()
    if names_folder(text):
        return ImageSink(path, by_name=source.kind == "image")
    if suffix in VIDEO_EXTENSIONS:
        return VideoSink(path, source.fps)
    if suffix in IMAGE_EXTENSIONS:
        if not (source.kind == "image" and source.total == 1):
            raise InputError(f"{path} is one image but the source has many frames: "
                             "give a folder or a .mp4/.avi file")
        return ImageSink(path, single=True)
    raise InputError(f"{text}: edgepose writes no {suffix} files: give an image file "
                     f"({', '.join(IMAGE_EXTENSIONS)}), a video ({', '.join(VIDEO_EXTENSIONS)}) "
                     "or a folder (a name with no suffix, or ending in /)")


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
    """One JSON object per frame and line: source, frame, image, mode ("image" or "video",
    when given), timestamp_ms, stages_ms, poses, image_size (README "JSON Lines").

    Writes to a stream it is given (e.g. stdout: flushed, left open), or to a file (its
    folders made as needed) through a temporary file beside it, renamed into place by
    :meth:`close`: an earlier file is replaced only by a run that finished, or that was
    stopped (KeyboardInterrupt, a signal) after writing frames, and then holds whole lines
    only. Leaving a ``with`` block on any other exception (or :meth:`discard`) deletes the
    temporary file and keeps the earlier one. A device or pipe (/dev/stdout) is written
    directly."""

    def __init__(self, target: str | os.PathLike | IO[str], source_name: str,
                 mode: str | None = None) -> None:
        super().__init__()
        self.source_name = source_name
        self.mode = mode
        self._tmp: Path | None = None
        if hasattr(target, "write"):
            self._file, self._owned = target, False
        else:
            self.path = Path(target)
            self._owned = True
            try:
                if self.path.exists() and not self.path.is_file():
                    self._file = open(self.path, "w", encoding="utf-8")
                else:
                    # through a symbolic link, the file it names is the one replaced
                    self._target = self.path.resolve() if self.path.is_symlink() else self.path
                    check_writable(self._target.parent, self.path)
                    fd, name = tempfile.mkstemp(dir=self._target.parent, suffix=".part",
                                                prefix=f".{self._target.name}-")
                    self._file, self._tmp = os.fdopen(fd, "w", encoding="utf-8"), Path(name)
            except OSError as exc:
                raise self._error(exc) from None

    @staticmethod
    def record(source_name: str, frame: Frame, result: FrameResult, mode: str | None = None) -> dict:
        head = {"source": source_name, "frame": frame.index, "image": frame.name}
        if mode is not None:
            head["mode"] = mode
        return {**head, **result.to_dict(), "image_size": list(result.image_size)}

    def write(self, frame: Frame, result: FrameResult, canvas: np.ndarray | None) -> None:
        self.write_record(self.record(self.source_name, frame, result, self.mode))

    def write_record(self, record: dict) -> None:
        """One record as a line (``edgepose smooth`` writes the records it read, smoothed)."""
        line = json.dumps(record) + "\n"
        try:
            self._file.write(line)
        except BrokenPipeError:
            raise  # the reader of stdout went away (`| head`): the CLI stops quietly
        except OSError as exc:  # a full disk: say which file
            raise self._error(exc) from None
        self.written += 1

    def close(self) -> None:
        """Finish the file: flush, then rename the temporary file into place."""
        if self._file is None:
            return
        file, self._file = self._file, None
        if not self._owned:
            file.flush()
            return
        try:
            file.close()
            if self._tmp is not None:
                os.chmod(self._tmp, FILE_MODE)
                os.replace(self._tmp, self._target)
                self._tmp = None
        except OSError as exc:
            self._remove_tmp()
            raise self._error(exc) from None

    def discard(self) -> None:
        """Close without touching the earlier file at ``path`` (the run failed)."""
        if self._file is None:
            return
        file, self._file = self._file, None
        with contextlib.suppress(OSError):
            if self._owned:
                file.close()
            else:
                file.flush()
        self._remove_tmp()

    def __exit__(self, exc_type, exc, tb) -> None:
        stopped = exc_type is not None and issubclass(exc_type, KeyboardInterrupt) and self.written
        if exc_type is None or stopped:
            self.close()
        else:
            self.discard()

    def _remove_tmp(self) -> None:
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.unlink()
            self._tmp = None

    def _error(self, exc: OSError) -> InputError:
        return InputError(f"could not write {self.path}: {exc.strerror or exc}")
