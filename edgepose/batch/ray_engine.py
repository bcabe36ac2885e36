"""``--engine ray``: Ray Data over the list of videos, an actor pool of pipelines.

Each actor (``concurrency`` of them, ``num_cpus`` = its interpreter threads) holds one
:class:`~edgepose.batch.worker.VideoWorker` for its life and gets one video per batch.
Records come back to the driver as videos finish (``iter_rows`` streams), so the manifest
grows as on one machine. Every node must see the videos and the output folder at the
same paths, have edgepose installed, and find the models (docs/batch.md). The driver's
``EDGEPOSE_*`` and ``OPENCV_*`` variables travel to the actors.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Callable

from edgepose.batch.worker import VideoWorker, WorkerConfig, choose_workers, new_record, one_line
from edgepose.errors import EdgeposeError, InputError

log = logging.getLogger(__name__)

TASK_KEYS = ("path", "output", "size", "mtime_ns")
MAX_TRIES = 3  # of a video whose actor died on it
FORWARDED_ENV = ("EDGEPOSE_", "OPENCV_")


def import_ray():
    """The ray module with Ray Data, or InputError saying what to install."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise InputError("--engine ray needs Ray with Ray Data: pip install 'edgepose[ray]'") from None
    return ray


class PoseActor:
    """One pipeline for the actor's life; a batch of videos in, their records (JSON text)
    out.

    Ray restarts an actor whose process died and retries its video, as often as it takes
    (a lost node). So that a video that kills its actor every time cannot hold the batch
    forever, each try is counted in a file beside the output (``.NAME.tries``, on the
    shared storage every node sees): after MAX_TRIES the video is failed."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.worker = VideoWorker(config)

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        records = []
        for i in range(len(batch["path"])):
            task = {key: _plain(batch[key][i]) for key in TASK_KEYS}
            records.append(json.dumps(self._process(task)))
        return {"record": np.array(records, dtype=object)}

    def _process(self, task: dict) -> dict:
        output = Path(task["output"])
        tries = output.with_name(f".{output.name}.tries")
        before = int(tries.read_text() or 0) if tries.is_file() else 0
        if before >= MAX_TRIES:
            tries.unlink()
            return new_record(task, self.config, self.worker.name,
                              f"the worker process died on this video, {before} times")
        tries.parent.mkdir(parents=True, exist_ok=True)
        tries.write_text(str(before + 1))
        record = self.worker.process(task)
        tries.unlink(missing_ok=True)
        return record


def _plain(value):
    """A numpy scalar from a Ray batch as the Python value."""
    return value.item() if hasattr(value, "item") else value


def run_ray(tasks: list[dict], config: WorkerConfig, workers: int | None, threads: int | None,
            on_record: Callable[[dict], None], on_frames: Callable[[int], None] | None = None,
            on_start: Callable[[int, int], None] | None = None, address: str | None = None,
            local_cpus: int | None = None) -> None:
    """Run every task on a Ray cluster: the one at ``address`` (``ray start`` on each
    node), else a new local one with ``local_cpus`` CPUs. ``workers`` actors of ``threads``
    threads each (None: fitted to the cluster's CPUs); callbacks as ``run_local``'s, and
    ``on_start(workers, threads)`` once they are known."""
    ray = import_ray()
    env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV)}
    # Ray's own warnings (token authentication, disabled progress bars) are noise next to
    # our one-line errors unless asked for (-v)
    quiet = logging.INFO if config.verbose else logging.ERROR
    init = {"runtime_env": {"env_vars": env}, "include_dashboard": False, "logging_level": quiet}
    if address:
        init["address"] = address
    else:
        init.update(address="local", num_cpus=local_cpus or os.cpu_count() or 1)
    ray.init(**init)
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        workers, threads = choose_workers(cpus, len(tasks), workers, threads)
        config = dataclasses.replace(config, options={**config.options, "threads": threads})
        if on_start is not None:
            on_start(workers, threads)
        logging.getLogger("ray.data").setLevel(quiet)
        ray.data.DataContext.get_current().enable_progress_bars = False  # ours are on the driver
        videos = ray.data.from_items(tasks, override_num_blocks=len(tasks))
        # Ray logs "constructor arguments in the object store" for every actor pool, small
        # arguments too (ray-project/ray#57733): harmless
        records = videos.map_batches(PoseActor, fn_constructor_kwargs={"config": config},
                                     batch_size=1, num_cpus=threads,
                                     compute=ray.data.ActorPoolStrategy(size=workers))
        for row in records.iter_rows():
            record = json.loads(row["record"])
            on_record(record)
            if on_frames is not None:
                on_frames(record["frames"])
    except ray.exceptions.RayError as exc:  # the cluster, not a video
        raise EdgeposeError(f"the Ray job failed: {one_line(exc).split(' Traceback')[0][:500]}") from None
    finally:
        ray.shutdown()
