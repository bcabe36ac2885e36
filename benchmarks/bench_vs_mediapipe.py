"""Per-frame time of edgepose vs mediapipe.solutions.pose on the street video.

Same model (pose_landmark_full), same process, 2 threads, video mode (tracking on, no
smoothing on either side: edgepose has none yet, so MediaPipe runs with
smooth_landmarks=False; its default, smoothing on, is measured too). Rounds alternate
between the engines so that machine noise hits both; figures are medians over frames of
all rounds. Writes benchmarks/results/vs_mediapipe.json.

    python benchmarks/bench_vs_mediapipe.py [--video PATH] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from common import RESULTS, STREET, command, machine, use_shared_models, write_json


def read_frames(path: Path) -> list[np.ndarray]:
    from edgepose.sources import read_video

    return read_video(path)[0]


def run_edgepose(frames, threads):
    from edgepose import Pipeline

    per_frame, invoke, stages = [], [], []
    with Pipeline(model="full", threads=threads) as pipe:
        for i, frame in enumerate(frames):
            t = time.perf_counter_ns()
            result = pipe.process(frame, timestamp_ms=i * 20.0)
            per_frame.append((time.perf_counter_ns() - t) / 1e6)
            invoke.append(result.stages_ms.get("detector", 0.0) + result.stages_ms.get("landmark", 0.0))
            stages.append(result.stages_ms)
    return per_frame, invoke, stages


def run_mediapipe(frames, smooth):
    import mediapipe as mp

    per_frame = []
    with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1,
                                smooth_landmarks=smooth, enable_segmentation=False) as pose:
        for frame in frames:
            t = time.perf_counter_ns()
            # MediaPipe takes RGB: the conversion is part of using it on OpenCV frames.
            pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            per_frame.append((time.perf_counter_ns() - t) / 1e6)
    return per_frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=STREET)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "vs_mediapipe.json")
    args = parser.parse_args()
    use_shared_models()

    frames = read_frames(args.video)
    ours, invokes, stage_rows = [], [], []
    theirs, theirs_smooth = [], []
    for _ in range(args.rounds):
        a, b, c = run_edgepose(frames, args.threads)
        ours += a
        invokes += b
        stage_rows += c
        theirs += run_mediapipe(frames, smooth=False)
        theirs_smooth += run_mediapipe(frames, smooth=True)

    def med(values):
        return round(float(np.median(values)), 3)

    stage_names = sorted({k for row in stage_rows for k in row})
    split = {k: med([row.get(k, 0.0) for row in stage_rows]) for k in stage_names}
    mean_split = {k: round(float(np.mean([row.get(k, 0.0) for row in stage_rows])), 3) for k in stage_names}
    result = {
        "benchmark": "edgepose vs mediapipe.solutions.pose, video mode, pose_landmark_full",
        "command": command(),
        "video": args.video.name,
        "frames": len(frames),
        "rounds": args.rounds,
        "threads": args.threads,
        "device": machine(),
        "ms_per_frame_median": {
            "edgepose": med(ours),
            "edgepose_model_invokes": med(invokes),
            "mediapipe": med(theirs),
            "mediapipe_smoothing_on": med(theirs_smooth),
        },
        "ms_per_frame_mean": {
            "edgepose": round(float(np.mean(ours)), 3),
            "edgepose_model_invokes": round(float(np.mean(invokes)), 3),
            "mediapipe": round(float(np.mean(theirs)), 3),
            "mediapipe_smoothing_on": round(float(np.mean(theirs_smooth)), 3),
        },
        "ratios": {
            "edgepose_over_mediapipe": round(float(np.median(ours) / np.median(theirs)), 3),
            "edgepose_over_mediapipe_smoothing_on": round(float(np.median(ours) / np.median(theirs_smooth)), 3),
            "edgepose_frame_over_its_invokes": round(float(np.mean(ours) / np.mean(invokes)), 3),
        },
        "edgepose_stages_ms_median": split,
        "edgepose_stages_ms_mean": mean_split,
        "targets": {"edgepose_over_mediapipe": "<= 0.8", "edgepose_frame_over_its_invokes": "<= 1.3"},
        "note": "MediaPipe's legacy API has no thread setting; its XNNPACK default uses the "
                "machine's cores. MediaPipe's time includes the BGR->RGB conversion it needs.",
    }
    write_json(args.out, result)
    print(json.dumps({k: result[k] for k in ("ms_per_frame_median", "ratios", "edgepose_stages_ms_mean")}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
