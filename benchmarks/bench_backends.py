"""Per-frame time of the three backends behind one API on the street video.

tflite (edgepose's own pipeline on LiteRT), mediapipe (legacy mediapipe.solutions.pose)
and mediapipe-tasks (PoseLandmarker from a bundle built from the same files): same model
(pose_landmark_full), video mode, one person, smoothing off everywhere (the engines are
compared, not the filters), frames given as BGR as OpenCV decodes them. ``--threads``
goes to every backend that has a thread setting (the legacy API has none); each backend
also runs at 1 thread, MediaPipe's own desktop default, for a like-for-like row. Rounds
alternate the backends (in a rotating order) so that machine noise hits all of them;
figures are over the frames of all rounds. Writes benchmarks/results/backends.json.

    python benchmarks/bench_backends.py [--video PATH] [--rounds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np

from common import RESULTS, STREET, command, machine, use_shared_models, write_json


def read_frames(path: Path) -> tuple[list[np.ndarray], float]:
    from edgepose.sources import read_video

    frames, fps = read_video(path)
    return frames, fps or 30.0


def make_pipeline(backend: str, threads: int | None):
    from edgepose import Options, Pipeline

    return Pipeline(Options(backend=backend, model="full", threads=threads, smoothing="none",
                            max_people=1))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(backend: str, threads: int | None, frames: list[np.ndarray], fps: float) -> dict:
    per_frame, engine, people, detector = [], [], 0, 0
    with make_pipeline(backend, threads) as pipe:
        pipe.process(frames[0], timestamp_ms=0.0)  # warm-up: graph start, first allocations
        pipe.reset()
        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        for i, frame in enumerate(frames):
            t = time.perf_counter_ns()
            result = pipe.process(frame, timestamp_ms=i * 1000.0 / fps)
            per_frame.append((time.perf_counter_ns() - t) / 1e6)
            s = result.stages_ms
            engine.append(s.get("mediapipe", s.get("detector", 0.0) + s.get("landmark", 0.0)))
            people += len(result.poses)
            detector += int(result.detector_ran)
        cpu, wall = cpu_seconds() - cpu0, time.perf_counter() - wall0
    return {"per_frame": per_frame, "engine": engine, "people": people,
            "detector_frames": detector, "cpu_per_wall": cpu / wall}


def summarise(runs: list[dict], frames: int) -> dict:
    from edgepose.profiler import latency_stats

    per_frame = np.concatenate([r["per_frame"] for r in runs])
    stats = latency_stats(per_frame)
    return {
        "median": stats["p50"], "mean": stats["mean"], "p90": stats["p90"], "max": stats["max"],
        "frames_over_100ms": int((per_frame > 100.0).sum()),
        "engine_median": latency_stats(np.concatenate([r["engine"] for r in runs]))["p50"],
        "cpu_per_wall": round(float(np.mean([r["cpu_per_wall"] for r in runs])), 2),
        "people_per_frame": round(sum(r["people"] for r in runs) / (frames * len(runs)), 3),
        "detector_frames_per_run": round(float(np.mean([r["detector_frames"] for r in runs])), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=STREET)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "backends.json")
    args = parser.parse_args()
    use_shared_models()

    frames, fps = read_frames(args.video)
    variants = {  # name -> (backend, threads)
        "tflite": ("tflite", args.threads),
        "mediapipe": ("mediapipe", None),
        "mediapipe-tasks": ("mediapipe-tasks", args.threads),
        "tflite_1_thread": ("tflite", 1),
        "mediapipe-tasks_1_thread": ("mediapipe-tasks", 1),
    }
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            runs[name].append(run(*variants[name], frames, fps))

    table = {name: summarise(rs, len(frames)) for name, rs in runs.items()}

    def ratio(a: str, b: str) -> float:
        return round(table[a]["median"] / table[b]["median"], 3)

    result = {
        "benchmark": "three backends, video mode, pose_landmark_full, smoothing off",
        "command": command(),
        "video": args.video.name,
        "frames": len(frames),
        "rounds": args.rounds,
        "threads": args.threads,
        "device": machine(),
        "ms_per_frame": table,
        "ratios_of_median": {
            "mediapipe_over_tflite": ratio("mediapipe", "tflite"),
            "mediapipe_tasks_over_tflite": ratio("mediapipe-tasks", "tflite"),
            "mediapipe_tasks_over_mediapipe": ratio("mediapipe-tasks", "mediapipe"),
            "mediapipe_over_tflite_1_thread": ratio("mediapipe", "tflite_1_thread"),
            "mediapipe_tasks_1_thread_over_tflite_1_thread":
                ratio("mediapipe-tasks_1_thread", "tflite_1_thread"),
        },
        "note": "ms per frame is the whole process() call on a BGR frame (validation, colour "
                "conversion, engine, results). engine_median: the model invokes for tflite, "
                "the MediaPipe call for the others. cpu_per_wall: process CPU seconds per wall "
                "second, i.e. cores in use. frames_over_100ms counts stalls over all rounds "
                "(MediaPipe at 2 XNNPACK threads stalls for up to 2 s when other processes "
                "load the cores). The legacy API has no thread setting (one XNNPACK thread); "
                "it is the same row in both comparisons. Timings on a shared machine are "
                "noisy: compare ratios from one run.",
    }
    write_json(args.out, result)
    print(json.dumps({k: result[k] for k in ("ms_per_frame", "ratios_of_median")}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
