"""Every person detector x landmark model combination, and MoveNet: accuracy on the shared
annotated images and latency per frame on the street video.

Configurations: top-down with --detector blazepose / nanodet / centernet /
blazepose+nanodet / blazepose+centernet in front of the
BlazePose lite / full / heavy landmark models (max_people 10), MoveNet MultiPose
(bottom-up, max_people 6) and MoveNet Lightning / Thunder (single pose). Accuracy as
benchmarks/eval_shared.py measures it (static image mode, OKS AP with pycocotools over
the joints each set shares with the model, people found = annotated people matched by a
prediction). Latency: video mode on the first --frames frames of the 50 fps street
clip, mean and median ms per frame of process() (decode of the video not counted), all
configurations with --threads.

NanoDet, CenterNet and MoveNet must be converted first (``edgepose convert tfjs all``,
needs the convert-tf extra); configurations whose model is missing are reported as
skipped. Writes benchmarks/results/eval_models.json.

    python benchmarks/eval_models.py [--threads 2] [--frames 100]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from eval_shared import IMAGES, MODELS, RESULTS, SETS, SHARED, mean_over_sets, run_config  # noqa: E402

VIDEO = SHARED / "video" / "street_1280x720_50fps.avi"
DETECTORS = ("blazepose", "nanodet", "centernet", "blazepose+nanodet", "blazepose+centernet")
LANDMARKS = ("lite", "full", "heavy")
MOVENET = (("movenet-multipose", 6), ("movenet-thunder", 1), ("movenet-lightning", 1))


def configs():
    for detector in DETECTORS:
        for model in LANDMARKS:
            yield f"{detector} + {model}", {"model": model, "detector": detector, "max_people": 10}
    for model, people in MOVENET:
        yield model, {"model": model, "max_people": people}


def video_latency(make, frames: int) -> dict:
    cap = cv2.VideoCapture(str(VIDEO))
    images = []
    while len(images) < frames:
        ok, frame = cap.read()
        if not ok:
            break
        images.append(frame)
    cap.release()
    pipe = make(static_image_mode=False)
    times, people = [], []
    try:
        for i, frame in enumerate(images):
            t = time.perf_counter_ns()
            result = pipe.process(frame, timestamp_ms=i * 20.0)
            times.append((time.perf_counter_ns() - t) / 1e6)
            people.append(len(result.poses))
    finally:
        pipe.close()
    warm = np.array(times[5:] or times)
    return {"frames": len(times), "mean_ms": round(float(warm.mean()), 2),
            "median_ms": round(float(np.median(warm)), 2), "mean_people": round(float(np.mean(people)), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--only", nargs="*", help="configuration names to run (default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS / "eval_models.json")
    args = parser.parse_args()
    if not IMAGES.is_dir() or not MODELS.is_dir():
        sys.exit(f"eval_models: {SHARED} is absent: this benchmark needs the workspace's shared data")
    os.environ.setdefault("EDGEPOSE_MODEL_PATH", str(MODELS))
    os.environ.setdefault("EDGEPOSE_OFFLINE", "1")
    from edgepose.cli import native_stderr_quiet
    from edgepose.engines import create_pipeline
    from edgepose.errors import EdgeposeError
    from edgepose.evaluation import DEFINITIONS, load_dataset
    from edgepose.profiler import device_facts

    datasets = {name: (load_dataset(IMAGES / name / ann), IMAGES / name) for name, ann in SETS.items()}
    annotated = {name: None for name in SETS}
    results, skipped = {}, {}
    for key, cfg in configs():
        if args.only and key not in args.only:
            continue

        def make(**more):
            return create_pipeline("tflite", threads=args.threads, **cfg, **more)

        try:
            with native_stderr_quiet():
                pipe = make(static_image_mode=True)
        except EdgeposeError as exc:
            skipped[key] = str(exc)
            print(f"{key}: skipped ({exc})", file=sys.stderr)
            continue
        with native_stderr_quiet():
            per_set = run_config(pipe, datasets)
        pipe.close()
        for name, r in per_set.items():
            annotated[name] = r["annotated_people"]
        results[key] = {
            "config": cfg, "per_set": per_set,
            "mean": {k: mean_over_sets(per_set, k) for k in ("AP", "AR", "PCK@0.2")},
            "people_found": int(sum(r["matched"] for r in per_set.values())),
            "annotated_people": int(sum(r["annotated_people"] for r in per_set.values())),
            "street_video": video_latency(make, args.frames),
        }
        r = results[key]
        print(f"{key:24} AP {r['mean']['AP']:.3f}  found {r['people_found']}/{r['annotated_people']}  "
              f"street {r['street_video']['mean_ms']:.1f} ms/frame", file=sys.stderr)
    report = {
        "benchmark": "detector x landmark model combinations and MoveNet: accuracy on the shared "
                     "annotated images (static image mode), latency on the street video (video mode)",
        "command": "python " + " ".join([str(Path(sys.argv[0]).resolve().relative_to(ROOT)), *sys.argv[1:]]),
        "device": device_facts(),
        "definitions": {**DEFINITIONS, "people_found": "annotated people matched by a prediction "
                        "(OKS >= 0.1), summed over the six sets",
                        "street_video": f"{VIDEO.name}, first {args.frames} frames, mean / median ms "
                        "per process() after 5 warm-up frames, video mode (tracking on)"},
        "threads": args.threads,
        "results": results,
        "skipped": skipped,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'configuration':24} {'AP':>6} {'AR':>6} {'found':>7} {'street ms':>10}")
    for key, r in results.items():
        print(f"{key:24} {r['mean']['AP']:6.3f} {r['mean']['AR']:6.3f} "
              f"{r['people_found']:>3}/{r['annotated_people']:<3} {r['street_video']['mean_ms']:10.1f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
