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
import os
from pathlib import Path

from edgepose.errors import InputError

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
    that does not exist, and when there is no video at all."""
    found: dict[str, str] = {}  # absolute path -> key
    for spec in inputs:
        for path, key in _expand(Path(spec).expanduser(), spec):
            found.setdefault(str(path), key)
    if not found:
        raise InputError(f"no video found in {', '.join(inputs)} (video files are "
                         f"{', '.join(sorted(VIDEO_SUFFIXES))})")
    keys = _unique_keys(found)
    videos = []
    for path in sorted(found):
        try:
            stat = os.stat(path)
        except OSError as exc:
            raise InputError(f"{path}: {exc.strerror}") from None
        videos.append(Video(path, keys[path], stat.st_size, stat.st_mtime_ns))
    return videos


def _expand(path: Path, spec: str):
    """(absolute path, key) of each video ``path`` names."""
    if path.is_dir():
        root = path.resolve()
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if Path(name).suffix.lower() in VIDEO_SUFFIXES and not name.startswith("."):
                    full = Path(dirpath) / name
                    yield full, full.relative_to(root).as_posix()
    elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        yield from _read_list(path)
    elif path.is_file():
        yield path.resolve(), path.name
    else:
        raise InputError(f"{spec} does not exist: give video files, folders or a .txt list of paths")


def _read_list(path: Path):
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
        yield from _expand(entry, line)


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
