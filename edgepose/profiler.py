"""Stage timing: per-frame stage clocks and a run summary with percentiles."""

from __future__ import annotations

import os
import time
from collections import defaultdict

import numpy as np


class StageClock:
    """Accumulates milliseconds per stage for one frame. ``t = clock.start()`` then
    ``clock.stop("stage", t)``; repeated stages add up."""

    __slots__ = ("ms",)

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    @staticmethod
    def start() -> int:
        return time.perf_counter_ns()

    def stop(self, stage: str, started: int) -> int:
        now = time.perf_counter_ns()
        self.ms[stage] = self.ms.get(stage, 0.0) + (now - started) / 1e6
        return now


class RunStats:
    """Collects per-frame stage times and wall time; summarises them."""

    def __init__(self) -> None:
        self.stages: dict[str, list[float]] = defaultdict(list)
        self.frames = 0
        self.people = 0
        self.detector_frames = 0
        self.track_ids: set[int] = set()
        self._t0 = time.perf_counter()
        self.wall_s = 0.0

    def add(self, stages_ms: dict[str, float], poses: int = 0, detector_ran: bool = False,
            track_ids: tuple[int, ...] = ()) -> None:
        n = self.frames
        for name, ms in stages_ms.items():
            values = self.stages[name]
            values.extend([0.0] * (n - len(values)))  # stages a frame skipped count as 0
            values.append(ms)
        self.frames += 1
        self.people += poses
        self.detector_frames += int(detector_ran)
        self.track_ids.update(i for i in track_ids if i >= 0)
        self.wall_s = time.perf_counter() - self._t0

    def summary(self) -> dict:
        per_stage = {}
        for name, values in self.stages.items():
            arr = np.array(values + [0.0] * (self.frames - len(values)))
            per_stage[name] = {
                "mean": round(float(arr.mean()), 3),
                "p50": round(float(np.percentile(arr, 50)), 3),
                "p90": round(float(np.percentile(arr, 90)), 3),
            }
        return {
            "frames": self.frames,
            "people": self.people,
            "tracks": len(self.track_ids),
            "detector_frames": self.detector_frames,
            "wall_s": round(self.wall_s, 3),
            "fps": round(self.frames / self.wall_s, 2) if self.wall_s > 0 else None,
            "stages_ms": per_stage,
        }


def device_facts() -> dict:
    """What a benchmark figure was measured on: CPU, cores, OS, Python, library versions."""
    import platform
    from importlib import metadata

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for dist in ("edgepose", "numpy", "opencv-python-headless", "opencv-python",
                 "opencv-contrib-python", "ai-edge-litert", "tflite-runtime", "tensorflow",
                 "mediapipe"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return {
        "cpu": cpu,
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "libraries": versions,
    }
