"""The videos a batch covers, and the output file each one gets.

An INPUT is a video file (any name), a folder (searched recursively for video files) or a
list file (``.txt`` / ``.lst``: one path per line, relative to the list's folder; blank
lines and ``#`` comments skipped). A video's output is named after its path inside the
folder it was found in (or its file name), with the format's suffix added:
``clips/a/b.mp4`` given as ``clips`` -> ``DIR/a/b.mp4.jsonl``. Two videos that would get
the same name both get a short digest of their full path added.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from pathlib import Path

from edgepose.errors import InputError

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg",
                            ".wmv", ".flv", ".ts", ".mts", ".3gp"})
LIST_SUFFIXES = frozenset({".txt", ".lst"})
FORMATS = {"jsonl": ".jsonl", "parquet": ".parquet"}


@dataclasses.dataclass(frozen=True)
class Video:
    """One video to run: ``path`` absolute, ``key`` the output's name inside DIR (without
    the format suffix), ``size`` in bytes and ``mtime_ns`` as found when planning."""

    path: str
    key: str
    size: int
    mtime_ns: int

    def output(self, out_dir: str | os.PathLike, fmt: str) -> Path:
        return Path(out_dir) / (self.key + FORMATS[fmt])


def find_videos(inputs: list[str]) -> list[Video]:
    """Every video the INPUTs name, each once, in path order. InputError naming an input
    that does not exist or is an image (``edgepose run`` takes those), and when there is
    no video at all; images in a folder are skipped with a warning."""
    found: dict[str, str] = {}  # absolute path -> key
    images: list[Path] = []  # skipped in folders
    for spec in inputs:
        for path, key in _expand(Path(spec).expanduser(), spec, images):
            found.setdefault(str(path), key)
    skipped = ""
    if images:
        names = ", ".join(p.name for p in images[:3]) + (", ..." if len(images) > 3 else "")
        skipped = (f"{len(images)} image(s) skipped ({names}): edgepose batch takes videos; "
                   f"run images with `edgepose run {images[0].parent}`")
    if not found:
        raise InputError(f"no video found in {', '.join(inputs)} (video files are "
                         f"{', '.join(sorted(VIDEO_SUFFIXES))})" + (f"; {skipped}" if skipped else ""))
    if skipped:
        log.warning("%s", skipped)
    keys = _unique_keys(found)
    videos = []
    for path in sorted(found):
        try:
            stat = os.stat(path)
        except OSError as exc:
            raise InputError(f"{path}: {exc.strerror}") from None
        videos.append(Video(path, keys[path], stat.st_size, stat.st_mtime_ns))
    return videos


def _expand(path: Path, spec: str, images: list[Path]):
    """(absolute path, key) of each video ``path`` names; the images of a folder are
    added to ``images``."""
    from edgepose.sources import IMAGE_EXTENSIONS

    if path.is_dir():
        root = path.resolve()
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(n for n in filenames if not n.startswith(".")):
                suffix = Path(name).suffix.lower()
                if suffix in VIDEO_SUFFIXES:
                    full = Path(dirpath) / name
                    yield full, full.relative_to(root).as_posix()
                elif suffix in IMAGE_EXTENSIONS:
                    images.append(Path(dirpath) / name)
    elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        yield from _read_list(path, images)
    elif path.is_file():
        if is_image(path):
            raise InputError(f"{spec} is an image: edgepose batch takes videos; run images "
                             f"with `edgepose run {path}`")
        yield path.resolve(), path.name
    else:
        raise InputError(f"{spec} does not exist: give video files, folders or a .txt list of paths")


def is_image(path: Path) -> bool:
    """Whether a file named by itself is a still image: by its suffix, as ``edgepose run``
    decides, or, a video being allowed any name, by its content (an image decoder's
    signature; a GIF is read as a video, as ``edgepose run`` reads it)."""
    import cv2

    from edgepose.sources import ANIMATION_EXTENSIONS, IMAGE_EXTENSIONS

    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return True
    return suffix not in ANIMATION_EXTENSIONS and cv2.haveImageReader(os.fspath(path))


def _read_list(path: Path, images: list[Path]):
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} could not be read as a list of paths: {exc}") from None
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        entry = Path(line).expanduser()
        entry = entry if entry.is_absolute() else path.parent / entry
        if not entry.exists():
            raise InputError(f"{path}:{number}: {line} does not exist")
        if entry.is_file() and entry.suffix.lower() in LIST_SUFFIXES:
            raise InputError(f"{path}:{number}: a list may not name another list")
        try:
            yield from _expand(entry, line, images)
        except InputError as exc:
            raise InputError(f"{path}:{number}: {exc}") from None


def _unique_keys(found: dict[str, str]) -> dict[str, str]:
    """Keys with a digest of the full path added where two videos share one."""
    count: dict[str, int] = {}
    for key in found.values():
        count[key] = count.get(key, 0) + 1
    out = {}
    for path, key in found.items():
        if count[key] > 1:
            key = f"{key}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"
        out[path] = key
    return out
