"""Does one landmark invoke for every person of a frame pay? BlazePose's landmark model with
a batch dimension (LiteRT: the input resized to N crops) against N invokes of one crop.

For each model (lite / full / heavy) and batch size N: ms per crop of one N-crop invoke
and of N one-crop invokes, alternating, min and median over --repeats; and the largest
difference between the batched outputs and the one-crop outputs (the same crops: real
crops of the street clip's people). ONNX Runtime: whether the converted
pose_landmark_full.onnx accepts a batch at all. Writes
benchmarks/results/landmark_batch.json.

    python benchmarks/bench_landmark_batch.py [--threads 2] [--sizes 1,2,4,8] [--repeats 10]
"""

from __future__ import annotations

import argparse
import sys
import time

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


def crops(n: int) -> np.ndarray:
    """(n, 256, 256, 3) landmark inputs: the people BlazePose finds in the street clip."""
    from edgepose import Pipeline
    from edgepose.blazepose import landmarks as lmk
    from edgepose.sources import read_video

    frames, _ = read_video(STREET, 40)
    out = []
    with Pipeline(model="full", max_people=10, static_image_mode=True, threads=2) as pipe:
        for frame in frames[::5]:
            out += [lmk.preprocess(frame, p.roi, "bgr")[0][0] for p in pipe.process(frame).poses]
            if len(out) >= n:
                break
    while len(out) < n:
        out += out
    return np.stack(out[:n])


def interpreter(path: str, threads: int, batch: int):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=path, num_threads=threads)
    if batch > 1:
        it.resize_tensor_input(it.get_input_details()[0]["index"], [batch, 256, 256, 3])
    it.allocate_tensors()
    return it


def invoke(it, x: np.ndarray) -> list[np.ndarray]:
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def measure(model: str, threads: int, sizes: list[int], repeats: int, x: np.ndarray) -> dict:
    path = str(MODELS / f"pose_landmark_{model}.tflite")
    one = interpreter(path, threads, 1)
    out = {}
    for n in sizes:
        many = interpreter(path, threads, n)
        batch = x[:n]
        batched = invoke(many, batch)
        single = [invoke(one, batch[i:i + 1]) for i in range(n)]
        diff = max(float(np.abs(b[i] - s[k][0]).max()) for k, b in enumerate(batched) for i, s in enumerate(single))
        t_batch, t_single = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            invoke(many, batch)
            t_batch.append((time.perf_counter() - t) * 1000 / n)
            t = time.perf_counter()
            for i in range(n):
                invoke(one, batch[i:i + 1])
            t_single.append((time.perf_counter() - t) * 1000 / n)
        out[str(n)] = {"batched_ms_per_crop": {"min": round(min(t_batch), 2), "median": round(float(np.median(t_batch)), 2)},
                       "single_ms_per_crop": {"min": round(min(t_single), 2), "median": round(float(np.median(t_single)), 2)},
                       "max_abs_difference": diff}
        r = out[str(n)]
        print(f"{model:5} N={n}: batched {r['batched_ms_per_crop']['median']:.2f} ms/crop, one by one "
              f"{r['single_ms_per_crop']['median']:.2f} ms/crop (medians), outputs differ by {diff:.2e}",
              file=sys.stderr)
    return out


def onnx_batch() -> str:
    """Whether the converted ONNX landmark model takes a batch (its input's first size)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return "onnxruntime is not installed"
    from edgepose.models import cache_dir

    path = cache_dir() / "converted" / "pose_landmark_full.onnx"
    if not path.is_file():
        return f"{path} is absent (edgepose convert blazepose full --to onnx)"
    shape = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_inputs()[0].shape
    fixed = isinstance(shape[0], int) and shape[0] == 1
    return f"input shape {shape}: " + ("batch fixed at 1, no batched invoke without re-conversion" if fixed
                                       else "a batch is accepted")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", default="1,2,4,8")
    parser.add_argument("--models", default="lite,full,heavy")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", default=str(RESULTS / "landmark_batch.json"))
    args = parser.parse_args()
    require_shared("bench_landmark_batch", MODELS, STREET)
    use_shared_models()
    sizes = [int(s) for s in args.sizes.split(",")]
    x = crops(max(sizes))
    results = {m: measure(m, args.threads, sizes, args.repeats, x) for m in args.models.split(",")}
    try:
        onnx = onnx_batch()
    except Exception as exc:  # noqa: BLE001  reported, not fatal
        onnx = f"could not be checked: {exc}"
    print(f"ONNX Runtime, pose_landmark_full.onnx: {onnx}", file=sys.stderr)
    write_json(args.out, {"benchmark": "landmark model: one N-crop invoke against N one-crop invokes (LiteRT)",
                          "command": command(), "device": machine(), "threads": args.threads,
                          "results": results, "onnxruntime": onnx})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
