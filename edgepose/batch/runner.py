"""A batch from start to end: find the videos, skip those done before, check the options
once, run the rest on an engine, record each video in the manifest as it finishes, and
sum it up.

    summary = run_batch(["archive/"], "poses/", Options(model="lite"), workers=4)
    print(summary.done, summary.failed, summary.fps)
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Callable

from edgepose.batch.inputs import FORMATS, Video, find_videos
from edgepose.batch.manifest import (DONE, MANIFEST, Manifest, check_settings, is_done,
                                     read_manifest, remove_partial)
from edgepose.batch.worker import WorkerConfig, choose_workers
from edgepose.errors import InputError
from edgepose.options import Options

ENGINES = ("local", "ray")


@dataclasses.dataclass
class BatchSummary:
    """What a batch did: videos found, skipped (done before), done and failed this run
    (failed: (path, reason) pairs), frames, wall seconds, and per worker frames, busy
    seconds and videos."""

    out_dir: Path
    manifest: Path
    videos: int = 0
    skipped: int = 0
    done: int = 0
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    warnings: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0
    engine: str = "local"
    workers: int = 0
    threads: int = 0
    pipeline: dict = dataclasses.field(default_factory=dict)
    per_worker: dict[str, dict] = dataclasses.field(default_factory=dict)

    @property
    def fps(self) -> float | None:
        return self.frames / self.seconds if self.seconds > 0 else None

    def add(self, record: dict) -> None:
        if record["status"] == DONE:
            self.done += 1
            self.frames += record["frames"]
            if record.get("warning"):
                self.warnings.append((record["path"], record["warning"]))
        else:
            self.failed.append((record["path"], record["error"]))
        if record.get("worker"):
            mine = self.per_worker.setdefault(record["worker"], {"frames": 0, "seconds": 0.0, "videos": 0})
            mine["frames"] += record["frames"]
            mine["seconds"] += record["seconds"] or 0.0
            mine["videos"] += 1


def settings_of(options: Options, fmt: str) -> dict:
    """What a video's results depend on beyond the video: the options set away from their
    defaults (threads left out: they change speed, not results) and the format."""
    return {"options": {k: v for k, v in options.changed().items() if k != "threads"}, "format": fmt}


def local_cpus() -> int:
    """The CPUs this process may run on (a container's share, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def run_batch(inputs: list[str], out_dir: str | os.PathLike, options: Options | None = None, *,
              fmt: str = "jsonl", engine: str = "local", workers: int | None = None,
              address: str | None = None, verbose: bool = False,
              on_start: Callable[[BatchSummary], None] | None = None,
              on_record: Callable[[dict], None] | None = None,
              on_frames: Callable[[int], None] | None = None) -> BatchSummary:
    """Run every video ``inputs`` name that is not done yet into ``out_dir``. Returns the
    summary; InputError (one line) for bad inputs, options, format or engine. A stop
    (KeyboardInterrupt) propagates after the workers ended and removed their temporary
    files; the manifest then holds every video finished."""
    options = options or Options()
    if fmt not in FORMATS:
        raise InputError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if engine not in ENGINES:
        raise InputError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if workers is not None and workers < 1:
        raise InputError(f"workers must be a whole number >= 1, got {workers}")
    if engine == "ray":
        from edgepose.batch.ray_engine import import_ray

        import_ray()
    if fmt == "parquet":
        from edgepose.batch.parquet import import_pyarrow

        import_pyarrow()
    videos = find_videos(inputs)
    out_dir = Path(out_dir).resolve()
    settings = settings_of(options, fmt)
    # whatever can refuse the batch (results there made otherwise, an option, a model) does
    # before anything is made in out_dir: the manifest is only read, the pipeline built once
    pipeline = {}
    if plan(videos, read_manifest(out_dir / MANIFEST), settings, out_dir, fmt):
        pipeline = check_pipeline(options, verbose)
    with Manifest(out_dir) as manifest:
        todo = plan(videos, manifest.latest, settings, out_dir, fmt)  # again, under the lock
        remove_partial(out_dir)
        summary = BatchSummary(out_dir, manifest.path, videos=len(videos),
                               skipped=len(videos) - len(todo), engine=engine)
        if not todo:
            return summary
        summary.pipeline = pipeline or check_pipeline(options, verbose)

        def record(rec: dict) -> None:
            manifest.append(rec)
            summary.add(rec)
            if on_record is not None:
                on_record(rec)

        def start(n: int, threads: int) -> None:
            summary.workers, summary.threads = n, threads
            if on_start is not None:
                on_start(summary)

        config = WorkerConfig(dataclasses.asdict(options), fmt, verbose, settings)
        tasks = [task_of(v, out_dir, fmt) for v in todo]
        started = time.perf_counter()
        try:
            if engine == "ray":
                from edgepose.batch.ray_engine import run_ray

                run_ray(tasks, config, workers, options.threads, record, on_frames, start,
                        address=address, local_cpus=local_cpus())
            else:
                from edgepose.batch.local import run_local

                n, threads = choose_workers(local_cpus(), len(tasks), workers, options.threads)
                start(n, threads)
                config = dataclasses.replace(config, options={**config.options, "threads": threads})
                run_local(tasks, config, n, record, on_frames)
        finally:
            summary.seconds = time.perf_counter() - started
            remove_partial(out_dir)  # what a worker killed outright (SIGKILL) left
    return summary


def plan(videos: list[Video], latest: dict[str, dict], settings: dict, out_dir: Path,
         fmt: str) -> list[Video]:
    """The videos left to do, longest first (no long video left for last), given the
    manifest's ``latest`` records; InputError when those were made with other settings."""
    check_settings(latest, settings, out_dir)
    todo = [v for v in videos if not is_done(latest, v.path, v.size, v.mtime_ns, v.output(out_dir, fmt))]
    return sorted(todo, key=lambda v: (-v.size, v.path))


def task_of(video: Video, out_dir: Path, fmt: str) -> dict:
    return {"path": video.path, "output": str(video.output(out_dir, fmt)), "size": video.size,
            "mtime_ns": video.mtime_ns}


def check_pipeline(options: Options, verbose: bool) -> dict:
    """Build the pipeline once here, so that a bad option or a missing model is one error
    before any worker starts; what it runs (``Pipeline.describe``)."""
    from edgepose import Pipeline
    from edgepose.quiet import native_stderr_quiet

    with native_stderr_quiet(not verbose):
        pipe = Pipeline(options)
    try:
        return pipe.describe()
    finally:
        pipe.close()
