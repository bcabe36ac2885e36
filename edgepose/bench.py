"""A latency matrix of models x person detectors x backends x threads on a fixed set of
frames, in the manner of TFLite's benchmark_model (warm-up, then N timed runs; count, mean,
std, min, p50, p90, p99), written as JSON, a Markdown table and a PNG plot (``edgepose
bench``, benchmarks/publish_bench.py).

JSON schema ``edgepose.bench/1``::

    {"schema": "edgepose.bench/1", "command": str, "created": ISO time,
     "device": device_facts(), "thermal_after": thermal_state(),
     "source": {"name": str, "frames": int, "size": [w, h], "mode": "video" | "image"},
     "settings": {"warmup": int, "runs": int},
     "results": [{"model": str, "model_file": str, "model_sha256": str, "backend": str,
                  "runtime": str | null, "threads": int,
                  "detector": str | null (null: the model finds people itself),
                  "max_people": int, "decoder": str | null,
                  "latency_ms": {"count", "mean", "std", "min", "p50", "p90", "p99", "max"},
                  "fps": float (1000 / mean latency),
                  "stages_ms": {stage: same statistics},
                  "people_per_frame": float}]}

Latency is one ``process()`` call: frame in, poses out (no video decoding, no drawing).
"""

from __future__ import annotations

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


def run_config(backend: str, model: str, threads: int, frames: list[np.ndarray], mode: str,
               fps: float, warmup: int, runs: int, progress=None, detector: str = "blazepose",
               max_people: int = 1, decoder: str | None = None) -> dict:
    """Time ``runs`` process() calls after ``warmup`` untimed ones, cycling over frames
    (video mode restarts tracking at each wrap, as a new clip)."""
    from edgepose import Options, Pipeline
    from edgepose.models import sha256_of
    from edgepose.profiler import Profiler, latency_stats
    from edgepose.quiet import native_stderr_quiet

    try:
        options = Options(backend=backend, model=model, threads=threads, detector=detector,
                          max_people=max_people, decoder=decoder,
                          static_image_mode=mode == "image", smoothing="none")
    except ValueError as exc:  # an option out of range
        raise InputError(str(exc)) from None
    with native_stderr_quiet(not log.isEnabledFor(logging.INFO)):
        pipe = Pipeline(options)
    described = pipe.describe()
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
        "model_file": described["model_file"],
        "model_sha256": sha256_of(described["model_path"]),
        "backend": backend,
        "runtime": described["runtime"],
        "threads": threads,
        "detector": described["detector"],  # None for a model that finds people itself
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
    person), 'none (model finds people), 6 people' for a model that finds people itself
    (MoveNet, YOLO-pose: detector null); None on the default, and for reports made before
    detectors were recorded."""
    detector, people = r.get("detector", "blazepose"), r.get("max_people", 1)
    decoder = r.get("decoder")
    if detector == "blazepose" and people == 1 and not decoder:
        return None
    if detector is None:
        who = f"none ({decoder or 'model'} finds people)"
    else:
        who = f"{detector} + {decoder}" if decoder else detector
    return f"{who}, {people} {'person' if people == 1 else 'people'}"


def markdown_table(report: dict) -> str:
    labels = [_detector_label(r) for r in report["results"]]
    extra = any(labels)
    head = ("| model | " + ("detector | " if extra else "") + "runtime | threads | mean ms | std | min | "
            "p50 | p90 | p99 | FPS | landmark ms |\n"
            "|" + " --- |" * (11 + extra) + "\n")
    rows = []
    for r, label in zip(report["results"], labels):
        lat = r["latency_ms"]
        landmark = r["stages_ms"].get("landmark", {}).get("mean")
        detector = f"{label or 'blazepose, 1 person'} | " if extra else ""
        rows.append(
            f"| {r['model']} | {detector}{r['runtime'] or r['backend']} | {r['threads']} | {lat['mean']:.2f} | {lat['std']:.2f} | "
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


def bench(source: str, models: list[str], backends: list[str], threads: list[int],
          warmup: int = 10, runs: int = 100, max_frames: int = 300, command: str = "",
          detectors: list[str] = ("blazepose",), max_people: int = 1,
          decoder: str | None = None) -> tuple[dict, dict[str, list[float]]]:
    """Run the matrix on up to ``max_frames`` frames of ``source`` (a video file, folder or
    image). Returns the report (the JSON schema above) and the timed samples of each
    configuration, by label, for :func:`write_report`'s plot."""
    from tqdm import tqdm

    from edgepose.profiler import device_facts, thermal_state
    from edgepose.sources import read_frames

    frames, src = read_frames(source, max_frames)
    if not frames:
        raise InputError(f"{src.name}: no frames to benchmark")
    mode = "video" if src.kind == "video" else "image"
    fps = src.fps or 30.0
    configs = [(b, m, d, t) for m in models for d in detectors for b in backends for t in threads]
    report = {
        "schema": SCHEMA,
        "command": command,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": device_facts(),
        "source": {"name": src.name, "frames": len(frames), "mode": mode,
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
    return report, samples


def write_report(report: dict, samples: dict[str, list[float]], out_dir: Path,
                 name: str = "bench") -> list[Path]:
    """NAME.json, NAME.md and (with matplotlib) NAME.png in ``out_dir``; the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / f"{name}.json", out_dir / f"{name}.md"]
    written[0].write_text(json.dumps(report, indent=2) + "\n")
    written[1].write_text(markdown_table(report))
    if plot(report, out_dir / f"{name}.png", samples):
        written.append(out_dir / f"{name}.png")
    return written
