"""One batch worker: one Pipeline for its whole life, one video at a time through the
frame loop of ``edgepose run``, each output written under a temporary name and renamed
when complete.

A task is a plain dict (it crosses process and machine boundaries): path, output, size,
mtime_ns. :meth:`VideoWorker.process` returns the video's manifest record and never
raises for a bad video: a file that cannot be opened or decoded is a failed record with
its one-line reason. A video whose source reports a problem after reading (a truncated
file: ``Source.warnings``, what makes ``edgepose run`` exit 1) is done with that warning:
its output covers the frames read, as run's ``--json`` does, and the batch exits 1. It is
not run again while the file stays as it is (reading it again would give the same
frames; OpenCV's frame count of an unindexed file is an estimate, so a retry could never
succeed); a changed file is.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import logging
import os
import socket
import time
from pathlib import Path

from edgepose.errors import EdgeposeError

log = logging.getLogger(__name__)

DIGEST_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class WorkerConfig:
    """What every worker needs, picklable: the pipeline options as a dict of fields (all
    of them, threads included), the output format, whether to let native libraries print,
    and the settings recorded in the manifest."""

    options: dict
    format: str = "jsonl"
    verbose: bool = False
    settings: dict = dataclasses.field(default_factory=dict)


class VideoWorker:
    """Holds one Pipeline; ``process(task)`` runs one video and returns its record."""

    def __init__(self, config: WorkerConfig) -> None:
        from edgepose import Options, Pipeline
        from edgepose.quiet import native_stderr_quiet

        self.config = config
        threads = config.options.get("threads")
        if threads:  # OpenCV's pool (decode, resize, warps) within the worker's share too
            import cv2

            cv2.setNumThreads(threads)
        with native_stderr_quiet(not config.verbose):
            self.pipe = Pipeline(Options(**config.options))
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.fresh = True

    def process(self, task: dict, progress=None) -> dict:
        """Run the video ``task`` names into its output; its manifest record.
        ``progress``: an object whose ``update(n)`` is called once per frame."""
        started = time.perf_counter()
        record = new_record(task, self.config, self.name)
        try:
            record["digest"] = file_digest(task["path"])
            stats, problems = self._run(task, progress)
        except (EdgeposeError, OSError) as exc:
            record["error"] = one_line(exc)
        except Exception as exc:  # a bug, not a bad video: keep its type, and go on with the rest
            log.exception("%s", task["path"])
            record["error"] = f"{type(exc).__name__}: {one_line(exc)}"
        else:
            summary = stats.summary()
            record.update(status="done", frames=summary["frames"], poses=summary["people"],
                          people=summary["tracks"],
                          warning=" ".join("; ".join(problems).split()) or None)
        seconds = time.perf_counter() - started
        record["seconds"] = round(seconds, 3)
        record["fps"] = round(record["frames"] / seconds, 2) if seconds > 0 else None
        record["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        return record

    def _run(self, task: dict, progress):
        from edgepose.fileio import atomic_write
        from edgepose.frameloop import run_frames
        from edgepose.profiler import Profiler
        from edgepose.sources import open_video

        if not self.fresh:  # each video starts as a new Pipeline would (ids from 0)
            self.pipe.reset(restart_ids=True)
        self.fresh = False
        source = open_video(task["path"])
        try:
            stats = Profiler()
            mode = "image" if self.pipe.options.static_image_mode else "video"  # as edgepose run
            with atomic_write(task["output"]) as tmp:  # only a whole video is renamed into place
                with open_sink(self.config.format, tmp, source.name, mode) as sink:
                    run_frames(source, self.pipe, [sink], stats, verbose=self.config.verbose,
                               progress=progress)
        finally:
            source.close()
        return stats, source.warnings()

    def close(self) -> None:
        self.pipe.close()


def new_record(task: dict, config: WorkerConfig, worker: str | None, error: str | None = None) -> dict:
    """A manifest record for ``task``, failed (with ``error``) until the video is done."""
    return {"path": task["path"], "output": task["output"], "size": task["size"],
            "mtime_ns": task["mtime_ns"], "digest": None, "frames": 0, "poses": 0, "people": 0,
            "seconds": None, "fps": None, "status": "failed", "error": error, "warning": None,
            "worker": worker, "format": config.format, **config.settings}


def choose_workers(cpus: int, tasks: int, workers: int | None, threads: int | None) -> tuple[int, int]:
    """(workers, interpreter threads per worker) so that workers x threads fits ``cpus``:
    by default one single-threaded worker per CPU (processes scale better than interpreter
    threads), never more workers than videos; threads given alone set the workers, workers
    given alone share the CPUs (at most 4 threads each, as a lone Pipeline)."""
    cpus = max(1, cpus)
    if workers is None:
        workers = max(1, cpus // (threads or 1))
    workers = max(1, min(workers, tasks))
    if threads is None:
        threads = max(1, min(4, cpus // workers))
    return workers, threads


def open_sink(fmt: str, path: Path, source_name: str, mode: str):
    from edgepose import sinks

    if fmt == "parquet":
        from edgepose.batch.parquet import ParquetSink

        return ParquetSink(path, source_name, mode)
    return sinks.JsonLinesSink(path, source_name, mode)


def file_digest(path: str | os.PathLike) -> str:
    """"sha256:<hex>" of the file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(DIGEST_CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def one_line(exc: BaseException) -> str:
    """The error as one line (an OSError with its file name and reason)."""
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())
