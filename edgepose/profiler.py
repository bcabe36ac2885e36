"""Stage timing (per-frame stage clocks), run summaries with percentiles, process figures,
and the device facts recorded with every benchmark result."""

from __future__ import annotations

import glob
import os
import time
from collections import deque

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


def latency_stats(values_ms) -> dict:
    """count, mean, std, min, p50, p90, p99 and max of a list of milliseconds, in the manner
    of TFLite's benchmark_model: the one latency summary of edgepose's reports (the run
    profiler, ``edgepose bench``, the converters' verifier)."""
    arr = np.asarray(values_ms, dtype=np.float64)
    if arr.size == 0:
        return {"count": 0}
    p50, p90, p99 = np.percentile(arr, [50, 90, 99])
    return {
        "count": int(arr.size),
        "mean": round(float(arr.mean()), 3),
        "std": round(float(arr.std()), 3),
        "min": round(float(arr.min()), 3),
        "p50": round(float(p50), 3),
        "p90": round(float(p90), 3),
        "p99": round(float(p99), 3),
        "max": round(float(arr.max()), 3),
    }


class StageWindow:
    """The times of one stage over the last ``size`` frames (a float32 ring that grows as
    needed up to ``size``): the statistics of a run of any length in bounded memory (a
    kiosk runs for weeks). Exact for runs of at most ``size`` frames."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.count = 0
        self._data = np.zeros(min(size, 1024), np.float32)

    def append(self, value: float, times: int = 1) -> None:
        for _ in range(min(times, self.size)):
            if self.count < self.size and self.count == len(self._data):  # grow: double
                more = min(len(self._data), self.size - self.count)
                self._data = np.concatenate([self._data, np.zeros(more, np.float32)])
            self._data[self.count % self.size] = value
            self.count += 1
        self.count += max(0, times - self.size)

    def __len__(self) -> int:
        return self.count

    def values(self) -> np.ndarray:
        return self._data[:min(self.count, self.size)]


class Profiler:
    """Per-frame stage times, rolling FPS, and process CPU% / RSS over a run.

    ``add`` costs a few microseconds per frame; process figures are sampled at most once
    per ``sample_every_s`` (psutil, when installed). Memory stays bounded however long the
    run: stage statistics cover the last ``window_frames`` frames, CPU is a running mean
    and RSS a running maximum.
    """

    def __init__(self, rolling_frames: int = 30, sample_every_s: float = 1.0,
                 window_frames: int = 100_000) -> None:
        self.window_frames = window_frames
        self.stages: dict[str, StageWindow] = {}
        self.frames = 0
        self.people = 0
        self.detector_frames = 0
        self.track_ids: set[int] = set()
        self._t0 = time.perf_counter()
        self._ends: deque[float] = deque(maxlen=rolling_frames + 1)
        self.wall_s = 0.0
        self._sample_every_s = sample_every_s
        self._next_sample = 0.0
        self._cpu_sum, self._cpu_samples = 0.0, 0
        self._rss_max: float | None = None
        self._process = _psutil_process()

    def add(self, stages_ms: dict[str, float], poses: int = 0, detector_ran: bool = False,
            track_ids: tuple[int, ...] = ()) -> None:
        n = self.frames
        for name, values in self.stages.items():
            if name not in stages_ms:
                values.append(0.0)  # stages a frame skipped count as 0
        for name, ms in stages_ms.items():
            values = self.stages.get(name)
            if values is None:
                values = self.stages[name] = StageWindow(self.window_frames)
                values.append(0.0, times=n)  # the frames before it skipped it
            values.append(ms)
        self.frames += 1
        self.people += poses
        self.detector_frames += int(detector_ran)
        self.track_ids.update(i for i in track_ids if i >= 0)
        now = time.perf_counter()
        self._ends.append(now)
        self.wall_s = now - self._t0
        if self._process is not None and now >= self._next_sample:
            self._next_sample = now + self._sample_every_s
            # the first cpu_percent() call only starts psutil's interval
            cpu = self._process.cpu_percent()
            if self.frames > 1:
                self._cpu_sum += cpu
                self._cpu_samples += 1
            rss = self._process.memory_info().rss / 2**20
            self._rss_max = rss if self._rss_max is None else max(self._rss_max, rss)

    @property
    def rolling_fps(self) -> float | None:
        """Frames per second over the last ``rolling_frames`` frames."""
        if len(self._ends) < 2:
            return None
        return (len(self._ends) - 1) / (self._ends[-1] - self._ends[0])

    def stage_stats(self) -> dict[str, dict]:
        out = {}
        for name, values in self.stages.items():
            out[name] = latency_stats(values.values())
        return out

    def summary(self) -> dict:
        return {
            "frames": self.frames,
            "people": self.people,
            "tracks": len(self.track_ids),
            "detector_frames": self.detector_frames,
            "wall_s": round(self.wall_s, 3),
            "fps": round(self.frames / self.wall_s, 2) if self.wall_s > 0 else None,
            "stages_ms": self.stage_stats(),
            "process": {
                "cpu_percent_mean": round(self._cpu_sum / self._cpu_samples, 1) if self._cpu_samples else None,
                "rss_mb_max": round(self._rss_max, 1) if self._rss_max is not None else None,
            },
        }


def _psutil_process():
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process()


def thermal_state() -> dict:
    """Temperatures and throttling where the device reports them; None means the sensor is
    absent here (never 0). Linux thermal zones, Raspberry Pi throttling flags (vcgencmd),
    Jetson power rails (INA3221 through sysfs)."""
    return {
        "thermal_zones_c": _thermal_zones(),
        "raspberry_pi_throttled": _pi_throttled(),
        "jetson_power_rails_mw": _jetson_rails(),
    }


def _thermal_zones(root: str = "/sys/class/thermal") -> dict[str, float] | None:
    zones = {}
    for zone in sorted(glob.glob(os.path.join(root, "thermal_zone*"))):
        try:
            with open(os.path.join(zone, "type"), encoding="utf-8") as f:
                kind = f.read().strip()
            with open(os.path.join(zone, "temp"), encoding="utf-8") as f:
                zones[f"{os.path.basename(zone)}:{kind}"] = int(f.read().strip()) / 1000.0
        except (OSError, ValueError):
            continue
    return zones or None


# Bits of `vcgencmd get_throttled` (Raspberry Pi firmware).
_PI_FLAGS = {0: "under_voltage_now", 1: "freq_capped_now", 2: "throttled_now",
             3: "soft_temp_limit_now", 16: "under_voltage_occurred", 17: "freq_capped_occurred",
             18: "throttled_occurred", 19: "soft_temp_limit_occurred"}


def _pi_throttled() -> dict | None:
    import shutil
    import subprocess

    if shutil.which("vcgencmd") is None:
        return None
    try:
        out = subprocess.run(["vcgencmd", "get_throttled"], capture_output=True, text=True,
                             timeout=2).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_throttled(out)


def parse_throttled(text: str) -> dict | None:
    """Flags of ``vcgencmd get_throttled`` output such as 'throttled=0x50005'."""
    try:
        value = int(text.strip().split("=")[1], 16)
    except (IndexError, ValueError):
        return None
    return {"raw": hex(value), **{name: bool(value >> bit & 1) for bit, name in _PI_FLAGS.items()}}


def _jetson_rails() -> dict[str, float] | None:
    rails = {}
    for label_file in glob.glob("/sys/bus/i2c/drivers/ina3221*/*/hwmon/hwmon*/in*_label"):
        base = label_file[: -len("_label")]
        index = base.rsplit("in", 1)[1]
        folder = os.path.dirname(label_file)
        try:
            with open(label_file, encoding="utf-8") as f:
                name = f.read().strip()
            with open(f"{base}_input", encoding="utf-8") as f:
                millivolts = float(f.read())
            with open(os.path.join(folder, f"curr{index}_input"), encoding="utf-8") as f:
                milliamps = float(f.read())
        except (OSError, ValueError):
            continue
        rails[name] = round(millivolts * milliamps / 1000.0, 1)
    return rails or None


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
        "thermal": thermal_state(),
    }
