"""What the per-stage profiling costs: the stage clocks inside every process() call plus
the run profiler's add(), as a fraction of the frame time, on the street video.

The instrumentation is measured directly (its calls counted during a real run, each
kind timed over many repetitions) rather than by switching it off, which would compare
two noisy frame times. Writes benchmarks/results/profiler_overhead.json.

    python benchmarks/bench_profiler_overhead.py
"""

from __future__ import annotations

import json
import time

import numpy as np

from common import RESULTS, STREET, command, machine, use_shared_models, write_json


def per_call_ns(fn, repeat: int = 200_000) -> float:
    t = time.perf_counter_ns()
    for _ in range(repeat):
        fn()
    return (time.perf_counter_ns() - t) / repeat


def main() -> None:
    from edgepose import Pipeline, profiler
    from edgepose.profiler import Profiler, StageClock
    from edgepose.sources import read_video

    use_shared_models()

    frames, _ = read_video(STREET)

    calls = {"stop": 0}
    original_stop = StageClock.stop

    def counting_stop(self, stage, started):
        calls["stop"] += 1
        return original_stop(self, stage, started)

    prof = Profiler()
    frame_ms = []
    StageClock.stop = counting_stop
    try:
        with Pipeline(model="full", threads=2) as pipe:
            for i, frame in enumerate(frames):
                t = time.perf_counter_ns()
                result = pipe.process(frame, timestamp_ms=i * 20.0)
                frame_ms.append((time.perf_counter_ns() - t) / 1e6)
                prof.add(result.stages_ms, len(result.poses), result.detector_ran)
    finally:
        StageClock.stop = original_stop
    stops_per_frame = calls["stop"] / len(frames)

    clock = StageClock()
    stop_ns = per_call_ns(lambda: clock.stop("landmark", clock.start()))
    typical = dict(result.stages_ms)
    bench_prof = Profiler()
    add_ns = per_call_ns(lambda: bench_prof.add(typical, 1, False, (0,)), repeat=50_000)
    overhead_ms = (stops_per_frame * stop_ns + add_ns) / 1e6
    mean_frame = float(np.mean(frame_ms))
    result = {
        "benchmark": "profiling overhead per frame",
        "command": command(),
        "device": machine(),
        "frames": len(frames),
        "stage_clock_stops_per_frame": round(stops_per_frame, 2),
        "ns_per_stage_clock_stop": round(stop_ns, 1),
        "ns_per_profiler_add": round(add_ns, 1),
        "overhead_ms_per_frame": round(overhead_ms, 5),
        "mean_frame_ms": round(mean_frame, 3),
        "overhead_fraction": round(overhead_ms / mean_frame, 6),
        "target": "< 0.01",
        "note": f"psutil sampling is at most once per second ({profiler.__name__}.Profiler)",
    }
    write_json(RESULTS / "profiler_overhead.json", result)
    print(json.dumps({k: v for k, v in result.items() if k != "device"}, indent=2))


if __name__ == "__main__":
    main()
