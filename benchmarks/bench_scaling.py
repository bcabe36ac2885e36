"""The cost of one more person: ms per frame against the number of people tracked (1..10),
for each configuration, on the street clip in video mode.

Each configuration runs the first --frames frames once per max_people in --people (the
clip has 3 to 9 people in view, so max_people caps how many are followed); every frame
is binned by the people it returned. Per configuration and people count: frames, p50, p90
and p99 ms of process() and the median CPU ms the process spent on the frame (all its
threads: on a machine shared with other work, wall time measures the load as much as the
pipeline, CPU time much less so); and least-squares lines ms = base + per_person x people
over all frames (the first 5 of each run are warm-up, not counted). The load average
before and after is recorded. Writes
benchmarks/results/bench_scaling.json and, with matplotlib (the ``plot`` extra), a PNG
of p50 against people next to it.

    python benchmarks/bench_scaling.py [--threads 2] [--frames 40] [--people 1,2,4,6,8,10]
        [--configs "blazepose + full" "blazepose+centernet + full" ...] [--detector-thread on|off|both]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from common import (
    MODELS,
    RESULTS,
    STREET,
    command,
    machine,
    require_shared,
    use_shared_models,
    write_json,
)

# yolo11n-pose: by name, its heads file where `edgepose convert yolo-heads` made it
CONFIGS = ("blazepose + full", "blazepose+centernet + full", "blazepose + heavy",
           "blazepose+centernet + heavy", "movenet-multipose", "yolo11n-pose")
WARMUP = 5


def options_of(name: str) -> dict:
    """'detector + model' (top-down) or a model that finds people itself."""
    if " + " in name:
        detector, model = name.split(" + ")
        return {"model": model, "detector": detector}
    return {"model": name}


def run(name: str, frames: list[np.ndarray], people: int, threads: int,
        thread_on: bool | None) -> tuple[list[tuple], str]:
    """(people returned, wall ms, CPU ms) of each timed frame, and the model file that ran
    (yolo11n-pose: its heads file once made)."""
    from edgepose import Options, Pipeline
    from edgepose.quiet import native_stderr_quiet

    extra = {} if thread_on is None else {"detector_thread": thread_on}
    with native_stderr_quiet():
        pipe = Pipeline(Options(backend="tflite", threads=threads, max_people=people, **options_of(name), **extra))
    model_file = pipe.describe()["model_file"]
    out = []
    try:
        for i, frame in enumerate(frames):
            t, cpu = time.perf_counter_ns(), time.process_time_ns()
            result = pipe.process(frame, timestamp_ms=i * 20.0)
            if i >= WARMUP:
                out.append((len(result.poses), (time.perf_counter_ns() - t) / 1e6,
                            (time.process_time_ns() - cpu) / 1e6))
    finally:
        pipe.close()
    return out, model_file


def summarise(samples: list[tuple]) -> dict:
    counts = np.array([s[0] for s in samples])
    ms = np.array([s[1] for s in samples])
    cpu = np.array([s[2] for s in samples])
    per_count = {}
    for n in sorted(set(counts.tolist())):
        values = ms[counts == n]
        per_count[str(n)] = {"frames": int(values.size),
                             **{f"p{q}": round(float(np.percentile(values, q)), 2) for q in (50, 90, 99)},
                             "cpu_p50": round(float(np.median(cpu[counts == n])), 2)}
    fit = None
    if len(set(counts.tolist())) > 1:
        slope, base = np.polyfit(counts, ms, 1)
        cpu_slope, cpu_base = np.polyfit(counts, cpu, 1)
        fit = {"base_ms": round(float(base), 2), "per_person_ms": round(float(slope), 2),
               "cpu_base_ms": round(float(cpu_base), 2), "cpu_per_person_ms": round(float(cpu_slope), 2)}
    return {"by_people": per_count, "fit": fit, "frames": int(ms.size)}


def plot(results: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no PNG (pip install 'edgepose[plot]')", file=sys.stderr)
        return False
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for ax, key, label in zip(axes, ("p50", "cpu_p50"), ("wall ms per frame (p50)", "CPU ms per frame (median, all threads)")):
        for name, r in results.items():
            xs = [int(n) for n in r["by_people"]]
            ax.plot(xs, [r["by_people"][str(n)][key] for n in xs], marker="o", label=name)
        ax.set_xlabel("people tracked in the frame")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("street clip, video mode: the cost of one more person")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--people", default="1,2,4,6,8,10", help="max_people values, comma-separated")
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS))
    parser.add_argument("--detector-thread", choices=("on", "off", "both"), default="on",
                        help="top-down configurations: the person detector on its own thread (video mode)")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_scaling.json")
    args = parser.parse_args()
    require_shared("bench_scaling", STREET, MODELS)
    use_shared_models()
    from edgepose.sources import read_video

    frames, _ = read_video(STREET, args.frames + WARMUP)
    people = [int(p) for p in args.people.split(",")]
    modes = {"on": [True], "off": [False], "both": [True, False]}[args.detector_thread]
    load_before = os.getloadavg()
    results = {}
    for name in args.configs:
        for mode in (modes if " + " in name else [None]):
            key = name if mode is None or len(modes) == 1 else f"{name}, detector thread {'on' if mode else 'off'}"
            runs = [run(name, frames, n, args.threads, mode) for n in people]
            results[key] = {**summarise([s for samples, _ in runs for s in samples]), "model_file": runs[0][1]}
            fit = results[key]["fit"] or {}
            print(f"{key:48} " + "  ".join(f"{n}:{v['p50']:.0f}/{v['cpu_p50']:.0f}"
                                             for n, v in results[key]["by_people"].items())
                  + f"   per person {fit.get('per_person_ms', '-')} ms, {fit.get('cpu_per_person_ms', '-')} CPU ms",
                  file=sys.stderr)
    report = {"benchmark": "ms per frame against people tracked, street clip, video mode",
              "command": command(), "device": machine(), "threads": args.threads,
              "frames_per_run": args.frames, "max_people_runs": people,
              "load_average_1_5_15": {"before": [round(v, 2) for v in load_before],
                                      "after": [round(v, 2) for v in os.getloadavg()]},
              "definitions": {"by_people": "frames that returned that many people: count and p50/p90/p99 "
                              "ms of process(); cpu_p50: median CPU ms of the process (all threads)",
                              "fit": "least squares over all timed frames: ms = base_ms + per_person_ms x "
                              "people (wall), and the same for CPU ms"},
              "results": results}
    write_json(args.out, report)
    png = args.out.with_suffix(".png")
    print(f"wrote {args.out}" + (f" and {png}" if plot(results, png) else ""))


if __name__ == "__main__":
    main()
