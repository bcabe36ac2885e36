"""Every person detector x landmark model combination, and MoveNet: accuracy on the shared
annotated images and latency per frame on the street video.

Configurations: top-down with --detector blazepose / nanodet / centernet /
blazepose+nanodet / blazepose+centernet in front of the
BlazePose lite / full / heavy landmark models (max_people 10), MoveNet MultiPose
(bottom-up, max_people 6), MoveNet Lightning / Thunder (single pose), OpenPose
(bottom-up, part-affinity fields, max_people 10), PoseNet (bottom-up), EfficientPose
(top-down MPII-16 heatmaps) and YOLO11n-pose (bottom-up, max_people 10): the 640x640
export on ONNX Runtime, its TFLite (``edgepose convert from-onnx yolo11n-pose``) and its
heads file (``edgepose convert yolo-heads yolo11n-pose``). Accuracy as
benchmarks/eval_shared.py measures it (static image mode, OKS AP with pycocotools over
the joints each set shares with the model, people found = annotated people matched by a
prediction). Latency: video mode on the first --frames frames of the 50 fps street
clip, mean and median ms per frame of process() (decode of the video not counted), all
configurations with --threads.

--mmpose-data adds three more annotated sets from the test data of OpenMMLab's mmpose
(Apache-2.0; the source of the shared images too, not redistributed here): COCO (4
images, 14 people), OCHuman (3 images, 5 heavily occluded people) and PoseTrack18 (3
frames, 14 people). Give it the ``tests/data`` folder of an mmpose checkout
(``git clone --depth 1 https://github.com/open-mmlab/mmpose``); they are reported apart
from the shared sets and summed with them.

NanoDet, CenterNet and MoveNet must be converted first (``edgepose convert tfjs all``,
needs the convert-tf extra), OpenPose too (``edgepose convert tf-graph openpose``); configurations whose model is missing are reported as
skipped. Writes benchmarks/results/eval_models.json and a Markdown table next to it.

    python benchmarks/eval_models.py [--threads 2] [--frames 100] [--mmpose-data DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from common import (IMAGES, MODELS, RESULTS, STREET, command, machine, require_shared,
                    use_shared_models, write_json)
from eval_shared import SETS, mean_over_sets, run_config

DETECTORS = ("blazepose", "nanodet", "centernet", "blazepose+nanodet", "blazepose+centernet")
LANDMARKS = ("lite", "full", "heavy")
MOVENET = (("movenet-multipose", 6), ("movenet-thunder", 1), ("movenet-lightning", 1))
# name -> (annotation file, images folder), under mmpose's tests/data
MMPOSE_SETS = {
    "coco": ("coco/test_coco.json", "coco"),
    "ochuman": ("ochuman/test_ochuman.json", "ochuman"),
    "posetrack18": ("posetrack18/annotations/test_posetrack18_val.json", "posetrack18"),
}


def configs():
    for detector in DETECTORS:
        for model in LANDMARKS:
            yield f"{detector} + {model}", {"model": model, "detector": detector, "max_people": 10}
    for model, people in MOVENET:
        yield model, {"model": model, "max_people": people}
    # EfficientPose (MPII-16 heatmaps, top-down) behind the two detectors that suit it
    # best (measured: behind blazepose, nanodet, blazepose+nanodet fewer people, lower AP);
    # PoseNet bottom-up
    for detector in ("centernet", "blazepose+centernet"):
        yield f"{detector} + efficientpose", {"model": "efficientpose", "detector": detector, "max_people": 10}
    yield "posenet", {"model": "posenet", "max_people": 10}
    yield "openpose", {"model": "openpose", "max_people": 10}
    # YOLO11n-pose (AGPL-3.0, never shipped: ../shared's file), the export as it is on ONNX
    # Runtime and as TFLite (`edgepose convert from-onnx yolo11n-pose`), and its heads file
    # (`edgepose convert yolo-heads yolo11n-pose`, which `--model yolo11n-pose` runs once
    # made): decoded by edgepose, frames letterboxed to a multiple of 32 only. Measured
    # at --input-size 736x736 too: AP 0.508 over all 9 sets, 31.9 ms; a larger input does
    # not pay.
    from edgepose.models import cache_dir

    converted = cache_dir() / "converted"
    yolo = {"decoder": "yolo-pose", "max_people": 10}
    yield "yolo11n-pose export", {"model": str(MODELS / "yolo" / "yolo11n-pose.onnx"), **yolo}
    yield "yolo11n-pose export, tflite", {"model": str(converted / "yolo11n-pose.tflite"), **yolo}
    yield "yolo11n-pose heads", {"model": str(converted / "yolo11n-pose_heads.onnx"), **yolo}


def video_latency(make, frames: int) -> dict:
    from edgepose.sources import read_video

    images, _ = read_video(STREET, frames)
    pipe = make(static_image_mode=False)
    times, people, ids = [], [], set()
    try:
        for i, frame in enumerate(images):
            t = time.perf_counter_ns()
            result = pipe.process(frame, timestamp_ms=i * 20.0)
            times.append((time.perf_counter_ns() - t) / 1e6)
            people.append(len(result.poses))
            ids.update(p.track_id for p in result.poses)
    finally:
        pipe.close()
    from edgepose.profiler import latency_stats

    warm = latency_stats(times[5:] or times)
    return {"frames": len(times), "mean_ms": warm["mean"], "median_ms": warm["p50"],
            "p90_ms": warm["p90"], "mean_people": round(float(np.mean(people)), 2),
            "track_ids": len(ids)}


def summary(per_set: dict, names) -> dict:
    sets = {n: per_set[n] for n in names if n in per_set}
    return {"sets": list(sets),
            "mean": {k: mean_over_sets(sets, k) for k in ("AP", "AR", "PCK@0.2")},
            "people_found": int(sum(r["matched"] for r in sets.values())),
            "annotated_people": int(sum(r["annotated_people"] for r in sets.values()))}


def load_sets(mmpose_data: Path | None) -> tuple[dict, list[str]]:
    """name -> (Dataset, images folder, annotation file): the shared sets, then mmpose's."""
    from edgepose.evaluation import load_dataset

    datasets = {name: (load_dataset(IMAGES / name / ann), IMAGES / name, IMAGES / name / ann)
                for name, ann in SETS.items()}
    more = []
    if mmpose_data is not None:
        for name, (ann, images) in MMPOSE_SETS.items():
            path = mmpose_data / ann
            if not path.is_file():
                sys.exit(f"eval_models: {path} is missing: give --mmpose-data the tests/data "
                         "folder of an mmpose checkout")
            datasets[name] = (load_dataset(path), mmpose_data / images, path)
            more.append(name)
    return datasets, more


def markdown(results: dict, more: list[str]) -> str:
    groups = ["shared", "more", "all"] if more else ["shared"]
    first = next(iter(results.values()))
    names = {"shared": "shared sets", "more": "mmpose sets", "all": "all sets"}
    head = ["configuration"]
    for g in groups:
        head += [f"AP, {names[g]}", f"found (of {first[g]['annotated_people']})"]
    head += ["street ms/frame", "people per street frame", "street track ids"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for key, r in results.items():
        cells = [key]
        for g in groups:
            cells += [f"{r[g]['mean']['AP']:.3f}", str(r[g]["people_found"])]
        video = r["street_video"]
        cells += [f"{video['mean_ms']:.1f}", f"{video['mean_people']:.1f}", str(video["track_ids"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--only", nargs="*", help="configuration names to run (default: all)")
    parser.add_argument("--mmpose-data", type=Path,
                        help="tests/data of an mmpose checkout: adds its COCO, OCHuman and PoseTrack18 samples")
    parser.add_argument("--out", type=Path, default=RESULTS / "eval_models.json")
    args = parser.parse_args()
    require_shared("eval_models", IMAGES, MODELS)
    use_shared_models()
    from edgepose import Options, Pipeline
    from edgepose.errors import EdgeposeError
    from edgepose.evaluation import DEFINITIONS
    from edgepose.quiet import native_stderr_quiet

    datasets, more = load_sets(args.mmpose_data)
    results, skipped = {}, {}
    for key, cfg in configs():
        if args.only and key not in args.only:
            continue

        def make(**more_options):
            return Pipeline(Options(backend="tflite", threads=args.threads, **cfg, **more_options))

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
        results[key] = {"config": cfg, "per_set": per_set, "shared": summary(per_set, SETS)}
        if more:
            results[key]["more"] = summary(per_set, more)
            results[key]["all"] = summary(per_set, datasets)
        results[key]["street_video"] = video_latency(make, args.frames)
        r = results[key]
        print(f"{key:28} AP {r['shared']['mean']['AP']:.3f}  found {r['shared']['people_found']}/"
              f"{r['shared']['annotated_people']}" + (f"  more: AP {r['more']['mean']['AP']:.3f} found "
              f"{r['more']['people_found']}/{r['more']['annotated_people']}" if more else "")
              + f"  street {r['street_video']['mean_ms']:.1f} ms/frame", file=sys.stderr)
    report = {
        "benchmark": "detector x landmark model combinations and MoveNet: accuracy on annotated "
                     "images (static image mode), latency on the street video (video mode)",
        "command": command(),
        "device": machine(),
        "definitions": {**DEFINITIONS, "people_found": "annotated people matched by a prediction "
                        "(OKS >= 0.1), summed over the sets",
                        "shared": "the six sets in ../shared/data/images; mean = unweighted mean over them",
                        "more": "mmpose's COCO, OCHuman and PoseTrack18 test samples (--mmpose-data)",
                        "street_video": f"{STREET.name}, first {args.frames} frames, mean / median ms "
                        "per process() after 5 warm-up frames, video mode (tracking on); mean people "
                        "per frame; track_ids: distinct ids over the frames"},
        "threads": args.threads,
        "sets": {name: {"annotations": str(ann.relative_to(IMAGES if name in SETS else args.mmpose_data)),
                        "images": len(ds.images), "layout": ds.layout}
                 for name, (ds, _, ann) in datasets.items()},
        "results": results,
        "skipped": skipped,
    }
    write_json(args.out, report, indent=1)  # per-joint figures of every set: 0.8 MB at indent 2
    table = markdown(results, more) if results else ""
    args.out.with_suffix(".md").write_text(f"`{report['command']}`\n\n{table}")
    print("\n" + table + f"wrote {args.out} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
