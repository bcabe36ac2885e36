"""``DIR/manifest.jsonl``: one JSON line per video finished, done or failed, appended as it
finishes (so a stop loses at most the videos in flight). The last line about a path wins.

A line: path, output, size, mtime_ns, digest ("sha256:..."), frames, poses (found, over
all frames), people (track ids), seconds (wall time of the video in its worker), fps,
status ("done" or "failed"), error (the one-line reason of a failure, else null), warning
(e.g. a truncated file, whose frames read are in its output; else null), worker ("host:pid"), format, options (the
pipeline options that differ from the defaults, threads left out), finished (UTC time).

A re-run skips a video whose last line says done, with the same size and modification
time, whose output is there; failed videos are tried again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

from edgepose.errors import InputError

log = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"
LOCK = ".edgepose-batch.lock"
DONE, FAILED = "done", "failed"


class Manifest:
    """The manifest of one output folder, opened for appending. Holds a lock on the folder
    while open (where the platform has ``fcntl``): one batch writes to a folder at a time."""

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / MANIFEST
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._lock = _lock(self.out_dir / LOCK)
        self.latest: dict[str, dict] = read_manifest(self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def append(self, record: dict) -> None:
        """Add one line, in one write (a signal cannot cut it in half), synced to disk."""
        os.write(self._fd, (json.dumps(record) + "\n").encode("utf-8"))
        os.fsync(self._fd)
        self.latest[record["path"]] = record

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_manifest(path: str | os.PathLike) -> dict[str, dict]:
    """path -> its last record; a line that is not JSON (a write cut by a crash) is skipped
    with a warning."""
    latest: dict[str, dict] = {}
    path = Path(path)
    if not path.is_file():
        return latest
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                latest[record["path"]] = record
            except (json.JSONDecodeError, KeyError, TypeError):
                log.warning("%s:%d is not a manifest record; skipped", path, number)
    return latest


def check_settings(latest: dict[str, dict], settings: dict, out_dir: str | os.PathLike) -> None:
    """InputError when videos in ``out_dir`` (``latest``: its manifest read) were done
    with other options or format: their results and new ones would not be comparable."""
    for record in latest.values():
        theirs = {k: record.get(k) for k in settings}
        if record.get("status") == DONE and theirs != settings:
            raise InputError(
                f"{out_dir} holds results made with other settings ({_describe(theirs)}; "
                f"now {_describe(settings)}): give another --out, or delete "
                f"{Path(out_dir) / MANIFEST} to start again")


def is_done(latest: dict[str, dict], path: str, size: int, mtime_ns: int, output: Path) -> bool:
    """Whether a re-run may skip the video: its last record says done, for the same size
    and modification time, and its output is there."""
    record = latest.get(path)
    return (record is not None and record.get("status") == DONE and record.get("size") == size
            and record.get("mtime_ns") == mtime_ns and output.is_file())


def remove_partial(out_dir: str | os.PathLike) -> int:
    """Delete the temporary files (``.NAME-*.part``) and try counts (``.NAME.tries``, Ray)
    a killed run left in ``out_dir``; how many there were."""
    removed = 0
    out_dir = Path(out_dir)
    for part in [*out_dir.rglob(".*.part"), *out_dir.rglob(".*.tries")]:
        if part.is_file():
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
                removed += 1
    if removed:
        log.info("removed %d partial file(s) a stopped run left in %s", removed, out_dir)
    return removed


def _describe(settings: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in settings.items())


def _lock(path: Path):
    """An open file holding an exclusive lock, or None where locks are not available."""
    try:
        import fcntl
    except ImportError:  # Windows
        return None
    f = open(path, "a+", encoding="utf-8")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise InputError(f"another edgepose batch ({holder}) is writing to {path.parent}: "
                         "wait for it, or give another --out") from None
    except OSError:  # a file system without locks
        return f
    f.truncate(0)
    f.write(f"pid {os.getpid()}")
    f.flush()
    return f
