"""YOLO11n-pose in edgepose against Ultralytics' own ``predict``, with the same files.

Accuracy: every annotated set (the six shared ones, and mmpose's COCO / OCHuman /
PoseTrack18 samples with --mmpose-data) through Ultralytics' predictions from the ONNX
file and from the .pt checkpoint, and through edgepose with the same ONNX file (ONNX
Runtime) and its TFLite conversion; all scored by the same code (edgepose.evaluation,
OKS AP over the joints each set shares with COCO-17; a pose's score is its box score
x mean keypoint confidence on both sides). Ultralytics runs with its predict defaults
(conf 0.25, iou 0.7, max_det 300); edgepose with its defaults and ``max_people`` 300.

Speed: the first --frames frames of the street clip, decoded once, then each engine in
turn over blocks of --block frames, round after round, the order rotating each round,
so that load from other processes falls on all alike: ms per frame of Ultralytics'
``predict(frame)`` (its ONNX Runtime backend with the ONNX file; PyTorch with the .pt)
and of edgepose's ``Pipeline.process(frame)`` (video mode, as ``edgepose run`` runs it)
on ONNX Runtime and on TFLite, and with its heads file (``edgepose convert yolo-heads``:
any input size, so the 16:9 clip runs at 640x384, as Ultralytics' .pt predict letterboxes
it). Ratios are p50 against Ultralytics' ONNX Runtime time.
edgepose's ONNX Runtime workers block between ops (edgepose.backends.onnxruntime); the
row "edgepose onnx, ORT spinning" keeps ORT's default spinning, as Ultralytics does,
so that the gain of edgepose's own preprocessing and decoding shows apart from it.

Ultralytics and its weights are AGPL-3.0: they are never a dependency of edgepose. This
benchmark runs in its own environment, made once (torch's CPU wheels come from
download.pytorch.org/whl/cpu where reachable, else PyPI's torch, the CUDA build, works
on the CPU too):

    python3.11 -m venv ~/.cache/edgepose/venvs/ultralytics
    ~/.cache/edgepose/venvs/ultralytics/bin/pip install -e ".[onnxruntime,eval]" \\
        "ultralytics==8.4.190" "opencv-python>=4.8,<5"
    ~/.cache/edgepose/venvs/ultralytics/bin/python benchmarks/bench_vs_ultralytics.py \\
        --mmpose-data /tmp/mmpose/tests/data

The model files come from ../shared/data/models/yolo (--models DIR elsewhere); the TFLite
file from ``edgepose convert from-onnx`` (--tflite; default the cache's
converted/yolo11n-pose.tflite, skipped when absent). Writes
benchmarks/results/vs_ultralytics.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from common import MODELS, RESULTS, STREET, command, machine, require_shared, write_json
from eval_models import load_sets, summary
from eval_shared import SETS, run_config

MAX_DET = 300  # Ultralytics' predict default; edgepose's max_people for the comparison


class UltralyticsPose:
    """Ultralytics' YOLO(...).predict behind the evaluation's ``process(image)``."""

    def __init__(self, path: Path) -> None:
        from ultralytics import YOLO

        self.name = path.name
        self.model = YOLO(str(path), task="pose")

    def predict(self, image: np.ndarray):
        return self.model.predict(image, verbose=False, max_det=MAX_DET)[0]

    def process(self, image: np.ndarray, timestamp_ms: float | None = None):
        from edgepose.keypoints import to_pose
        from edgepose.types import FrameResult

        r = self.predict(image)
        kps = r.keypoints.data.cpu().numpy() if r.keypoints is not None else np.zeros((0, 17, 3))
        scores = r.boxes.conf.cpu().numpy()
        poses = [to_pose(k, "coco17", score=float(s)) for k, s in zip(kps, scores)]
        return FrameResult(poses, (image.shape[1], image.shape[0]), timestamp_ms)

    def close(self) -> None:
        pass


def engines(models: Path, tflite: Path | None, heads: Path | None, threads: int) -> dict:
    """name -> factory(static_image_mode) of every engine compared."""
    from edgepose import Pipeline
    from edgepose.backends.onnxruntime import SPINNING_ENV

    onnx = models / "yolo11n-pose.onnx"

    def edgepose(path, spinning="0"):
        def make(static):
            os.environ[SPINNING_ENV] = spinning  # read when the ONNX Runtime session is made
            try:
                return Pipeline(model=str(path), decoder="yolo-pose", max_people=MAX_DET,
                                threads=threads, static_image_mode=static)
            finally:
                os.environ.pop(SPINNING_ENV)
        return make

    made = {"ultralytics onnx": lambda static: UltralyticsPose(onnx),
            "ultralytics pt": lambda static: UltralyticsPose(models / "yolo11n-pose.pt"),
            "edgepose onnx": edgepose(onnx),
            # ORT's own default, as Ultralytics runs it: what edgepose's preprocessing and
            # decoding alone are worth
            "edgepose onnx, ORT spinning": edgepose(onnx, "1")}
    if tflite is not None:
        made["edgepose tflite"] = edgepose(tflite)
    if heads is not None:  # edgepose's decoding and Ultralytics' rect letterbox, as its .pt predict
        made["edgepose heads"] = edgepose(heads)
    return made


def accuracy(made: dict, datasets: dict) -> dict:
    from edgepose.quiet import native_stderr_quiet

    out = {}
    for name, make in made.items():
        if "spinning" in name:
            continue  # the same predictions as "edgepose onnx"
        engine = make(True)
        with native_stderr_quiet():
            per_set = run_config(engine, datasets)
        engine.close()
        out[name] = {"per_set": per_set, "shared": summary(per_set, SETS), "all": summary(per_set, datasets)}
        print(f"{name:18} AP shared {out[name]['shared']['mean']['AP']:.4f}  all "
              f"{out[name]['all']['mean']['AP']:.4f}  found {out[name]['all']['people_found']}/"
              f"{out[name]['all']['annotated_people']}", file=sys.stderr)
    return out


def speed(made: dict, frames: list, rounds: int, block: int, warmup: int) -> dict:
    """ms per frame of each engine, blocks of ``block`` frames in turn, order rotating."""
    from edgepose.profiler import latency_stats

    running = {name: make(False) for name, make in made.items()}
    names = list(running)
    times: dict[str, list[float]] = {n: [] for n in names}
    people: dict[str, list[int]] = {n: [] for n in names}
    for name in names:  # warm-up: sessions allocate, caches fill
        for i, frame in enumerate(frames[:warmup]):
            running[name].process(frame, timestamp_ms=i * 20.0)
    clock = {n: warmup for n in names}  # each pipeline's own frame count (video mode)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for start in range(0, len(frames), block):
            for name in order:
                for frame in frames[start:start + block]:
                    t = time.perf_counter_ns()
                    result = running[name].process(frame, timestamp_ms=clock[name] * 20.0)
                    times[name].append((time.perf_counter_ns() - t) / 1e6)
                    people[name].append(len(result.poses))
                    clock[name] += 1
    for engine in running.values():
        engine.close()
    stats = {n: {**latency_stats(times[n]), "mean_people": round(float(np.mean(people[n])), 2)}
             for n in names}
    base = stats["ultralytics onnx"]["p50"]
    for n in names:
        stats[n]["ratio_to_ultralytics_onnx"] = round(stats[n]["p50"] / base, 3)
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=MODELS / "yolo",
                        help="folder of yolo11n-pose.onnx and yolo11n-pose.pt")
    parser.add_argument("--tflite", type=Path, help="edgepose's TFLite conversion of the ONNX file")
    parser.add_argument("--heads", type=Path, help="the heads file of `edgepose convert yolo-heads` "
                        "(default: the cache's converted/yolo11n-pose_heads.onnx, skipped when absent)")
    parser.add_argument("--mmpose-data", type=Path, help="tests/data of an mmpose checkout")
    parser.add_argument("--threads", type=int, default=2, help="edgepose's threads (and torch's)")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--block", type=int, default=10, help="frames an engine runs before the next")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "vs_ultralytics.json")
    args = parser.parse_args()
    require_shared("bench_vs_ultralytics", args.models / "yolo11n-pose.onnx", STREET)
    try:
        import torch
        import ultralytics
    except ImportError as exc:
        sys.exit(f"bench_vs_ultralytics: {exc}: run it in the ultralytics environment (see the "
                 "docstring: python benchmarks/bench_vs_ultralytics.py --help)")
    torch.set_num_threads(args.threads)
    from edgepose.sources import read_video

    tflite = args.tflite or Path(os.path.expanduser("~/.cache/edgepose/converted/yolo11n-pose.tflite"))
    if not tflite.is_file():
        print(f"no {tflite}: edgepose's TFLite is left out (edgepose convert from-onnx)", file=sys.stderr)
        tflite = None
    heads = args.heads or Path(os.path.expanduser("~/.cache/edgepose/converted/yolo11n-pose_heads.onnx"))
    if not heads.is_file():
        print(f"no {heads}: edgepose's heads file is left out (edgepose convert yolo-heads)", file=sys.stderr)
        heads = None
    made = engines(args.models, tflite, heads, args.threads)
    report = {
        "benchmark": "YOLO11n-pose: edgepose against Ultralytics' own predict, same files",
        "command": command(), "device": machine(),
        # other processes on a shared machine: hence ratios, taken side by side
        "load_average_1min": {"start": round(os.getloadavg()[0], 2)},
        "versions": {"ultralytics": ultralytics.__version__, "torch": torch.__version__,
                     "onnxruntime": __import__("onnxruntime").__version__},
        "threads": {"edgepose": args.threads, "torch": args.threads,
                    "ultralytics onnx": "ONNX Runtime's default (one per physical core)"},
        "files": {"onnx": str(args.models / "yolo11n-pose.onnx"), "pt": str(args.models / "yolo11n-pose.pt"),
                  "tflite": str(tflite) if tflite else None, "heads": str(heads) if heads else None},
        "definitions": {"p50 ms": f"{STREET.name}, first {args.frames} frames in memory, after "
                        f"{args.warmup} warm-up frames; {args.rounds} rounds of blocks of {args.block} "
                        "frames per engine in turn, order rotating",
                        "ratio_to_ultralytics_onnx": "p50 / p50 of Ultralytics' ONNX Runtime backend",
                        "AP": "edgepose.evaluation OKS AP, mean over sets; shared = the six "
                        "../shared sets, all = with mmpose's three"},
    }
    if not args.skip_accuracy:
        datasets, _ = load_sets(args.mmpose_data)
        report["accuracy"] = accuracy(made, datasets)
        acc = report["accuracy"]
        report["ap_difference_edgepose_onnx_vs_ultralytics_onnx"] = {
            g: round(acc["edgepose onnx"][g]["mean"]["AP"] - acc["ultralytics onnx"][g]["mean"]["AP"], 4)
            for g in ("shared", "all")}
    frames, _ = read_video(STREET, args.frames)
    report["speed"] = speed(made, frames, args.rounds, args.block, args.warmup)
    report["load_average_1min"]["end"] = round(os.getloadavg()[0], 2)
    write_json(args.out, report)
    print("\n| engine | p50 ms | p90 ms | mean ms | x Ultralytics ONNX | people/frame |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, s in report["speed"].items():
        print(f"| {name} | {s['p50']:.1f} | {s['p90']:.1f} | {s['mean']:.1f} | "
              f"{s['ratio_to_ultralytics_onnx']:.2f} | {s['mean_people']} |")
    if "accuracy" in report:
        print(f"AP difference, edgepose onnx - ultralytics onnx: "
              f"{report['ap_difference_edgepose_onnx_vs_ultralytics_onnx']}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
