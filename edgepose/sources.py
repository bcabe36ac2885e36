"""Frame sources: an image, a folder of images, a video file, a camera index,
a stream URL, or the Raspberry Pi camera (picamera2). Each yields ``Frame`` objects and
raises InputError with one clear line when it cannot deliver."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from edgepose.errors import InputError
from edgepose.fileio import not_a_file

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# Read as videos (every frame), so not as the photos of a folder.
ANIMATION_EXTENSIONS = (".gif",)
PICAMERA_NAMES = ("picamera2", "picam")
STREAM_TIMEOUT_MS = 10_000


@dataclasses.dataclass
class Frame:
    image: np.ndarray  # BGR uint8
    index: int
    timestamp_ms: float | None
    name: str  # file name for images, source name otherwise


class Source:
    """Base: ``kind``, ``name``, ``total`` (frames, or None when unknown), ``fps``,
    ``files`` (the local files it reads: an output must never be one of them)."""

    kind = "source"
    total: int | None = None
    fps: float | None = None
    name = ""
    files: tuple[Path, ...] = ()

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def warnings(self) -> list[str]:
        """Problems found after reading (e.g. a truncated video)."""
        return []

    def close(self) -> None:
        pass


def read_image(path: str | Path) -> np.ndarray:
    """BGR uint8 image, or InputError when the file is missing or cannot be decoded."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} {not_a_file(path)}")
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError(f"{path} could not be decoded as an image (corrupt or unsupported format)")
    return image


class ImageSource(Source):
    kind = "image"

    def __init__(self, paths: list[Path], name: str) -> None:
        self.paths = paths
        self.files = tuple(paths)
        self.total = len(paths)
        self.name = name
        self.skipped: list[str] = []

    def __iter__(self) -> Iterator[Frame]:
        for i, path in enumerate(self.paths):
            try:
                image = read_image(path)
            except InputError as exc:
                if len(self.paths) == 1:
                    raise
                self.skipped.append(str(exc))  # one bad file should not stop a folder
                continue
            yield Frame(image, i, None, path.name)

    def warnings(self) -> list[str]:
        return [f"skipped: {msg}" for msg in self.skipped]


class VideoSource(Source):
    """A video file, camera or stream read with OpenCV."""

    def __init__(self, cap: cv2.VideoCapture, kind: str, name: str,
                 files: tuple[Path, ...] = ()) -> None:
        self.cap = cap
        self.files = files
        self.kind = kind
        self.name = name
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.total = count if kind == "video" and count > 0 else None
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and fps > 0 else None
        self.read = 0

    def __iter__(self) -> Iterator[Frame]:
        start = time.monotonic()
        while True:
            ok, image = self.cap.read()
            if not ok or image is None or image.size == 0:
                break
            if self.kind == "video":
                t = self.cap.get(cv2.CAP_PROP_POS_MSEC)
                if not t and self.read and self.fps:
                    t = self.read * 1000.0 / self.fps
            else:
                t = (time.monotonic() - start) * 1000.0
            yield Frame(image, self.read, t, self.name)
            self.read += 1
        if self.read == 0:
            raise InputError(f"{self.name}: no frame could be read ({self._hint()})")

    def _hint(self) -> str:
        if self.kind == "camera":
            return "is the camera in use by another program?"
        if self.kind == "stream":
            return "check the URL and that the stream is live"
        return "the file is corrupt, truncated or in a codec OpenCV cannot decode"

    def warnings(self) -> list[str]:
        if self.total and self.read and self.read < self.total - 1:
            return [f"{self.name} ended after {self.read} of {self.total} frames: "
                    "the file looks truncated or corrupt; results cover the frames read"]
        return []

    def close(self) -> None:
        self.cap.release()


class PiCameraSource(Source):
    """The Raspberry Pi camera through picamera2 (OpenCV cannot open it on current Pi OS)."""

    kind = "camera"
    name = "picamera2"

    def __init__(self, size: tuple[int, int] = (1280, 720)) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise InputError(
                "picamera2 is not installed: on Raspberry Pi OS run 'sudo apt install "
                "python3-picamera2' and make the venv with --system-site-packages"
            ) from None
        try:
            self.cam = Picamera2()
            config = self.cam.create_video_configuration(main={"size": size, "format": "RGB888"})
            self.cam.configure(config)
            self.cam.start()
        except Exception as exc:  # picamera2 raises bare RuntimeError/IndexError without a camera
            raise InputError(f"the Raspberry Pi camera could not be started: {exc}") from None

    def __iter__(self) -> Iterator[Frame]:
        start = time.monotonic()
        i = 0
        while True:
            # picamera2's "RGB888" is BGR in memory, which is what the pipeline takes.
            image = self.cam.capture_array("main")
            yield Frame(image, i, (time.monotonic() - start) * 1000.0, self.name)
            i += 1

    def close(self) -> None:
        self.cam.stop()


def _open_capture(target: str | int, kind: str, name: str,
                  timeout_ms: int = STREAM_TIMEOUT_MS) -> VideoSource:
    if kind == "stream":
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms,
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
        cap = cv2.VideoCapture(target, cv2.CAP_ANY, params)
    else:
        cap = cv2.VideoCapture(target)
    if not cap.isOpened():
        cap.release()
        if kind == "camera":
            raise InputError(
                f"camera {target} could not be opened: check it is connected and free "
                "(ls /dev/video*), or pass a video file or image instead"
            )
        if kind == "stream":
            raise InputError(f"stream {target} could not be opened: check the URL and the network")
        raise InputError(
            f"{name} could not be opened as a video (corrupt, truncated or unsupported format)"
        )
    return VideoSource(cap, kind, name, (Path(target),) if kind == "video" else ())


def open_source(spec: str) -> Source:
    """Open a source from its command-line form."""
    if not spec.strip():
        raise InputError("the source is an empty name: give an image, a folder, a video, a "
                         "camera index or a stream URL")
    if spec.isdigit():
        return _open_capture(int(spec), "camera", f"camera {spec}")
    if spec.lower() in PICAMERA_NAMES:
        return PiCameraSource()
    if "://" in spec:
        return _open_capture(spec, "stream", spec)
    path = Path(spec).expanduser()
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        animations = sorted(p.name for p in path.iterdir() if p.suffix.lower() in ANIMATION_EXTENSIONS)
        if animations:
            log.warning("%s: skipping %s: a GIF is read as a video, not as a photo; run it on its "
                        "own (edgepose run %s)", path, ", ".join(animations), path / animations[0])
        if not images:
            raise InputError(
                f"folder {path} has no images ({', '.join(IMAGE_EXTENSIONS)}): "
                "give a folder of images, an image, a video or a camera index (a folder of "
                "videos: edgepose batch FOLDER --out DIR)"
            )
        return ImageSource(images, str(path))
    if not path.exists():
        raise InputError(f"{spec} {not_a_file(path)}: give an image, a folder, a video, "
                         "a camera index or a stream URL")
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return ImageSource([path], path.name)
    return _open_capture(os.fspath(path), "video", path.name)


# Live sources (edgepose.live): opened again and again by the capture thread when a camera
# or stream is lost, so a stream's own timeouts are short (the thread abandons a read that
# stalls for longer anyway).
LIVE_TIMEOUT_MS = 3_000


def is_device_path(spec: str) -> bool:
    """A V4L2 device node (/dev/video0, /dev/v4l/by-id/...): a camera, not a file."""
    return spec.startswith("/dev/")


def live_name(spec: str) -> str:
    """How a live source is named in results and logs: ``camera 0``, a device path, a URL
    without its user name and password, or a video file's name (as ``open_source``)."""
    if spec.isdigit():
        return f"camera {spec}"
    if "://" in spec:
        from urllib.parse import urlsplit

        parts = urlsplit(spec)
        if parts.username or parts.password:
            host = parts.hostname or ""
            netloc = f"{host}:{parts.port}" if parts.port else host
            return parts._replace(netloc=netloc).geturl()
        return spec
    if is_device_path(spec) or spec.lower() in PICAMERA_NAMES:
        return spec
    return Path(spec).name


def open_live(spec: str, timeout_ms: int = LIVE_TIMEOUT_MS) -> Source:
    """A live source from its command-line form: a camera index, a V4L2 device path, a
    stream URL (RTSP, HTTP, MJPEG), 'picamera2', or a video file (read as fast as asked:
    edgepose.live paces it at its own frame rate). InputError when it cannot be opened, or
    for an image or folder (no live frames)."""
    if spec.isdigit():
        return _open_capture(int(spec), "camera", f"camera {spec}")
    if is_device_path(spec):
        cap = cv2.VideoCapture(spec, cv2.CAP_V4L2)
        if not cap.isOpened():
            cap.release()
            raise InputError(f"camera {spec} could not be opened: check it is connected and free")
        return VideoSource(cap, "camera", spec)
    if spec.lower() in PICAMERA_NAMES:
        return PiCameraSource()
    if "://" in spec:
        return _open_capture(spec, "stream", spec, timeout_ms)
    path = Path(spec).expanduser()
    if path.is_dir() or path.suffix.lower() in IMAGE_EXTENSIONS:
        raise InputError(f"{spec} is not live: give a camera index, a device (/dev/video0), a "
                         "stream URL, 'picamera2' or a video file")
    return open_video(path)


def demo_image(download: bool = False) -> Path | None:
    """The demo photo of a person (``edgepose.demo``), or None when it is not on this
    machine and ``download`` is off or fails."""
    from edgepose.demo import NoDemoPhoto, demo_photo

    try:
        return demo_photo(download)
    except NoDemoPhoto:
        return None


def read_frames(spec: str, limit: int | None = None) -> tuple[list[np.ndarray], Source]:
    """The BGR frames (at most ``limit``) of a fixed set: a video file, a folder of images or
    an image, and its (closed) source for its name, kind and frame rate. InputError for a
    camera or stream, which have no fixed set of frames."""
    source = open_source(spec)
    if source.kind in ("camera", "stream"):
        source.close()
        raise InputError(f"{source.name} is live: give a video file, a folder or an image "
                         "for a fixed set of frames")
    return _collect(source, limit), source


def open_video(path: str | os.PathLike) -> VideoSource:
    """A video file as a source, named after the file as ``open_source`` names it
    (whatever its name: a file called ``0`` is not a camera). InputError when it is
    missing or cannot be opened."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist")
    return _open_capture(os.fspath(path), "video", path.name)


def read_video(path: str | os.PathLike, limit: int | None = None) -> tuple[list[np.ndarray], float | None]:
    """The BGR frames of a video file (at most ``limit``) and its frame rate.
    InputError when the file cannot be opened or no frame decodes."""
    source = open_video(path)
    return _collect(source, limit), source.fps


def _collect(source: Source, limit: int | None) -> list[np.ndarray]:
    """Read up to ``limit`` frames, then close the source."""
    frames = []
    try:
        for frame in source:
            frames.append(frame.image)
            if limit is not None and len(frames) >= limit:
                break
    finally:
        source.close()
    return frames
