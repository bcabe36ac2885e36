"""OpenPose's input size: the default conversion (368x432) against a smaller one, with
MoveNet MultiPose as the yardstick: accuracy on the annotated sets (as eval_models.py) and
street-clip ms per frame, the pipelines' process() interleaved frame by frame in one run so
that load from other jobs falls on all alike (read the ratios).

Make the smaller file first (convert-tf extra):

    edgepose convert tf-graph openpose --input-size 256x320 --variant float32 --out /tmp/op256
    python benchmarks/bench_openpose_sizes.py --small /tmp/op256/openpose.tflite \\
        [--mmpose-data DIR] [--frames 100] [--threads 2]

Writes benchmarks/results/openpose_sizes.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from common import (
    IMAGES,
    MODELS,
    RESULTS,
    STREET,
    command,
    machine,
    require_shared,
    use_shared_models,
    write_json,
)
from eval_models import SETS, load_sets, run_config, summary


def street(configs: dict, frames: int, threads: int) -> dict:
    """Mean / median ms per process() and people per frame of each configuration, frames
    interleaved, video mode, after 5 warm-up frames."""
    from edgepose import Pipeline
    from edgepose.profiler import latency_stats
    from edgepose.sources import read_video

    images, _ = read_video(STREET, frames)
    pipes = {k: Pipeline(threads=threads, max_people=10, **cfg) for k, cfg in configs.items()}
    times = {k: [] for k in configs}
    people = {k: [] for k in configs}
    try:
        for i, frame in enumerate(images):
            for key, pipe in pipes.items():
                t = time.perf_counter_ns()
                result = pipe.process(frame, timestamp_ms=i * 20.0)
                times[key].append((time.perf_counter_ns() - t) / 1e6)
                people[key].append(len(result.poses))
    finally:
        for pipe in pipes.values():
            pipe.close()
    out = {}
    for key in configs:
        stats = latency_stats(times[key][5:] or times[key])
        out[key] = {"mean_ms": stats["mean"], "median_ms": stats["p50"],
                    "mean_people": round(float(np.mean(people[key])), 2)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=Path, required=True, help="the smaller openpose .tflite")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mmpose-data", type=Path, help="tests/data of an mmpose checkout")
    parser.add_argument("--out", type=Path, default=RESULTS / "openpose_sizes.json")
    args = parser.parse_args()
    require_shared("bench_openpose_sizes", IMAGES, MODELS)
    use_shared_models()
    from edgepose import Pipeline
    from edgepose.quiet import native_stderr_quiet

    configs = {"openpose": {"model": "openpose"},
               "openpose small": {"model": str(args.small), "decoder": "paf"},
               "movenet-multipose": {"model": "movenet-multipose"}}
    datasets, more = load_sets(args.mmpose_data)
    results = {}
    for key, cfg in configs.items():
        with native_stderr_quiet(), Pipeline(static_image_mode=True, threads=args.threads, max_people=10,
                                             **cfg) as pipe:
            size = pipe.estimator.input_spec.size if key != "movenet-multipose" else None
            per_set = run_config(pipe, datasets)
        results[key] = {"config": cfg, "input_wxh": size, "per_set": per_set, "shared": summary(per_set, SETS)}
        if more:
            results[key]["all"] = summary(per_set, datasets)
            results[key]["more"] = summary(per_set, more)
    with native_stderr_quiet():
        video = street(configs, args.frames, args.threads)
    for key, r in results.items():
        r["street_video"] = video[key]
        ratio = video[key]["mean_ms"] / video["movenet-multipose"]["mean_ms"]
        groups = ["shared", "more", "all"] if more else ["shared"]
        print(f"{key:18} " + "  ".join(f"{g}: AP {r[g]['mean']['AP']:.3f} found {r[g]['people_found']}/"
                                       f"{r[g]['annotated_people']}" for g in groups)
              + f"  street {video[key]['mean_ms']:.1f} ms/frame ({ratio:.2f}x MultiPose)", file=sys.stderr)
    write_json(args.out, {"benchmark": "OpenPose input sizes: accuracy and street-clip ms per frame "
                                       "(interleaved with MoveNet MultiPose)",
                          "command": command(), "device": machine(), "threads": args.threads,
                          "frames": args.frames, "results": results})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
