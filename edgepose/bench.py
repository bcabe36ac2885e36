"""`edgepose bench`: a latency matrix of models x person detectors x backends x threads
on a fixed set of frames, in the manner of TFLite's benchmark_model (warm-up, then N timed runs; count,
mean, std, min, p50, p90, p99), written as JSON, a Markdown table and a PNG plot.

JSON schema ``edgepose.bench/1``::

    {"schema": "edgepose.bench/1", "command": str, "created": ISO time,
     "device": device_facts(), "thermal_after": thermal_state(),
     "source": {"name": str, "frames": int, "size": [w, h], "mode": "video" | "image"},
     "settings": {"warmup": int, "runs": int},
     "results": [{"model": str, "model_file": str, "model_sha256": str, "backend": str,
                  "runtime": str | null, "threads": int, "detector": str,
                  "max_people": int, "decoder": str | null,
                  "latency_ms": {"count", "mean", "std", "min", "p50", "p90", "p99", "max"},
                  "fps": float (1000 / mean latency),
                  "stages_ms": {stage: same statistics},
                  "people_per_frame": float}]}

Latency is one ``process()`` call: frame in, poses out (no video decoding, no drawing).
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from edgepose.errors import InputError

log = logging.getLogger(__name__)

SCHEMA = "edgepose.bench/1"


def load_frames(spec: str | None, limit: int) -> tuple[list[np.ndarray], str, str, float]:
    """Up to ``limit`` frames from a video, folder or image (the demo photo when None).
    Returns frames, source name, mode ('video' or 'image') and frame rate."""
    from edgepose.sources import demo_image, open_source

    if spec is None:
        demo = demo_image()
        if demo is None:
            raise InputError("give a SOURCE: no demo photo is installed")
        spec = str(demo)
    source = open_source(spec)
    if source.kind in ("camera", "stream"):
        raise InputError("bench needs a fixed set of frames: give a video file, folder or image")
    frames = []
    try:
        for frame in source:
            frames.append(frame.image)
            if len(frames) >= limit:
                break
    finally:
        source.close()
    mode = "video" if source.kind == "video" else "image"
    return frames, source.name, mode, source.fps or 30.0


def run_config(backend: str, model: str, threads: int, frames: list[np.ndarray], mode: str,
               fps: float, warmup: int, runs: int, progress=None, detector: str = "blazepose",
               max_people: int = 1, decoder: str | None = None) -> dict:
    """Time ``runs`` process() calls after ``warmup`` untimed ones, cycling over frames
    (video mode restarts tracking at each wrap, as a new clip)."""
    from edgepose.engines import create_pipeline
    from edgepose.models import sha256_of
    from edgepose.profiler import Profiler, latency_stats

    from edgepose.cli import native_stderr_quiet

    with native_stderr_quiet(not log.isEnabledFor(logging.INFO)):
        try:
            pipe = create_pipeline(backend, model=model, threads=threads, detector=detector,
                                   max_people=max_people, decoder=decoder,
                                   static_image_mode=mode == "image", smoothing="none")
        except ValueError as exc:  # an option out of range
            raise InputError(str(exc)) from None
    per_frame = []
    profile = Profiler()  # pads the stages a frame skipped, counts people
    try:
        for i in range(warmup + runs):
            index = i % len(frames)
            if index == 0 and mode == "video":
                pipe.reset()
            t = time.perf_counter_ns()
            result = pipe.process(frames[index], timestamp_ms=i * 1000.0 / fps)
            elapsed = (time.perf_counter_ns() - t) / 1e6
            if i < warmup:
                continue
            per_frame.append(elapsed)
            profile.add(result.stages_ms, len(result.poses), result.detector_ran)
            if progress is not None:
                progress.update(1)
    finally:
        pipe.close()
    latency = latency_stats(per_frame)
    return {
        "model": model,
        "model_file": Path(pipe.landmark_path).name,
        "model_sha256": sha256_of(pipe.landmark_path),
        "backend": backend,
        "runtime": getattr(pipe, "runtime", None),
        "threads": threads,
        "detector": detector,
        "max_people": max_people,
        "decoder": decoder,
        "latency_ms": latency,
        "fps": round(1000.0 / latency["mean"], 2),
        "stages_ms": profile.stage_stats(),
        "people_per_frame": round(profile.people / max(1, profile.frames), 3),
        "_samples": per_frame,
    }


def _detector_label(r: dict) -> str | None:
    """'centernet, 5 people' for a result off the default (BlazePose's detector, one
    person); None on the default, and for reports made before detectors were recorded."""
    detector, people = r.get("detector", "blazepose"), r.get("max_people", 1)
    if detector == "blazepose" and people == 1 and not r.get("decoder"):
        return None
    decoder = r.get("decoder")
    who = decoder if decoder == "yolo-pose" else f"{detector} + {decoder}" if decoder else detector
    return f"{who}, {people} {'person' if people == 1 else 'people'}"


def markdown_table(report: dict) -> str:
    labels = [_detector_label(r) for r in report["results"]]
    extra = any(labels)
    head = ("| model | " + ("detector | " if extra else "") + "backend | threads | mean ms | std | min | "
            "p50 | p90 | p99 | FPS | landmark ms |\n"
            "|" + " --- |" * (11 + extra) + "\n")
    rows = []
    for r, label in zip(report["results"], labels):
        lat = r["latency_ms"]
        landmark = r["stages_ms"].get("landmark", {}).get("mean")
        detector = f"{label or 'blazepose, 1 person'} | " if extra else ""
        rows.append(
            f"| {r['model']} | {detector}{r['backend']} | {r['threads']} | {lat['mean']:.2f} | {lat['std']:.2f} | "
            f"{lat['min']:.2f} | {lat['p50']:.2f} | {lat['p90']:.2f} | {lat['p99']:.2f} | {r['fps']:.1f} | "
            f"{'-' if landmark is None else f'{landmark:.2f}'} |")
    src = report["source"]
    device = report["device"]
    return (f"{src['frames']} frames of {src['name']} ({src['size'][0]}x{src['size'][1]}, {src['mode']} mode), "
            f"{report['settings']['warmup']} warm-up + {report['settings']['runs']} timed runs; "
            f"{device['cpu']}, {device['cores']} cores, {device['machine']}, Python {device['python']}\n\n"
            + head + "\n".join(rows) + "\n")


def plot(report: dict, path: Path, samples: dict[str, list[float]]) -> bool:
    """Latency distribution and FPS per configuration; False when matplotlib is absent."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no plot (pip install matplotlib)")
        return False
    labels = list(samples)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 0.5 * len(labels) + 2.5))
    left.boxplot([samples[k] for k in labels], vert=False, showfliers=True)
    left.set_yticks(range(1, len(labels) + 1), labels)
    left.set_xlabel("ms per frame")
    left.set_title("latency distribution")
    fps = [r["fps"] for r in report["results"]]
    right.barh(range(1, len(labels) + 1), fps, color="tab:green")
    right.set_yticks(range(1, len(labels) + 1), labels)
    right.set_xlabel("frames per second (1000 / mean ms)")
    right.set_title("throughput")
    fig.suptitle(f"edgepose bench: {report['source']['name']} on {report['device']['cpu']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def bench(source: str | None, models: list[str], backends: list[str], threads: list[int],
          warmup: int, runs: int, max_frames: int, out_dir: Path, command: str,
          detectors: list[str] = ("blazepose",), max_people: int = 1, decoder: str | None = None) -> dict:
    from tqdm import tqdm

    from edgepose.profiler import device_facts, thermal_state

    frames, name, mode, fps = load_frames(source, max_frames)
    if not frames:
        raise InputError(f"{name}: no frames to benchmark")
    configs = [(b, m, d, t) for m in models for d in detectors for b in backends for t in threads]
    report = {
        "schema": SCHEMA,
        "command": command,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": device_facts(),
        "source": {"name": name, "frames": len(frames), "mode": mode,
                   "size": [frames[0].shape[1], frames[0].shape[0]]},
        "settings": {"warmup": warmup, "runs": runs},
        "results": [],
    }
    samples = {}
    with tqdm(total=len(configs) * runs, unit="run", file=sys.stderr, disable=None) as bar:
        for backend, model, detector, n in configs:
            label = " ".join([model, *([detector] if len(detectors) > 1 else []), backend, f"{n}t"])
            bar.set_description(label.replace(" ", "/"))
            result = run_config(backend, model, n, frames, mode, fps, warmup, runs, bar,
                                detector, max_people, decoder)
            report["results"].append(result)
            samples[label] = result.pop("_samples")
    report["thermal_after"] = thermal_state()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "bench.md").write_text(markdown_table(report))
    plot(report, out_dir / "bench.png", samples)
    return report


def add_bench_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="latency of models x backends x threads on fixed frames",
        description=__doc__.split("\n\n")[0])
    p.add_argument("source", nargs="?", help="video, folder or image (default: the demo photo)")
    p.add_argument("--models", default="full", help="comma-separated: lite,full,heavy or paths")
    p.add_argument("--backends", default="tflite", help="comma-separated backends")
    p.add_argument("--threads", default="2", help="comma-separated thread counts, e.g. 1,2,4")
    p.add_argument("--detectors", default="blazepose",
                   help="comma-separated person detectors, e.g. blazepose,centernet (default: blazepose)")
    p.add_argument("--max-people", type=int, default=1, help="most people per frame (default: 1)")
    p.add_argument("--decoder", help="heatmap, simcc or yolo-pose: --models are your own model files")
    p.add_argument("--warmup", type=int, default=10, help="untimed runs first (default: 10)")
    p.add_argument("--runs", type=int, default=100, help="timed runs per configuration (default: 100)")
    p.add_argument("--max-frames", type=int, default=300, help="frames read from the source")
    p.add_argument("--out", default="bench-results", help="folder for bench.json, bench.md, bench.png")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    try:
        threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        raise InputError(f"--threads must be comma-separated integers, got {args.threads!r}") from None
    if args.runs < 1 or args.warmup < 0 or min(threads) < 1 or args.max_people < 1:
        raise InputError("--runs, --threads and --max-people must be >= 1 and --warmup >= 0")
    out = Path(args.out)
    report = bench(args.source, args.models.split(","), args.backends.split(","), threads,
                   args.warmup, args.runs, args.max_frames, out,
                   "edgepose " + " ".join(sys.argv[1:]), args.detectors.split(","),
                   args.max_people, args.decoder)
    print(markdown_table(report), end="")
    print(f"wrote: {out / 'bench.json'}, {out / 'bench.md'}" +
          (f", {out / 'bench.png'}" if (out / "bench.png").exists() else ""))
    return 0
